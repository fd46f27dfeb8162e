use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start)]
    Msg {
        #[aa(max = 10)]
        name: (),
    },
}

fn main() {}

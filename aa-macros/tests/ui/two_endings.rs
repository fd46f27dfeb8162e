use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start)]
    Msg {
        #[aa(u8, bytes = 4)]
        kind: (),
    },
}

fn main() {}

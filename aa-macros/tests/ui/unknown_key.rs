use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start)]
    Msg {
        #[aa(until = "\n", maximum = 10)]
        line: (),
    },
}

fn main() {}

use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start, then = "next trailer;")]
    Msg {
        #[aa(u8)]
        kind: (),
    },
}

fn main() {}

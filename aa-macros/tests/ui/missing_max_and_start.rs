use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    Msg {
        #[aa(until = "\n")]
        line: (),
    },
}

fn main() {}

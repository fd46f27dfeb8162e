use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start)]
    Msg {
        #[aa(u8, actoins = "end;")]
        kind: (),
    },
}

fn main() {}

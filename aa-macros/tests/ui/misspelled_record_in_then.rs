use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start, then = "if kind == 1 { next bdoy; }")]
    Head {
        #[aa(u8)]
        kind: (),
    },
    Body {
        #[aa(u8)]
        byte: (),
    },
}

fn main() {}

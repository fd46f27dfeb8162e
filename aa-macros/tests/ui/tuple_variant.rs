use aa_macros::aa_protocol;

#[aa_protocol]
enum Proto {
    #[aa(start)]
    Msg((), ()),
}

fn main() {}

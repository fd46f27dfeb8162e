use aa_macros::aa_protocol;

#[aa_protocol(globals = "var seen: bool = false;")]
enum Proto {
    #[aa(start)]
    Msg {
        #[aa(until = "\n", max = 100, actions = "seen = len(line);")]
        line: (),
    },
}

fn main() {}

//! What `#[aa_protocol]` expands to, pinned: the enum is lowered to the language
//! and replaced by the generated module.

#[test]
fn aa_protocol_expansion() {
    let attr: proc_macro2::TokenStream = r#"globals = "var frames: u64 = 0;""#.parse().unwrap();
    let item: proc_macro2::TokenStream = r#"
        pub enum Frames {
            #[aa(start, vars = "var seq: u64;", then = "frames = frames + 1; seq = frames;")]
            Frame {
                #[aa(u32be, actions = "if length > 65536 { fail \"frame too long\"; }")]
                length: (),
                #[aa(u8)]
                kind: (),
                #[aa(bytes = "length", max = 65536)]
                payload: (),
            },
        }
    "#
    .parse()
    .unwrap();
    let out = aa_dsl::expand(attr, item).expect("expands");
    let file: syn::File = syn::parse2(out).expect("expansion is Rust");
    insta::assert_snapshot!(prettyplease::unparse(&file));
}

#[test]
fn aa_protocol_errors_point_at_attributes() {
    let item: proc_macro2::TokenStream = r#"
        enum P {
            #[aa(start, then = "next nowhere;")]
            R { #[aa(until = "\n")] line: () },
        }
    "#
    .parse()
    .unwrap();
    let err = aa_dsl::expand(proc_macro2::TokenStream::new(), item).unwrap_err();
    let msgs: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
    assert_eq!(
        msgs,
        [
            "field `line` has no maximum length: a delimited field could grow without bound\n= help: add `max = N` to the field's `#[aa(...)]`",
            "unknown record `nowhere`: no record of this name\n= help: records are: r",
        ]
    );
}

//! `#[aa_protocol]`: describe a protocol's records on a Rust enum; the enum is
//! replaced by the generated zero-copy parser. The attribute language and what
//! it lowers to are documented in `aa_dsl::expand`.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// Generates a zero-copy parser from an enum whose variants are record types
/// and whose fields carry `#[aa(...)]` attributes.
#[proc_macro_attribute]
pub fn aa_protocol(attr: TokenStream, item: TokenStream) -> TokenStream {
    aa_dsl::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

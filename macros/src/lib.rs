//! Build-time checking of snnc model files.
//!
//! `snnc_macros::check!("models/forager.snn")` parses and checks a model file
//! when the calling crate is compiled: an error in the model becomes a
//! `compile_error!` naming the file, line and column, with the same message as
//! `snnc check`; editing the file makes cargo rebuild the crate.
//! `snnc_macros::model!("models/forager.snn")` also compiles the model's kernels
//! into the crate, with the compiler's Rust back end.
//!
//! The macros are a thin shim: `expand` and `expand_model` are plain functions of
//! `proc_macro2` tokens; every decision about the model and its code is
//! `snnc_compiler`'s. The output is built with `quote!`, at the call site.

use proc_macro2::TokenStream;
use quote::quote;
use std::path::{Path, PathBuf};

/// Compiles a model file ahead of time (path relative to the calling crate's
/// `CARGO_MANIFEST_DIR`): expands to `SOURCE` (the model text), `kernels()` (its
/// kernels as Rust functions, for `snnc_runtime::aot::build`) and the kernels
/// themselves. Use it inside a module of its own: `mod lif { snnc_macros::model!("lif.snn"); }`.
#[proc_macro]
pub fn model(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand_model(input.into(), &manifest_dir()).into()
}

/// Checks a model file (path relative to the calling crate's `CARGO_MANIFEST_DIR`) at build time.
#[proc_macro]
pub fn check(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand(input.into(), &manifest_dir()).into()
}

/// The calling crate's directory.
fn manifest_dir() -> PathBuf {
    std::env::var("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default()
}

/// The expansion of `model!(<input>)`.
fn expand_model(input: TokenStream, manifest_dir: &Path) -> TokenStream {
    let file = match ModelFile::load("model", input, manifest_dir) {
        Ok(file) => file,
        Err(error) => return error,
    };
    let shown = &file.shown;
    let source = quote! { pub const SOURCE: &str = include_str!(#shown); };
    let (model, diagnostics) = snnc_compiler::check(&file.source);
    let Some(model) = model else {
        let errors = file.errors("errors in model file", diagnostics);
        return quote!(#source #errors);
    };
    let module = match snnc_compiler::ir::lower(&model) {
        Ok(module) => module,
        Err(errors) => {
            let errors = file.errors("can not compile model file", errors);
            return quote!(#source #errors);
        }
    };
    let kernels = snnc_compiler::backends::rust::generate(&module, &snnc_compiler::backends::rust::runtime_abi());
    quote! {
        #source
        /// The model's kernels.
        pub fn kernels() -> ::snnc_runtime::aot::AotKernels {
            ::snnc_runtime::aot::AotKernels::new(&KERNELS)
        }
        #kernels
    }
}

/// The expansion of `check!(<input>)`.
fn expand(input: TokenStream, manifest_dir: &Path) -> TokenStream {
    let file = match ModelFile::load("check", input, manifest_dir) {
        Ok(file) => file,
        Err(error) => return error,
    };
    // Naming the file in an `include_str!` makes cargo rebuild the crate when it changes.
    let shown = &file.shown;
    let track = quote! { const _: &str = include_str!(#shown); };
    match snnc_compiler::check(&file.source) {
        (Some(_), _) => track,
        (None, diagnostics) => {
            let errors = file.errors("errors in model file", diagnostics);
            quote!(#track #errors)
        }
    }
}

/// A model file named by a macro's argument, read.
struct ModelFile {
    /// The path as written.
    relative: String,
    /// The absolute path, for `include_str!` and messages.
    shown: String,
    source: String,
}

impl ModelFile {
    /// Parses the macro's argument and reads the file; `Err` is a `compile_error!`.
    fn load(macro_name: &str, input: TokenStream, manifest_dir: &Path) -> Result<ModelFile, TokenStream> {
        let relative = path_literal(input).ok_or_else(|| {
            compile_error(&format!(
                "snnc_macros::{macro_name}! takes one string literal: the model file's path, e.g. {macro_name}!(\"models/forager.snn\")"
            ))
        })?;
        let path = manifest_dir.join(&relative);
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(&path)
            .map_err(|e| compile_error(&format!("cannot read model file `{shown}`: {e}")))?;
        Ok(ModelFile { relative, shown, source })
    }

    /// A `compile_error!` with the rendered errors (file:line:col, as `snnc check`).
    fn errors(&self, what: &str, diagnostics: Vec<snnc_compiler::Diagnostic>) -> TokenStream {
        let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
        let rendered = snnc_compiler::diagnostic::render_to_string(&errors, &self.relative, &self.source);
        compile_error(&format!("{what} `{}`:\n{rendered}", self.relative))
    }
}

/// `compile_error!("<message>");`, at the macro's call site.
fn compile_error(message: &str) -> TokenStream {
    quote!(compile_error!(#message);)
}

/// The value of the macro's argument if it is exactly one string literal (plain or
/// raw, without a suffix).
fn path_literal(input: TokenStream) -> Option<String> {
    let literal = syn::parse2::<syn::LitStr>(input).ok()?;
    literal.suffix().is_empty().then(|| literal.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// The tokens of `text` (a macro's argument).
    fn tokens(text: &str) -> TokenStream {
        text.parse().expect("test input lexes")
    }

    /// The text of the `compile_error!` messages in `code`, or nothing.
    fn messages(code: &TokenStream) -> Vec<String> {
        let file: syn::File = syn::parse2(code.clone()).expect("the expansion is items");
        file.items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Macro(m) if m.mac.path.is_ident("compile_error") => {
                    Some(m.mac.parse_body::<syn::LitStr>().expect("one string").value())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn literals() {
        assert_eq!(path_literal(tokens("\"models/a.snn\"")).as_deref(), Some("models/a.snn"));
        assert_eq!(path_literal(tokens("r#\"a\"b\"#")).as_deref(), Some("a\"b"));
        assert_eq!(path_literal(tokens("\"a\\u{62}\\n\"")).as_deref(), Some("ab\n"));
        assert_eq!(path_literal(tokens("models/a.snn")), None);
        assert_eq!(path_literal(tokens("\"a\" , \"b\"")), None);
        assert_eq!(path_literal(tokens("\"a\"x")), None);
        assert_eq!(path_literal(tokens("b\"a\"")), None);
        assert_eq!(path_literal(tokens("concat!(\"a\", \"b\")")), None);
        // A literal passed through `macro_rules!` as `$path:literal` comes in an
        // invisible group.
        let grouped = proc_macro2::Group::new(proc_macro2::Delimiter::None, tokens("\"models/a.snn\""));
        let grouped = TokenStream::from(proc_macro2::TokenTree::Group(grouped));
        assert_eq!(path_literal(grouped).as_deref(), Some("models/a.snn"));
    }

    #[test]
    fn a_correct_model_expands_to_a_tracking_item() {
        let code = expand(tokens("\"../models/forager.snn\""), &dir());
        let file: syn::File = syn::parse2(code.clone()).expect("items");
        assert_eq!(file.items.len(), 1, "{code}");
        assert!(code.to_string().starts_with("const _ : & str = include_str !"), "{code}");
        assert!(messages(&code).is_empty(), "{code}");
    }

    #[test]
    fn a_correct_model_expands_to_source_and_kernels() {
        let code = expand_model(tokens("\"../models/cuba.snn\""), &dir());
        let file: syn::File = syn::parse2(code.clone()).expect("items");
        let names: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Const(c) => Some(c.ident.to_string()),
                syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                syn::Item::Static(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(names.first().map(String::as_str), Some("SOURCE"));
        assert!(names.iter().any(|n| n == "kernels") && names.iter().any(|n| n == "KERNELS"), "{names:?}");
        assert!(names.iter().any(|n| n == "kernel_0"), "{names:?}");
        assert!(messages(&code).is_empty(), "{code}");
    }

    #[test]
    fn a_wrong_model_becomes_compile_error_with_location() {
        let tmp = std::env::temp_dir().join(format!("snnc-macro-{}.snn", std::process::id()));
        std::fs::write(&tmp, "const x = 1 mV + 2 ms\n").expect("write");
        let shown = tmp.display().to_string();
        for code in [
            expand(tokens(&format!("{shown:?}")), Path::new("/")),
            expand_model(tokens(&format!("{shown:?}")), Path::new("/")),
        ] {
            assert!(code.to_string().contains("include_str !"), "the file is tracked even on error: {code}");
            let messages = messages(&code);
            assert_eq!(messages.len(), 1, "{code}");
            let message = &messages[0];
            assert!(message.starts_with(&format!("errors in model file `{shown}`:\n")), "{message}");
            assert!(message.contains(":1:11"), "line and column in the message: {message}");
            assert!(message.contains("dimension mismatch"), "{message}");
        }
    }

    #[test]
    fn bad_arguments_are_compile_errors() {
        assert_eq!(
            messages(&expand(tokens("42"), &dir())),
            [
                "snnc_macros::check! takes one string literal: the model file's path, e.g. check!(\"models/forager.snn\")"
            ]
        );
        assert_eq!(
            messages(&expand_model(tokens("a, b"), &dir())),
            [
                "snnc_macros::model! takes one string literal: the model file's path, e.g. model!(\"models/forager.snn\")"
            ]
        );
        let missing = messages(&expand(tokens("\"no/such/file.snn\""), &dir()));
        assert_eq!(missing.len(), 1);
        assert!(missing[0].starts_with("cannot read model file `"), "{missing:?}");
        assert!(missing[0].contains("no/such/file.snn`: "), "{missing:?}");
    }
}

//! Build-time checking of snnc model files.
//!
//! `snnc_macros::check!("models/forager.snn")` parses and checks a model file
//! when the calling crate is compiled: an error in the model becomes a
//! `compile_error!` naming the file, line and column, with the same message as
//! `snnc check`; editing the file makes cargo rebuild the crate. The AOT
//! `model!` macro will extend this with code generation.
//!
//! The macro is a thin shim: the logic lives in `expand`, a plain function of
//! strings, and in `snnc_compiler`.

use proc_macro::TokenStream;
use std::path::{Path, PathBuf};

/// Compiles a model file ahead of time (path relative to the calling crate's
/// `CARGO_MANIFEST_DIR`): expands to `SOURCE` (the model text), `kernels()` (its
/// kernels as Rust functions, for `snnc_runtime::aot::build`) and the kernels
/// themselves. Use it inside a module of its own: `mod lif { snnc_macros::model!("lif.snn"); }`.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
    let code = expand_model(&input.to_string(), &manifest_dir);
    code.parse()
        .unwrap_or_else(|_| "compile_error!(\"snnc: internal error in the model! macro\");".parse().unwrap_or_default())
}

/// The expansion of `model!(<input>)` as Rust source text.
fn expand_model(input: &str, manifest_dir: &Path) -> String {
    let file = match ModelFile::load("model", input, manifest_dir) {
        Ok(file) => file,
        Err(error) => return error,
    };
    let text = format!("pub const SOURCE: &str = include_str!({});", rust_string(&file.shown));
    let (model, diagnostics) = snnc_compiler::check(&file.source);
    let Some(model) = model else {
        return format!("{text}\n{}", file.errors("errors in model file", diagnostics));
    };
    let module = match snnc_compiler::ir::lower(&model) {
        Ok(module) => module,
        Err(errors) => return format!("{text}\n{}", file.errors("can not compile model file", errors)),
    };
    let kernels = snnc_compiler::backends::rust::generate(&module, "::snnc_runtime::abi");
    format!(
        "{text}\n/// The model's kernels.\npub fn kernels() -> ::snnc_runtime::aot::AotKernels {{ ::snnc_runtime::aot::AotKernels::new(&KERNELS) }}\n{kernels}"
    )
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
    fn load(macro_name: &str, input: &str, manifest_dir: &Path) -> Result<ModelFile, String> {
        let relative = string_literal(input.trim()).ok_or_else(|| {
            compile_error(&format!(
                "snnc::{macro_name}! takes one string literal: the model file's path, e.g. {macro_name}!(\"models/forager.snn\")"
            ))
        })?;
        let path = manifest_dir.join(&relative);
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(&path)
            .map_err(|e| compile_error(&format!("cannot read model file `{shown}`: {e}")))?;
        Ok(ModelFile { relative, shown, source })
    }

    /// A `compile_error!` with the rendered errors (file:line:col, as `snnc check`).
    fn errors(&self, what: &str, diagnostics: Vec<snnc_compiler::Diagnostic>) -> String {
        let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
        let rendered = snnc_compiler::diagnostic::render_to_string(&errors, &self.relative, &self.source);
        compile_error(&format!("{what} `{}`:\n{rendered}", self.relative))
    }
}

/// Checks a model file (path relative to the calling crate's `CARGO_MANIFEST_DIR`) at build time.
#[proc_macro]
pub fn check(input: TokenStream) -> TokenStream {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
    let code = expand(&input.to_string(), &manifest_dir);
    code.parse().unwrap_or_else(|_| {
        // `expand` only emits well-formed items; this is a last resort, not a panic.
        "compile_error!(\"snnc: internal error in the check! macro\");".parse().unwrap_or_default()
    })
}

/// The expansion of `check!(<input>)` as Rust source text.
fn expand(input: &str, manifest_dir: &Path) -> String {
    let file = match ModelFile::load("check", input, manifest_dir) {
        Ok(file) => file,
        Err(error) => return error,
    };
    // Naming the file in an `include_str!` makes cargo rebuild the crate when it changes.
    let track = format!("const _: &str = include_str!({});", rust_string(&file.shown));
    match snnc_compiler::check(&file.source) {
        (Some(_), _) => track,
        (None, diagnostics) => format!("{track}\n{}", file.errors("errors in model file", diagnostics)),
    }
}

fn compile_error(message: &str) -> String {
    format!("compile_error!({});", rust_string(message))
}

/// A Rust string literal for `text`.
fn rust_string(text: &str) -> String {
    format!("{text:?}")
}

/// The value of a plain `"..."` literal with simple escapes; raw strings `r"..."` too.
fn string_literal(token: &str) -> Option<String> {
    if let Some(raw) = token.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let inner = raw.get(hashes..raw.len().checked_sub(hashes)?)?;
        return inner.strip_prefix('"')?.strip_suffix('"').map(str::to_string);
    }
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            '0' => out.push('\0'),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn literals() {
        assert_eq!(string_literal("\"models/a.snn\"").as_deref(), Some("models/a.snn"));
        assert_eq!(string_literal("r#\"a\"b\"#").as_deref(), Some("a\"b"));
        assert_eq!(string_literal("models/a.snn"), None);
        assert_eq!(string_literal("\"a\" , \"b\""), None);
    }

    #[test]
    fn a_correct_model_expands_to_a_tracking_item() {
        let code = expand("\"../models/forager.snn\"", &dir());
        assert!(code.starts_with("const _: &str = include_str!("), "{code}");
        assert!(!code.contains("compile_error"), "{code}");
    }

    #[test]
    fn a_wrong_model_becomes_compile_error_with_location() {
        let tmp = std::env::temp_dir().join(format!("snnc-macro-{}.snn", std::process::id()));
        std::fs::write(&tmp, "const x = 1 mV + 2 ms\n").expect("write");
        let code = expand(&format!("{:?}", tmp.display().to_string()), Path::new("/"));
        assert!(code.contains("include_str!"), "the file is tracked even on error: {code}");
        assert!(code.contains("compile_error!"), "{code}");
        assert!(code.contains(":1:11"), "line and column in the message: {code}");
        assert!(code.contains("dimension mismatch"), "{code}");
    }

    #[test]
    fn bad_arguments_are_compile_errors() {
        assert!(expand("42", &dir()).starts_with("compile_error!"));
        assert!(expand("\"no/such/file.snn\"", &dir()).contains("cannot read model file"));
    }
}

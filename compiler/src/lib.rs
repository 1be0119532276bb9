//! The snnc compiler front end: model text in, a checked model or diagnostics out.
//!
//! The pipeline (each stage a module):
//!
//! ```text
//! source --syntax--> ast::File --sema--> model::Model
//!                     (spans)            (names resolved, dimensions checked, SI values)
//! ```
//!
//! The compiler does no IO: it reads a `&str` and returns data. Rendering the
//! diagnostics is `diagnostic::render_to_string`'s job; reading files is the caller's.

pub mod abi;
pub mod ast;
pub mod backends;
pub mod diagnostic;
pub mod dump;
pub mod env;
pub mod ir;
pub mod model;
pub mod sema;
pub mod span;
pub mod syntax;
pub mod units;

pub use diagnostic::{Diagnostic, Severity};
pub use model::Model;
pub use span::Span;

/// Parses and checks a model file's text.
///
/// Returns the checked model when there are no errors, and every diagnostic
/// (errors and warnings) in source order. Never panics, whatever the input.
pub fn check(source: &str) -> (Option<Model>, Vec<Diagnostic>) {
    check_with(source, &[])
}

/// Like `check`, with some constants given other values (`snnc run --set`): each
/// override is a constant's name and a value in SI units with its dimension, which
/// must be the constant's. Constants defined from overridden ones follow them.
pub fn check_with(source: &str, overrides: &[Override]) -> (Option<Model>, Vec<Diagnostic>) {
    check_in(source, overrides, env::BUILTIN)
}

/// Like `check_with`, for a model that may bind one of `environments` (the
/// built-in ones are `env::BUILTIN`; a program that adds its own environment
/// passes its spec here).
pub fn check_in(
    source: &str,
    overrides: &[Override],
    environments: &[env::EnvironmentSpec],
) -> (Option<Model>, Vec<Diagnostic>) {
    match syntax::parse(source) {
        Ok(file) => sema::check_in(&file, overrides, environments),
        Err(diagnostics) => (None, diagnostics),
    }
}

/// A constant's value given from outside the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The constant's name.
    pub name: String,
    /// The value in SI units.
    pub value: f64,
    /// Its dimension.
    pub dim: units::Dimension,
    /// The text as given, for messages.
    pub text: String,
}

/// Evaluates a quantity written in the model language: `10ms`, `-65 mV`, `0.5*nS`, `3`.
pub fn eval_quantity(text: &str) -> Result<(f64, units::Dimension), String> {
    let source = format!("const value = {text}");
    let (model, diagnostics) = check(&source);
    match model.and_then(|m| m.constants.into_iter().next()) {
        Some(c) => Ok((c.value, c.dim)),
        None => {
            let first = diagnostics
                .into_iter()
                .find(|d| d.is_error())
                .map_or_else(|| "invalid value".to_string(), |d| d.message);
            Err(format!("`{text}` is not a quantity: {first}"))
        }
    }
}

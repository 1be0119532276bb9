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
    match syntax::parse(source) {
        Ok(file) => sema::check(&file),
        Err(diagnostics) => (None, diagnostics),
    }
}

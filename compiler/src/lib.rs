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

pub mod ast;
pub mod diagnostic;
pub mod span;
pub mod syntax;
pub mod units;

pub use diagnostic::{Diagnostic, Severity};
pub use span::Span;

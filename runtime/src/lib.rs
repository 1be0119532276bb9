//! The snnc engine and command-line program.
//!
//! The simulation engine (state arrays, the step schedule, monitors,
//! environments) lands here with the kernel back ends; today this crate hosts
//! the `snnc` command-line program (behind the default `cli` feature).

#[cfg(feature = "cli")]
pub mod cli;

//! Cross-crate tests of snnc live in `tests/`; this library is empty on purpose.
//!
//! The reference agent is checked at build time here, through the `check!`
//! macro: if `models/forager.snn` stops checking, this crate stops compiling.

snnc_macros::check!("../models/forager.snn");

//! Code generators.
#[cfg(feature = "jit")]
pub mod cranelift;

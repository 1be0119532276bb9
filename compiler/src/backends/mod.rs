//! Code generators: Cranelift (the JIT) and Rust source (the AOT `model!` macro).

#[cfg(feature = "jit")]
pub mod cranelift;
pub mod rust;

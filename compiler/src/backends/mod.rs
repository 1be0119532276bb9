//! Code generators: Cranelift (the JIT, with its own AVX2 code for element-wise
//! loops) and Rust source (the AOT `model!` macro).

#[cfg(feature = "jit")]
pub mod avx2;
#[cfg(feature = "jit")]
pub mod cranelift;
pub mod rust;

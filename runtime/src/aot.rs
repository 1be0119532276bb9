//! Kernels compiled ahead of time by `snnc_macros::model!`, and how to run them.

use crate::sim::{Kernels, Simulation};
use snnc_compiler::abi::KernelFn;

/// A model's kernels as Rust functions, made by `snnc_macros::model!`.
#[derive(Clone, Copy, Debug)]
pub struct AotKernels {
    functions: &'static [KernelFn],
}

impl AotKernels {
    /// The functions, in the order of the lowered module.
    pub const fn new(functions: &'static [KernelFn]) -> AotKernels {
        AotKernels { functions }
    }
}

impl Kernels for AotKernels {
    fn functions(&self) -> &[KernelFn] {
        self.functions
    }
}

/// Builds a simulation from a model's source and its AOT kernels (`model!` gives
/// both): the source is checked and lowered again (milliseconds, no code
/// generation), and the kernels must match its lowering.
pub fn build(source: &str, kernels: AotKernels, seed: u64) -> Result<(snnc_compiler::Model, Simulation), String> {
    let (model, diagnostics) = snnc_compiler::check(source);
    let model = model.ok_or_else(|| diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let module = snnc_compiler::ir::lower(&model)
        .map_err(|errors| errors.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let sim = Simulation::new(module, Box::new(kernels), seed)?;
    Ok((model, sim))
}

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
    build_with(source, &[], kernels, seed)
}

/// `build` with constants overridden (constants are run-time parameters of the
/// kernels, so the same kernels run any values).
pub fn build_with(
    source: &str,
    overrides: &[snnc_compiler::Override],
    kernels: AotKernels,
    seed: u64,
) -> Result<(snnc_compiler::Model, Simulation), String> {
    let (model, diagnostics) = snnc_compiler::check_with(source, overrides);
    let model = model.ok_or_else(|| diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let module = snnc_compiler::ir::lower(&model)
        .map_err(|errors| errors.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let sim = Simulation::new(module, Box::new(kernels), seed)?;
    Ok((model, sim))
}

/// A model compiled into this library (feature `aot`): the file name in `models/`,
/// its text at build time, and its kernels.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinModel {
    /// The file's name, e.g. `forager.snn`.
    pub file_name: &'static str,
    /// The model text the kernels were compiled from.
    pub source: &'static str,
    /// The kernels.
    pub kernels: AotKernels,
}

#[cfg(feature = "aot")]
mod builtin {
    macro_rules! builtin_models {
        ($($name:ident => $file:literal at $path:literal),* $(,)?) => {
            $(mod $name { snnc_macros::model!($path); })*
            /// Every model of `models/`, compiled ahead of time.
            pub fn models() -> Vec<super::BuiltinModel> {
                vec![$(super::BuiltinModel { file_name: $file, source: $name::SOURCE, kernels: $name::kernels() }),*]
            }
        };
    }
    builtin_models! {
        forager => "forager.snn" at "../models/forager.snn",
        cuba => "cuba.snn" at "../models/cuba.snn",
        cobahh => "cobahh.snn" at "../models/cobahh.snn",
        izhikevich => "izhikevich.snn" at "../models/izhikevich.snn",
        adex => "adex.snn" at "../models/adex.snn",
        hh => "hh.snn" at "../models/hh.snn",
        stdp => "stdp.snn" at "../models/stdp.snn",
    }
}

/// The models compiled into this library (empty without the `aot` feature).
pub fn builtin_models() -> Vec<BuiltinModel> {
    #[cfg(feature = "aot")]
    return builtin::models();
    #[cfg(not(feature = "aot"))]
    Vec::new()
}

/// The built-in AOT kernels for a model file's text: the model whose build-time
/// text is exactly `source`. `Err` explains why there are none (the file changed
/// since the build, or it was never built in) and what to do.
pub fn builtin_for(file_name: &str, source: &str) -> Result<AotKernels, String> {
    let models = builtin_models();
    if models.is_empty() {
        return Err("this snnc was built without AOT models: build it with `cargo build --release --features aot`, \
             or run with `--backend jit`"
            .into());
    }
    if let Some(model) = models.iter().find(|m| m.source == source) {
        return Ok(model.kernels);
    }
    let hash = |text: &str| format!("{:016x}", fnv1a(text.as_bytes()));
    match models.iter().find(|m| m.file_name == file_name) {
        Some(model) => Err(format!(
            "`{file_name}` changed since this snnc was built (model hash {}, built-in {}): rebuild with \
             `cargo build --release --features aot`, or run with `--backend jit`",
            hash(source),
            hash(model.source)
        )),
        None => Err(format!(
            "no AOT kernels for `{file_name}` in this snnc (built in: {}): run it with `--backend jit`, or \
             compile it into your own program with `snnc_macros::model!`",
            models.iter().map(|m| m.file_name).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// 64-bit FNV-1a of a model's text (identifies a model in messages and `run.json`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

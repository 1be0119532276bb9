//! The snnc engine and command-line program.
//!
//! `sim` steps a lowered model through its compiled kernels; `monitor` records
//! spikes, state and rates; `output` writes run folders atomically. The `snnc`
//! program lives in `cli` (behind the default `cli` feature).

#[cfg(feature = "cli")]
pub mod cli;
pub mod monitor;
pub mod output;
pub mod sim;

pub use monitor::Monitors;
pub use sim::Simulation;

/// Lowers a checked model and compiles its kernels with the JIT, then initializes the state.
#[cfg(feature = "jit")]
pub fn build(model: &snnc_compiler::Model, seed: u64) -> Result<Simulation, String> {
    let module = snnc_compiler::ir::lower(model)
        .map_err(|diagnostics| diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let kernels =
        snnc_compiler::backends::cranelift::compile(&module, Default::default()).map_err(|e| e.to_string())?;
    Simulation::new(module, Box::new(kernels), seed)
}

//! The simulation: state arrays, the per-step schedule, and the calls into kernels.
//!
//! One step at `t = step*dt` runs, in order (Brian2's schedule):
//! `start` (periodic code, then monitors record the state), `groups` (state
//! updates), `thresholds` (spike lists; spike monitors), `resets`, then the
//! shared block's update; then the clock advances.

use crate::monitor::Monitors;
use snnc_compiler::abi::{KernelArgs, KernelFn};
use snnc_compiler::ir::{KernelKind, Loop, Module};

/// Compiled kernels from some back end.
pub trait Kernels {
    /// The functions, indexed like `Module::kernels`.
    fn functions(&self) -> &[KernelFn];
}

#[cfg(feature = "jit")]
impl Kernels for snnc_compiler::backends::cranelift::JitKernels {
    fn functions(&self) -> &[KernelFn] {
        snnc_compiler::backends::cranelift::JitKernels::functions(self)
    }
}

/// A running model.
pub struct Simulation {
    module: Module,
    kernels: Box<dyn Kernels>,
    /// One array per state variable (`ir::VarId`).
    state: Vec<Vec<f64>>,
    var_pointers: Vec<*mut f64>,
    params: Vec<f64>,
    table_pointers: Vec<*const f64>,
    /// Per population: the spikes of the current step.
    spikes: Vec<Vec<u32>>,
    n_spikes: Vec<u64>,
    step: u64,
    seed: u64,
    schedule: Schedule,
}

/// Which kernels run in which slot of a step, in order (computed once).
#[derive(Debug, Default)]
struct Schedule {
    periodic: Vec<(usize, u64)>,
    updates: Vec<usize>,
    thresholds: Vec<usize>,
    resets: Vec<usize>,
    shared_updates: Vec<usize>,
}

impl Schedule {
    fn new(module: &Module) -> Schedule {
        let shared = module.layout.population("shared");
        let mut schedule = Schedule::default();
        for (k, kernel) in module.kernels.iter().enumerate() {
            match kernel.kind {
                KernelKind::Periodic { period } => schedule.periodic.push((k, period)),
                KernelKind::StateUpdate if Some(kernel.population) == shared => schedule.shared_updates.push(k),
                KernelKind::StateUpdate => schedule.updates.push(k),
                KernelKind::Threshold => schedule.thresholds.push(k),
                KernelKind::Reset => schedule.resets.push(k),
                KernelKind::Init | KernelKind::Observe => {}
            }
        }
        schedule
    }
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Simulation(step {}, {} kernels)", self.step, self.module.kernels.len())
    }
}

impl Simulation {
    /// Allocates the state and runs the `init` kernels.
    ///
    /// The kernels must have been compiled from `module` (their count is checked).
    pub fn new(module: Module, kernels: Box<dyn Kernels>, seed: u64) -> Result<Simulation, String> {
        if kernels.functions().len() != module.kernels.len() {
            return Err(format!(
                "{} kernels compiled for {} in the module",
                kernels.functions().len(),
                module.kernels.len()
            ));
        }
        let layout = &module.layout;
        let mut state: Vec<Vec<f64>> = layout
            .vars
            .iter()
            .map(|v| {
                let size = if v.scalar { 1 } else { layout.populations[v.population].size as usize };
                vec![v.default; size]
            })
            .collect();
        let var_pointers = state.iter_mut().map(|a| a.as_mut_ptr()).collect();
        let params = layout.params.iter().map(|p| p.value).collect();
        let table_pointers = module.tables.iter().map(|t| t.as_ptr()).collect();
        let spikes = layout.populations.iter().map(|p| vec![0u32; p.size as usize]).collect();
        let n_spikes = vec![0; layout.populations.len()];
        let schedule = Schedule::new(&module);
        let mut sim = Simulation {
            module,
            kernels,
            state,
            var_pointers,
            params,
            table_pointers,
            spikes,
            n_spikes,
            step: 0,
            seed,
            schedule,
        };
        for k in 0..sim.module.kernels.len() {
            if sim.module.kernels[k].kind == KernelKind::Init {
                sim.call(k);
            }
        }
        Ok(sim)
    }

    /// The lowered model.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The current step.
    pub fn step_number(&self) -> u64 {
        self.step
    }

    /// The values of a state variable.
    pub fn values(&self, var: usize) -> &[f64] {
        &self.state[var]
    }

    /// The spikes of a population in the last step.
    pub fn last_spikes(&self, population: usize) -> &[u32] {
        let n = self.n_spikes[population] as usize;
        &self.spikes[population][..n]
    }

    /// Calls kernel `k` once (over its loop).
    fn call(&mut self, k: usize) {
        let kernel = &self.module.kernels[k];
        let population = kernel.population;
        let n = match kernel.looping {
            Loop::Neurons => u64::from(self.module.layout.populations[population].size),
            Loop::Spikes => self.n_spikes[population],
            Loop::Once => 1,
        };
        let mut n_spikes = 0u64;
        let args = KernelArgs {
            n,
            step: self.step,
            t: self.step as f64 * self.module.dt,
            dt: self.module.dt,
            vars: self.var_pointers.as_ptr(),
            params: self.params.as_ptr(),
            tables: self.table_pointers.as_ptr(),
            spikes: self.spikes[population].as_mut_ptr(),
            n_spikes: &mut n_spikes,
            seed: self.seed,
        };
        let f = self.kernels.functions()[k];
        // SAFETY: the kernel was compiled from this module's IR: it reads and writes
        // only the arrays of `vars` (each sized for its population, or 1 for scalar
        // variables) at indices below `n`, the tables (one value per neuron), and at
        // most one spike per neuron into `spikes` (sized for the population).
        unsafe { f(&args) };
        if kernel.kind == KernelKind::Threshold {
            self.n_spikes[population] = n_spikes;
        }
    }

    /// Computes subexpressions of a population into their arrays (for monitors).
    pub fn observe(&mut self, population: usize) {
        for k in 0..self.module.kernels.len() {
            let kernel = &self.module.kernels[k];
            if kernel.kind == KernelKind::Observe && kernel.population == population {
                self.call(k);
            }
        }
    }

    /// Advances one step, recording into `monitors`.
    pub fn step(&mut self, monitors: &mut Monitors) {
        // start: periodic code, then monitors see the state.
        for i in 0..self.schedule.periodic.len() {
            let (k, period) = self.schedule.periodic[i];
            if self.step.is_multiple_of(period) {
                self.call(k);
            }
        }
        monitors.record_state(self);
        // groups, thresholds, resets.
        for i in 0..self.schedule.updates.len() {
            self.call(self.schedule.updates[i]);
        }
        self.n_spikes.iter_mut().for_each(|n| *n = 0);
        for i in 0..self.schedule.thresholds.len() {
            self.call(self.schedule.thresholds[i]);
        }
        monitors.record_spikes(self);
        for i in 0..self.schedule.resets.len() {
            self.call(self.schedule.resets[i]);
        }
        // The shared block (e.g. dopamine) last, after everything that reads it.
        for i in 0..self.schedule.shared_updates.len() {
            self.call(self.schedule.shared_updates[i]);
        }
        self.step += 1;
    }
}

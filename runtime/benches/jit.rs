//! JIT benchmarks: compile time of every model that runs today, and the LIF update
//! (ns per neuron-update) against a hand-written Rust loop of the same arithmetic.
//!
//! `cargo bench -p snnc-runtime --bench jit`

use snnc_runtime::{Monitors, Simulation};
use std::path::PathBuf;

fn main() {
    divan::main();
}

fn models() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in ["models", "tests/conformance"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "snn") {
                let source = std::fs::read_to_string(&path).unwrap_or_default();
                // Only models the runtime runs today (no synapses yet).
                let runs = snnc_compiler::check(&source).0.is_some_and(|m| snnc_compiler::ir::lower(&m).is_ok());
                if runs {
                    out.push((format!("{dir}/{}", path.file_name().unwrap_or_default().to_string_lossy()), source));
                }
            }
        }
    }
    out.sort();
    out
}

/// Model file text to compiled kernels: parse, check, lower, Cranelift.
#[divan::bench(args = models().into_iter().map(|(name, _)| name).collect::<Vec<_>>())]
fn file_to_kernels(bencher: divan::Bencher, name: &str) {
    let source = models().into_iter().find(|(n, _)| n == name).map(|(_, s)| s).unwrap_or_default();
    bencher.bench(|| {
        let model = snnc_compiler::check(&source).0.expect("checks");
        let module = snnc_compiler::ir::lower(&model).expect("lowers");
        snnc_compiler::backends::cranelift::compile(&module, Default::default()).expect("compiles")
    });
}

fn lif_source(n: u32) -> String {
    format!(
        "dt = 0.1 ms\nconst tau = 10 ms\nconst El = -70 mV\nconst Vt = -50 mV\nconst Vr = -65 mV\nconst R = 100 Mohm\n\
         neuron LIF {{ equations {{ dv/dt = (El - v + R*I)/tau : volt (unless refractory)\n I : amp (constant) }}\n\
         threshold v > Vt\n reset {{ v = Vr }}\n refractory 2 ms\n method exact }}\n\
         group G = LIF({n}) {{ v = El + rand()*20 mV; I = 0.1 nA + 0.3 nA*i/{n} }}"
    )
}

const SIZES: [u32; 2] = [256, 100_000];
const STEPS: u64 = 100;

/// The JIT's LIF: one call of `step` per step (state update, threshold, reset).
#[divan::bench(args = SIZES)]
fn lif_jit(bencher: divan::Bencher, n: u32) {
    let model = snnc_compiler::check(&lif_source(n)).0.expect("checks");
    let mut sim: Simulation = snnc_runtime::build(&model, 1).expect("builds");
    let mut monitors = Monitors::default();
    bencher.counter(divan::counter::ItemsCount::new(u64::from(n) * STEPS)).bench_local(|| {
        for _ in 0..STEPS {
            sim.step(&mut monitors);
        }
    });
}

/// The same arithmetic, written by hand: Brian2's refractory test, the exact
/// update, threshold and reset, over structure-of-arrays state.
struct HandLif {
    v: Vec<f64>,
    i: Vec<f64>,
    lastspike: Vec<f64>,
    not_refractory: Vec<f64>,
    spikes: Vec<u32>,
    step: u64,
}

impl HandLif {
    fn new(n: u32) -> HandLif {
        let v = (0..n).map(|k| -0.07 + 0.02 * f64::from(k % 97) / 97.0).collect();
        let i = (0..n).map(|k| 0.1e-9 + 0.3e-9 * f64::from(k) / f64::from(n)).collect();
        HandLif {
            v,
            i,
            lastspike: vec![-1e4; n as usize],
            not_refractory: vec![1.0; n as usize],
            spikes: Vec::with_capacity(n as usize),
            step: 0,
        }
    }

    #[inline(never)]
    fn step(&mut self) {
        let (dt, tau, el, vt, vr, r) = (1e-4, 0.01, -0.07, -0.05, -0.065, 1e8);
        let t = self.step as f64 * dt;
        let shift = 1e-3 * dt;
        let refractory_steps = ((2e-3 + shift) / dt).trunc();
        let decay = snnc_compiler::abi::snnc_exp((-1.0 / tau) * dt);
        let rate = -1.0 / tau;
        for k in 0..self.v.len() {
            let nr = ((t - self.lastspike[k] + shift) / dt).trunc() >= refractory_steps;
            self.not_refractory[k] = if nr { 1.0 } else { 0.0 };
            let target = -(((el + r * self.i[k]) / tau) / rate);
            let new = target + (self.v[k] - target) * decay;
            if nr {
                self.v[k] = new;
            }
        }
        self.spikes.clear();
        for k in 0..self.v.len() {
            if self.v[k] > vt && self.not_refractory[k] != 0.0 {
                self.spikes.push(k as u32);
                self.lastspike[k] = t;
                self.not_refractory[k] = 0.0;
            }
        }
        for &k in &self.spikes {
            self.v[k as usize] = vr;
        }
        self.step += 1;
    }
}

/// The baseline: hand-written Rust, compiled by rustc/LLVM with the benchmark.
#[divan::bench(args = SIZES)]
fn lif_hand_written(bencher: divan::Bencher, n: u32) {
    let mut lif = HandLif::new(n);
    bencher.counter(divan::counter::ItemsCount::new(u64::from(n) * STEPS)).bench_local(|| {
        for _ in 0..STEPS {
            lif.step();
        }
        divan::black_box(&lif.v);
    });
}

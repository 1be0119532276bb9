//! The central cross-check: models compiled ahead of time (`snnc_macros::model!`) and
//! by the JIT compute the same bits: every spike of every step and every state value.

use snnc_runtime::{Monitors, Simulation};

macro_rules! aot_models {
    ($($name:ident => $path:literal),* $(,)?) => {
        $(mod $name { snnc_macros::model!($path); })*
        /// (name, source, kernels) of every model compiled ahead of time.
        fn aot_models() -> Vec<(&'static str, &'static str, snnc_runtime::aot::AotKernels)> {
            vec![$((stringify!($name), $name::SOURCE, $name::kernels())),*]
        }
    };
}

aot_models! {
    lif_const => "conformance/lif_const.snn",
    izhikevich_card => "conformance/izhikevich.snn",
    hh_card => "conformance/hh.snn",
    adex_card => "conformance/adex.snn",
    integrators => "conformance/integrators.snn",
    cuba_small => "conformance/cuba_small.snn",
    feat_delay => "conformance/feat_delay.snn",
    feat_subexpr => "conformance/feat_subexpr.snn",
    feat_summed => "conformance/feat_summed.snn",
    stdp_pair => "conformance/stdp_pair.snn",
    forager => "../models/forager.snn",
    cuba => "../models/cuba.snn",
    cobahh => "../models/cobahh.snn",
    izhikevich => "../models/izhikevich.snn",
    adex => "../models/adex.snn",
    hh => "../models/hh.snn",
    stdp => "../models/stdp.snn",
    lanes => "cases/lanes/lanes.snn",
    pressure => "cases/pressure/pressure.snn",
}

fn jit(source: &str, seed: u64) -> Simulation {
    let (model, diagnostics) = snnc_compiler::check(source);
    let model = model.unwrap_or_else(|| panic!("{diagnostics:?}"));
    snnc_runtime::build(&model, seed).expect("the JIT builds")
}

#[test]
fn aot_and_jit_compute_the_same_bits() {
    let steps = 300;
    for (name, source, kernels) in aot_models() {
        for seed in [1, 2] {
            let mut a = jit(source, seed);
            let (_, mut b) =
                snnc_runtime::aot::build(source, kernels, seed).expect("the AOT kernels match their model");
            let (mut ma, mut mb) = (Monitors::default(), Monitors::default());
            let populations = a.module().layout.populations.len();
            let mut spikes = 0;
            for step in 0..steps {
                a.step(&mut ma);
                b.step(&mut mb);
                for p in 0..populations {
                    assert_eq!(
                        a.last_spikes(p),
                        b.last_spikes(p),
                        "{name}, seed {seed}: spikes of population {p} at step {step}"
                    );
                    spikes += a.last_spikes(p).len();
                }
            }
            for (v, info) in a.module().layout.vars.iter().enumerate() {
                let (x, y) = (a.values(v), b.values(v));
                assert_eq!(x.len(), y.len(), "{name}: {}", info.name);
                for (k, (p, q)) in x.iter().zip(y).enumerate() {
                    assert!(
                        p.to_bits() == q.to_bits(),
                        "{name}, seed {seed}: {}[{k}] is {p} (JIT) and {q} (AOT)",
                        info.name
                    );
                }
            }
            let _ = spikes;
        }
    }
}

#[test]
fn every_model_is_compiled_ahead_of_time() {
    // Each model file in models/ appears above (so the AOT check covers it).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let names: Vec<&str> = aot_models().iter().map(|(n, _, _)| *n).collect();
    for entry in std::fs::read_dir(dir).expect("models/").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "snn") {
            let stem = path.file_stem().expect("a name").to_string_lossy().into_owned();
            assert!(names.contains(&stem.as_str()), "models/{stem}.snn is not in the AOT list");
        }
    }
}

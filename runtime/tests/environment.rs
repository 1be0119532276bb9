//! Observations reach neuron variables through `sense` code: indices are
//! truncated and clamped to the observation (as `ir::Expr::Env` says).

use snnc_runtime::Monitors;

const MODEL: &str = "
neuron N {
    equations {
        dv/dt = -v/(10 ms) : volt
        I_env : volt
    }
}
group G = N(8)
environment GridWorld {
    sense G { I_env = gradient[i - 2.5] * mV }
}
";

#[test]
fn sense_indices_are_truncated_and_clamped() {
    let (model, diagnostics) = snnc_compiler::check(MODEL);
    let model = model.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let mut sim = snnc_runtime::build(&model, 4).expect("builds");
    sim.step(&mut Monitors::default());
    let mut observations = vec![0.0; 8];
    sim.closed_loop().expect("bound").environment().observe(&mut observations);
    let layout = &sim.module().layout;
    let var = layout.var(layout.population("G").expect("G"), "I_env").expect("I_env");
    // i - 2.5 for i = 0..8: -2.5 -1.5 -0.5 0.5 1.5 2.5 3.5 4.5 -> 0 0 0 0 1 2 3 3.
    let expected: Vec<f64> = [0, 0, 0, 0, 1, 2, 3, 3].iter().map(|&k| observations[k] * 1e-3).collect();
    assert_eq!(sim.values(var), &expected[..]);
    assert!(expected.iter().any(|&x| x != 0.0), "the world gives a gradient");
}

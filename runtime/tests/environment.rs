//! Observations reach neuron variables through `sense` code: indices are
//! truncated and clamped to the observation (as `ir::Expr::Env` says).

use snnc_runtime::Monitors;

/// Eight passive neurons whose `I_env` the given `sense` code sets.
fn passive(sense: &str) -> String {
    format!(
        "neuron N {{\n    equations {{\n        dv/dt = -v/(10 ms) : volt\n        I_env : volt\n    }}\n}}\n\
         group G = N(8)\nenvironment GridWorld {{\n    sense G {{ {sense} }}\n}}\n"
    )
}

/// A simulation of a model that must check.
fn simulation(src: &str, seed: u64) -> snnc_runtime::Simulation {
    let (model, diagnostics) = snnc_compiler::check(src);
    let model = model.unwrap_or_else(|| panic!("{diagnostics:?}\n{src}"));
    snnc_runtime::build(&model, seed).expect("builds")
}

#[test]
fn sense_indices_are_truncated_and_clamped() {
    let mut sim = simulation(&passive("I_env = gradient[i - 2.5] * mV"), 4);
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

/// The `I_env` values sense code of `G` wrote, and the observations now.
fn sensed(sim: &snnc_runtime::Simulation) -> (Vec<f64>, Vec<f64>) {
    let mut observations = vec![0.0; 8];
    sim.closed_loop().expect("bound").environment().observe(&mut observations);
    let layout = &sim.module().layout;
    let var = layout.var(layout.population("G").expect("G"), "I_env").expect("I_env");
    (sim.values(var).to_vec(), observations)
}

#[test]
fn sense_code_of_observations_alone_follows_every_move() {
    // Runs only when the observations change: after each move it must still agree.
    let src = "
neuron N {
    equations {
        dv/dt = (1.1 - v)/(2 ms) : 1
        I_env : volt
    }
    threshold v > 1
    reset { v = 0 }
}
group G = N(8)
environment GridWorld {
    sense G { I_env = gradient[i // 2] * mV }
    act G every 3 steps { groups = 4; epsilon = 1 }
}
";
    let mut sim = simulation(src, 9);
    let mut monitors = Monitors::default();
    let mut seen = Vec::new();
    for _ in 0..40 {
        sim.step(&mut monitors);
        seen.push(sensed(&sim).0);
    }
    // After a final step without a move (40 is not a decision step + 1), what was
    // sensed equals the current observations.
    sim.step(&mut monitors);
    let (values, observations) = sensed(&sim);
    let expected: Vec<f64> = (0..8).map(|i| observations[i / 2] * 1e-3).collect();
    assert_eq!(values, expected);
    seen.dedup();
    assert!(seen.len() > 3, "the agent moved and the sensed values changed: {seen:?}");
}

#[test]
fn sense_code_that_reads_time_runs_every_step() {
    let mut sim = simulation(&passive("I_env = gradient[0] * mV + t * (1 V/s)"), 2);
    let mut monitors = Monitors::default();
    for _ in 0..3 {
        sim.step(&mut monitors);
    }
    let (values, observations) = sensed(&sim);
    // Sensed at the start of step 2.
    let t = 2.0 * sim.module().dt;
    assert!(values.iter().all(|&v| v == observations[0] * 1e-3 + t * 1.0), "{values:?} at t = {t}");
}

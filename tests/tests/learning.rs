//! The reference agent learns: in a smaller world (8 x 8) with a faster learning
//! rate, over 5 episodes of 10,000 steps, its food per 1,000 steps in the last two
//! episodes beats a uniformly random policy in the same world, for fixed seeds.

use snnc_runtime::env::Policy;
use snnc_runtime::{Monitors, Simulation};

const FORAGER: &str = include_str!("../../models/forager.snn");
const EPISODES: u32 = 5;
const STEPS: u64 = 10_000;

fn overrides() -> Vec<snnc_compiler::Override> {
    [("grid_size", "8"), ("eta", "2 mV/s")]
        .into_iter()
        .map(|(name, text)| {
            let (value, dim) = snnc_compiler::eval_quantity(text).expect("a quantity");
            snnc_compiler::Override { name: name.into(), value, dim, text: text.into() }
        })
        .collect()
}

/// Food per 1,000 steps in each episode.
fn food_per_episode(seed: u64, policy: Policy) -> Vec<f64> {
    let (model, diagnostics) = snnc_compiler::check_with(FORAGER, &overrides());
    let model = model.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let mut sim: Simulation = snnc_runtime::build(&model, seed).expect("builds");
    let closed_loop = sim.closed_loop_mut().expect("the forager is bound to its GridWorld");
    closed_loop.set_policy(policy);
    let mut monitors = Monitors::default();
    let mut food = Vec::new();
    for episode in 0..EPISODES {
        if episode > 0 {
            sim.closed_loop_mut().expect("closed loop").start_episode();
        }
        for _ in 0..STEPS {
            sim.step(&mut monitors);
        }
        let summary = sim.closed_loop().expect("closed loop").environment().episode_summary();
        let eaten = summary.iter().find(|(name, _)| *name == "food").expect("food is counted").1;
        food.push(eaten * 1000.0 / STEPS as f64);
    }
    food
}

#[test]
fn the_forager_learns_to_beat_a_random_policy() {
    for seed in [1, 2, 3] {
        let learner = food_per_episode(seed, Policy::Spikes);
        let random = food_per_episode(seed, Policy::Random);
        let late = |f: &[f64]| (f[f.len() - 1] + f[f.len() - 2]) / 2.0;
        eprintln!("seed {seed}: learner {learner:?}, random {random:?}");
        assert!(
            late(&learner) > 2.0 * late(&random) && late(&learner) > learner[0],
            "seed {seed}: learner {learner:?} vs random {random:?}"
        );
    }
}

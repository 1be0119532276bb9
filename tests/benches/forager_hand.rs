//! The hand-written Rust forager (`hand/mod.rs`, the baseline the compiled model is timed
//! against) alone: one 50,000-step episode of a fresh agent, all monitors on. To time it
//! beside the AOT and JIT builds of `models/forager.snn` in one run, use the bench `forager`.
//!
//! `cargo bench -p snnc-tests --bench forager_hand`
//!
//! Set `FORAGER_HAND_EPISODES=n` (and optionally `FORAGER_HAND_SEED=s`) to also print food per
//! 1,000 steps for `n` consecutive episodes of one run (learning carries over) beside a
//! uniformly random policy.

#[path = "hand/mod.rs"]
mod hand;

use hand::{Agent, EPISODE_STEPS, EpisodeStats, Monitors, N_PLASTIC, SEED, random_policy_food, run_episode};
use std::sync::Once;

fn main() {
    if let Some(episodes) = std::env::var("FORAGER_HAND_EPISODES").ok().and_then(|s| s.parse::<u32>().ok()) {
        let seed = std::env::var("FORAGER_HAND_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(SEED);
        learning_curve(seed, episodes);
    }
    divan::main();
}

fn report(label: &str, stats: &EpisodeStats, monitors: &Monitors) {
    let [s, h, m] = stats.rates_hz();
    let mean_w = monitors.weights.iter().sum::<f64>() / monitors.weights.len().max(1) as f64;
    let moves = monitors.traj_action.iter().filter(|&&a| a >= 0).count();
    let last_da = monitors.state_da.last().copied().unwrap_or(0.0);
    let last_v = monitors.state_v.last().copied().unwrap_or(0.0);
    eprintln!(
        "forager_hand {label}: food/1000 steps {:.2}, wall bumps {}, reward {:.2}, spikes {} \
         (S {:.2} Hz, H {:.2} Hz, M {:.2} Hz), moves {moves}, state records {}, last da {last_da:.3}, \
         last v[255] {last_v:.2} mV, mean w {mean_w:.3} mV",
        stats.food_per_1000(),
        stats.wall_bumps,
        stats.total_reward,
        stats.spikes.iter().sum::<u64>(),
        s,
        h,
        m,
        monitors.state_step.len(),
    );
}

fn learning_curve(seed: u64, episodes: u32) {
    let mut agent = Agent::new(seed);
    let mut monitors = Monitors::with_capacity(EPISODE_STEPS);
    for episode in 1..=episodes {
        let stats = run_episode(&mut agent, EPISODE_STEPS, &mut monitors);
        report(&format!("episode {episode}"), &stats, &monitors);
    }
    eprintln!(
        "forager_hand random policy: food/1000 steps {:.2}",
        random_policy_food(seed, EPISODE_STEPS * episodes.max(1))
    );
}

static SANITY: Once = Once::new();

/// One 50,000-step episode (episode 1 of a fresh agent of a fixed seed), all monitors on.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn forager_hand_episode(bencher: divan::Bencher) {
    SANITY.call_once(|| {
        // Untimed: one episode to print what the model does, and the random policy beside it.
        let mut agent = Agent::new(SEED);
        let mut monitors = Monitors::with_capacity(EPISODE_STEPS);
        let stats = run_episode(&mut agent, EPISODE_STEPS, &mut monitors);
        report("episode 1", &stats, &monitors);
        eprintln!("forager_hand random policy: food/1000 steps {:.2}", random_policy_food(SEED, EPISODE_STEPS));
        debug_assert_eq!(agent.weights().len(), N_PLASTIC);
    });
    bencher
        .counter(divan::counter::ItemsCount::new(EPISODE_STEPS))
        .with_inputs(|| (Agent::new(SEED), Monitors::with_capacity(EPISODE_STEPS)))
        .bench_local_refs(|(agent, monitors)| run_episode(agent, EPISODE_STEPS, monitors));
}

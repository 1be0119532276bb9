//! The reference forager three ways in one run: the hand-written Rust loop (`hand/mod.rs`), the
//! AOT build of `models/forager.snn` (`snnc_macros::model!`) and its JIT build, each one episode
//! of the closed loop with every monitor on, one thread, f64.
//!
//! `cargo bench -p snnc-tests --bench forager`
//!
//! Each repeat runs the three back to back, in an order that rotates from repeat to repeat (so
//! none always goes first), and the ratios AOT / hand, JIT / AOT and JIT / hand are taken per
//! repeat, between runs adjacent in time: on a shared, noisy machine a slow minute then weighs
//! on both sides of a ratio. The compiled models are built and timed by `snnc_runtime::bench`,
//! as `snnc bench` does (construction and compilation untimed). Before timing, one untimed
//! episode of each is checked: spikes, one move per decision, and AOT and JIT bit for bit equal.
//!
//! `FORAGER_BENCH_REPEATS` (default 7) and `FORAGER_BENCH_STEPS` (default the model's run
//! length, 50,000) set the size. Run without `--bench` (`cargo test --benches`), it defaults to
//! one repeat of 1,000 steps.

#[path = "hand/mod.rs"]
#[allow(dead_code, reason = "the learning-curve helpers are for the bench forager_hand")]
mod hand;

use snnc_runtime::bench::{Spread, ratios, rotation, timed_run};
use std::process::ExitCode;

mod forager {
    snnc_macros::model!("../models/forager.snn");
}

/// The seed of every run (the hand loop's own random numbers differ from the model's).
const SEED: u64 = hand::SEED;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contestant {
    Hand,
    Aot,
    Jit,
}

const CONTESTANTS: [Contestant; 3] = [Contestant::Hand, Contestant::Aot, Contestant::Jit];

impl Contestant {
    fn name(self) -> &'static str {
        match self {
            Contestant::Hand => "hand",
            Contestant::Aot => "AOT",
            Contestant::Jit => "JIT",
        }
    }
}

/// One episode of one contestant.
struct Episode {
    /// Seconds of the steps.
    seconds: f64,
    /// Spikes per group.
    spikes: Vec<(String, u64)>,
    /// Steps with a move.
    moves: usize,
    food: f64,
    /// A compiled model's records (for comparing AOT with JIT).
    records: Option<Records>,
}

/// What a compiled model's run recorded, as bits.
#[derive(PartialEq)]
struct Records {
    /// Per step: step, episode, action, reward, then the environment's fields (`x`, `y`).
    trajectory: Vec<Vec<u64>>,
    /// Per spiking group: its name, the steps and indices of its spikes.
    spikes: Vec<(String, Vec<i64>, Vec<u32>)>,
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err((status, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(status)
        }
    }
}

/// Exit status of a bad setting.
const EXIT_USAGE: u8 = 2;
/// Exit status of a run that failed or was not plausible.
const EXIT_FAILED: u8 = 1;

fn bench() -> Result<(), (u8, String)> {
    let failed = |e: String| (EXIT_FAILED, e);
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) a quick run.
    let timing = std::env::args().any(|a| a == "--bench");
    let model = snnc_compiler::check(forager::SOURCE).0.ok_or((EXIT_FAILED, "forager.snn does not check".into()))?;
    let model_steps = snnc_runtime::bench::run_length(&model).and_then(|n| u32::try_from(n).ok());
    let (repeats, steps) = if timing {
        (setting("FORAGER_BENCH_REPEATS", 7)?, setting("FORAGER_BENCH_STEPS", model_steps.unwrap_or(50_000))?)
    } else {
        (setting("FORAGER_BENCH_REPEATS", 1)?, setting("FORAGER_BENCH_STEPS", 1_000)?)
    };

    // Untimed, once: each contestant's episode is plausible, and AOT and JIT agree bit for bit.
    let expected_moves = (steps / hand::DECISION_PERIOD) as usize;
    let mut sane = Vec::new();
    for contestant in CONTESTANTS {
        let episode = run(contestant, steps).map_err(failed)?;
        let spikes: Vec<String> = episode.spikes.iter().map(|(g, n)| format!("{g} {n}")).collect();
        eprintln!(
            "check {:<4}: spikes {}, {} moves, {} food, {:.0} steps/s",
            contestant.name(),
            spikes.join(", "),
            episode.moves,
            episode.food,
            f64::from(steps) / episode.seconds
        );
        if episode.spikes.iter().map(|(_, n)| n).sum::<u64>() == 0 {
            return Err(failed(format!("{}: no spikes in {steps} steps", contestant.name())));
        }
        if episode.moves != expected_moves {
            return Err(failed(format!(
                "{}: {} moves in {steps} steps, expected one every {} steps ({expected_moves})",
                contestant.name(),
                episode.moves,
                hand::DECISION_PERIOD
            )));
        }
        sane.push(episode.records);
    }
    if let [_, Some(aot), Some(jit)] = &sane[..] {
        if let Some(difference) = first_difference(aot, jit) {
            return Err(failed(format!("AOT and JIT differ: {difference}")));
        }
        eprintln!("check: AOT and JIT trajectories and spikes identical");
    }
    drop(sane);

    // Timed: the three back to back in each repeat, in rotating order.
    let mut rates: [Vec<f64>; 3] = Default::default();
    for repeat in 0..repeats as usize {
        let mut line = Vec::new();
        for c in rotation(repeat, CONTESTANTS.len()) {
            let rate = f64::from(steps) / run(CONTESTANTS[c], steps).map_err(failed)?.seconds;
            line.push(format!("{} {rate:.0}", CONTESTANTS[c].name()));
            rates[c].push(rate);
        }
        eprintln!("repeat {}/{repeats}: {} steps/s", repeat + 1, line.join(", "));
    }

    println!(
        "forager: {steps} steps per episode, f64, one thread, all monitors on; {repeats} repeats, \
         each running hand, AOT and JIT back to back in rotating order"
    );
    println!("{:<20} {:>14}   min..max", "steps/s", "median");
    for (contestant, rates) in CONTESTANTS.iter().zip(&rates) {
        if let Some(s) = Spread::of(rates) {
            println!("{:<20} {:>14.0}   {:.0}..{:.0}", contestant.name(), s.median, s.min, s.max);
        }
    }
    println!("{:<20} {:>14}   min..max", "ratio (per repeat)", "median");
    let [hand, aot, jit] = &rates;
    for (name, ratios) in
        [("AOT / hand", ratios(aot, hand)), ("JIT / AOT", ratios(jit, aot)), ("JIT / hand", ratios(jit, hand))]
    {
        if let Some(s) = Spread::of(&ratios) {
            println!("{name:<20} {:>14.3}   {:.3}..{:.3}", s.median, s.min, s.max);
        }
    }
    Ok(())
}

/// A whole number of at least 1 from the environment variable `name`, or `default`.
fn setting(name: &str, default: u32) -> Result<u32, (u8, String)> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err((EXIT_USAGE, format!("{name} is not valid text"))),
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| (EXIT_USAGE, format!("{name} must be a whole number of at least 1, not `{text}`"))),
    }
}

/// One episode of `steps` steps of a fresh agent or simulation (seed `SEED`), timed over the
/// steps only.
fn run(contestant: Contestant, steps: u32) -> Result<Episode, String> {
    let (model, mut sim) = match contestant {
        Contestant::Hand => return Ok(run_hand(steps)),
        Contestant::Aot => snnc_runtime::aot::build(forager::SOURCE, forager::kernels(), SEED)?,
        Contestant::Jit => {
            let model = snnc_compiler::check(forager::SOURCE).0.ok_or("forager.snn does not check")?;
            let sim = snnc_runtime::build(&model, SEED)?;
            (model, sim)
        }
    };
    let timed = timed_run(&model, &mut sim, u64::from(steps))?;
    let populations = &sim.module().layout.populations;
    let spikes: Vec<(String, u64)> = populations
        .iter()
        .zip(timed.monitors.spike_totals())
        .filter(|(p, _)| p.spiking)
        .map(|(p, &n)| (p.name.clone(), n))
        .collect();
    let trajectory = timed.monitors.trajectory().ok_or("the forager has no trajectory")?;
    let moves = trajectory.actions.iter().filter(|&&a| a >= 0).count();
    let closed_loop = sim.closed_loop().ok_or("the forager has no environment")?;
    let summary = closed_loop.environment().episode_summary();
    let food = summary.iter().find(|(name, _)| *name == "food").map_or(0.0, |(_, n)| *n);
    let groups: Vec<&str> = spikes.iter().map(|(g, _)| g.as_str()).collect();
    let records = records(&timed.monitors, &groups)?;
    Ok(Episode { seconds: timed.seconds, spikes, moves, food, records: Some(records) })
}

/// One episode of the hand-written agent, as its own bench times it.
fn run_hand(steps: u32) -> Episode {
    let mut agent = hand::Agent::new(SEED);
    let mut monitors = hand::Monitors::with_capacity(steps);
    let started = std::time::Instant::now();
    let stats = hand::run_episode(&mut agent, steps, &mut monitors);
    let seconds = started.elapsed().as_secs_f64();
    Episode {
        seconds,
        spikes: ["S", "H", "M"].iter().map(|g| g.to_string()).zip(stats.spikes).collect(),
        moves: monitors.traj_action.iter().filter(|&&a| a >= 0).count(),
        food: f64::from(stats.food),
        records: None,
    }
}

/// A compiled model's trajectory and spike records as bits.
fn records(monitors: &snnc_runtime::Monitors, groups: &[&str]) -> Result<Records, String> {
    let t = monitors.trajectory().ok_or("the forager has no trajectory")?;
    let x = monitors.trajectory_field("x").ok_or("the trajectory has no `x`")?;
    let y = monitors.trajectory_field("y").ok_or("the trajectory has no `y`")?;
    let trajectory = (0..t.steps.len())
        .map(|k| {
            let ints = [t.steps[k], t.episodes[k], t.actions[k]].map(|n| n as u64);
            let floats = [t.rewards[k], x[k], y[k]].map(f64::to_bits);
            ints.into_iter().chain(floats).collect()
        })
        .collect();
    let spikes = groups
        .iter()
        .filter_map(|g| monitors.spikes(g).map(|(steps, indices)| (g.to_string(), steps.to_vec(), indices.to_vec())))
        .collect();
    Ok(Records { trajectory, spikes })
}

/// Where two compiled runs' records first differ, if they do.
fn first_difference(a: &Records, b: &Records) -> Option<String> {
    if a == b {
        return None;
    }
    if a.trajectory.len() != b.trajectory.len() {
        return Some(format!("trajectories of {} and {} steps", a.trajectory.len(), b.trajectory.len()));
    }
    if let Some(k) = a.trajectory.iter().zip(&b.trajectory).position(|(a, b)| a != b) {
        return Some(format!("trajectory at step {k} (step, episode, action, reward, x, y as bits)"));
    }
    for ((group, a_steps, a_indices), (_, b_steps, b_indices)) in a.spikes.iter().zip(&b.spikes) {
        let n = a_steps.len().min(b_steps.len());
        if let Some(k) = (0..n).find(|&k| (a_steps[k], a_indices[k]) != (b_steps[k], b_indices[k])) {
            return Some(format!("spikes of {group} from step {}", a_steps[k].min(b_steps[k])));
        }
        if a_steps.len() != b_steps.len() {
            return Some(format!("{group}: {} and {} spikes", a_steps.len(), b_steps.len()));
        }
    }
    Some("spike monitors of different groups".to_string())
}

//! A checked and compiled run (`Job`): its loop (episodes, Ctrl-C, `--stop-after`,
//! the NaN guard, periodic checkpoints), its state and checkpoint, how it ended,
//! its `run.json` and outputs, and `--replicas`; `snnc run` and `snnc sweep` run
//! through it.

use super::{
    EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_MODEL_ERROR, EXIT_USAGE, RunOptions, in_pool, plural, print_line,
    progress_bar, usage_error,
};
use crate::aot::fnv1a;
use std::path::PathBuf;
use std::process::ExitCode;

/// Set by Ctrl-C: the runs stop after their current step.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes Ctrl-C stop runs cleanly after the current step; a second Ctrl-C ends the
/// process at once. Without a handler (one could not be set) Ctrl-C ends it as usual.
pub(super) fn catch_interrupts() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
}

/// A checked and compiled `snnc run`: what its run, or each of its replicas, needs.
pub(super) struct Job<'a> {
    pub(super) name: &'a str,
    /// The model file, as an absolute path where it can be found (for `--resume`).
    pub(super) model_path: &'a std::path::Path,
    pub(super) source: &'a str,
    pub(super) model: &'a snnc_compiler::Model,
    pub(super) options: &'a RunOptions,
    /// The constants given other values (`NAME=VALUE`), for `run.json`.
    pub(super) sets: &'a [String],
    /// Steps per episode.
    pub(super) steps: u64,
    pub(super) episodes: u32,
    /// Steps of the whole run (`steps` times `episodes`).
    pub(super) total_steps: u64,
    pub(super) compile_seconds: f64,
}

/// A run in progress (or done): the simulation, its records, and where it stands.
pub(super) struct RunState {
    pub(super) sim: crate::Simulation,
    monitors: crate::Monitors,
    /// The current episode (from 0), and the steps done in it.
    episode: u32,
    done: u64,
    /// The summaries of the episodes finished so far.
    summaries: Vec<EpisodeSummary>,
    /// Time spent stepping, over all sessions of the run.
    run_seconds: f64,
}

impl RunState {
    /// The whole state as a checkpoint: where the run stands, then the simulation
    /// and the monitors (`crate::checkpoint`).
    fn checkpoint(&self) -> Result<Vec<u8>, String> {
        let mut w = crate::checkpoint::Writer::new();
        w.tag("run");
        w.u64(u64::from(self.episode));
        w.u64(self.done);
        w.f64(self.run_seconds);
        w.u64(self.summaries.len() as u64);
        for summary in &self.summaries {
            w.u64(summary.steps);
            w.f64(summary.reward);
            w.u64(summary.counters.len() as u64);
            for (name, value) in &summary.counters {
                w.str(name);
                w.f64(*value);
            }
        }
        self.sim.save(&mut w)?;
        self.monitors.save(&mut w);
        Ok(w.into_bytes())
    }

    /// Continues from a checkpoint, in a state freshly started for the same run.
    pub(super) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut r = crate::checkpoint::Reader::new(bytes)?;
        r.tag("run")?;
        self.episode = u32::try_from(r.u64()?).map_err(|_| "the checkpoint is corrupt: episode")?;
        self.done = r.u64()?;
        self.run_seconds = r.f64()?;
        let n = r.u64()?;
        self.summaries.clear();
        for _ in 0..n {
            let (steps, reward) = (r.u64()?, r.f64()?);
            let count = r.u64()?;
            let counters = (0..count).map(|_| Ok((r.str()?, r.f64()?))).collect::<Result<Vec<_>, String>>()?;
            self.summaries.push(EpisodeSummary { steps, reward, counters });
        }
        self.sim.restore(&mut r)?;
        self.monitors.restore(&mut r)?;
        r.finish()
    }
}

/// How a run (or one session of it) ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Every step ran.
    Complete,
    /// Still going: a periodic checkpoint.
    Running,
    /// `--stop-after`: stopped where asked, with a checkpoint.
    Stopped,
    /// Ctrl-C: stopped after the current step, with a checkpoint.
    Interrupted,
    /// The guard found a NaN or infinite value.
    Diverged(crate::sim::NonFinite),
}

impl Outcome {
    /// `run.json`'s `status`.
    pub(super) fn status(&self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Running => "running",
            Outcome::Stopped => "stopped",
            Outcome::Interrupted => "interrupted",
            Outcome::Diverged(_) => "diverged",
        }
    }

    /// Whether the run can go on from here (its folder gets a checkpoint).
    fn resumable(&self) -> bool {
        matches!(self, Outcome::Running | Outcome::Stopped | Outcome::Interrupted)
    }
}

/// A run that has been written: its report, episodes, and how it ended.
pub(super) struct Ran {
    pub(super) report: Report,
    pub(super) summaries: Vec<EpisodeSummary>,
    pub(super) outcome: Outcome,
}

impl Ran {
    /// The report's line, with food per 1,000 steps of each episode if counted.
    pub(super) fn line(&self) -> String {
        let food: Vec<String> =
            self.summaries.iter().filter_map(EpisodeSummary::food_per_1000).map(|f| format!("{f:.2}")).collect();
        let food = if food.is_empty() { String::new() } else { format!(", food per 1000 steps {}", food.join(" ")) };
        format!("{}{food}", self.report.line())
    }
}

/// What a finished run reports: its `run.json`, and numbers for the terminal.
pub(super) struct Report {
    info: serde_json::Value,
    /// Mean rate of each spiking group, in Hz.
    pub(super) rates: Vec<(String, f64)>,
    /// Spikes of each spiking group.
    pub(super) group_spikes: Vec<(String, u64)>,
    spikes: u64,
    pub(super) steps: u64,
    steps_per_second: f64,
}

impl Report {
    /// `N steps, M spikes (G 1.00 Hz, ...), X steps/s`.
    pub(super) fn line(&self) -> String {
        let rate_text: Vec<String> = self.rates.iter().map(|(n, r)| format!("{n} {r:.2} Hz")).collect();
        format!(
            "{} steps, {} spikes ({}), {:.0} steps/s",
            self.steps,
            self.spikes,
            if rate_text.is_empty() { "no spiking groups".to_string() } else { rate_text.join(", ") },
            self.steps_per_second,
        )
    }
}

impl Job<'_> {
    /// A fresh run of the model with `seed` on `kernels` (compiled from `module`).
    pub(super) fn start(
        &self,
        module: snnc_compiler::ir::Module,
        kernels: Box<dyn crate::sim::Kernels>,
        seed: u64,
    ) -> Result<RunState, String> {
        let mut sim = crate::Simulation::new(module, kernels, seed)?;
        if self.options.random_policy
            && let Some(closed_loop) = sim.closed_loop_mut()
        {
            closed_loop.set_policy(crate::env::Policy::Random);
        }
        let monitors = crate::Monitors::new(self.model, &sim, self.total_steps)?;
        Ok(RunState { sim, monitors, episode: 0, done: 0, summaries: Vec::new(), run_seconds: 0.0 })
    }

    /// Runs from where `state` stands to the end of every episode, or until Ctrl-C,
    /// `--stop-after`, or the guard stops it; `checkpoint` is called every
    /// `--checkpoint-every` steps. `bar` counts the steps; `episode_lines` prints
    /// each episode's summary. `Err` is a model error or a failed checkpoint.
    pub(super) fn simulate(
        &self,
        state: &mut RunState,
        bar: Option<&indicatif::ProgressBar>,
        episode_lines: bool,
        checkpoint: &mut dyn FnMut(&RunState) -> Result<(), String>,
    ) -> Result<Outcome, String> {
        let started = std::time::Instant::now();
        let elapsed_before = state.run_seconds;
        let guard = self.options.guard_every;
        let outcome = 'run: loop {
            if state.episode >= self.episodes {
                break 'run Outcome::Complete;
            }
            if state.episode > 0
                && state.done == 0
                && let Some(closed_loop) = state.sim.closed_loop_mut()
            {
                closed_loop.start_episode();
            }
            let chunk = 1000u64;
            while state.done < self.steps {
                let n = chunk.min(self.steps - state.done);
                for _ in 0..n {
                    state.sim.step(&mut state.monitors);
                    state.done += 1;
                    let step = state.sim.step_number();
                    if guard > 0
                        && step.is_multiple_of(guard)
                        && let Some(bad) = state.sim.non_finite()
                    {
                        break 'run Outcome::Diverged(bad);
                    }
                    if step >= self.total_steps {
                        continue;
                    }
                    if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                        break 'run Outcome::Interrupted;
                    }
                    if self.options.stop_after == Some(step) {
                        break 'run Outcome::Stopped;
                    }
                    if self.options.checkpoint_every.is_some_and(|every| step.is_multiple_of(every)) {
                        state.run_seconds = elapsed_before + started.elapsed().as_secs_f64();
                        checkpoint(state)?;
                    }
                }
                if let Some(bar) = bar {
                    if started.elapsed().as_secs_f64() > 1.0 && bar.is_hidden() {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    bar.inc(n);
                }
            }
            state.monitors.end_episode(&state.sim);
            if let Some(closed_loop) = state.sim.closed_loop() {
                let summary = EpisodeSummary::of(closed_loop, self.steps);
                if episode_lines {
                    print_line(bar, summary.line(state.episode));
                }
                state.summaries.push(summary);
            }
            state.episode += 1;
            state.done = 0;
        };
        // The end of the run is checked too, whatever the guard's period.
        let outcome = match outcome {
            Outcome::Complete if guard > 0 => state.sim.non_finite().map_or(Outcome::Complete, Outcome::Diverged),
            other => other,
        };
        state.run_seconds = elapsed_before + started.elapsed().as_secs_f64();
        Ok(outcome)
    }

    /// What every `run.json` holds: the model, its constants, the run's length and
    /// options (what `--resume` needs), the back end.
    fn base_info(&self, seed: u64, dt: f64) -> serde_json::Value {
        serde_json::json!({
            "model": self.name,
            "model_path": self.model_path.display().to_string(),
            "model_fnv1a64": format!("{:016x}", fnv1a(self.source.as_bytes())),
            "constants": self.model.constants.iter().map(|c| (c.name.clone(), serde_json::json!(c.value))).collect::<serde_json::Map<_, _>>(),
            "overrides": self.sets,
            "seed": seed,
            "steps": self.total_steps,
            "dt": dt,
            "backend": self.options.backend.name(),
            "snnc_version": env!("CARGO_PKG_VERSION"),
            "compile_seconds": self.compile_seconds,
            "run": {
                "steps_per_episode": self.steps,
                "episodes": self.options.episodes,
                "random_policy": self.options.random_policy,
                "checkpoint_every": self.options.checkpoint_every,
                "guard_every": self.options.guard_every,
            },
        })
    }

    /// The `run.json` of a run seeded `seed` as far as it went, and its numbers.
    fn report(&self, state: &RunState, seed: u64) -> Report {
        let sim = &state.sim;
        let layout = &sim.module().layout;
        let dt = sim.module().dt;
        let steps = sim.step_number();
        let totals = state.monitors.spike_totals();
        let model_time = steps as f64 * dt;
        let rates: Vec<(String, f64)> = layout
            .populations
            .iter()
            .zip(totals)
            .filter(|(p, _)| p.spiking)
            .map(|(p, &n)| {
                (p.name.clone(), if model_time > 0.0 { n as f64 / (f64::from(p.size) * model_time) } else { 0.0 })
            })
            .collect();
        let run_seconds = state.run_seconds;
        let steps_per_second = if run_seconds > 0.0 { steps as f64 / run_seconds } else { 0.0 };
        let mut info = self.base_info(seed, dt);
        info["completed_steps"] = serde_json::json!(steps);
        info["run_seconds"] = serde_json::json!(run_seconds);
        info["steps_per_second"] = serde_json::json!(steps_per_second);
        let group_spikes: Vec<(String, u64)> = layout
            .populations
            .iter()
            .zip(totals)
            .filter(|(p, _)| p.spiking)
            .map(|(p, &n)| (p.name.clone(), n))
            .collect();
        info["spikes"] =
            serde_json::Value::Object(group_spikes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect());
        info["mean_rate_hz"] =
            serde_json::Value::Object(rates.iter().map(|(n, r)| (n.clone(), serde_json::json!(r))).collect());
        if let Some(env) = &self.model.environment {
            info["environment"] = serde_json::json!(env.spec.name);
            info["episodes"] = serde_json::json!(state.summaries.iter().map(EpisodeSummary::json).collect::<Vec<_>>());
            info["steps_per_episode"] = serde_json::json!(self.steps);
            info["policy"] = serde_json::json!(if self.options.random_policy { "random" } else { "model" });
        }
        Report { info, rates, group_spikes, spikes: totals.iter().sum(), steps, steps_per_second }
    }

    /// Writes a run's files as far as it went into `dir`, with `run.json` (its
    /// status, and for a run that can go on, its checkpoint), and commits it.
    pub(super) fn write(
        &self,
        dir: crate::output::RunDir,
        state: &RunState,
        seed: u64,
        outcome: &Outcome,
        extra: &[(&str, serde_json::Value)],
    ) -> Result<(PathBuf, Report), String> {
        let mut report = self.report(state, seed);
        report.info["status"] = serde_json::json!(outcome.status());
        for (key, value) in extra {
            report.info[*key] = value.clone();
        }
        if let Outcome::Diverged(bad) = outcome {
            report.info["error"] = serde_json::json!(bad.to_string());
        }
        if outcome.resumable() {
            dir.write_bytes("checkpoint.bin", &state.checkpoint()?).map_err(|e| e.to_string())?;
            report.info["checkpoint"] = serde_json::json!("checkpoint.bin");
        }
        let written = state
            .monitors
            .write(&dir, &state.sim)
            .and_then(|()| dir.write_json("run.json", &report.info))
            .and_then(|()| dir.commit())
            .map_err(|e| e.to_string())?;
        Ok((written, report))
    }

    /// Runs the model once with `seed` on `kernels` (compiled from `module`) and
    /// writes a single run's files into the new run folder `path`, its `run.json`
    /// with `extra` fields, however the run ended (complete, interrupted by Ctrl-C
    /// with a checkpoint, or diverged). `Err` has the exit status (1: the model
    /// failed, 2: the folder could not be written) and the message.
    pub(super) fn run_into(
        &self,
        module: &snnc_compiler::ir::Module,
        kernels: Box<dyn crate::sim::Kernels>,
        seed: u64,
        bar: Option<&indicatif::ProgressBar>,
        path: &std::path::Path,
        extra: &[(&str, serde_json::Value)],
    ) -> Result<Ran, (u8, String)> {
        let mut state = self.start(module.clone(), kernels, seed).map_err(|e| (EXIT_MODEL_ERROR, e))?;
        let outcome = self.simulate(&mut state, bar, false, &mut |_| Ok(())).map_err(|e| (EXIT_MODEL_ERROR, e))?;
        let (_, report) = crate::output::RunDir::create(path)
            .map_err(|e| e.to_string())
            .and_then(|dir| self.write(dir, &state, seed, &outcome, extra))
            .map_err(|e| (EXIT_USAGE, e))?;
        Ok(Ran { report, summaries: state.summaries, outcome })
    }

    /// `--replicas K` (K > 1): runs replica `r` with `seeds[r]` in parallel on the
    /// compiled `functions` (their owner outlives the call), each writing a single run's files into `replica-<r>/` of
    /// `dir`; then `summary.json` and `run.json` (the replicas' seeds and folders),
    /// and commits `dir`. One line per finished replica and a table at the end.
    /// Ctrl-C stops every replica with a checkpoint in its folder; a replica that
    /// diverges keeps its folder and the others go on (exit status 3 at the end).
    pub(super) fn run_replicas(
        &self,
        dir: crate::output::RunDir,
        module: &snnc_compiler::ir::Module,
        functions: &[snnc_compiler::abi::KernelFn],
        seeds: &[u64],
        out: &std::path::Path,
    ) -> Result<(), ExitCode> {
        let count = self.options.replicas;
        let quiet = self.options.quiet;
        let bar = progress_bar(self.total_steps.saturating_mul(u64::from(count)), quiet);
        let started = std::time::Instant::now();
        let replica = |r: u32,
                       kernels: Box<dyn crate::sim::Kernels>|
         -> Result<(crate::replicas::Replica, Outcome, u64), (u8, String)> {
            let seed = seeds.get(r as usize).copied().unwrap_or_default();
            let name = crate::replicas::dir_name(r, count);
            let path = dir.staging_path().join(&name);
            let ran = self
                .run_into(module, kernels, seed, bar.as_ref(), &path, &[("replica", serde_json::json!(r))])
                .map_err(|(status, e)| (status, format!("replica {r} (seed {seed}): {e}")))?;
            if let Outcome::Diverged(bad) = &ran.outcome {
                print_line(bar.as_ref(), format!("error: replica {r} (seed {seed}) diverged: {bad}"));
            } else if !quiet {
                // One call per line: lines of parallel replicas never mix.
                print_line(
                    bar.as_ref(),
                    format!("replica {r} (seed {seed}): {} -> {}", ran.line(), out.join(&name).display()),
                );
            }
            let replica = crate::replicas::Replica {
                seed,
                dir: name,
                episodes: ran.summaries.iter().map(EpisodeSummary::metrics).collect(),
                rates: ran.report.rates,
            };
            Ok((replica, ran.outcome, ran.report.steps))
        };
        let (threads, results) = in_pool(self.options.threads, || crate::replicas::run(functions, count, replica))?;
        let run_seconds = started.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let finished = results.into_iter().collect::<Result<Vec<_>, _>>().map_err(|(status, e)| {
            eprintln!("error: {e}");
            ExitCode::from(status)
        })?;
        let all_steps = finished.iter().map(|(_, _, steps)| *steps as f64).sum::<f64>();
        let (replicas, outcomes): (Vec<_>, Vec<_>) = finished.into_iter().map(|(r, o, _)| (r, o)).unzip();
        let steps_per_second = if run_seconds > 0.0 { all_steps / run_seconds } else { 0.0 };
        let interrupted = outcomes.iter().any(|o| matches!(o, Outcome::Interrupted));
        let diverged = outcomes.iter().filter(|o| matches!(o, Outcome::Diverged(_))).count();
        let mut info = self.base_info(seeds.first().copied().unwrap_or_default(), module.dt);
        info["status"] = serde_json::json!(if interrupted {
            "interrupted"
        } else if diverged > 0 {
            "diverged"
        } else {
            "complete"
        });
        info["replica_status"] = serde_json::json!(outcomes.iter().map(Outcome::status).collect::<Vec<_>>());
        info["replicas"] = serde_json::json!(count);
        info["seeds"] = serde_json::json!(seeds);
        info["replica_dirs"] = serde_json::json!(replicas.iter().map(|r| r.dir.as_str()).collect::<Vec<_>>());
        info["threads"] = serde_json::json!(threads);
        info["run_seconds"] = serde_json::json!(run_seconds);
        info["steps_per_second"] = serde_json::json!(steps_per_second);
        if let Some(env) = &self.model.environment {
            info["environment"] = serde_json::json!(env.spec.name);
            info["episodes"] = serde_json::json!(self.episodes);
            info["steps_per_episode"] = serde_json::json!(self.steps);
            info["policy"] = serde_json::json!(if self.options.random_policy { "random" } else { "model" });
        }
        let written = dir
            .write_json("summary.json", &crate::replicas::summary(&replicas))
            .and_then(|()| dir.write_json("run.json", &info))
            .and_then(|()| dir.commit())
            .map_err(usage_error)?;
        if !quiet || interrupted {
            eprintln!("{}", crate::replicas::table(&replicas));
            eprintln!(
                "{count} replicas of {} steps on {threads} thread{} in {run_seconds:.2} s ({steps_per_second:.0} steps/s in all), compiled once in {:.1} ms -> {}",
                self.total_steps,
                plural(threads),
                self.compile_seconds * 1e3,
                written.display()
            );
        }
        if interrupted {
            eprintln!(
                "interrupted: each replica's folder has a checkpoint; continue one with `snnc run --resume {}`",
                written.join(crate::replicas::dir_name(0, count)).display()
            );
            return Err(ExitCode::from(EXIT_INTERRUPTED));
        }
        if diverged > 0 {
            eprintln!("error: {diverged} of {count} replicas diverged (see their run.json)");
            return Err(ExitCode::from(EXIT_DIVERGED));
        }
        Ok(())
    }
}

/// What an episode of a closed-loop run achieved.
pub(super) struct EpisodeSummary {
    steps: u64,
    reward: f64,
    /// The environment's counters (`food`, ...).
    counters: Vec<(String, f64)>,
}

impl EpisodeSummary {
    fn of(closed_loop: &crate::env::ClosedLoop, steps: u64) -> EpisodeSummary {
        EpisodeSummary::new(steps, closed_loop.episode_reward(), closed_loop.environment())
    }

    /// `steps` steps with `reward`, and the counters `env` holds now.
    pub(super) fn new(steps: u64, reward: f64, env: &dyn crate::env::Environment) -> EpisodeSummary {
        let counters = env.episode_summary().into_iter().map(|(name, v)| (name.to_string(), v)).collect();
        EpisodeSummary { steps, reward, counters }
    }

    /// `food` per 1,000 steps, if the environment counts food.
    fn food_per_1000(&self) -> Option<f64> {
        let food = self.counters.iter().find(|(name, _)| *name == "food")?.1;
        Some(if self.steps > 0 { food * 1000.0 / self.steps as f64 } else { 0.0 })
    }

    fn line(&self, episode: u32) -> String {
        let counters: Vec<String> = self.counters.iter().map(|(name, value)| format!("{name} {value}")).collect();
        let per_1000 = self.food_per_1000().map_or(String::new(), |f| format!(" ({f:.2} food per 1000 steps)"));
        format!("episode {}: reward {:.2}, {}{per_1000}", episode + 1, self.reward, counters.join(", "))
    }

    /// Named results for the summary across replicas: food per 1,000 steps (if
    /// counted), reward, and the environment's counters.
    pub(super) fn metrics(&self) -> Vec<(String, f64)> {
        let mut metrics = Vec::with_capacity(self.counters.len() + 2);
        if let Some(f) = self.food_per_1000() {
            metrics.push(("food_per_1000_steps".to_string(), f));
        }
        metrics.push(("reward".to_string(), self.reward));
        metrics.extend(self.counters.iter().map(|(name, value)| (name.to_string(), *value)));
        metrics
    }

    fn json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({ "steps": self.steps, "reward": self.reward });
        for (name, count) in &self.counters {
            // Counts are whole numbers: written as integers.
            value[name.as_str()] = if count.fract() == 0.0 && count.abs() < 9e15 {
                serde_json::json!(*count as i64)
            } else {
                serde_json::json!(count)
            };
        }
        if let Some(f) = self.food_per_1000() {
            value["food_per_1000_steps"] = serde_json::json!(f);
        }
        value
    }
}

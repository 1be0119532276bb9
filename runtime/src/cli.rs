//! The `snnc` command-line program.

use clap::{Parser, Subcommand};
use snnc_compiler::diagnostic::{Severity, emit_to_stderr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: the model has errors.
const EXIT_MODEL_ERROR: u8 = 1;
/// Exit status: bad usage, or a file could not be read.
const EXIT_USAGE: u8 = 2;

/// snnc: a compiler for spiking neural network models.
#[derive(Parser, Debug)]
#[command(name = "snnc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check model files; print diagnostics.
    ///
    /// Exit status: 0 when every file is correct (warnings allowed), 1 when a
    /// model has errors, 2 on bad usage or a file that can not be read.
    Check {
        /// Print the checked model: groups, variables with dimensions and kinds, equations.
        #[arg(long)]
        dump: bool,
        /// Model files (`.snn`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a model with the JIT and write its monitors' data to a folder.
    Run {
        /// The model file.
        file: PathBuf,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Measure a model: steps per second of one run with its monitors (median of
    /// several, one thread) under the JIT and, when built in, the AOT kernels; the
    /// compile time; and the time from model file to first step.
    Bench {
        /// The model file.
        file: PathBuf,
        /// Steps per run (default: the model's run length).
        #[arg(long)]
        steps: Option<u64>,
        /// Runs per back end (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
        /// Seed of the random numbers.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Draw a run folder's figures as PNG (1000 x 600 pixels each) into `RUN_DIR/plots/`.
    ///
    /// `raster.png` (every spike, groups stacked and coloured), `traces.png` (sampled state
    /// variables, a few neurons each, with units when the model file is unchanged), `rates.png`
    /// (population rates in Hz, binned), `trajectory.png` (visits per grid cell and the last
    /// episode's path), `learning.png` (food per 1,000 steps per episode; for a `--replicas` run
    /// the mean with ± sd and min-max bands; `--baseline` adds a random-policy run's level).
    /// Figures whose data the run did not record are skipped, with the reason. Prints the written
    /// paths. Exit status: 0, or 2 when the folder is missing or not a run folder.
    Plot(crate::plot::PlotArgs),
    /// Print a compiled form of a model: the kernel IR (`--ir`) or Cranelift's functions (`--clif`).
    Emit {
        /// Print the kernel IR.
        #[arg(long, conflicts_with = "clif")]
        ir: bool,
        /// Print the Cranelift IR of every kernel.
        #[arg(long, conflicts_with = "asm")]
        clif: bool,
        /// Print the machine code Cranelift generates for every kernel.
        #[arg(long, conflicts_with = "rust")]
        asm: bool,
        /// Print the Rust source of every kernel (what `snnc_macros::model!` compiles).
        #[arg(long)]
        rust: bool,
        /// The model file.
        file: PathBuf,
    },
}

/// Runs the program with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Check { dump, files } => check(&files, dump),
        Command::Bench { file, steps, repeats, seed } => {
            bench(&file, steps, repeats, seed).err().unwrap_or(ExitCode::SUCCESS)
        }
        Command::Emit { ir, clif, asm, rust, file } => emit(&file, ir || !(clif || asm || rust), clif, asm, rust),
        Command::Run { file, options } => crate::cli::run(&file, &options).err().unwrap_or(ExitCode::SUCCESS),
        Command::Plot(args) => crate::plot::command(&args),
    }
}

/// What `snnc run` was asked to do.
#[derive(clap::Args, Debug)]
struct RunOptions {
    /// Number of steps (default: the model's `steps` or `duration`).
    #[arg(long, conflicts_with = "duration")]
    steps: Option<u64>,
    /// Model time to run, with a unit: `1s`, `200 ms`.
    #[arg(long)]
    duration: Option<String>,
    /// Seed of the random numbers (default: the model's `seed`, else 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Give a constant another value: `--set tau_m=10ms` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Output folder (default: `runs/<model name>`); replaced if it holds an earlier run.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar and no summary line.
    #[arg(long, short)]
    quiet: bool,
    /// Run this many episodes of the model's run length (models bound to an
    /// environment): the environment is reset between episodes, the network is not.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    episodes: Option<u32>,
    /// Take uniformly random actions instead of the model's decisions (a baseline).
    #[arg(long)]
    random_policy: bool,
    /// Which compiled code runs: the JIT (compiles the file now), or the kernels
    /// compiled into this binary for the models of `models/` (feature `aot`).
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    backend: Backend,
    /// Run K independent replicas in parallel, replica r with seed `seed + r`, each
    /// writing a single run's files into `OUT/replica-<r>/`; `OUT/summary.json` holds
    /// statistics across them (food per 1,000 steps and reward per episode, rates).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_replicas)]
    replicas: u32,
    /// Threads for `--replicas` (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
}

/// `--replicas K`: a whole number, at least 1.
fn parse_replicas(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("at least one replica is needed (`--replicas 1` is a single run)".into()),
        Ok(k) => Ok(k),
        Err(e) => Err(format!("expected a whole number of replicas: {e}")),
    }
}

/// Where the kernels come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// Compile the model now with Cranelift.
    Jit,
    /// Use the kernels compiled into this binary (models of `models/`, feature `aot`).
    Aot,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Jit => "jit",
            Backend::Aot => "aot",
        }
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

use crate::aot::fnv1a;

fn run(path: &std::path::Path, options: &RunOptions) -> Result<(), ExitCode> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| usage_error(format!("cannot read `{name}`: {e}")))?;
    let mut overrides = Vec::new();
    for set in &options.sets {
        let (key, text) = set
            .split_once('=')
            .ok_or_else(|| usage_error(format!("`--set {set}`: expected NAME=VALUE, e.g. `--set tau_m=10ms`")))?;
        let (value, dim) =
            snnc_compiler::eval_quantity(text.trim()).map_err(|e| usage_error(format!("`--set {set}`: {e}")))?;
        overrides.push(snnc_compiler::Override {
            name: key.trim().to_string(),
            value,
            dim,
            text: text.trim().to_string(),
        });
    }
    let (model, diagnostics) = snnc_compiler::check_with(&source, &overrides);
    emit_to_stderr(&diagnostics, &name, &source);
    let model = model.ok_or(ExitCode::from(EXIT_MODEL_ERROR))?;
    for o in &overrides {
        if model.constant(&o.name).is_none() {
            let names: Vec<&str> = model.constants.iter().map(|c| c.name.as_str()).collect();
            return Err(usage_error(format!(
                "`--set {}`: the model has no constant `{}` (constants: {})",
                o.name,
                o.name,
                names.join(", ")
            )));
        }
    }
    let steps = match (options.steps, &options.duration, model.run_length) {
        (Some(n), _, _) => n,
        (None, Some(text), _) => {
            let (value, dim) =
                snnc_compiler::eval_quantity(text).map_err(|e| usage_error(format!("`--duration {text}`: {e}")))?;
            if dim != snnc_compiler::units::Dimension::TIME || value < 0.0 {
                return Err(usage_error(format!("`--duration {text}`: expected a duration, e.g. `--duration 1s`")));
            }
            (value / model.dt).round() as u64
        }
        (None, None, _) => model_steps(&model).ok_or_else(|| {
            usage_error(
                "the model gives no run length: add `duration = ...` to it, or give `--steps N` or `--duration 1s`",
            )
        })?,
    };
    let seed = options.seed.or(model.seed).unwrap_or(0);
    let episodes = options.episodes.unwrap_or(1);
    let acts = model.environment.as_ref().is_some_and(|e| e.decision.is_some());
    if model.environment.is_none() && options.episodes.is_some() {
        return Err(usage_error("`--episodes`: the model is not bound to an environment (no `environment` block)"));
    }
    if options.random_policy && !acts {
        return Err(usage_error("`--random-policy`: the model takes no actions (no `act` block in its environment)"));
    }
    let total_steps = steps
        .checked_mul(u64::from(episodes))
        .ok_or_else(|| usage_error("the run is too long: steps times episodes overflows"))?;
    let seeds = crate::replicas::seeds(seed, options.replicas).ok_or_else(|| {
        usage_error(format!(
            "`--replicas {}`: replica seeds are `seed + r`, and {seed} + {} overflows: give a smaller `--seed`",
            options.replicas,
            options.replicas - 1
        ))
    })?;
    let out = options.out.clone().unwrap_or_else(|| {
        let stem = path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    });
    // Never replace a folder that is not an earlier run.
    if out.is_dir() && !out.join("run.json").exists() && std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(usage_error(format!(
            "`{}` exists and is not an snnc run folder (no run.json): choose another `--out`",
            out.display()
        )));
    }
    let dir = crate::output::RunDir::create(&out).map_err(usage_error)?;

    let module = lower(path, &source, &model)?;
    let started = std::time::Instant::now();
    let kernels = kernels(options.backend, path, &source, &module).map_err(|(status, e)| {
        eprintln!("error: {e}");
        ExitCode::from(status)
    })?;
    let compile_seconds = started.elapsed().as_secs_f64();
    let job =
        Job { name: &name, source: &source, model: &model, options, steps, episodes, total_steps, compile_seconds };
    if options.replicas > 1 {
        return job.run_replicas(dir, &module, kernels.functions(), &seeds, &out);
    }

    let bar = progress_bar(total_steps, options.quiet);
    let finished = job.simulate(module, kernels, seed, bar.as_ref(), !options.quiet).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_MODEL_ERROR)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = job.report(&finished, seed);
    let written = Job::write(dir, &finished, &report.info).map_err(usage_error)?;
    if !options.quiet {
        eprintln!("{}, compiled in {:.1} ms -> {}", report.line(), compile_seconds * 1e3, written.display());
    }
    Ok(())
}

/// A checked and compiled `snnc run`: what its run, or each of its replicas, needs.
struct Job<'a> {
    name: &'a str,
    source: &'a str,
    model: &'a snnc_compiler::Model,
    options: &'a RunOptions,
    /// Steps per episode.
    steps: u64,
    episodes: u32,
    /// Steps of the whole run (`steps` times `episodes`).
    total_steps: u64,
    compile_seconds: f64,
}

/// A run that has finished, before its files are written.
struct Finished {
    sim: crate::Simulation,
    monitors: crate::Monitors,
    summaries: Vec<EpisodeSummary>,
    run_seconds: f64,
}

/// What a finished run reports: its `run.json`, and numbers for the terminal.
struct Report {
    info: serde_json::Value,
    /// Mean rate of each spiking group, in Hz.
    rates: Vec<(String, f64)>,
    spikes: u64,
    steps: u64,
    steps_per_second: f64,
}

impl Report {
    /// `N steps, M spikes (G 1.00 Hz, ...), X steps/s`.
    fn line(&self) -> String {
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
    /// Runs the model once with `seed` on `kernels` (compiled from `module`):
    /// every episode, with the monitors. `bar` counts the steps; `episode_lines`
    /// prints each episode's summary. `Err` is a model error.
    fn simulate(
        &self,
        module: snnc_compiler::ir::Module,
        kernels: Box<dyn crate::sim::Kernels>,
        seed: u64,
        bar: Option<&indicatif::ProgressBar>,
        episode_lines: bool,
    ) -> Result<Finished, String> {
        let mut sim = crate::Simulation::new(module, kernels, seed)?;
        if self.options.random_policy
            && let Some(closed_loop) = sim.closed_loop_mut()
        {
            closed_loop.set_policy(crate::env::Policy::Random);
        }
        let mut monitors = crate::Monitors::new(self.model, &sim, self.total_steps)?;
        let run_started = std::time::Instant::now();
        let mut summaries = Vec::new();
        for episode in 0..self.episodes {
            if episode > 0
                && let Some(closed_loop) = sim.closed_loop_mut()
            {
                closed_loop.start_episode();
            }
            let chunk = 1000u64;
            let mut done = 0u64;
            while done < self.steps {
                let n = chunk.min(self.steps - done);
                for _ in 0..n {
                    sim.step(&mut monitors);
                }
                done += n;
                if let Some(bar) = bar {
                    if run_started.elapsed().as_secs_f64() > 1.0 && bar.is_hidden() {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    bar.inc(n);
                }
            }
            monitors.end_episode(&sim);
            if let Some(closed_loop) = sim.closed_loop() {
                let summary = EpisodeSummary::of(closed_loop, self.steps);
                if episode_lines {
                    print_line(bar, summary.line(episode));
                }
                summaries.push(summary);
            }
        }
        let run_seconds = run_started.elapsed().as_secs_f64();
        Ok(Finished { sim, monitors, summaries, run_seconds })
    }

    /// What every `run.json` holds: the model, its constants, the run's length, the back end.
    fn base_info(&self, seed: u64, dt: f64) -> serde_json::Value {
        serde_json::json!({
            "model": self.name,
            "model_fnv1a64": format!("{:016x}", fnv1a(self.source.as_bytes())),
            "constants": self.model.constants.iter().map(|c| (c.name.clone(), serde_json::json!(c.value))).collect::<serde_json::Map<_, _>>(),
            "overrides": self.options.sets,
            "seed": seed,
            "steps": self.total_steps,
            "dt": dt,
            "backend": self.options.backend.name(),
            "snnc_version": env!("CARGO_PKG_VERSION"),
            "compile_seconds": self.compile_seconds,
        })
    }

    /// The `run.json` of a finished run seeded `seed`, and its numbers.
    fn report(&self, finished: &Finished, seed: u64) -> Report {
        let sim = &finished.sim;
        let layout = &sim.module().layout;
        let dt = sim.module().dt;
        let steps = self.total_steps;
        let totals = finished.monitors.spike_totals();
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
        let run_seconds = finished.run_seconds;
        let steps_per_second = if run_seconds > 0.0 { steps as f64 / run_seconds } else { 0.0 };
        let mut info = self.base_info(seed, dt);
        info["run_seconds"] = serde_json::json!(run_seconds);
        info["steps_per_second"] = serde_json::json!(steps_per_second);
        info["spikes"] = serde_json::Value::Object(
            layout
                .populations
                .iter()
                .zip(totals)
                .filter(|(p, _)| p.spiking)
                .map(|(p, n)| (p.name.clone(), serde_json::json!(n)))
                .collect(),
        );
        info["mean_rate_hz"] =
            serde_json::Value::Object(rates.iter().map(|(n, r)| (n.clone(), serde_json::json!(r))).collect());
        if let Some(env) = &self.model.environment {
            info["environment"] = serde_json::json!(env.spec.name);
            info["episodes"] =
                serde_json::json!(finished.summaries.iter().map(EpisodeSummary::json).collect::<Vec<_>>());
            info["steps_per_episode"] = serde_json::json!(self.steps);
            info["policy"] = serde_json::json!(if self.options.random_policy { "random" } else { "model" });
        }
        Report { info, rates, spikes: totals.iter().sum(), steps, steps_per_second }
    }

    /// Writes a finished run's files and `run.json` into `dir`, and commits it.
    fn write(
        dir: crate::output::RunDir,
        finished: &Finished,
        info: &serde_json::Value,
    ) -> Result<PathBuf, crate::output::OutputError> {
        finished
            .monitors
            .write(&dir, &finished.sim)
            .and_then(|()| dir.write_json("run.json", info))
            .and_then(|()| dir.commit())
    }

    /// `--replicas K` (K > 1): runs replica `r` with `seeds[r]` in parallel on the
    /// compiled `functions` (their owner outlives the call), each writing a single run's files into `replica-<r>/` of
    /// `dir`; then `summary.json` and `run.json` (the replicas' seeds and folders),
    /// and commits `dir`. One line per finished replica and a table at the end.
    fn run_replicas(
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
         -> Result<crate::replicas::Replica, (u8, String)> {
            let seed = seeds.get(r as usize).copied().unwrap_or_default();
            let context = |e: String| format!("replica {r} (seed {seed}): {e}");
            let finished = self
                .simulate(module.clone(), kernels, seed, bar.as_ref(), false)
                .map_err(|e| (EXIT_MODEL_ERROR, context(e)))?;
            let mut report = self.report(&finished, seed);
            report.info["replica"] = serde_json::json!(r);
            let name = crate::replicas::dir_name(r, count);
            let written = crate::output::RunDir::create(&dir.staging_path().join(&name))
                .and_then(|sub| Job::write(sub, &finished, &report.info))
                .map_err(|e| (EXIT_USAGE, context(e.to_string())));
            written?;
            if !quiet {
                let food: Vec<String> = finished
                    .summaries
                    .iter()
                    .filter_map(EpisodeSummary::food_per_1000)
                    .map(|f| format!("{f:.2}"))
                    .collect();
                let food =
                    if food.is_empty() { String::new() } else { format!(", food per 1000 steps {}", food.join(" ")) };
                // One call per line: lines of parallel replicas never mix.
                print_line(
                    bar.as_ref(),
                    format!("replica {r} (seed {seed}): {}{food} -> {}", report.line(), out.join(&name).display()),
                );
            }
            Ok(crate::replicas::Replica {
                seed,
                dir: name,
                episodes: finished.summaries.iter().map(EpisodeSummary::metrics).collect(),
                rates: report.rates,
            })
        };
        let work = || (rayon::current_num_threads(), crate::replicas::run(functions, count, replica));
        let (threads, results) = match self.options.threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n as usize)
                .build()
                .map_err(|e| usage_error(format!("`--threads {n}`: {e}")))?
                .install(work),
            None => work(),
        };
        let run_seconds = started.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let replicas = results.into_iter().collect::<Result<Vec<_>, _>>().map_err(|(status, e)| {
            eprintln!("error: {e}");
            ExitCode::from(status)
        })?;
        let all_steps = self.total_steps as f64 * f64::from(count);
        let steps_per_second = if run_seconds > 0.0 { all_steps / run_seconds } else { 0.0 };
        let mut info = self.base_info(seeds.first().copied().unwrap_or_default(), module.dt);
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
        if !quiet {
            eprintln!("{}", crate::replicas::table(&replicas));
            eprintln!(
                "{count} replicas of {} steps on {threads} thread{} in {run_seconds:.2} s ({steps_per_second:.0} steps/s in all), compiled once in {:.1} ms -> {}",
                self.total_steps,
                plural(threads),
                self.compile_seconds * 1e3,
                written.display()
            );
        }
        Ok(())
    }
}

/// Prints a line on stderr above the progress bar, if one is showing (one write: lines never mix).
fn print_line(bar: Option<&indicatif::ProgressBar>, line: String) {
    match bar {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        _ => eprintln!("{line}"),
    }
}

/// The median of some numbers (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The model's own run length in steps, if it gives one.
fn model_steps(model: &snnc_compiler::Model) -> Option<u64> {
    use snnc_compiler::model::RunLength;
    match model.run_length? {
        RunLength::Steps(n) => Some(n),
        RunLength::Duration(t) => Some((t / model.dt).round() as u64),
    }
}

/// The kernels of a lowered model from a back end; `Err` has the exit status
/// (1: code generation failed, 2: no AOT kernels for this file) and the message.
fn kernels(
    backend: Backend,
    path: &std::path::Path,
    source: &str,
    module: &snnc_compiler::ir::Module,
) -> Result<Box<dyn crate::sim::Kernels>, (u8, String)> {
    match backend {
        Backend::Jit => snnc_compiler::backends::cranelift::compile(module, Default::default())
            .map(|k| Box::new(k) as Box<dyn crate::sim::Kernels>)
            .map_err(|e| (EXIT_MODEL_ERROR, e.to_string())),
        Backend::Aot => {
            let file_name = path.file_name().map_or(path.display().to_string(), |f| f.to_string_lossy().into_owned());
            crate::aot::builtin_for(&file_name, source)
                .map(|k| Box::new(k) as Box<dyn crate::sim::Kernels>)
                .map_err(|e| (EXIT_USAGE, e))
        }
    }
}

fn bench(path: &std::path::Path, steps: Option<u64>, repeats: u32, seed: u64) -> Result<(), ExitCode> {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_MODEL_ERROR)
    };
    let (source, model) = load(path)?;
    let steps = steps
        .or_else(|| model_steps(&model))
        .ok_or_else(|| usage_error("the model gives no run length: give `--steps N`"))?;
    // From the file to the first step: read, check, lower, compile, initialize, step.
    let mut first_step = Vec::new();
    let mut compile = Vec::new();
    for _ in 0..repeats {
        let started = std::time::Instant::now();
        let text = std::fs::read_to_string(path).map_err(|e| usage_error(format!("cannot read: {e}")))?;
        let model = snnc_compiler::check(&text).0.ok_or(ExitCode::from(EXIT_MODEL_ERROR))?;
        let module = lower(path, &text, &model)?;
        let compiling = std::time::Instant::now();
        let kernels = snnc_compiler::backends::cranelift::compile(&module, Default::default())
            .map_err(|e| fail(e.to_string()))?;
        compile.push(compiling.elapsed().as_secs_f64());
        let mut sim = crate::Simulation::new(module, Box::new(kernels), seed).map_err(fail)?;
        sim.step(&mut crate::Monitors::default());
        first_step.push(started.elapsed().as_secs_f64());
    }
    let mut rows: Vec<(&str, f64, f64)> = Vec::new();
    for backend in [Backend::Jit, Backend::Aot] {
        let mut rates = Vec::new();
        for _ in 0..repeats {
            let module = lower(path, &source, &model)?;
            let kernels = match kernels(backend, path, &source, &module) {
                Ok(kernels) => kernels,
                Err((EXIT_USAGE, why)) => {
                    eprintln!("{}: skipped: {why}", backend.name());
                    break;
                }
                Err((_, e)) => return Err(fail(e)),
            };
            let mut sim = crate::Simulation::new(module, kernels, seed).map_err(fail)?;
            let mut monitors = crate::Monitors::new(&model, &sim, steps).map_err(fail)?;
            let started = std::time::Instant::now();
            for _ in 0..steps {
                sim.step(&mut monitors);
            }
            monitors.end_episode(&sim);
            rates.push(steps as f64 / started.elapsed().as_secs_f64());
        }
        if !rates.is_empty() {
            let (low, high) =
                (rates.iter().copied().fold(f64::INFINITY, f64::min), rates.iter().copied().fold(0.0, f64::max));
            rows.push((backend.name(), median(rates), (high - low) / 2.0));
        }
    }
    println!("{}: {steps} steps per run, monitors on, one thread, median of {repeats}", path.display());
    println!("{:<28} {:>14}", "measure", "value");
    for (name, rate, spread) in &rows {
        println!("{:<28} {:>14}", format!("steps/s, {name}"), format!("{rate:.0} ± {spread:.0}"));
    }
    if let [(_, jit, _), (_, aot, _)] = rows[..] {
        println!("{:<28} {:>14.2}", "JIT / AOT", jit / aot);
    }
    println!("{:<28} {:>11.2} ms", "JIT compile", median(compile) * 1e3);
    println!("{:<28} {:>11.2} ms", "file to first step (JIT)", median(first_step) * 1e3);
    Ok(())
}

/// What an episode of a closed-loop run achieved.
struct EpisodeSummary {
    steps: u64,
    reward: f64,
    /// The environment's counters (`food`, ...).
    counters: Vec<(&'static str, f64)>,
}

impl EpisodeSummary {
    fn of(closed_loop: &crate::env::ClosedLoop, steps: u64) -> EpisodeSummary {
        EpisodeSummary {
            steps,
            reward: closed_loop.episode_reward(),
            counters: closed_loop.environment().episode_summary(),
        }
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
    fn metrics(&self) -> Vec<(String, f64)> {
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
            value[*name] = if count.fract() == 0.0 && count.abs() < 9e15 {
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

/// A progress bar on a terminal, shown once the run has taken a second.
fn progress_bar(steps: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(steps), indicatif::ProgressDrawTarget::hidden());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {per_sec}, eta {eta}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// Reads and checks a model, printing diagnostics; `Err` carries the exit status.
fn load(path: &std::path::Path) -> Result<(String, snnc_compiler::Model), ExitCode> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{name}`: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let (model, diagnostics) = snnc_compiler::check(&source);
    emit_to_stderr(&diagnostics, &name, &source);
    match model {
        Some(model) => Ok((source, model)),
        None => Err(ExitCode::from(EXIT_MODEL_ERROR)),
    }
}

/// Lowers a checked model to kernels, printing diagnostics.
fn lower(
    path: &std::path::Path,
    source: &str,
    model: &snnc_compiler::Model,
) -> Result<snnc_compiler::ir::Module, ExitCode> {
    snnc_compiler::ir::lower(model).map_err(|diagnostics| {
        emit_to_stderr(&diagnostics, &path.display().to_string(), source);
        ExitCode::from(EXIT_MODEL_ERROR)
    })
}

fn emit(path: &std::path::Path, ir: bool, clif: bool, asm: bool, rust: bool) -> ExitCode {
    let result = load(path).and_then(|(source, model)| {
        let module = lower(path, &source, &model)?;
        if ir {
            print!("{module}");
        }
        if rust {
            let rust = snnc_compiler::backends::rust::generate_formatted(
                &module,
                &snnc_compiler::backends::rust::runtime_abi(),
            );
            match rust {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(EXIT_MODEL_ERROR));
                }
            }
        }
        if clif || asm {
            let text = if asm {
                snnc_compiler::backends::cranelift::asm_text(&module)
            } else {
                snnc_compiler::backends::cranelift::clif_text(&module)
            };
            match text {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(EXIT_MODEL_ERROR));
                }
            }
        }
        Ok(())
    });
    result.err().unwrap_or(ExitCode::SUCCESS)
}

fn check(files: &[PathBuf], dump: bool) -> ExitCode {
    let mut status = 0u8;
    for path in files {
        let name = path.display().to_string();
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("error: cannot read `{name}`: {e}");
                status = status.max(EXIT_USAGE);
                continue;
            }
        };
        let (model, diagnostics) = snnc_compiler::check(&source);
        emit_to_stderr(&diagnostics, &name, &source);
        let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let warnings = diagnostics.len() - errors;
        match model {
            Some(model) => {
                if dump {
                    print!("{}", snnc_compiler::dump::dump(&model));
                }
                let note =
                    if warnings > 0 { format!(" ({warnings} warning{})", plural(warnings)) } else { String::new() };
                eprintln!("{name}: ok{note}");
            }
            None => {
                eprintln!("{name}: {errors} error{}", plural(errors));
                status = status.max(EXIT_MODEL_ERROR);
            }
        }
    }
    ExitCode::from(status)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

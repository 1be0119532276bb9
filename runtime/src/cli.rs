//! The `snnc` command-line program.

use clap::{Parser, Subcommand};
use snnc_compiler::diagnostic::{Severity, emit_to_stderr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: the model has errors.
const EXIT_MODEL_ERROR: u8 = 1;
/// Exit status: bad usage, or a file could not be read.
const EXIT_USAGE: u8 = 2;
/// Exit status: the run stopped because a variable became NaN or infinite.
const EXIT_DIVERGED: u8 = 3;
/// Exit status: the run was interrupted (Ctrl-C), as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

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
    ///
    /// Exit status: 0 when the run finished (or stopped at `--stop-after`), 1 on a
    /// model error, 2 on bad usage or unreadable/unwritable files, 3 when a
    /// variable became NaN or infinite, 130 when interrupted by Ctrl-C.
    Run {
        /// The model file (with `--resume`: the run's own model file by default).
        #[arg(required_unless_present = "resume")]
        file: Option<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Run a model over a grid of constants' values times replicas, in parallel,
    /// compiled once: `--set tau_e=100ms,300ms,1s --set eta=0.1,0.5 --replicas 4`.
    ///
    /// Point p (the first `--set` varies slowest) replica r runs as `snnc run --set
    /// ... --seed <seed + r>` and writes into `OUT/p<p>-<name>=<value>-.../replica-<r>/`;
    /// `OUT/sweep.csv` has one row per run (constants, seed, status, spikes and rates
    /// per group, episode results). `--shard K/N` runs every N-th run from the K-th
    /// (tables `sweep-shard-K-of-N.csv`); `snnc sweep --merge DIR...` joins them.
    Sweep {
        /// The model file.
        #[arg(required_unless_present = "merge")]
        file: Option<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
        /// Run only the K-th (from 1) of N slices of the runs (a Slurm array task:
        /// `--shard $((SLURM_ARRAY_TASK_ID + 1))/$SLURM_ARRAY_TASK_COUNT`).
        #[arg(long, value_name = "K/N", value_parser = crate::sweep::Shard::parse)]
        shard: Option<crate::sweep::Shard>,
        /// Join the shard tables in these folders into `sweep.csv` and `sweep.json`
        /// (in `--out`, default the first folder), checking they are one whole sweep.
        #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["file", "shard"])]
        merge: Vec<PathBuf>,
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
        Command::Run { file, options } => {
            let result = match &options.resume {
                Some(dir) => resume(dir, file.as_deref(), &options),
                None => match &file {
                    Some(file) => run(file, &options, None),
                    None => Err(usage_error("give a model file, or `--resume RUN_DIR`")),
                },
            };
            result.err().unwrap_or(ExitCode::SUCCESS)
        }
        Command::Plot(args) => crate::plot::command(&args),
        Command::Sweep { file, options, shard, merge } => match file {
            Some(file) if merge.is_empty() => sweep(&file, &options, shard),
            _ => merge_shards(&merge, &options),
        }
        .err()
        .unwrap_or(ExitCode::SUCCESS),
    }
}

/// Parses a command line (without the program name) as `snnc` would, and runs
/// nothing: `Err` holds clap's message. `--help` and `--version` parse. The
/// documentation's tests check every command they quote with it.
pub fn parse_args(args: &[&str]) -> Result<(), String> {
    match Cli::try_parse_from(std::iter::once("snnc").chain(args.iter().copied())) {
        Ok(_) => Ok(()),
        Err(e) if !e.use_stderr() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// What `snnc run` was asked to do.
#[derive(clap::Args, Clone, Debug)]
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
    /// Give a constant another value: `--set tau_m=10ms` (repeatable); `snnc sweep`
    /// takes a list of values: `--set tau_m=10ms,20ms`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Output folder (default: `runs/<model name>`, for a sweep `runs/<model name>-sweep`);
    /// replaced if it holds an earlier run.
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
    /// writing a single run's files into `OUT/replica-<r>/` (a sweep: into each
    /// point's folder); `OUT/summary.json` holds statistics across them (food per
    /// 1,000 steps and reward per episode, rates).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_replicas)]
    replicas: u32,
    /// Threads for `--replicas` and sweeps (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Every N steps (counted over the whole run), write the outputs so far and a
    /// checkpoint (`checkpoint.bin`) into the output folder, atomically, so that
    /// `--resume` can continue from there after a crash or a kill.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,
    /// Stop once the run has done N steps in all (counted over its episodes), as
    /// Ctrl-C does: write the outputs so far and a checkpoint; `--resume` continues.
    /// For batch jobs with a wall-time limit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    stop_after: Option<u64>,
    /// Continue the stopped or interrupted run in RUN_DIR from its checkpoint, with
    /// its model, constants, seed and length; the result is bitwise that of an
    /// uninterrupted run. The model file must be unchanged.
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["steps", "duration", "seed", "sets", "out", "episodes", "random_policy", "replicas"]
    )]
    resume: Option<PathBuf>,
    /// Every N steps, check that no state variable is NaN or infinite (infinite
    /// is allowed in a variable that started so), and stop the run, naming the
    /// variable, group, index and step, if one is. 0: never check.
    #[arg(long, value_name = "N", default_value_t = 100)]
    guard_every: u64,
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

/// A run to continue from its checkpoint (`--resume`).
struct Resumed {
    /// The checkpoint's bytes.
    checkpoint: Vec<u8>,
    /// The model file's hash when the run started (`model_fnv1a64`).
    model_hash: String,
}

/// Set by Ctrl-C: the runs stop after their current step.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes Ctrl-C stop runs cleanly after the current step; a second Ctrl-C ends the
/// process at once. Without a handler (one could not be set) Ctrl-C ends it as usual.
fn catch_interrupts() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
}

/// `snnc run --resume DIR [FILE]`: reads the run's `run.json` and checkpoint, and
/// runs the rest of it with the options it started with.
fn resume(dir: &std::path::Path, file: Option<&std::path::Path>, options: &RunOptions) -> Result<(), ExitCode> {
    let shown = dir.display();
    let text = std::fs::read_to_string(dir.join("run.json"))
        .map_err(|e| usage_error(format!("`--resume {shown}`: not an snnc run folder (run.json: {e})")))?;
    let info: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| usage_error(format!("`--resume {shown}`: run.json is not valid JSON: {e}")))?;
    match info["status"].as_str() {
        Some("complete") | None => {
            return Err(usage_error(format!("`--resume {shown}`: the run is complete, there is nothing to resume")));
        }
        Some("diverged") => {
            return Err(usage_error(format!(
                "`--resume {shown}`: the run stopped because it diverged ({}); it would diverge again",
                info["error"].as_str().unwrap_or("a variable became NaN or infinite")
            )));
        }
        Some(_) => {}
    }
    if info["replicas"].as_u64().is_some_and(|k| k > 1) {
        let dirs: Vec<String> = info["replica_dirs"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()).map(|d| dir.join(d).display().to_string()).collect())
            .unwrap_or_default();
        return Err(usage_error(format!(
            "`--resume {shown}`: a run of replicas is resumed one replica at a time: `snnc run --resume {}`",
            dirs.first().map_or("<dir>/replica-0", String::as_str)
        )));
    }
    let checkpoint_path = dir.join("checkpoint.bin");
    let checkpoint = std::fs::read(&checkpoint_path)
        .map_err(|e| usage_error(format!("`--resume {shown}`: cannot read `{}`: {e}", checkpoint_path.display())))?;
    let corrupt = |what: &str| usage_error(format!("`--resume {shown}`: run.json lacks {what}"));
    let saved = &info["run"];
    let model_path = match file {
        Some(file) => file.to_path_buf(),
        None => PathBuf::from(info["model_path"].as_str().ok_or_else(|| corrupt("`model_path`"))?),
    };
    let sets = info["overrides"]
        .as_array()
        .ok_or_else(|| corrupt("`overrides`"))?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| corrupt("`overrides` as text"))?;
    let continued = RunOptions {
        steps: Some(saved["steps_per_episode"].as_u64().ok_or_else(|| corrupt("`run.steps_per_episode`"))?),
        duration: None,
        seed: Some(info["seed"].as_u64().ok_or_else(|| corrupt("`seed`"))?),
        sets,
        out: Some(dir.to_path_buf()),
        quiet: options.quiet,
        episodes: saved["episodes"].as_u64().map(|e| e as u32),
        random_policy: saved["random_policy"].as_bool().unwrap_or(false),
        backend: options.backend,
        replicas: 1,
        threads: None,
        checkpoint_every: options.checkpoint_every.or(saved["checkpoint_every"].as_u64()),
        stop_after: options.stop_after,
        resume: None,
        guard_every: options.guard_every,
    };
    let model_hash = info["model_fnv1a64"].as_str().ok_or_else(|| corrupt("`model_fnv1a64`"))?.to_string();
    run(&model_path, &continued, Some(&Resumed { checkpoint, model_hash }))
}

fn run(path: &std::path::Path, options: &RunOptions, resumed: Option<&Resumed>) -> Result<(), ExitCode> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| usage_error(format!("cannot read `{name}`: {e}")))?;
    if let Some(resumed) = resumed {
        let hash = format!("{:016x}", fnv1a(source.as_bytes()));
        if hash != resumed.model_hash {
            return Err(usage_error(format!(
                "`{name}` changed since the run started (hash {hash}, the run's {}): put the model back as it was, \
                 or start a new run",
                resumed.model_hash
            )));
        }
    }
    let overrides = options
        .sets
        .iter()
        .map(|set| crate::sweep::parse_override(set))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage_error)?;
    let model = check_overridden(&name, &source, &overrides, true)?;
    let Length { steps, episodes, total_steps } = run_length(options, &model)?;
    let seed = options.seed.or(model.seed).unwrap_or(0);
    let seeds = replica_seeds(seed, options.replicas)?;
    let out = options.out.clone().unwrap_or_else(|| default_out(path, ""));
    // Never replace a folder that is not an earlier run.
    if out.is_dir() && !out.join("run.json").exists() && std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(usage_error(format!(
            "`{}` exists and is not an snnc run folder (no run.json): choose another `--out`",
            out.display()
        )));
    }
    if options.replicas > 1 && (options.checkpoint_every.is_some() || options.stop_after.is_some()) {
        return Err(usage_error(
            "`--checkpoint-every` and `--stop-after` apply to single runs: run the replicas as separate runs \
             (`--seed`), or without them (Ctrl-C still stops every replica with a checkpoint)",
        ));
    }
    if options.stop_after.is_some_and(|n| n >= total_steps) {
        return Err(usage_error(format!(
            "`--stop-after {}`: the run has only {total_steps} steps",
            options.stop_after.unwrap_or_default()
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
    let model_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let job = Job {
        name: &name,
        model_path: &model_path,
        source: &source,
        model: &model,
        options,
        sets: &options.sets,
        steps,
        episodes,
        total_steps,
        compile_seconds,
    };
    catch_interrupts();
    if options.replicas > 1 {
        return job.run_replicas(dir, &module, kernels.functions(), &seeds, &out);
    }

    let model_error = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_MODEL_ERROR)
    };
    let mut state = job.start(module, kernels, seed).map_err(model_error)?;
    if let Some(resumed) = resumed {
        state
            .restore(&resumed.checkpoint)
            .map_err(|e| usage_error(format!("cannot resume from `{}`: {e}", out.join("checkpoint.bin").display())))?;
        let done = state.sim.step_number();
        if let Some(n) = options.stop_after.filter(|&n| n <= done) {
            return Err(usage_error(format!("`--stop-after {n}`: the run has already done {done} steps")));
        }
    }
    let bar = progress_bar(total_steps, options.quiet);
    if let Some(bar) = &bar {
        bar.set_position(state.sim.step_number());
    }
    let mut dir = Some(dir);
    let mut checkpoint = |state: &RunState| -> Result<(), String> {
        let next = match dir.take() {
            Some(next) => next,
            None => crate::output::RunDir::create(&out).map_err(|e| e.to_string())?,
        };
        job.write(next, state, seed, &Outcome::Running, &[]).map(|_| ())
    };
    let outcome = job.simulate(&mut state, bar.as_ref(), !options.quiet, &mut checkpoint).map_err(model_error)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let dir = match dir.take() {
        Some(dir) => dir,
        None => crate::output::RunDir::create(&out).map_err(usage_error)?,
    };
    let (written, report) = job.write(dir, &state, seed, &outcome, &[]).map_err(usage_error)?;
    let resume_hint = || format!("continue with `snnc run --resume {}`", written.display());
    match &outcome {
        Outcome::Complete | Outcome::Running => {
            if !options.quiet {
                eprintln!("{}, compiled in {:.1} ms -> {}", report.line(), compile_seconds * 1e3, written.display());
            }
            Ok(())
        }
        Outcome::Stopped => {
            if !options.quiet {
                eprintln!("stopped after {}; {}", report.line(), resume_hint());
            }
            Ok(())
        }
        Outcome::Interrupted => {
            eprintln!("interrupted after {}; {}", report.line(), resume_hint());
            Err(ExitCode::from(EXIT_INTERRUPTED))
        }
        Outcome::Diverged(bad) => {
            eprintln!(
                "error: the run diverged: {bad}{}; the outputs up to then are in {}",
                finite_before(bad, options.guard_every),
                written.display()
            );
            Err(ExitCode::from(EXIT_DIVERGED))
        }
    }
}

/// `(all values were finite at step N)`: the last check that found nothing.
fn finite_before(bad: &crate::sim::NonFinite, every: u64) -> String {
    match bad.step.checked_sub(every.max(1)) {
        Some(step) if every > 0 && bad.step.is_multiple_of(every) => {
            format!(" (all values were finite at step {step})")
        }
        _ => String::new(),
    }
}

/// The seeds of `replicas` replicas of a run seeded `seed` (`seed + r`).
fn replica_seeds(seed: u64, replicas: u32) -> Result<Vec<u64>, ExitCode> {
    crate::replicas::seeds(seed, replicas).ok_or_else(|| {
        usage_error(format!(
            "`--replicas {replicas}`: replica seeds are `seed + r`, and {seed} + {} overflows: give a smaller `--seed`",
            replicas - 1
        ))
    })
}

/// `runs/<file stem><suffix>`: where a run's folder goes without `--out`.
fn default_out(path: &std::path::Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(format!("{stem}{suffix}"))
}

/// Checks a model with constants overridden, printing its diagnostics (with
/// `warnings`, or errors only); a name that is not one of the model's constants
/// is a usage error listing them.
fn check_overridden(
    name: &str,
    source: &str,
    overrides: &[snnc_compiler::Override],
    warnings: bool,
) -> Result<snnc_compiler::Model, ExitCode> {
    let (model, mut diagnostics) = snnc_compiler::check_with(source, overrides);
    if !warnings {
        diagnostics.retain(|d| d.severity == Severity::Error);
    }
    emit_to_stderr(&diagnostics, name, source);
    let model = model.ok_or(ExitCode::from(EXIT_MODEL_ERROR))?;
    for o in overrides {
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
    Ok(model)
}

/// How long a run is: steps per episode, episodes, and all steps.
struct Length {
    steps: u64,
    episodes: u32,
    total_steps: u64,
}

/// The run length `options` and the model give, and the checks of the closed-loop
/// options (`--episodes` needs an environment, `--random-policy` one that acts).
fn run_length(options: &RunOptions, model: &snnc_compiler::Model) -> Result<Length, ExitCode> {
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
        (None, None, _) => crate::bench::run_length(model).ok_or_else(|| {
            usage_error(
                "the model gives no run length: add `duration = ...` to it, or give `--steps N` or `--duration 1s`",
            )
        })?,
    };
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
    Ok(Length { steps, episodes, total_steps })
}

/// A checked and compiled `snnc run`: what its run, or each of its replicas, needs.
struct Job<'a> {
    name: &'a str,
    /// The model file, as an absolute path where it can be found (for `--resume`).
    model_path: &'a std::path::Path,
    source: &'a str,
    model: &'a snnc_compiler::Model,
    options: &'a RunOptions,
    /// The constants given other values (`NAME=VALUE`), for `run.json`.
    sets: &'a [String],
    /// Steps per episode.
    steps: u64,
    episodes: u32,
    /// Steps of the whole run (`steps` times `episodes`).
    total_steps: u64,
    compile_seconds: f64,
}

/// A run in progress (or done): the simulation, its records, and where it stands.
struct RunState {
    sim: crate::Simulation,
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
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
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
enum Outcome {
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
    fn status(&self) -> &'static str {
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
struct Ran {
    report: Report,
    summaries: Vec<EpisodeSummary>,
    outcome: Outcome,
}

impl Ran {
    /// The report's line, with food per 1,000 steps of each episode if counted.
    fn line(&self) -> String {
        let food: Vec<String> =
            self.summaries.iter().filter_map(EpisodeSummary::food_per_1000).map(|f| format!("{f:.2}")).collect();
        let food = if food.is_empty() { String::new() } else { format!(", food per 1000 steps {}", food.join(" ")) };
        format!("{}{food}", self.report.line())
    }
}

/// What a finished run reports: its `run.json`, and numbers for the terminal.
struct Report {
    info: serde_json::Value,
    /// Mean rate of each spiking group, in Hz.
    rates: Vec<(String, f64)>,
    /// Spikes of each spiking group.
    group_spikes: Vec<(String, u64)>,
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
    /// A fresh run of the model with `seed` on `kernels` (compiled from `module`).
    fn start(
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
    fn simulate(
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
    fn write(
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
    fn run_into(
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

/// Runs `work` on a pool of `threads` threads (default: rayon's, one per core);
/// returns how many threads it had and what `work` returned.
fn in_pool<T: Send>(threads: Option<u32>, work: impl FnOnce() -> T + Send) -> Result<(usize, T), ExitCode> {
    let work = || (rayon::current_num_threads(), work());
    match threads {
        Some(n) => Ok(rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build()
            .map_err(|e| usage_error(format!("`--threads {n}`: {e}")))?
            .install(work)),
        None => Ok(work()),
    }
}

/// Prints a line on stderr above the progress bar, if one is showing (one write: lines never mix).
fn print_line(bar: Option<&indicatif::ProgressBar>, line: String) {
    match bar {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        _ => eprintln!("{line}"),
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
    use crate::bench::{Spread, ratios, rotation, timed_run};
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_MODEL_ERROR)
    };
    let (source, model) = load(path)?;
    let steps = steps
        .or_else(|| crate::bench::run_length(&model))
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
    // The back ends take turns (JIT, AOT; then AOT, JIT; ...), so that each repeat's
    // runs are adjacent in time and neither always runs first.
    let mut backends = vec![Backend::Jit];
    match kernels(Backend::Aot, path, &source, &lower(path, &source, &model)?) {
        Ok(_) => backends.push(Backend::Aot),
        Err((EXIT_USAGE, why)) => eprintln!("{}: skipped: {why}", Backend::Aot.name()),
        Err((_, e)) => return Err(fail(e)),
    }
    let mut rates = vec![Vec::new(); backends.len()];
    for repeat in 0..repeats as usize {
        for b in rotation(repeat, backends.len()) {
            let module = lower(path, &source, &model)?;
            let kernels = kernels(backends[b], path, &source, &module).map_err(|(_, e)| fail(e))?;
            let mut sim = crate::Simulation::new(module, kernels, seed).map_err(fail)?;
            rates[b].push(timed_run(&model, &mut sim, steps).map_err(fail)?.steps_per_second(steps));
        }
    }
    println!(
        "{}: {steps} steps per run, monitors on, one thread, median of {repeats}{}",
        path.display(),
        if backends.len() > 1 { ", back ends interleaved" } else { "" }
    );
    println!("{:<28} {:>14}", "measure", "value");
    for (backend, rates) in backends.iter().zip(&rates) {
        if let Some(s) = Spread::of(rates) {
            let value = format!("{:.0} ± {:.0}", s.median, s.half_range());
            println!("{:<28} {value:>14}", format!("steps/s, {}", backend.name()));
        }
    }
    if let [jit, aot] = &rates[..]
        && let Some(s) = Spread::of(&ratios(jit, aot))
    {
        println!("{:<28} {:>14.2} [{:.2}, {:.2}]", "JIT / AOT", s.median, s.min, s.max);
    }
    let median = |values: &[f64]| Spread::of(values).map_or(f64::NAN, |s| s.median);
    println!("{:<28} {:>11.2} ms", "JIT compile", median(&compile) * 1e3);
    println!("{:<28} {:>11.2} ms", "file to first step (JIT)", median(&first_step) * 1e3);
    Ok(())
}

/// What an episode of a closed-loop run achieved.
struct EpisodeSummary {
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
    fn new(steps: u64, reward: f64, env: &dyn crate::env::Environment) -> EpisodeSummary {
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

/// The structure of a lowered model: the module without the values that only the
/// runtime reads (the parameters' values, which kernels take as arguments; the
/// environment's settings and the decision's epsilon, which no back end reads).
/// Kernels compiled for one module run any module of the same structure; a
/// constant that changes the structure (a group's size, a connection rule, a value
/// folded at check time) needs other kernels.
fn structure(module: &snnc_compiler::ir::Module) -> snnc_compiler::ir::Module {
    let mut structure = module.clone();
    for param in &mut structure.layout.params {
        param.value = 0.0;
    }
    if let Some(env) = &mut structure.environment {
        env.settings.fill(0.0);
        if let Some(decision) = &mut env.decision {
            decision.epsilon = 0.0;
        }
    }
    structure
}

/// `` `a`, `b` change`` (or `` `a` changes``): the swept constants some value of
/// which, given alone, changes the structure of the model `source` (whose structure is `base`).
fn structural_constants(source: &str, grid: &crate::sweep::Grid, base: &snnc_compiler::ir::Module) -> String {
    let changes = |param: &crate::sweep::Param, value: &crate::sweep::Value| {
        let module = snnc_compiler::check_with(source, &[value.override_for(&param.name)])
            .0
            .and_then(|m| snnc_compiler::ir::lower(&m).ok());
        module.is_none_or(|m| structure(&m) != *base)
    };
    let names: Vec<String> = grid
        .params
        .iter()
        .filter(|p| p.values.iter().any(|v| changes(p, v)))
        .map(|p| format!("`{}`", p.name))
        .collect();
    match names.len() {
        0 => "the constants together change".to_string(),
        1 => format!("{} changes", names.join(", ")),
        _ => format!("{} change", names.join(", ")),
    }
}

/// The structure of the model `source` as written (no `--set`), if it checks and lowers.
fn base_structure(source: &str) -> Option<snnc_compiler::ir::Module> {
    let model = snnc_compiler::check(source).0?;
    snnc_compiler::ir::lower(&model).ok().map(|m| structure(&m))
}

/// A sweep's compiled kernels.
struct Compiled {
    /// One set per distinct structure.
    kernels: Vec<Box<dyn crate::sim::Kernels>>,
    /// Per point, its structure's index in `kernels`.
    structure_of: Vec<usize>,
}

/// The kernels of a sweep's points (`modules`), and which of them each point runs
/// on: the JIT compiles once per distinct structure (saying which constants change
/// it); the AOT kernels serve only points of the file's own structure.
fn compile_structures(
    path: &std::path::Path,
    source: &str,
    grid: &crate::sweep::Grid,
    options: &RunOptions,
    modules: &[snnc_compiler::ir::Module],
) -> Result<Compiled, ExitCode> {
    let mut structures: Vec<snnc_compiler::ir::Module> = Vec::new();
    let mut structure_of = Vec::new();
    let mut firsts = Vec::new();
    for (point, module) in modules.iter().enumerate() {
        let s = structure(module);
        let k = structures.iter().position(|other| *other == s).unwrap_or_else(|| {
            structures.push(s);
            firsts.push(point);
            structures.len() - 1
        });
        structure_of.push(k);
    }
    let which = |base: &Option<snnc_compiler::ir::Module>| match base {
        Some(base) => structural_constants(source, grid, base),
        None => "the swept constants change".to_string(),
    };
    let compiled: Result<Vec<_>, _> = match options.backend {
        Backend::Jit => {
            if structures.len() > 1 && !options.quiet {
                eprintln!(
                    "note: {} the model's structure (not only run-time parameters): compiled {} times, once per \
                     distinct structure",
                    which(&base_structure(source)),
                    structures.len()
                );
            }
            firsts.iter().map(|&p| kernels(Backend::Jit, path, source, &modules[p])).collect()
        }
        Backend::Aot => {
            let base = base_structure(source);
            if structures.iter().any(|s| Some(s) != base.as_ref()) {
                return Err(usage_error(format!(
                    "{} the model's structure, which the AOT kernels were compiled for: sweep with `--backend jit` \
                     (it compiles once per distinct structure)",
                    which(&base)
                )));
            }
            firsts.iter().map(|&p| kernels(Backend::Aot, path, source, &modules[p])).collect()
        }
    };
    let compiled = compiled.map_err(|(status, e)| {
        eprintln!("error: {e}");
        ExitCode::from(status)
    })?;
    Ok(Compiled { kernels: compiled, structure_of })
}

/// The columns of a sweep's table: the spiking groups of `module`, and the episode
/// results of its environment (`food_per_1000_steps`, `reward`, its counters).
fn sweep_columns(module: &snnc_compiler::ir::Module) -> crate::sweep::Columns {
    let metrics = module.environment.as_ref().and_then(|env| crate::env::create(&env.spec, &env.settings).ok());
    crate::sweep::Columns {
        groups: module.layout.populations.iter().filter(|p| p.spiking).map(|p| p.name.clone()).collect(),
        metrics: metrics.map_or_else(Vec::new, |env| {
            EpisodeSummary::new(1, 0.0, env.as_ref()).metrics().into_iter().map(|(name, _)| name).collect()
        }),
    }
}

/// Writes a sweep manifest (`sweep.json`, `sweep-shard-K-of-N.json`) atomically.
fn write_manifest(path: &std::path::Path, manifest: &serde_json::Value) -> Result<(), ExitCode> {
    let text = serde_json::to_string_pretty(manifest).map_err(usage_error)? + "\n";
    crate::output::write_file(path, text.as_bytes()).map_err(usage_error)
}

/// `snnc sweep FILE`: every run of the grid (or of `shard`), each as `snnc run`
/// with its point's constants and seed `seed + r`, in parallel on kernels compiled
/// once per distinct structure (once, unless a constant changes the structure);
/// then the table.
fn sweep(path: &std::path::Path, options: &RunOptions, shard: Option<crate::sweep::Shard>) -> Result<(), ExitCode> {
    if options.resume.is_some() || options.checkpoint_every.is_some() || options.stop_after.is_some() {
        return Err(usage_error(
            "`--resume`, `--checkpoint-every` and `--stop-after` apply to `snnc run`; a sweep's run that Ctrl-C \
             stops keeps a checkpoint in its folder, which `snnc run --resume` continues",
        ));
    }
    let name = path.display().to_string();
    let model_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let source = std::fs::read_to_string(path).map_err(|e| usage_error(format!("cannot read `{name}`: {e}")))?;
    let grid = crate::sweep::Grid::parse(&options.sets, options.replicas).map_err(usage_error)?;
    let (points, runs) = (grid.points().unwrap_or(0), grid.runs().unwrap_or(0));
    // Every point checked and lowered: its model, `--set`s, length, seeds, module.
    let mut models = Vec::new();
    let mut sets = Vec::new();
    let mut lengths = Vec::new();
    let mut seeds = Vec::new();
    let mut modules = Vec::new();
    for point in 0..points {
        let model = check_overridden(&name, &source, &grid.overrides(point), point == 0)?;
        lengths.push(run_length(options, &model)?);
        seeds.push(replica_seeds(options.seed.or(model.seed).unwrap_or(0), options.replicas)?);
        modules.push(lower(path, &source, &model)?);
        sets.push(grid.sets(point));
        models.push(model);
    }
    let started = std::time::Instant::now();
    let Compiled { kernels: compiled, structure_of } = compile_structures(path, &source, &grid, options, &modules)?;
    let compile_seconds = started.elapsed().as_secs_f64();

    let mut definition = grid.definition();
    definition["model_fnv1a64"] = serde_json::json!(format!("{:016x}", fnv1a(source.as_bytes())));
    definition["seed"] = serde_json::json!(seeds.first().and_then(|s| s.first()));
    definition["steps_per_episode"] = serde_json::json!(lengths.first().map(|l| l.steps));
    definition["episodes"] = serde_json::json!(options.episodes.unwrap_or(1));
    definition["policy"] = serde_json::json!(if options.random_policy { "random" } else { "model" });
    let out = options.out.clone().unwrap_or_else(|| default_out(path, "-sweep"));
    crate::sweep::check_out_dir(&out, &definition).map_err(usage_error)?;
    std::fs::create_dir_all(&out).map_err(|e| usage_error(format!("cannot create `{}`: {e}", out.display())))?;
    let (table, manifest) = match shard {
        Some(s) => (s.file_name("csv"), s.file_name("json")),
        None => ("sweep.csv".to_string(), "sweep.json".to_string()),
    };
    write_manifest(&out.join(manifest), &crate::sweep::manifest(&definition, shard))?;

    let jobs: Vec<Job> = (0..points as usize)
        .map(|p| Job {
            name: &name,
            model_path: &model_path,
            source: &source,
            model: &models[p],
            options,
            sets: &sets[p],
            steps: lengths[p].steps,
            episodes: lengths[p].episodes,
            total_steps: lengths[p].total_steps,
            compile_seconds,
        })
        .collect();
    let selected: Vec<u64> = (0..runs).filter(|&run| shard.is_none_or(|s| s.contains(run))).collect();
    let all_steps = selected.iter().map(|&run| lengths[grid.split(run).0 as usize].total_steps).sum::<u64>();
    let bar = progress_bar(all_steps, options.quiet);
    let functions: Vec<&[snnc_compiler::abi::KernelFn]> = compiled.iter().map(|k| k.functions()).collect();
    let point_of = |k: usize| grid.split(selected[k]).0 as usize;
    catch_interrupts();
    let run_started = std::time::Instant::now();
    // Each run: its seed, and its outcome or exit status and error.
    type RunResult = (u64, Result<crate::sweep::Outcome, (u8, String)>);
    let one = |k: usize, kernels: Box<dyn crate::sim::Kernels>| -> RunResult {
        let run = selected[k];
        let (point, replica) = grid.split(run);
        let p = point as usize;
        let seed = seeds[p][replica as usize];
        let dir = grid.run_dir(run);
        let tag = serde_json::json!({ "run": run, "point": point, "replica": replica });
        let ran = jobs[p].run_into(&modules[p], kernels, seed, bar.as_ref(), &out.join(&dir), &[("sweep", tag)]);
        match &ran {
            Ok(ran) if matches!(ran.outcome, Outcome::Complete) => {
                if !options.quiet {
                    print_line(bar.as_ref(), format!("{dir} (seed {seed}): {}", ran.line()));
                }
            }
            Ok(ran) => print_line(
                bar.as_ref(),
                format!("error: {dir} (seed {seed}): {} after {} steps", ran.outcome.status(), ran.report.steps),
            ),
            Err((_, e)) => print_line(bar.as_ref(), format!("error: {dir} (seed {seed}): {e}")),
        }
        // A run that stopped early (Ctrl-C, or NaN) is a failed row; its folder
        // holds what it recorded (and, when interrupted, a checkpoint).
        let outcome = ran.and_then(|ran| match ran.outcome {
            Outcome::Complete => Ok(crate::sweep::Outcome {
                steps: ran.report.steps,
                spikes: ran.report.group_spikes,
                rates: ran.report.rates,
                episodes: ran.summaries.iter().map(EpisodeSummary::metrics).collect(),
            }),
            Outcome::Diverged(bad) => Err((EXIT_DIVERGED, format!("diverged: {bad}"))),
            other => Err((EXIT_INTERRUPTED, format!("{} after {} steps", other.status(), ran.report.steps))),
        });
        (seed, outcome)
    };
    let (threads, results) = in_pool(options.threads, || {
        crate::replicas::run_each(selected.len(), |k| functions[structure_of[point_of(k)]], one)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let run_seconds = run_started.elapsed().as_secs_f64();

    let columns = sweep_columns(&modules[0]);
    let rows: Vec<Vec<String>> = selected
        .iter()
        .zip(&results)
        .map(|(&run, (seed, outcome))| columns.row(&grid, run, *seed, outcome.as_ref().map_err(|(_, e)| e.as_str())))
        .collect();
    let csv = crate::sweep::csv(&columns.header(&grid), &rows);
    crate::output::write_file(&out.join(&table), csv.as_bytes()).map_err(usage_error)?;
    let failed: Vec<u8> =
        results.iter().filter_map(|(_, outcome)| outcome.as_ref().err().map(|(status, _)| *status)).collect();
    if !options.quiet {
        let of = shard.map_or(String::new(), |s| format!(", shard {}/{} of {runs}", s.index, s.count));
        eprintln!(
            "{} runs ({points} point{} x {} replica{}{of}) on {threads} thread{} in {run_seconds:.2} s, compiled {} in \
             {:.1} ms -> {}",
            selected.len(),
            plural(points as usize),
            options.replicas,
            plural(options.replicas as usize),
            plural(threads),
            if compiled.len() == 1 { "once".to_string() } else { format!("{} times", compiled.len()) },
            compile_seconds * 1e3,
            out.join(&table).display()
        );
    }
    if let Some(&status) = failed.iter().max() {
        eprintln!(
            "error: {} of {} runs failed (their rows in `{}` give why)",
            failed.len(),
            selected.len(),
            out.join(&table).display()
        );
        return Err(ExitCode::from(status));
    }
    Ok(())
}

/// `snnc sweep --merge DIR...`: the shards' tables joined into `sweep.csv` (rows
/// in run order) and their manifest into `sweep.json`, in `--out` or the first folder.
fn merge_shards(dirs: &[PathBuf], options: &RunOptions) -> Result<(), ExitCode> {
    let runs_something = !options.sets.is_empty()
        || options.steps.is_some()
        || options.duration.is_some()
        || options.seed.is_some()
        || options.episodes.is_some()
        || options.random_policy
        || options.replicas != 1
        || options.threads.is_some();
    if runs_something {
        return Err(usage_error("`--merge` joins the tables of finished shards: give it only folders (and `--out`)"));
    }
    let first = dirs.first().ok_or_else(|| usage_error("`--merge`: give the folders of the shards"))?;
    let out = options.out.clone().unwrap_or_else(|| first.clone());
    let (definition, csv) = crate::sweep::merge(dirs).map_err(usage_error)?;
    crate::sweep::check_out_dir(&out, &definition).map_err(usage_error)?;
    std::fs::create_dir_all(&out).map_err(|e| usage_error(format!("cannot create `{}`: {e}", out.display())))?;
    write_manifest(&out.join("sweep.json"), &definition)?;
    crate::output::write_file(&out.join("sweep.csv"), csv.as_bytes()).map_err(usage_error)?;
    if !options.quiet {
        let shards = definition.get("runs").map_or(String::new(), |r| format!("{r} runs"));
        eprintln!(
            "merged {} folder{}: {shards} -> {}",
            dirs.len(),
            plural(dirs.len()),
            out.join("sweep.csv").display()
        );
    }
    Ok(())
}

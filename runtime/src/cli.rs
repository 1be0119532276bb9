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
        job.write(next, state, seed, &Outcome::Running, None).map(|_| ())
    };
    let outcome = job.simulate(&mut state, bar.as_ref(), !options.quiet, &mut checkpoint).map_err(model_error)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let dir = match dir.take() {
        Some(dir) => dir,
        None => crate::output::RunDir::create(&out).map_err(usage_error)?,
    };
    let (written, report) = job.write(dir, &state, seed, &outcome, None).map_err(usage_error)?;
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

/// A checked and compiled `snnc run`: what its run, or each of its replicas, needs.
struct Job<'a> {
    name: &'a str,
    /// The model file, as an absolute path where it can be found (for `--resume`).
    model_path: &'a std::path::Path,
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
            "overrides": self.options.sets,
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
            info["episodes"] = serde_json::json!(state.summaries.iter().map(EpisodeSummary::json).collect::<Vec<_>>());
            info["steps_per_episode"] = serde_json::json!(self.steps);
            info["policy"] = serde_json::json!(if self.options.random_policy { "random" } else { "model" });
        }
        Report { info, rates, spikes: totals.iter().sum(), steps, steps_per_second }
    }

    /// Writes a run's files as far as it went into `dir`, with `run.json` (its
    /// status, and for a run that can go on, its checkpoint), and commits it.
    fn write(
        &self,
        dir: crate::output::RunDir,
        state: &RunState,
        seed: u64,
        outcome: &Outcome,
        replica: Option<u32>,
    ) -> Result<(PathBuf, Report), String> {
        let mut report = self.report(state, seed);
        report.info["status"] = serde_json::json!(outcome.status());
        if let Some(r) = replica {
            report.info["replica"] = serde_json::json!(r);
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
         -> Result<(crate::replicas::Replica, Outcome), (u8, String)> {
            let seed = seeds.get(r as usize).copied().unwrap_or_default();
            let context = |e: String| format!("replica {r} (seed {seed}): {e}");
            let mut state = self.start(module.clone(), kernels, seed).map_err(|e| (EXIT_MODEL_ERROR, context(e)))?;
            let outcome = self
                .simulate(&mut state, bar.as_ref(), false, &mut |_| Ok(()))
                .map_err(|e| (EXIT_MODEL_ERROR, context(e)))?;
            let name = crate::replicas::dir_name(r, count);
            let (_, report) = crate::output::RunDir::create(&dir.staging_path().join(&name))
                .map_err(|e| e.to_string())
                .and_then(|sub| self.write(sub, &state, seed, &outcome, Some(r)))
                .map_err(|e| (EXIT_USAGE, context(e)))?;
            if let Outcome::Diverged(bad) = &outcome {
                print_line(bar.as_ref(), format!("error: replica {r} (seed {seed}) diverged: {bad}"));
            } else if !quiet {
                let food: Vec<String> = state
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
            let replica = crate::replicas::Replica {
                seed,
                dir: name,
                episodes: state.summaries.iter().map(EpisodeSummary::metrics).collect(),
                rates: report.rates,
            };
            Ok((replica, outcome))
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
        let (replicas, outcomes): (Vec<_>, Vec<_>) = results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|(status, e)| {
                eprintln!("error: {e}");
                ExitCode::from(status)
            })?
            .into_iter()
            .unzip();
        let all_steps = self.total_steps as f64 * f64::from(count);
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
    counters: Vec<(String, f64)>,
}

impl EpisodeSummary {
    fn of(closed_loop: &crate::env::ClosedLoop, steps: u64) -> EpisodeSummary {
        EpisodeSummary {
            steps,
            reward: closed_loop.episode_reward(),
            counters: closed_loop
                .environment()
                .episode_summary()
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
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

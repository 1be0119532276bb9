//! The `snnc` command-line program.
//!
//! This module holds the command line (clap), its dispatch, the exit statuses and
//! the helpers the subcommands share (reading, checking and lowering a model, the
//! back ends' kernels, progress bars, thread pools). Each area has its own file:
//! `inspect` (`check`, `emit`), `run` (`run` and `--resume`: from options to a
//! run), `job` (a run's loop, outputs, checkpoints and replicas), `sweep` (`sweep`
//! and `--merge`) and `bench`. `snnc plot` lives in `crate::plot`.

mod bench;
mod inspect;
mod job;
mod run;
mod sweep;

use clap::{Parser, Subcommand};
use snnc_compiler::diagnostic::emit_to_stderr;
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
        Command::Check { dump, files } => inspect::check(&files, dump),
        Command::Bench { file, steps, repeats, seed } => {
            bench::bench(&file, steps, repeats, seed).err().unwrap_or(ExitCode::SUCCESS)
        }
        Command::Emit { ir, clif, asm, rust, file } => {
            inspect::emit(&file, ir || !(clif || asm || rust), clif, asm, rust)
        }
        Command::Run { file, options } => {
            let result = match &options.resume {
                Some(dir) => run::resume(dir, file.as_deref(), &options),
                None => match &file {
                    Some(file) => run::run(file, &options, None),
                    None => Err(usage_error("give a model file, or `--resume RUN_DIR`")),
                },
            };
            result.err().unwrap_or(ExitCode::SUCCESS)
        }
        Command::Plot(args) => crate::plot::command(&args),
        Command::Sweep { file, options, shard, merge } => match file {
            Some(file) if merge.is_empty() => sweep::sweep(&file, &options, shard),
            _ => sweep::merge_shards(&merge, &options),
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

//! `snnc run`: from the command line's options to a run (`--resume` too), and
//! the steps of setting one up that `snnc sweep` shares: checking a model with
//! `--set`, the run's length, the replicas' seeds, the default output folder.

use super::job::{Job, Outcome, RunState, catch_interrupts};
use super::{EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_MODEL_ERROR, RunOptions, kernels, lower, progress_bar, usage_error};
use crate::aot::fnv1a;
use snnc_compiler::diagnostic::{Severity, emit_to_stderr};
use std::path::PathBuf;
use std::process::ExitCode;

/// A run to continue from its checkpoint (`--resume`).
pub(super) struct Resumed {
    /// The checkpoint's bytes.
    checkpoint: Vec<u8>,
    /// The model file's hash when the run started (`model_fnv1a64`).
    model_hash: String,
}

/// `snnc run --resume DIR [FILE]`: reads the run's `run.json` and checkpoint, and
/// runs the rest of it with the options it started with.
pub(super) fn resume(
    dir: &std::path::Path,
    file: Option<&std::path::Path>,
    options: &RunOptions,
) -> Result<(), ExitCode> {
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

pub(super) fn run(path: &std::path::Path, options: &RunOptions, resumed: Option<&Resumed>) -> Result<(), ExitCode> {
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
pub(super) fn replica_seeds(seed: u64, replicas: u32) -> Result<Vec<u64>, ExitCode> {
    crate::replicas::seeds(seed, replicas).ok_or_else(|| {
        usage_error(format!(
            "`--replicas {replicas}`: replica seeds are `seed + r`, and {seed} + {} overflows: give a smaller `--seed`",
            replicas - 1
        ))
    })
}

/// `runs/<file stem><suffix>`: where a run's folder goes without `--out`.
pub(super) fn default_out(path: &std::path::Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(format!("{stem}{suffix}"))
}

/// Checks a model with constants overridden, printing its diagnostics (with
/// `warnings`, or errors only); a name that is not one of the model's constants
/// is a usage error listing them.
pub(super) fn check_overridden(
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
pub(super) struct Length {
    pub(super) steps: u64,
    pub(super) episodes: u32,
    pub(super) total_steps: u64,
}

/// The run length `options` and the model give, and the checks of the closed-loop
/// options (`--episodes` needs an environment, `--random-policy` one that acts).
pub(super) fn run_length(options: &RunOptions, model: &snnc_compiler::Model) -> Result<Length, ExitCode> {
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

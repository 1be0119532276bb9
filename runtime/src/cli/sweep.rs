//! `snnc sweep`: the points of a grid checked and lowered, compiled once per
//! distinct structure, run in parallel (or a shard of them) and tabled; and
//! `--merge`, which joins the shards' tables. The grids, shards and tables
//! themselves are `crate::sweep`'s.

use super::job::{EpisodeSummary, Job, Outcome, catch_interrupts};
use super::run::{check_overridden, default_out, replica_seeds, run_length};
use super::{
    Backend, EXIT_DIVERGED, EXIT_INTERRUPTED, RunOptions, in_pool, kernels, lower, plural, print_line, progress_bar,
    usage_error,
};
use crate::aot::fnv1a;
use std::path::PathBuf;
use std::process::ExitCode;

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
pub(super) fn sweep(
    path: &std::path::Path,
    options: &RunOptions,
    shard: Option<crate::sweep::Shard>,
) -> Result<(), ExitCode> {
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
pub(super) fn merge_shards(dirs: &[PathBuf], options: &RunOptions) -> Result<(), ExitCode> {
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

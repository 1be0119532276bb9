//! How to embed a spiking network in your own Rust program, compiled ahead of time.
//!
//! `snnc_macros::model!("model.snn")` reads `model.snn` (relative to this crate's
//! `Cargo.toml`) while this crate compiles, checks it, and compiles its kernels
//! into the program as Rust: no JIT, no Cranelift, no model file needed at run
//! time. A mistake in the model is a build error naming the file, line and column
//! (the message of `snnc check`), and editing the model makes cargo rebuild.
//!
//! ```text
//! cargo run -p snnc-example-embed                      # run, print a summary
//! cargo run -p snnc-example-embed -- --seed 3 --out runs/embed  # also write the monitors (.npz)
//! ```
//!
//! See `docs/embedding.md` for the whole story.

use snnc_runtime::output::RunDir;
use snnc_runtime::{Monitors, Simulation};
use std::path::PathBuf;
use std::process::ExitCode;

/// The model, compiled into this program. `model!` expands to `SOURCE` (the
/// model's text, through `include_str!`, which is also how cargo knows to rebuild
/// when the file changes) and `kernels()` (its kernels, compiled here as Rust).
/// Give each model a module of its own.
mod model {
    snnc_macros::model!("model.snn");
}

/// A finished run.
struct Run {
    /// The checked model: names, sizes, settings, constants.
    model: snnc_compiler::Model,
    /// The simulation after its last step (state arrays, synapses).
    sim: Simulation,
    /// What the model's `monitor` lines recorded.
    monitors: Monitors,
}

/// Builds the network with random seed `seed` and runs it for `steps` steps, or
/// for the model's own `duration` when `steps` is `None`.
fn run(seed: u64, steps: Option<u64>) -> Result<Run, String> {
    // The source is checked and lowered again (milliseconds, no code generation)
    // and paired with the compiled kernels. Then the state is initialised and the
    // synapses are drawn. The seed fixes every random draw: initial values,
    // connectivity, Poisson spikes; the same seed gives the same bits.
    let (model, mut sim) = snnc_runtime::aot::build(model::SOURCE, model::kernels(), seed)?;
    let steps = match steps {
        Some(steps) => steps,
        None => model_steps(&model).ok_or("the model gives no `duration`: pass `--steps N`")?,
    };
    // The monitors the model declares, with room for `steps` steps.
    let mut monitors = Monitors::new(&model, &sim, steps)?;
    for _ in 0..steps {
        // One step of `dt`: state updates, thresholds, synapses, resets; the
        // monitors record what they watch.
        sim.step(&mut monitors);
    }
    // What is recorded once at the end of a run (weight monitors without `every`).
    monitors.end_episode(&sim);
    Ok(Run { model, sim, monitors })
}

/// The model's run length (`duration = 500 ms` in `model.snn`) in steps.
fn model_steps(model: &snnc_compiler::Model) -> Option<u64> {
    use snnc_compiler::model::RunLength;
    match model.run_length? {
        RunLength::Steps(n) => Some(n),
        RunLength::Duration(t) => Some((t / model.dt).round() as u64),
    }
}

/// What one group did in a run.
#[derive(Clone, Debug, PartialEq)]
struct GroupSummary {
    name: String,
    neurons: u32,
    spikes: usize,
    /// Spikes per neuron per second.
    mean_rate_hz: f64,
}

/// Reads the monitors in memory: spike counts and mean rates of the groups with
/// a spike monitor.
fn summarize(run: &Run) -> Vec<GroupSummary> {
    let layout = &run.sim.module().layout;
    let seconds = run.sim.step_number() as f64 * run.model.dt;
    layout
        .populations
        .iter()
        .filter_map(|population| {
            // `spikes("Out")`: the step and the neuron index of every spike, in time order.
            let (_steps, neurons) = run.monitors.spikes(&population.name)?;
            let rate = neurons.len() as f64 / (f64::from(population.size) * seconds);
            Some(GroupSummary {
                name: population.name.clone(),
                neurons: population.size,
                spikes: neurons.len(),
                mean_rate_hz: rate,
            })
        })
        .collect()
}

/// The summary: spikes and rates per group, the population rate of `Out` over
/// time, and a recorded membrane potential.
fn report(run: &Run) -> Result<String, String> {
    use std::fmt::Write;
    let dt = run.model.dt;
    let mut text = format!("{} steps of {} ms\n", run.sim.step_number(), dt * 1e3);
    for group in summarize(run) {
        let _ = writeln!(
            text,
            "  {:<6} {:>4} neurons  {:>6} spikes  {:>6.2} Hz",
            group.name, group.neurons, group.spikes, group.mean_rate_hz
        );
    }

    // `rate_counts("Out")`: the number of spikes of `Out` in each step
    // (`monitor rate Out`). Binned here into 100 ms windows.
    let counts = run.monitors.rate_counts("Out").ok_or("no rate monitor of `Out`")?;
    let size = run.sim.module().layout.population("Out").map(|p| run.sim.population_size(p)).unwrap_or(1);
    let bin = ((0.1 / dt).round() as usize).max(1);
    let rates: Vec<String> = counts
        .chunks(bin)
        .map(|window| {
            let spikes: u32 = window.iter().sum();
            format!("{:.1}", f64::from(spikes) / (f64::from(size) * window.len() as f64 * dt))
        })
        .collect();
    let _ = writeln!(text, "  Out population rate per 100 ms (Hz): {}", rates.join(" "));

    // `state("Out.v")`: the sampled steps, the recorded neurons (`Out.v[0, 1, 2]`),
    // and the values, one row per sample, in SI units (volts).
    let (steps, neurons, values) = run.monitors.state("Out.v").ok_or("no state monitor of `Out.v`")?;
    if let Some(column) = neurons.iter().position(|&n| n == 0) {
        let v: Vec<f64> = values.iter().skip(column).step_by(neurons.len()).copied().collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (low, high) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let _ = writeln!(
            text,
            "  Out[0].v over {} samples: mean {:.2} mV, range {:.2} to {:.2} mV",
            steps.len(),
            mean * 1e3,
            low * 1e3,
            high * 1e3
        );
    }
    Ok(text)
}

/// Writes the monitors as `snnc run` does (`spikes.npz`, `state.npz`,
/// `rates.npz`), into a folder that appears complete or not at all.
fn write(run: &Run, out: &std::path::Path) -> Result<PathBuf, String> {
    // Replace only an earlier output of this program, never some other folder.
    if out.exists() && !out.join("spikes.npz").exists() {
        return Err(format!("`{}` exists and is not an earlier output: choose another `--out`", out.display()));
    }
    let dir = RunDir::create(out).map_err(|e| e.to_string())?;
    run.monitors.write(&dir, &run.sim).map_err(|e| e.to_string())?;
    dir.commit().map_err(|e| e.to_string())
}

/// Command-line options: `--seed N`, `--steps N`, `--out DIR`.
struct Options {
    seed: u64,
    steps: Option<u64>,
    out: Option<PathBuf>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options { seed: 1, steps: None, out: None };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--seed" => options.seed = value()?.parse().map_err(|e| format!("`--seed`: {e}"))?,
            "--steps" => options.steps = Some(value()?.parse().map_err(|e| format!("`--steps`: {e}"))?),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument `{flag}` (expected --seed N, --steps N, --out DIR)")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|options| {
        let run = run(options.seed, options.steps)?;
        print!("{}", report(&run)?);
        if let Some(out) = &options.out {
            let written = write(&run, out)?;
            println!("monitors written to {}", written.display());
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same model file run under the JIT (compiled at run time by Cranelift).
    fn jit_run(seed: u64, steps: u64) -> Run {
        let (model, diagnostics) = snnc_compiler::check(model::SOURCE);
        let model = model.unwrap_or_else(|| panic!("model.snn checks: {diagnostics:?}"));
        let mut sim = snnc_runtime::build(&model, seed).expect("the JIT builds the model");
        let mut monitors = Monitors::new(&model, &sim, steps).expect("the monitors");
        for _ in 0..steps {
            sim.step(&mut monitors);
        }
        monitors.end_episode(&sim);
        Run { model, sim, monitors }
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|x| x.to_bits()).collect()
    }

    /// The embedded (AOT) kernels and the JIT's compute the same bits: every spike,
    /// every recorded sample, and the whole final state.
    #[test]
    fn the_embedded_model_runs_like_the_jit() {
        let aot = run(1, None).expect("the embedded model runs");
        let steps = aot.sim.step_number();
        assert_eq!(steps, 5000, "duration = 500 ms at dt = 0.1 ms");
        let jit = jit_run(1, steps);
        for group in ["Input", "Out"] {
            let (a, b) = (aot.monitors.spikes(group), jit.monitors.spikes(group));
            assert!(a.is_some_and(|(steps, _)| !steps.is_empty()), "{group} spikes");
            assert_eq!(a, b, "spikes of {group}");
        }
        assert_eq!(aot.monitors.rate_counts("Out"), jit.monitors.rate_counts("Out"));
        let (a, b) = (aot.monitors.state("Out.v").expect("Out.v"), jit.monitors.state("Out.v").expect("Out.v"));
        assert_eq!((a.0, a.1), (b.0, b.1), "sampled steps and neurons");
        assert_eq!(a.0.len(), 500, "Out.v every 1 ms for 500 ms");
        assert_eq!(bits(a.2), bits(b.2), "Out.v samples");
        for (v, info) in aot.sim.module().layout.vars.iter().enumerate() {
            assert_eq!(bits(aot.sim.values(v)), bits(jit.sim.values(v)), "final {}", info.name);
        }
        assert_eq!(summarize(&aot), summarize(&jit));
    }

    /// The summary's numbers: the Poisson inputs fire at their 15 Hz, and they
    /// drive the output neurons to a moderate rate.
    #[test]
    fn the_summary_reads_the_monitors() {
        let run = run(1, None).expect("the embedded model runs");
        let summary = summarize(&run);
        let names: Vec<&str> = summary.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["Input", "Out"]);
        let (input, out) = (&summary[0], &summary[1]);
        assert_eq!((input.neurons, out.neurons), (200, 40));
        // 200 inputs x 0.5 s x 15 Hz = 1500 expected spikes (standard deviation 39).
        assert!((13.5..16.5).contains(&input.mean_rate_hz), "{input:?}");
        assert!((5.0..25.0).contains(&out.mean_rate_hz), "{out:?}");
        let counts = run.monitors.rate_counts("Out").expect("a rate monitor");
        assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), out.spikes);
        let totals = run.monitors.spike_totals();
        let out_index = run.sim.module().layout.population("Out").expect("Out");
        assert_eq!(totals[out_index], out.spikes as u64);
        // Recorded membrane potentials stay between the reset and threshold region.
        let (_, _, v) = run.monitors.state("Out.v").expect("Out.v");
        assert!(v.iter().all(|&v| (-0.071..-0.053).contains(&v)), "v in [-71, -53] mV");
    }

    /// A seed fixes the run; another seed gives another run.
    #[test]
    fn the_seed_fixes_the_run() {
        let spikes = |seed| {
            let run = run(seed, Some(1000)).expect("the embedded model runs");
            run.monitors.spikes("Out").map(|(s, n)| (s.to_vec(), n.to_vec())).expect("Out spikes")
        };
        assert_eq!(spikes(2), spikes(2));
        assert_ne!(spikes(2), spikes(3));
    }

    /// `--out` writes the monitor files; an unrelated folder is never replaced.
    #[test]
    fn the_monitors_are_written() {
        let dir = std::env::temp_dir().join(format!("snnc-embed-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = run(1, Some(100)).expect("the embedded model runs");
        let out = dir.join("run");
        assert_eq!(write(&run, &out), Ok(out.clone()));
        for file in ["spikes.npz", "state.npz", "rates.npz"] {
            assert!(out.join(file).is_file(), "{file}");
        }
        assert_eq!(write(&run, &out), Ok(out.clone()), "an earlier output is replaced");
        let other = dir.join("other");
        std::fs::create_dir_all(&other).expect("create a folder");
        assert!(write(&run, &other).is_err_and(|e| e.contains("not an earlier output")));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// The code in `docs/embedding.md` is this crate's: every `rust` and `toml`
    /// block is in one of its files, the sample output is what `report` prints
    /// for seed 1, and the sample error is the UI test's.
    #[test]
    fn the_docs_quote_this_crate() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let docs = read(&here.join("../../docs/embedding.md"));
        let files = [read(&here.join("Cargo.toml")), read(&here.join("src/main.rs")), read(&here.join("model.snn"))];
        let output = report(&run(1, None).expect("the embedded model runs")).expect("a report");
        let error = read(&here.join("../../macros/tests/ui/model_unit_mismatch.stderr"));
        let mut checked = 0;
        for block in docs.split("```").skip(1).step_by(2) {
            let (kind, body) = block.split_once('\n').expect("a fenced block");
            match kind {
                "rust" | "toml" => {
                    assert!(files.iter().any(|f| f.contains(body)), "not in examples/embed/:\n{body}");
                }
                "text" if body.starts_with("5000 steps") => assert_eq!(body, output, "the sample output"),
                "text" if body.starts_with("error: ") => {
                    assert!(error.starts_with(body), "not macros/tests/ui/model_unit_mismatch.stderr:\n{body}")
                }
                _ => continue,
            }
            checked += 1;
        }
        assert_eq!(checked, 9, "blocks checked");
    }

    #[test]
    fn arguments() {
        let args = |list: &[&str]| parse_args(list.iter().map(|s| s.to_string()));
        let options = args(&["--seed", "7", "--steps", "10", "--out", "x"]).expect("valid arguments");
        assert_eq!((options.seed, options.steps, options.out), (7, Some(10), Some(PathBuf::from("x"))));
        assert!(args(&["--seed"]).is_err_and(|e| e.contains("needs a value")));
        assert!(args(&["--frobnicate"]).is_err_and(|e| e.contains("unknown argument")));
    }
}

//! `snnc bench`: steps per second under the JIT and the AOT kernels in turn,
//! compile time, and the time from model file to first step.

use super::{Backend, EXIT_MODEL_ERROR, EXIT_USAGE, kernels, load, lower, usage_error};
use std::process::ExitCode;

pub(super) fn bench(path: &std::path::Path, steps: Option<u64>, repeats: u32, seed: u64) -> Result<(), ExitCode> {
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

//! Integration against analytic solutions, convergence orders, reproducibility and
//! noise statistics, through the whole pipeline (check, lower, JIT, run).

use snnc_runtime::{Monitors, Simulation};

fn simulation(source: &str, seed: u64) -> (snnc_compiler::Model, Simulation) {
    let (model, diagnostics) = snnc_compiler::check(source);
    let model = model
        .unwrap_or_else(|| panic!("{}", snnc_compiler::diagnostic::render_to_string(&diagnostics, "test.snn", source)));
    let sim = snnc_runtime::build(&model, seed).expect("builds");
    (model, sim)
}

/// Runs `steps` steps and returns the final values of `group.var`.
fn final_values(source: &str, steps: u64, var: &str) -> Vec<f64> {
    let (model, mut sim) = simulation(source, 0);
    let mut monitors = Monitors::new(&model, &sim, steps).expect("monitors");
    for _ in 0..steps {
        sim.step(&mut monitors);
    }
    let (group, name) = var.split_once('.').expect("group.var");
    let layout = &sim.module().layout;
    let population = layout.population(group).expect("group");
    let id = layout.var(population, name).expect("variable");
    sim.values(id).to_vec()
}

/// An LIF membrane relaxing to `v0` from 0: v(t) = v0 (1 - exp(-t/tau)).
fn relaxation(method: &str, dt_ms: f64) -> String {
    format!(
        "dt = {dt_ms} ms\nconst tau = 10 ms\nconst v0 = 15 mV\n\
         neuron N {{ equations {{ dv/dt = (v0 - v)/tau : volt }} method {method} }}\ngroup G = N(1)"
    )
}

#[test]
fn exact_integration_of_a_membrane_matches_the_closed_form() {
    let steps = 200u64;
    let v = final_values(&relaxation("exact", 0.1), steps, "G.v")[0];
    let t = steps as f64 * 1e-4;
    let expected = 15e-3 * (1.0 - (-t / 10e-3).exp());
    assert!((v - expected).abs() < 1e-15, "{v} vs {expected}");
}

/// A membrane driven by a decaying current whose time constant equals the
/// membrane's, under two names: the exact solution is then v(t) = s0 (t/tau)
/// exp(-t/tau), not 0/0 (the rates are equal only once the constants are known).
#[test]
fn exact_integration_holds_when_the_time_constants_meet() {
    for (tau_s, tau_m) in [(10.0f64, 10.0f64), (10.0, 10.000001), (3.0, 10.0)] {
        let source = format!(
            "dt = 0.1 ms\nconst tau_m = {tau_m} ms\nconst tau_s = {tau_s} ms\n\
             neuron N {{ equations {{\n dv/dt = (s - v)/tau_m : 1\n ds/dt = -s/tau_s : 1\n }} method exact }}\n\
             group G = N(1) {{ s = 1 }}"
        );
        let v = final_values(&source, 200, "G.v")[0];
        let (t, a, b) = (0.02f64, tau_m * 1e-3, tau_s * 1e-3);
        let expected = if a == b {
            t / a * (-t / a).exp()
        } else {
            // s0/a (e^(-t/a) - e^(-t/b)) / (1/b - 1/a), without cancellation.
            let k = 1.0 / b - 1.0 / a;
            (-t / a).exp() * -(-t * k).exp_m1() / (a * k)
        };
        assert!((v - expected).abs() < 1e-12, "tau_s {tau_s}, tau_m {tau_m}: {v} vs {expected}");
    }
}

#[test]
fn euler_converges_with_order_one() {
    // The same model time (20 ms) with dt and dt/2: the error halves.
    let error = |dt_ms: f64| {
        let steps = (20.0 / dt_ms).round() as u64;
        let v = final_values(&relaxation("euler", dt_ms), steps, "G.v")[0];
        (v - 15e-3 * (1.0 - (-2.0f64).exp())).abs()
    };
    let ratio = error(0.2) / error(0.1);
    assert!((ratio - 2.0).abs() < 0.05, "error ratio {ratio}");
}

/// A membrane driven by a decaying current (Brian2 conformance case `exp2`).
fn driven(method: &str, dt_ms: f64) -> String {
    format!(
        "dt = {dt_ms} ms\nconst tau_m = 10 ms\nconst tau_s = 3 ms\n\
         neuron N {{ equations {{ dv/dt = (I - v)/tau_m : 1\n dI/dt = -I/tau_s : 1 }} method {method}\n init {{ v = 0.2; I = 1 }} }}\n\
         group G = N(1)"
    )
}

fn driven_error(method: &str, dt_ms: f64) -> f64 {
    let steps = (30.0 / dt_ms).round() as u64;
    let v = final_values(&driven(method, dt_ms), steps, "G.v")[0];
    let t: f64 = 30e-3;
    let a = 3.0 / (3.0 - 10.0);
    let expected = a * (-t / 3e-3).exp() + (0.2 - a) * (-t / 10e-3).exp();
    (v - expected).abs()
}

#[test]
fn runge_kutta_methods_converge_with_their_order() {
    let rk2 = driven_error("rk2", 0.4) / driven_error("rk2", 0.2);
    assert!((rk2 - 4.0).abs() < 0.4, "rk2 error ratio {rk2}");
    let rk4 = driven_error("rk4", 0.4) / driven_error("rk4", 0.2);
    assert!((rk4 - 16.0).abs() < 1.6, "rk4 error ratio {rk4}");
    // A coupled linear system solved exactly: rounding only.
    assert!(driven_error("exact", 0.4) < 1e-15);
    // With no method given, the linear system is found and solved exactly.
    assert!(driven_error("auto", 0.4) < 1e-15);
}

const NOISY: &str = "dt = 0.1 ms\nconst tau = 20 ms\nconst sigma = 6 mV\n\
    neuron LIF { equations { dv/dt = (-v)/tau + sigma*sqrt(2/tau)*xi : volt (unless refractory) }\n\
    threshold v > 5 mV\n reset { v = 0 mV }\n refractory 2 ms\n method euler\n init { v = rand()*5 mV } }\n\
    group G = LIF(200)\nmonitor spikes G";

fn spikes(seed: u64) -> (Vec<i64>, Vec<u32>) {
    let (model, mut sim) = simulation(NOISY, seed);
    let mut monitors = Monitors::new(&model, &sim, 2000).expect("monitors");
    for _ in 0..2000 {
        sim.step(&mut monitors);
    }
    let (steps, indices) = monitors.spikes("G").expect("spike monitor");
    (steps.to_vec(), indices.to_vec())
}

#[test]
fn a_seed_fixes_every_spike_and_another_seed_changes_them() {
    let first = spikes(1);
    assert!(first.0.len() > 50, "the noisy neurons should fire: {} spikes", first.0.len());
    assert_eq!(first, spikes(1));
    assert_ne!(first, spikes(2));
}

#[test]
fn noise_increments_have_the_variance_of_a_wiener_process() {
    // dx/dt = sigma*xi: one Euler-Maruyama step adds sigma*sqrt(dt)*N(0, 1).
    let n = 100_000u32;
    let source = format!(
        "dt = 0.1 ms\nconst sigma = 2*second**-0.5\nneuron W {{ equations {{ dx/dt = sigma*xi : 1 }} method euler }}\ngroup G = W({n})"
    );
    let x = final_values(&source, 1, "G.x");
    let nf = f64::from(n);
    let mean = x.iter().sum::<f64>() / nf;
    let variance = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (nf - 1.0);
    let expected: f64 = 4.0 * 1e-4;
    let se_mean = expected.sqrt() / nf.sqrt();
    let se_variance = expected * (2.0 / (nf - 1.0)).sqrt();
    assert!(mean.abs() < 3.0 * se_mean, "mean {mean}, 3 standard errors {}", 3.0 * se_mean);
    assert!(
        (variance - expected).abs() < 3.0 * se_variance,
        "variance {variance}, expected {expected} +- {}",
        3.0 * se_variance
    );
}

#[test]
fn refractoriness_holds_the_membrane_for_the_refractory_period() {
    // Constant drive above threshold: spikes every (time to threshold + refractory).
    let source = "dt = 0.1 ms\nconst tau = 10 ms\nneuron N { equations { dv/dt = (20 mV - v)/tau : volt (unless refractory) }\n\
        threshold v > 10 mV\n reset { v = 0 mV }\n refractory 2 ms\n method exact }\ngroup G = N(1)\nmonitor spikes G";
    let (model, mut sim) = simulation(source, 0);
    let mut monitors = Monitors::new(&model, &sim, 1000).expect("monitors");
    for _ in 0..1000 {
        sim.step(&mut monitors);
    }
    let (steps, _) = monitors.spikes("G").expect("spikes");
    // Time to threshold from 0: tau*ln(2) = 6.93 ms -> detected in step 69; then 20
    // refractory steps and 69 more to cross again (from step k+20).
    assert_eq!(steps[0], 69);
    let intervals: Vec<i64> = steps.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(intervals.iter().all(|&d| d == 20 + 70 || d == 20 + 69), "{intervals:?}");
}

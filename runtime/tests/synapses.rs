//! Synapses end to end: connectivity statistics, and the reference agent's
//! three-factor rule against a hand computation of its specification.

use snnc_runtime::{Monitors, Simulation};

fn build(source: &str, seed: u64) -> (snnc_compiler::Model, Simulation) {
    let (model, diagnostics) = snnc_compiler::check(source);
    let model = model
        .unwrap_or_else(|| panic!("{}", snnc_compiler::diagnostic::render_to_string(&diagnostics, "t.snn", source)));
    let sim = snnc_runtime::build(&model, seed).expect("builds");
    (model, sim)
}

const GROUPS: &str = "neuron N { equations { v : 1 } threshold v > 1 }\ngroup A = N(1000)\ngroup B = N(1000)\n\
    synapse Plain { equations { w : 1 } on_pre { v_post += w } }\n";

#[test]
fn random_connectivity_has_the_expected_count() {
    let (_, sim) = build(&format!("{GROUPS}connect A -> B with Plain {{ p = 0.1 }}"), 7);
    let n = sim.synapses(0).len() as f64;
    let (mean, sd) = (1e6 * 0.1, (1e6f64 * 0.1 * 0.9).sqrt());
    assert!((n - mean).abs() < 4.0 * sd, "{n} synapses, expected {mean} +- {}", 4.0 * sd);
    // Another seed draws other synapses; the same seed the same ones.
    let (_, again) = build(&format!("{GROUPS}connect A -> B with Plain {{ p = 0.1 }}"), 7);
    assert_eq!(sim.synapses(0).post, again.synapses(0).post);
    let (_, other) = build(&format!("{GROUPS}connect A -> B with Plain {{ p = 0.1 }}"), 8);
    assert_ne!(sim.synapses(0).post, other.synapses(0).post);
}

#[test]
fn fan_in_gives_exactly_k_distinct_inputs() {
    let (_, sim) = build(&format!("{GROUPS}connect A -> B with Plain {{ fan_in = 7 }}"), 1);
    let synapses = sim.synapses(0);
    assert_eq!(synapses.len(), 7000);
    for j in 0..1000u32 {
        let start = synapses.post_offsets[j as usize] as usize;
        let end = synapses.post_offsets[j as usize + 1] as usize;
        let mut sources: Vec<u32> = synapses.post_order[start..end].iter().map(|&s| synapses.pre[s as usize]).collect();
        assert_eq!(sources.len(), 7, "neuron {j}");
        sources.dedup();
        assert_eq!(sources.len(), 7, "distinct inputs of neuron {j}");
    }
}

#[test]
fn conditions_generators_and_lists_connect_exactly() {
    let (_, sim) = build(&format!("{GROUPS}connect A -> B with Plain {{ condition = i == j }}"), 1);
    assert!(sim.synapses(0).pre.iter().zip(&sim.synapses(0).post).all(|(i, j)| i == j));
    assert_eq!(sim.synapses(0).len(), 1000);
    let (_, sim) = build(&format!("{GROUPS}connect A -> B with Plain {{ j = (i + 1) % 1000 }}"), 1);
    assert_eq!(sim.synapses(0).len(), 1000);
    assert!(sim.synapses(0).pre.iter().zip(&sim.synapses(0).post).all(|(&i, &j)| j == (i + 1) % 1000));
    let (_, sim) =
        build(&format!("{GROUPS}connect A -> B with Plain {{ sources = [3, 1, 3]; targets = [0, 2, 9] }}"), 1);
    let s = sim.synapses(0);
    assert_eq!((s.pre.clone(), s.post.clone()), (vec![1, 3, 3], vec![2, 0, 9]));
    // Slices: `i` and `j` count from the slice's start, as in Brian2.
    let (_, sim) = build(&format!("{GROUPS}connect A[10:20] -> B[500:510] with Plain {{ condition = i == j }}"), 1);
    let s = sim.synapses(0);
    assert_eq!(s.len(), 10);
    assert!(s.pre.iter().zip(&s.post).all(|(&i, &j)| j == i + 490));
}

/// Two neurons with prescribed spikes, one plastic synapse with the reference
/// agent's three-factor rule, and a dopamine signal that jumps every 100 steps.
const THREE_FACTOR: &str = "dt = 1 ms
const tau_e = 500 ms
const tau_plus = 20 ms
const tau_minus = 20 ms
const A_plus = 1
const A_minus = 1.05
const eta = 0.5 mV/s
const tau_da = 200 ms
neuron Target { equations { I_syn : volt } }
group pre = SpikeGeneratorGroup(1) { indices = [0, 0, 0, 0]; times = [10, 50, 52, 300]*ms }
group post = SpikeGeneratorGroup(1) { indices = [0, 0, 0, 0]; times = [12, 49, 52, 310]*ms }
shared {
    equations { dda/dt = -da/tau_da : 1 }
    method exact
    every 100 steps { da += 0.5 }
}
synapse ThreeFactor {
    equations {
        w : volt
        de/dt = -e/tau_e : 1 (clock-driven)
        dx_pre/dt = -x_pre/tau_plus : 1 (event-driven)
        dx_post/dt = -x_post/tau_minus : 1 (event-driven)
    }
    method exact
    on_pre { x_pre += 1; e -= A_minus*x_post }
    on_post { x_post += 1; e += A_plus*x_pre }
    every_step { w = clip(w + eta*da*e*dt, 0 mV, 4 mV) }
}
connect S = pre -> post with ThreeFactor { w = 2 mV }
monitor state S.w every 1 steps
";

#[test]
fn the_three_factor_rule_matches_a_hand_computation() {
    let steps = 1000u64;
    let (model, mut sim) = build(THREE_FACTOR, 0);
    let mut monitors = Monitors::new(&model, &sim, steps).expect("monitors");
    for _ in 0..steps {
        sim.step(&mut monitors);
    }
    let (_, _, recorded) = monitors.state("S.w").expect("w monitor");

    // The specification, step by step (reference-agent.md): at the step's start the
    // shared periodic code adds dopamine and the monitor records; then pre events
    // (traces decayed exactly since their last update), post events, the
    // eligibility's exact decay, the weight update, and the dopamine's decay.
    let (dt, tau_e, tau_trace, tau_da) = (1e-3f64, 0.5f64, 0.02f64, 0.2f64);
    let (a_plus, a_minus, eta) = (1.0, 1.05, 0.5e-3);
    let pre = [10u64, 50, 52, 300];
    let post = [12u64, 49, 52, 310];
    let (mut w, mut e, mut x_pre, mut x_post, mut last, mut da) = (2e-3f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut expected = Vec::new();
    for step in 0..steps {
        let t = step as f64 * dt;
        if step % 100 == 0 {
            da += 0.5;
        }
        expected.push(w);
        let catch_up = |x: f64, last: f64| x * (-(t - last) / tau_trace).exp();
        if pre.contains(&step) {
            x_pre = catch_up(x_pre, last);
            x_post = catch_up(x_post, last);
            last = t;
            x_pre += 1.0;
            e -= a_minus * x_post;
        }
        if post.contains(&step) {
            x_pre = catch_up(x_pre, last);
            x_post = catch_up(x_post, last);
            last = t;
            x_post += 1.0;
            e += a_plus * x_pre;
        }
        e *= (-dt / tau_e).exp();
        w = (w + eta * da * e * dt).clamp(0.0, 4e-3);
        da *= (-dt / tau_da).exp();
    }
    assert_eq!(recorded.len(), expected.len());
    for (step, (ours, theirs)) in recorded.iter().zip(&expected).enumerate() {
        assert!((ours - theirs).abs() < 1e-12 * 4e-3, "step {step}: w {ours} vs hand-computed {theirs}");
    }
    // The rule did something: the weight moved.
    assert!((recorded[steps as usize - 1] - 2e-3).abs() > 1e-7);
}

//! Brian2's CUBA example (models/cuba.snn) against Brian2 itself: mean firing rate and ISI irregularity.
//!
//! Reference: Brian2 2.9.0 (Python 3.11, numpy 2.3.5, `prefs.codegen.target = 'numpy'`) running
//! brian-team/brian2 `examples/CUBA.py` unchanged (4000 neurons, `method='exact'`, `Ce.connect('i<3200',
//! p=0.02)`, `Ci.connect('i>=3200', p=0.02)`, `run(1*second)`, default dt 0.1 ms), with `seed(s)` for
//! s = 1..=60 before building the network. For each run: the rate is all spikes of the SpikeMonitor / 4000 /
//! 1 s, and the CV is the mean over neurons with at least 3 spikes of std(ISI)/mean(ISI) (numpy's `std`,
//! ddof = 0). `BRIAN2` below holds those 60 (rate, CV) pairs, in seed order. Over them:
//! rate mean 5.631 Hz, sd 0.237, min 5.190, max 6.219; CV mean 0.5226, sd 0.0112, min 0.4992, max 0.5544.
//!
//! Bounds: Brian2's min and max widened by 3 of Brian2's per-seed standard deviations, i.e. rate in
//! [4.478, 6.930] Hz and CV in [0.4656, 0.5880]. Brian2's min/max lie 1.9-2.9 sd from its mean, so the
//! bounds lie 4.9-5.9 sd from it, and a correct run fails with probability ~1e-6 (normal approximation).
//! The spread is seed-to-seed variation of the random network and initial state, which snnc reproduces
//! (60 snnc seeds: rate sd 0.238, CV sd 0.0103, all inside these bounds). The bounds span -20%/+23% of
//! Brian2's mean rate and -11%/+13% of its mean CV, so this is a coarse check: with seed 1, halving or
//! doubling `wi`, halving `we` or `taue`, or `taum = 15 ms` fail it; 10% changes of the weights do not.

use snnc_compiler::model::RunLength;

const NEURONS: usize = 4000;

/// Brian2's (mean rate in Hz, mean ISI CV) for seeds 1..=60, see above.
#[rustfmt::skip]
const BRIAN2: [(f64, f64); 60] = [
    (5.6152, 0.52314), (5.5195, 0.51918), (6.1528, 0.52792), (5.5020, 0.51471), (5.8587, 0.54676),
    (5.7180, 0.53002), (5.4965, 0.52583), (5.6422, 0.50500), (5.9220, 0.52607), (5.7145, 0.52165),
    (5.6240, 0.50488), (5.2840, 0.52214), (5.7305, 0.52265), (5.7557, 0.51831), (5.5510, 0.54487),
    (5.6288, 0.52464), (5.9467, 0.52612), (5.9642, 0.54159), (5.7367, 0.51842), (5.6472, 0.52133),
    (6.0910, 0.52373), (5.3063, 0.51246), (5.5438, 0.52710), (5.9058, 0.51550), (5.3797, 0.53089),
    (5.3018, 0.50772), (5.7295, 0.52327), (5.6312, 0.51381), (5.4277, 0.52316), (5.4105, 0.53142),
    (5.2858, 0.51582), (5.8080, 0.52246), (5.5377, 0.51620), (5.1895, 0.52627), (5.9325, 0.50654),
    (5.5255, 0.51007), (5.3395, 0.51456), (5.5390, 0.53012), (5.3245, 0.55435), (5.7462, 0.51945),
    (5.5445, 0.50358), (5.4070, 0.51447), (5.6590, 0.53580), (5.5273, 0.53018), (5.8092, 0.52594),
    (5.8357, 0.52420), (5.7245, 0.51610), (5.4798, 0.51642), (5.3410, 0.51244), (5.9958, 0.53876),
    (5.5808, 0.54881), (5.5922, 0.53397), (5.4885, 0.52301), (6.2188, 0.49922), (5.6152, 0.51420),
    (6.0842, 0.50970), (5.6833, 0.52340), (5.5145, 0.53029), (5.5485, 0.52752), (5.2400, 0.51782),
];

/// Brian2's min - 3 sd and max + 3 sd (sample standard deviation) of one statistic.
fn bounds(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let sd = (values.clone().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let min = values.clone().fold(f64::INFINITY, f64::min);
    let max = values.fold(f64::NEG_INFINITY, f64::max);
    (min - 3.0 * sd, max + 3.0 * sd)
}

/// Mean rate (spikes per neuron per second) and mean CV of the inter-spike intervals over
/// the neurons with at least 3 spikes (population standard deviation, as numpy's `std`).
fn statistics(steps: &[i64], indices: &[u32], dt: f64, duration: f64) -> (f64, f64) {
    let mut trains: Vec<Vec<i64>> = vec![Vec::new(); NEURONS];
    for (&step, &i) in steps.iter().zip(indices) {
        trains[i as usize].push(step);
    }
    let mut cvs = Vec::new();
    for train in trains.iter_mut().filter(|t| t.len() >= 3) {
        train.sort_unstable();
        let isi: Vec<f64> = train.windows(2).map(|w| (w[1] - w[0]) as f64 * dt).collect();
        let mean = isi.iter().sum::<f64>() / isi.len() as f64;
        let var = isi.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / isi.len() as f64;
        cvs.push(var.sqrt() / mean);
    }
    assert!(cvs.len() > 1000, "only {} neurons fired at least 3 times", cvs.len());
    let rate = steps.len() as f64 / NEURONS as f64 / duration;
    (rate, cvs.iter().sum::<f64>() / cvs.len() as f64)
}

#[test]
fn cuba_rate_and_irregularity_match_brian2() {
    let (rate_lo, rate_hi) = bounds(BRIAN2.iter().map(|b| b.0));
    let (cv_lo, cv_hi) = bounds(BRIAN2.iter().map(|b| b.1));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/cuba.snn");
    let src = std::fs::read_to_string(path).expect("models/cuba.snn is readable");
    let (model, diags) = snnc_compiler::check(&src);
    let model =
        model.unwrap_or_else(|| panic!("{}", snnc_compiler::diagnostic::render_to_string(&diags, "cuba.snn", &src)));
    let Some(RunLength::Duration(duration)) = model.run_length else { panic!("cuba.snn gives a duration") };
    let steps = (duration / model.dt).round() as u64;
    assert_eq!(steps, 10_000, "1 s at Brian2's default dt of 0.1 ms");
    for seed in [1, 2] {
        let mut sim = snnc_runtime::build(&model, seed).expect("cuba builds");
        let mut monitors = snnc_runtime::Monitors::new(&model, &sim, steps).expect("cuba's monitors build");
        for _ in 0..steps {
            sim.step(&mut monitors);
        }
        let (spike_steps, indices) = monitors.spikes("P").expect("cuba monitors the spikes of P");
        let (rate, cv) = statistics(spike_steps, indices, model.dt, duration);
        assert!(
            (rate_lo..=rate_hi).contains(&rate),
            "seed {seed}: mean rate {rate:.4} Hz outside Brian2's [{rate_lo:.4}, {rate_hi:.4}]"
        );
        assert!(
            (cv_lo..=cv_hi).contains(&cv),
            "seed {seed}: mean ISI CV {cv:.5} outside Brian2's [{cv_lo:.4}, {cv_hi:.4}]"
        );
    }
}

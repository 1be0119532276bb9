//! Timing a model the way `snnc bench` does, for `snnc bench` and for benchmark programs
//! that time the same runs beside other code (`cargo bench -p snnc-tests --bench forager`).
//!
//! A timed run is one episode of a fresh [`Simulation`] with every monitor of its model
//! on, one thread; the clock covers the steps (and the end-of-episode records), not the
//! construction or compilation. Back ends timed in one program take turns
//! ([`rotation`]), and their ratios are taken per repeat, between runs adjacent in time,
//! so that a machine's slow minute weighs on both sides of a ratio.

use crate::{Monitors, Simulation};

/// The model's own run length in steps, if it gives one.
pub fn run_length(model: &snnc_compiler::Model) -> Option<u64> {
    use snnc_compiler::model::RunLength;
    match model.run_length? {
        RunLength::Steps(n) => Some(n),
        RunLength::Duration(t) => Some((t / model.dt).round() as u64),
    }
}

/// One timed run: what the monitors recorded, and the time its steps took.
#[derive(Debug)]
pub struct TimedRun {
    /// Every monitor of the model, after the run (with the end-of-episode records).
    pub monitors: Monitors,
    /// Wall-clock seconds of the steps.
    pub seconds: f64,
}

impl TimedRun {
    /// Steps per second of a run of `steps` steps.
    pub fn steps_per_second(&self, steps: u64) -> f64 {
        steps as f64 / self.seconds
    }
}

/// Runs `steps` steps of `sim` (a fresh simulation of `model`) with every monitor of
/// the model, as one episode of `snnc run`: monitors are made first (untimed), then the
/// steps and the end-of-episode records are timed.
pub fn timed_run(model: &snnc_compiler::Model, sim: &mut Simulation, steps: u64) -> Result<TimedRun, String> {
    let mut monitors = Monitors::new(model, sim, steps)?;
    let started = std::time::Instant::now();
    for _ in 0..steps {
        sim.step(&mut monitors);
    }
    monitors.end_episode(sim);
    Ok(TimedRun { monitors, seconds: started.elapsed().as_secs_f64() })
}

/// The order in which `n` contestants run in repeat `repeat`: `0..n` rotated left by
/// `repeat`, so each goes first (and last) equally often over `n` repeats.
pub fn rotation(repeat: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + repeat) % n.max(1))
}

/// The median and range of some measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the upper middle value of an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of some values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        Some(Spread { median: sorted[sorted.len() / 2], min, max })
    }

    /// Half the range: what `snnc bench` prints after `±`.
    pub fn half_range(&self) -> f64 {
        (self.max - self.min) / 2.0
    }
}

/// The ratio `a[i] / b[i]` of each repeat `i` (runs adjacent in time).
pub fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_puts_each_first_once_per_round() {
        let orders: Vec<Vec<usize>> = (0..4).map(|r| rotation(r, 3).collect()).collect();
        assert_eq!(orders, [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]);
        let pairs: Vec<Vec<usize>> = (0..3).map(|r| rotation(r, 2).collect()).collect();
        assert_eq!(pairs, [vec![0, 1], vec![1, 0], vec![0, 1]]);
        assert_eq!(rotation(3, 0).count(), 0);
    }

    #[test]
    fn spread_is_median_and_range() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(s, Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        // An even count: the upper of the two middle values.
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).map(|s| (s.median, s.half_range()));
        assert_eq!(s, Some((3.0, 1.5)));
    }

    #[test]
    fn ratios_pair_repeats() {
        assert_eq!(ratios(&[2.0, 3.0, 8.0], &[1.0, 2.0, 4.0]), [2.0, 1.5, 2.0]);
    }
}

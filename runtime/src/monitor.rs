//! Monitors: every spike, sampled state variables, population rates; and their
//! output files (`spikes.npz`, `state.npz`, `rates.npz`).
//!
//! State is recorded at the start of a step (Brian2's `start` slot): the sample at
//! step k is the state before step k's update. Buffers are sized up front where the
//! run length says how much will be recorded; spikes grow by doubling.

use crate::checkpoint::{Reader, Writer, expect_equal};
use crate::output::{Array, OutputError, RunDir};
use crate::sim::Simulation;
use snnc_compiler::ir::{KernelKind, VarId};
use snnc_compiler::model::{Model, MonitorKind, Object, Period};

/// Makes room for `n` more items, failing with a message rather than aborting.
fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), String> {
    v.try_reserve(n).map_err(|e| format!("cannot allocate a monitor's buffer: {e}"))
}

/// Spikes of one population.
#[derive(Debug)]
struct SpikeRecorder {
    population: usize,
    name: String,
    steps: Vec<i64>,
    indices: Vec<u32>,
}

/// One sampled variable.
#[derive(Debug)]
struct StateRecorder {
    var: VarId,
    key: String,
    indices: Vec<u32>,
    every: u64,
    steps: Vec<i64>,
    /// Row-major: one row of `indices.len()` values per sample.
    values: Vec<f64>,
}

/// Spike counts of one population, per step.
#[derive(Debug)]
struct RateRecorder {
    population: usize,
    name: String,
    size: u32,
    counts: Vec<u32>,
}

/// Synaptic variables recorded at the end of each episode (or of the run).
#[derive(Debug)]
struct WeightRecorder {
    var: VarId,
    pathway: usize,
    key: String,
    steps: Vec<i64>,
    /// One row of all the pathway's synapses per record.
    values: Vec<f64>,
}

/// The closed loop's record, one entry per step.
#[derive(Debug, Default)]
struct Trajectory {
    fields: Vec<&'static str>,
    steps: Vec<i64>,
    episodes: Vec<i64>,
    /// Row-major: one row of `fields.len()` values per step.
    values: Vec<f64>,
    actions: Vec<i64>,
    rewards: Vec<f64>,
    scratch: Vec<f64>,
}

/// The recorded moves of a closed-loop run, one entry per step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moves<'a> {
    /// The step.
    pub steps: &'a [i64],
    /// The episode (from 0).
    pub episodes: &'a [i64],
    /// The action taken (-1: the agent did not move).
    pub actions: &'a [i64],
    /// The move's reward (0 without a move).
    pub rewards: &'a [f64],
}

/// All monitors of a run.
#[derive(Debug, Default)]
pub struct Monitors {
    spikes: Vec<SpikeRecorder>,
    states: Vec<StateRecorder>,
    rates: Vec<RateRecorder>,
    weights: Vec<WeightRecorder>,
    trajectory: Option<Trajectory>,
    /// Populations whose subexpressions must be computed before recording.
    observe: Vec<usize>,
    /// Spikes per population over the whole run (for the summary).
    totals: Vec<u64>,
}

impl Monitors {
    /// The monitors a model declares, sized for `steps` steps of `sim`.
    pub fn new(model: &Model, sim: &Simulation, steps: u64) -> Result<Monitors, String> {
        let module = sim.module();
        let layout = &module.layout;
        let mut monitors = Monitors { totals: vec![0; layout.populations.len()], ..Monitors::default() };
        if let Some(closed_loop) = sim.closed_loop() {
            let fields = closed_loop.environment().trajectory_fields().to_vec();
            monitors.trajectory =
                Some(Trajectory { scratch: vec![0.0; fields.len()], fields, ..Trajectory::default() });
        }
        let shared = layout.population("shared");
        for m in &model.monitors {
            let every = match &m.every {
                // Weights without a period: recorded once, at the end (`finish`).
                None if m.kind == MonitorKind::Weights => u64::MAX,
                None => 1,
                Some(Period::Steps(n)) => *n,
                // Whole steps, at least one.
                Some(Period::Time(t)) => ((t / model.dt).round() as u64).max(1),
            };
            for target in &m.targets {
                let population = match target.object {
                    Object::Group(g) => g,
                    Object::Shared => shared.ok_or("the model has no shared variables")?,
                    Object::Pathway(p) => layout.pathways[p].population,
                };
                let pop = &layout.populations[population];
                match m.kind {
                    MonitorKind::Spikes => monitors.spikes.push(SpikeRecorder {
                        population,
                        name: pop.name.clone(),
                        steps: Vec::new(),
                        indices: Vec::new(),
                    }),
                    MonitorKind::Rate => monitors.rates.push(RateRecorder {
                        population,
                        name: pop.name.clone(),
                        size: pop.size,
                        counts: Vec::new(),
                    }),
                    MonitorKind::Weights if m.every.is_none() => {
                        let (Object::Pathway(p), Some(k)) = (target.object, target.var) else {
                            return Err("a weights monitor records a variable of a pathway".into());
                        };
                        let var = *pop.vars.get(k).ok_or("unknown monitored variable")?;
                        monitors.weights.push(WeightRecorder {
                            var,
                            pathway: p,
                            key: format!("{}.{}", pop.name, layout.vars[var].name),
                            steps: Vec::new(),
                            values: Vec::new(),
                        });
                    }
                    MonitorKind::State | MonitorKind::Weights => {
                        let k = target.var.ok_or("a state monitor needs a variable")?;
                        let var = *pop.vars.get(k).ok_or("unknown monitored variable")?;
                        let info = &layout.vars[var];
                        let size = if info.scalar { 1 } else { sim.population_size(population) };
                        let indices: Vec<u32> = match &target.indices {
                            None => (0..size).collect(),
                            Some(ranges) => ranges.iter().flat_map(|&(a, b)| a..b.min(size)).collect(),
                        };
                        if module.kernels.iter().any(|k| k.kind == KernelKind::Observe && k.population == population)
                            && !monitors.observe.contains(&population)
                        {
                            monitors.observe.push(population);
                        }
                        monitors.states.push(StateRecorder {
                            var,
                            key: format!("{}.{}", pop.name, info.name),
                            every,
                            steps: Vec::new(),
                            values: Vec::new(),
                            indices,
                        });
                    }
                }
            }
        }
        monitors.reserve(steps)?;
        Ok(monitors)
    }

    /// Sizes the buffers for `steps` steps up front, after checking that they fit
    /// in memory (spike records grow as spikes come).
    fn reserve(&mut self, steps: u64) -> Result<(), String> {
        let samples = |every: u64| u128::from(if every == u64::MAX { 1 } else { steps.div_ceil(every) });
        let mut estimate = crate::memory::Estimate::default();
        for s in &self.states {
            let bytes = samples(s.every) * (8 + 8 * s.indices.len() as u128);
            estimate.add(format!("state monitor of `{}`", s.key), bytes);
        }
        for r in &self.rates {
            estimate.add(format!("rate monitor of `{}`", r.name), u128::from(steps) * 4);
        }
        if let Some(t) = &self.trajectory {
            estimate.add("trajectory", u128::from(steps) * (32 + 8 * t.fields.len() as u128));
        }
        estimate.check()?;
        let count = |n: u128| usize::try_from(n).unwrap_or(usize::MAX);
        for s in &mut self.states {
            reserve(&mut s.steps, count(samples(s.every)))?;
            reserve(&mut s.values, count(samples(s.every) * s.indices.len() as u128))?;
        }
        for r in &mut self.rates {
            reserve(&mut r.counts, count(u128::from(steps)))?;
        }
        if let Some(t) = &mut self.trajectory {
            let n = count(u128::from(steps));
            reserve(&mut t.steps, n)?;
            reserve(&mut t.episodes, n)?;
            reserve(&mut t.values, n.saturating_mul(t.fields.len()))?;
            reserve(&mut t.actions, n)?;
            reserve(&mut t.rewards, n)?;
        }
        Ok(())
    }

    /// Records the state monitors due at the simulation's current step.
    pub fn record_state(&mut self, sim: &mut Simulation) {
        let step = sim.step_number();
        if !self.states.iter().any(|s| step.is_multiple_of(s.every)) {
            return;
        }
        for &population in &self.observe {
            sim.observe(population);
        }
        for s in &mut self.states {
            if !step.is_multiple_of(s.every) {
                continue;
            }
            let values = sim.values(s.var);
            s.steps.push(step as i64);
            if values.len() == 1 {
                s.values.extend(s.indices.iter().map(|_| values[0]));
            } else {
                s.values.extend(s.indices.iter().map(|&i| values[i as usize]));
            }
        }
    }

    /// Records what is recorded at the end of an episode or run (weights without
    /// a period).
    pub fn end_episode(&mut self, sim: &Simulation) {
        let step = sim.step_number();
        for w in &mut self.weights {
            w.steps.push(step as i64);
            w.values.extend_from_slice(sim.values(w.var));
        }
    }

    /// Records the step's move (the closed loop's trajectory).
    pub fn record_move(&mut self, sim: &Simulation) {
        let (Some(t), Some(closed_loop)) = (self.trajectory.as_mut(), sim.closed_loop()) else { return };
        let (episode, _) = closed_loop.position();
        let (action, reward) = closed_loop.last_move();
        closed_loop.environment().trajectory(&mut t.scratch);
        t.steps.push(sim.step_number() as i64);
        t.episodes.push(i64::from(episode));
        t.values.extend_from_slice(&t.scratch);
        t.actions.push(i64::from(action));
        t.rewards.push(reward);
    }

    /// The trajectory of a closed-loop run, one entry per step.
    pub fn trajectory(&self) -> Option<Moves<'_>> {
        self.trajectory.as_ref().map(|t| Moves {
            steps: &t.steps,
            episodes: &t.episodes,
            actions: &t.actions,
            rewards: &t.rewards,
        })
    }

    /// A trajectory field (`x`) per step.
    pub fn trajectory_field(&self, name: &str) -> Option<Vec<f64>> {
        let t = self.trajectory.as_ref()?;
        let k = t.fields.iter().position(|f| *f == name)?;
        Some(t.values.iter().skip(k).step_by(t.fields.len()).copied().collect())
    }

    /// A weights monitor's records by key (`"SM.w"`): the steps, and one row of every
    /// synapse's value per record.
    pub fn weights(&self, key: &str) -> Option<(&[i64], &[f64])> {
        self.weights.iter().find(|w| w.key == key).map(|w| (&w.steps[..], &w.values[..]))
    }

    /// Records the spikes of the step that just crossed thresholds.
    pub fn record_spikes(&mut self, sim: &Simulation) {
        let step = sim.step_number() as i64;
        for (population, total) in self.totals.iter_mut().enumerate() {
            *total += sim.last_spikes(population).len() as u64;
        }
        for s in &mut self.spikes {
            let spikes = sim.last_spikes(s.population);
            s.steps.extend(std::iter::repeat_n(step, spikes.len()));
            s.indices.extend_from_slice(spikes);
        }
        for r in &mut self.rates {
            r.counts.push(sim.last_spikes(r.population).len() as u32);
        }
    }

    /// A state monitor's samples by key (`"G.v"`): the sampled steps, the recorded
    /// neuron indices, and the values, one row of `indices.len()` per step.
    pub fn state(&self, key: &str) -> Option<(&[i64], &[u32], &[f64])> {
        self.states.iter().find(|s| s.key == key).map(|s| (&s.steps[..], &s.indices[..], &s.values[..]))
    }

    /// A spike monitor's record for a population by name: steps and neuron indices.
    pub fn spikes(&self, population: &str) -> Option<(&[i64], &[u32])> {
        self.spikes.iter().find(|s| s.name == population).map(|s| (&s.steps[..], &s.indices[..]))
    }

    /// A rate monitor's spike counts per step for a population by name.
    pub fn rate_counts(&self, population: &str) -> Option<&[u32]> {
        self.rates.iter().find(|r| r.name == population).map(|r| &r.counts[..])
    }

    /// Spikes per population over the run so far.
    pub fn spike_totals(&self) -> &[u64] {
        &self.totals
    }

    /// Writes everything recorded so far into a checkpoint.
    pub fn save(&self, w: &mut Writer) {
        w.tag("monitors");
        w.u64s(&self.totals);
        w.u64(self.spikes.len() as u64);
        for s in &self.spikes {
            w.i64s(&s.steps);
            w.u32s(&s.indices);
        }
        w.u64(self.states.len() as u64);
        for s in &self.states {
            w.i64s(&s.steps);
            w.f64s(&s.values);
        }
        w.u64(self.rates.len() as u64);
        for r in &self.rates {
            w.u32s(&r.counts);
        }
        w.u64(self.weights.len() as u64);
        for r in &self.weights {
            w.i64s(&r.steps);
            w.f64s(&r.values);
        }
        w.bool(self.trajectory.is_some());
        if let Some(t) = &self.trajectory {
            w.i64s(&t.steps);
            w.i64s(&t.episodes);
            w.f64s(&t.values);
            w.i64s(&t.actions);
            w.f64s(&t.rewards);
        }
    }

    /// Continues the records of a checkpoint, in monitors made for the same model
    /// (`Monitors::new`): each monitor's records must fit its shape.
    pub fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        r.tag("monitors")?;
        let totals = r.u64s()?;
        expect_equal("the number of populations", totals.len(), self.totals.len())?;
        self.totals = totals;
        expect_equal("the number of spike monitors", r.u64()?, self.spikes.len() as u64)?;
        for s in &mut self.spikes {
            (s.steps, s.indices) = (r.i64s()?, r.u32s()?);
            expect_equal("a spike monitor's record lengths", s.steps.len(), s.indices.len())?;
        }
        expect_equal("the number of state monitors", r.u64()?, self.states.len() as u64)?;
        for s in &mut self.states {
            (s.steps, s.values) = (r.i64s()?, r.f64s()?);
            expect_equal(&format!("the samples of `{}`", s.key), s.values.len(), s.steps.len() * s.indices.len())?;
        }
        expect_equal("the number of rate monitors", r.u64()?, self.rates.len() as u64)?;
        for rate in &mut self.rates {
            rate.counts = r.u32s()?;
        }
        expect_equal("the number of weight monitors", r.u64()?, self.weights.len() as u64)?;
        for w in &mut self.weights {
            (w.steps, w.values) = (r.i64s()?, r.f64s()?);
            let per_record = if w.steps.is_empty() { 0 } else { w.values.len() / w.steps.len() };
            expect_equal(&format!("the records of `{}`", w.key), w.values.len(), per_record * w.steps.len())?;
        }
        expect_equal("whether a trajectory is recorded", r.bool()?, self.trajectory.is_some())?;
        if let Some(t) = &mut self.trajectory {
            (t.steps, t.episodes, t.values, t.actions, t.rewards) =
                (r.i64s()?, r.i64s()?, r.f64s()?, r.i64s()?, r.f64s()?);
            let n = t.steps.len();
            let consistent = t.episodes.len() == n
                && t.actions.len() == n
                && t.rewards.len() == n
                && t.values.len() == n * t.fields.len();
            if !consistent {
                return Err("the checkpoint is corrupt: the trajectory's columns differ in length".into());
            }
        }
        Ok(())
    }

    /// Writes `spikes.npz`, `state.npz`, `rates.npz`, and `weights.npz` and
    /// `trajectory.npz` when there is something to put in them.
    pub fn write(&self, dir: &RunDir, sim: &Simulation) -> Result<(), OutputError> {
        let dt = sim.module().dt;
        let dt_array = [dt];
        let mut keys: Vec<(String, usize, bool)> = Vec::new();
        for (k, s) in self.spikes.iter().enumerate() {
            keys.push((format!("{}.step", s.name), k, true));
            keys.push((format!("{}.index", s.name), k, false));
        }
        let mut arrays: Vec<(&str, Array<'_>)> = vec![("dt", Array::F64 { shape: vec![], data: &dt_array })];
        for (key, k, is_step) in &keys {
            let s = &self.spikes[*k];
            let array = if *is_step {
                Array::I64 { shape: vec![s.steps.len()], data: &s.steps }
            } else {
                Array::U32 { shape: vec![s.indices.len()], data: &s.indices }
            };
            arrays.push((key.as_str(), array));
        }
        dir.write_npz("spikes.npz", &arrays)?;

        let mut state_keys: Vec<(String, String, String)> = Vec::new();
        for s in &self.states {
            state_keys.push((s.key.clone(), format!("{}.step", s.key), format!("{}.index", s.key)));
        }
        let mut arrays: Vec<(&str, Array<'_>)> = vec![("dt", Array::F64 { shape: vec![], data: &dt_array })];
        for (s, (key, step_key, index_key)) in self.states.iter().zip(&state_keys) {
            arrays.push((key.as_str(), Array::F64 { shape: vec![s.steps.len(), s.indices.len()], data: &s.values }));
            arrays.push((step_key.as_str(), Array::I64 { shape: vec![s.steps.len()], data: &s.steps }));
            arrays.push((index_key.as_str(), Array::U32 { shape: vec![s.indices.len()], data: &s.indices }));
        }
        dir.write_npz("state.npz", &arrays)?;

        let rates: Vec<Vec<f64>> = self
            .rates
            .iter()
            .map(|r| r.counts.iter().map(|&c| f64::from(c) / (f64::from(r.size) * dt)).collect())
            .collect();
        let mut arrays: Vec<(&str, Array<'_>)> = vec![("dt", Array::F64 { shape: vec![], data: &dt_array })];
        for (r, values) in self.rates.iter().zip(&rates) {
            arrays.push((r.name.as_str(), Array::F64 { shape: vec![values.len()], data: values }));
        }
        dir.write_npz("rates.npz", &arrays)?;
        self.write_weights(dir, sim)?;
        self.write_trajectory(dir)
    }

    /// `weights.npz`: per monitored variable `P.w` (records x synapses), `P.w.step`,
    /// and each pathway's synapses as `P.pre` and `P.post` (neuron indices).
    fn write_weights(&self, dir: &RunDir, sim: &Simulation) -> Result<(), OutputError> {
        if self.weights.is_empty() {
            return Ok(());
        }
        let layout = &sim.module().layout;
        let mut keys: Vec<(String, String, String, usize)> = Vec::new();
        for w in &self.weights {
            let name = &layout.pathways[w.pathway].name;
            keys.push((format!("{}.step", w.key), format!("{name}.pre"), format!("{name}.post"), w.pathway));
        }
        let mut arrays: Vec<(&str, Array<'_>)> = Vec::new();
        for (w, (step_key, pre_key, post_key, p)) in self.weights.iter().zip(&keys) {
            let synapses = sim.synapses(*p);
            let n = synapses.len();
            arrays.push((w.key.as_str(), Array::F64 { shape: vec![w.steps.len(), n], data: &w.values }));
            arrays.push((step_key.as_str(), Array::I64 { shape: vec![w.steps.len()], data: &w.steps }));
            if !arrays.iter().any(|(k, _)| k == pre_key) {
                arrays.push((pre_key.as_str(), Array::U32 { shape: vec![n], data: &synapses.pre }));
                arrays.push((post_key.as_str(), Array::U32 { shape: vec![n], data: &synapses.post }));
            }
        }
        dir.write_npz("weights.npz", &arrays)
    }

    /// `trajectory.npz`: `step`, `episode`, the environment's fields (`x`, `y`),
    /// `action` (-1 when the agent did not move) and `reward`, one entry per step.
    fn write_trajectory(&self, dir: &RunDir) -> Result<(), OutputError> {
        let Some(t) = &self.trajectory else { return Ok(()) };
        let fields: Vec<Vec<f64>> = t.fields.iter().filter_map(|f| self.trajectory_field(f)).collect();
        let n = t.steps.len();
        let mut arrays: Vec<(&str, Array<'_>)> = vec![
            ("step", Array::I64 { shape: vec![n], data: &t.steps }),
            ("episode", Array::I64 { shape: vec![n], data: &t.episodes }),
        ];
        for (name, values) in t.fields.iter().zip(&fields) {
            arrays.push((name, Array::F64 { shape: vec![n], data: values }));
        }
        arrays.push(("action", Array::I64 { shape: vec![n], data: &t.actions }));
        arrays.push(("reward", Array::F64 { shape: vec![n], data: &t.rewards }));
        dir.write_npz("trajectory.npz", &arrays)
    }
}

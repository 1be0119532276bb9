//! The simulation: state arrays, synapses, the per-step schedule, and the calls
//! into kernels.
//!
//! One step at `t = step*dt` runs, in order (Brian2's schedule, then DESIGN.md's):
//! `start` (periodic code of groups, then monitors record the state), summed
//! variables, state updates of groups, thresholds (and prescribed spikes; spike
//! monitors), `on_pre` then `on_post` of every pathway, resets, clock-driven
//! synapse updates and their periodic code, the shared block; then `t` advances.
//! A model bound to an environment also runs its `sense` code first (after the
//! periodic code, before monitors record), counts the voting group's spikes after
//! the thresholds, and ends the step with the decision, the move and the `reward`
//! code, then records the move (the reference agent's order).

use crate::checkpoint::{Reader, Writer, expect_equal};
use crate::env::{ClosedLoop, Environment};
use crate::monitor::Monitors;
use snnc_compiler::abi::{self, KernelArgs, KernelFn};
use snnc_compiler::ir::{ConnectRule, KernelKind, Loop, Module};

/// Compiled kernels from some back end.
pub trait Kernels {
    /// The functions, indexed like `Module::kernels`.
    fn functions(&self) -> &[KernelFn];
}

#[cfg(feature = "jit")]
impl Kernels for snnc_compiler::backends::cranelift::JitKernels {
    fn functions(&self) -> &[KernelFn] {
        snnc_compiler::backends::cranelift::JitKernels::functions(self)
    }
}

/// The synapses of a pathway: CSR by presynaptic neuron, and an index by postsynaptic neuron.
#[derive(Debug, Default)]
pub struct Synapses {
    /// Presynaptic neuron of each synapse (synapses are grouped by it).
    pub pre: Vec<u32>,
    /// Postsynaptic neuron of each synapse.
    pub post: Vec<u32>,
    /// Synapses of presynaptic neuron `i`: `pre_offsets[i]..pre_offsets[i+1]`.
    pub pre_offsets: Vec<u32>,
    /// Synapses of postsynaptic neuron `j`: `post_order[post_offsets[j]..post_offsets[j+1]]`.
    pub post_offsets: Vec<u32>,
    /// Synapse ids sorted by postsynaptic neuron.
    pub post_order: Vec<u32>,
}

impl Synapses {
    /// Builds the indexes from (pre, post) pairs already grouped by presynaptic neuron.
    fn new(pairs: Vec<(u32, u32)>, n_pre: u32, n_post: u32) -> Synapses {
        let (pre, post): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
        let mut pre_offsets = vec![0u32; n_pre as usize + 1];
        for &i in &pre {
            pre_offsets[i as usize + 1] += 1;
        }
        for k in 0..n_pre as usize {
            pre_offsets[k + 1] += pre_offsets[k];
        }
        let mut post_offsets = vec![0u32; n_post as usize + 1];
        for &j in &post {
            post_offsets[j as usize + 1] += 1;
        }
        for k in 0..n_post as usize {
            post_offsets[k + 1] += post_offsets[k];
        }
        let mut fill = post_offsets.clone();
        let mut post_order = vec![0u32; post.len()];
        for (s, &j) in post.iter().enumerate() {
            post_order[fill[j as usize] as usize] = s as u32;
            fill[j as usize] += 1;
        }
        Synapses { pre, post, pre_offsets, post_offsets, post_order }
    }

    /// The number of synapses.
    pub fn len(&self) -> usize {
        self.pre.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty()
    }
}

/// Which kernels run in which slot of a step, in order (computed once).
#[derive(Debug, Default)]
struct Schedule {
    periodic: Vec<(usize, u64)>,
    summed: Vec<usize>,
    updates: Vec<usize>,
    thresholds: Vec<usize>,
    on_pre: Vec<usize>,
    on_post: Vec<usize>,
    resets: Vec<usize>,
    synapse_updates: Vec<(usize, u64)>,
    shared_updates: Vec<usize>,
    sense: Vec<usize>,
    /// The `sense` kernels that must run every step; the others compute only from
    /// the observations and run when those change (`Module::observation_only`).
    sense_every_step: Vec<usize>,
    reward: Vec<usize>,
    /// Per kernel: the population whose spike list it loops over (or fills).
    spike_list: Vec<usize>,
    /// Per kernel: whether a call with no spikes to loop over can be skipped (a
    /// spike-driven kernel whose scalar block stores nothing).
    idle_without_spikes: Vec<bool>,
}

/// A state array that starts on a cache line (64 bytes), whatever the allocator
/// would give a `Vec<f64>`: the kernels' vector loads of it then split no line at
/// the array's start, and its speed does not depend on where it happened to land.
#[derive(Clone, Debug)]
struct StateArray {
    lines: Vec<Line>,
    len: usize,
}

/// Eight values on one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f64; 8]);

impl StateArray {
    fn filled(value: f64, len: usize) -> StateArray {
        StateArray { lines: vec![Line([value; 8]); len.div_ceil(8)], len }
    }

    fn as_slice(&self) -> &[f64] {
        // SAFETY: `Line` is `repr(C)` around `[f64; 8]` with size 64 and no padding,
        // so the lines are `8 * lines.len() >= len` contiguous, initialised f64s.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f64>(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [f64] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f64>(), self.len) }
    }

    fn as_mut_ptr(&mut self) -> *mut f64 {
        self.lines.as_mut_ptr().cast::<f64>()
    }
}

impl Schedule {
    fn new(module: &Module) -> Schedule {
        let shared = module.layout.population("shared");
        let mut schedule = Schedule::default();
        for (k, kernel) in module.kernels.iter().enumerate() {
            let synaptic = kernel.pathway.is_some();
            match kernel.kind {
                KernelKind::Periodic { period } if synaptic => schedule.synapse_updates.push((k, period)),
                KernelKind::Periodic { period } => schedule.periodic.push((k, period)),
                KernelKind::StateUpdate if synaptic => schedule.synapse_updates.push((k, 1)),
                KernelKind::StateUpdate if Some(kernel.population) == shared => schedule.shared_updates.push(k),
                KernelKind::StateUpdate => schedule.updates.push(k),
                KernelKind::SummedReset | KernelKind::Summed => schedule.summed.push(k),
                KernelKind::Threshold => schedule.thresholds.push(k),
                KernelKind::OnPre => schedule.on_pre.push(k),
                KernelKind::OnPost => schedule.on_post.push(k),
                KernelKind::Reset => schedule.resets.push(k),
                KernelKind::Sense => schedule.sense.push(k),
                KernelKind::Reward => schedule.reward.push(k),
                KernelKind::Init | KernelKind::Observe | KernelKind::Connect => {}
            }
        }
        schedule.sense_every_step = schedule.sense.iter().copied().filter(|&k| !module.observation_only(k)).collect();
        for kernel in &module.kernels {
            let ends = kernel.pathway.map(|p| &module.layout.pathways[p]);
            schedule.spike_list.push(match (kernel.looping, ends) {
                (Loop::PreSpikes, Some(pathway)) => pathway.source.0,
                (Loop::PostSpikes, Some(pathway)) => pathway.target.0,
                _ => kernel.population,
            });
            let spike_driven = matches!(kernel.looping, Loop::Spikes | Loop::PreSpikes | Loop::PostSpikes);
            schedule
                .idle_without_spikes
                .push(spike_driven && snnc_compiler::ir::stored_vars(&kernel.scalar).is_empty());
        }
        schedule
    }
}

/// Whether every value is finite: `x * 0` is 0 for a finite `x` and NaN for NaN
/// and the infinities, so sums of it in eight independent lanes (which vectorize)
/// stay 0 exactly when all are finite.
fn all_finite(values: &[f64]) -> bool {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * 0.0;
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(rest) {
        *lane += x * 0.0;
    }
    lanes.iter().all(|&lane| lane == 0.0)
}

/// Prescribed spikes of a population: (step, neuron) in time order, and the next one due.
type Generator = (usize, Vec<(u64, u32)>, usize);

/// Transmission delays of a pathway.
#[derive(Debug, Default)]
struct Delays {
    steps: Vec<u32>,
    /// `ring[(step) % ring.len()]`: synapse ids whose event is due at that step.
    ring: Vec<Vec<u32>>,
}

/// A running model.
pub struct Simulation {
    module: Module,
    kernels: Box<dyn Kernels>,
    /// One array per state variable (`ir::VarId`).
    state: Vec<StateArray>,
    var_pointers: Vec<*mut f64>,
    params: Vec<f64>,
    table_pointers: Vec<*const f64>,
    /// Per population: its size (synapse counts for pathways, known after connecting).
    sizes: Vec<u32>,
    /// Per population: the spikes of the current step.
    spikes: Vec<Vec<u32>>,
    n_spikes: Vec<u64>,
    /// Per pathway.
    synapses: Vec<Synapses>,
    /// Per pathway with delays: each synapse's delay in steps, and a ring of the
    /// synapse events due at each coming step.
    delays: Vec<Option<Delays>>,
    /// Prescribed spikes (`SpikeGeneratorGroup`).
    generators: Vec<Generator>,
    step: u64,
    seed: u64,
    schedule: Schedule,
    /// The environment, when the model is bound to one.
    closed_loop: Option<ClosedLoop>,
    /// Per variable: whether all its values were finite once initialized. The
    /// guard ([`Simulation::non_finite`]) reports infinities only in these (a
    /// variable set to `inf` on purpose may stay so); NaN in any.
    finite_at_start: Vec<bool>,
}

/// A value that became NaN or infinite: where the guard found it.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    /// The variable's name.
    pub var: String,
    /// Its group, or its pathway for a synaptic variable.
    pub owner: String,
    /// Whether the owner is a pathway (then `index` is a synapse).
    pub synaptic: bool,
    /// The neuron (or synapse) index.
    pub index: u32,
    /// For a synapse: its presynaptic and postsynaptic neurons.
    pub ends: Option<(u32, u32)>,
    /// The value found.
    pub value: f64,
    /// The step the guard looked at (the value was found before this step ran).
    pub step: u64,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.value.is_nan() { "NaN".to_string() } else { format!("{}", self.value) };
        if self.synaptic {
            write!(f, "`{}` of pathway `{}` is {what} at synapse {}", self.var, self.owner, self.index)?;
            if let Some((i, j)) = self.ends {
                write!(f, " (neuron {i} -> {j})")?;
            }
        } else {
            write!(f, "`{}` of group `{}` is {what} at neuron {}", self.var, self.owner, self.index)?;
        }
        write!(f, " at step {}", self.step)
    }
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Simulation(step {}, {} kernels)", self.step, self.module.kernels.len())
    }
}

/// Random stream of connectivity draws made by the runtime (fan-in, fan-out), per pathway.
const CONNECT_STREAM: u64 = 1 << 15;

impl Simulation {
    /// Allocates the state, runs the `init` kernels of the groups, draws the synapses,
    /// then runs the synapses' `init` kernels.
    ///
    /// The kernels must have been compiled from `module` (their count is checked).
    pub fn new(module: Module, kernels: Box<dyn Kernels>, seed: u64) -> Result<Simulation, String> {
        if kernels.functions().len() != module.kernels.len() {
            return Err(format!(
                "{} kernels compiled for {} in the module",
                kernels.functions().len(),
                module.kernels.len()
            ));
        }
        let layout = &module.layout;
        let sizes: Vec<u32> = layout.populations.iter().map(|p| p.size).collect();
        let mut estimate = crate::memory::Estimate::default();
        for (p, population) in layout.populations.iter().enumerate() {
            if layout.pathways.iter().any(|w| w.population == p) {
                continue;
            }
            let arrays = population.vars.iter().filter(|&&v| !layout.vars[v].scalar).count() as u128;
            // Each variable's array, and the spike list.
            let bytes = u128::from(population.size) * (8 * arrays + 4);
            estimate.add(format!("state of `{}` ({} neurons)", population.name, population.size), bytes);
        }
        estimate.check()?;
        let state: Vec<StateArray> = layout
            .vars
            .iter()
            .map(|v| {
                let size = if v.scalar { 1 } else { sizes[v.population] as usize };
                StateArray::filled(v.default, size)
            })
            .collect();
        let params = module.parameter_values(&layout.params.iter().map(|p| p.value).collect::<Vec<_>>());
        let table_pointers = module.tables.iter().map(|t| t.as_ptr()).collect();
        let spikes = layout.populations.iter().map(|p| vec![0u32; p.size as usize]).collect();
        let n_spikes = vec![0; layout.populations.len()];
        let generators = module.generators.iter().map(|(p, s)| (*p, s.clone(), 0)).collect();
        let schedule = Schedule::new(&module);
        let mut sim = Simulation {
            module,
            kernels,
            state,
            var_pointers: Vec::new(),
            params,
            table_pointers,
            sizes,
            spikes,
            n_spikes,
            synapses: Vec::new(),
            delays: Vec::new(),
            generators,
            step: 0,
            seed,
            schedule,
            closed_loop: None,
            finite_at_start: Vec::new(),
        };
        sim.refresh_pointers();
        for k in 0..sim.module.kernels.len() {
            let kernel = &sim.module.kernels[k];
            if kernel.kind == KernelKind::Init && kernel.pathway.is_none() {
                sim.call(k, 0);
            }
        }
        for p in 0..sim.module.layout.pathways.len() {
            let synapses = sim.estimate_synapses(p);
            let info = &sim.module.layout.pathways[p];
            if synapses > f64::from(u32::MAX) {
                return Err(format!(
                    "pathway `{}` would have about {synapses:.3e} synapses, more than 2^32: refused before allocating",
                    info.name
                ));
            }
            let vars = &sim.module.layout.populations[info.population].vars;
            let arrays = vars.iter().filter(|&&v| !sim.module.layout.vars[v].scalar).count() as u128;
            // pre, post, the post order and the pairs while sorting (20 bytes), the
            // variables, and a delay in steps (4) with its queued events (4).
            let per_synapse = 20 + 8 * arrays + if info.delay.is_some() { 8 } else { 0 };
            estimate.add(format!("synapses of `{}` (about {synapses:.3e})", info.name), synapses as u128 * per_synapse);
        }
        estimate.check()?;
        for p in 0..sim.module.layout.pathways.len() {
            sim.connect(p)?;
        }
        for k in 0..sim.module.kernels.len() {
            let kernel = &sim.module.kernels[k];
            if kernel.kind == KernelKind::Init && kernel.pathway.is_some() {
                sim.call(k, 0);
            }
        }
        // Delays in steps, as Brian2 rounds them: int(delay/dt + 0.5).
        let dt = sim.module.dt;
        sim.delays = sim
            .module
            .layout
            .pathways
            .iter()
            .map(|info| {
                info.delay.map(|v| {
                    let steps: Vec<u32> =
                        sim.state[v].as_slice().iter().map(|&d| ((d / dt + 0.5).max(0.0)) as u32).collect();
                    let longest = steps.iter().copied().max().unwrap_or(0) as usize;
                    Delays { steps, ring: vec![Vec::new(); longest + 1] }
                })
            })
            .collect();
        if let Some(info) = &sim.module.environment {
            let env = crate::env::create(&info.spec, &info.settings)?;
            sim.closed_loop = Some(ClosedLoop::new(env, info, &sim.sizes, seed)?);
        }
        sim.finite_at_start = sim.state.iter().map(|a| a.as_slice().iter().all(|v| v.is_finite())).collect();
        Ok(sim)
    }

    /// The first value that is NaN, or infinite in a variable that started finite
    /// (in variable order, then by index), if any. It reads every state array once:
    /// cheap next to a step, but meant to run every so many steps, not every step.
    pub fn non_finite(&self) -> Option<NonFinite> {
        for (v, array) in self.state.iter().enumerate() {
            let finite_at_start = self.finite_at_start.get(v).copied().unwrap_or(true);
            let values = array.as_slice();
            if all_finite(values) {
                continue;
            }
            let bad = |x: &f64| x.is_nan() || (finite_at_start && x.is_infinite());
            let Some(index) = values.iter().position(bad) else { continue };
            let info = &self.module.layout.vars[v];
            let pathway = self.module.layout.pathways.iter().position(|p| p.population == info.population);
            let owner = match pathway {
                Some(p) => self.module.layout.pathways[p].name.clone(),
                None => self.module.layout.populations[info.population].name.clone(),
            };
            let ends = pathway.and_then(|p| {
                let s = self.synapses.get(p)?;
                Some((*s.pre.get(index)?, *s.post.get(index)?))
            });
            return Some(NonFinite {
                var: info.name.clone(),
                owner,
                synaptic: pathway.is_some(),
                index: index as u32,
                ends: ends.filter(|_| !info.scalar),
                value: values[index],
                step: self.step,
            });
        }
        None
    }

    /// Writes the state a fresh simulation of the same module and seed lacks (see
    /// `checkpoint`): the step, state arrays, spike lists, queued delayed events,
    /// positions in the prescribed spikes, and the closed loop.
    pub fn save(&self, w: &mut Writer) -> Result<(), String> {
        w.tag("simulation");
        w.u64(self.seed);
        w.u64(self.step);
        w.u32s(&self.sizes);
        w.f64s(&self.params);
        w.u64(self.state.len() as u64);
        for array in &self.state {
            w.f64s(array.as_slice());
        }
        for (list, &n) in self.spikes.iter().zip(&self.n_spikes) {
            w.u32s(&list[..n as usize]);
        }
        for delays in &self.delays {
            w.bool(delays.is_some());
            if let Some(d) = delays {
                w.u64(d.ring.len() as u64);
                for slot in &d.ring {
                    w.u32s(slot);
                }
            }
        }
        w.u64s(&self.generators.iter().map(|g| g.2 as u64).collect::<Vec<_>>());
        w.bool(self.closed_loop.is_some());
        if let Some(closed_loop) = &self.closed_loop {
            closed_loop.save(w)?;
        }
        Ok(())
    }

    /// Restores what [`save`](Simulation::save) wrote into a simulation freshly
    /// built from the same module and seed; fails (leaving it unusable) when the
    /// checkpoint does not match: another seed, sizes, synapse counts or parameters.
    pub fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        r.tag("simulation")?;
        expect_equal("the seed", r.u64()?, self.seed)?;
        self.step = r.u64()?;
        expect_equal("the population and synapse counts", r.u32s()?, self.sizes.clone())?;
        let params = r.f64s()?;
        let same_bits = params.len() == self.params.len()
            && params.iter().zip(&self.params).all(|(a, b)| a.to_bits() == b.to_bits());
        if !same_bits {
            return Err("the checkpoint does not match this model: its constants have other values".into());
        }
        expect_equal("the number of state variables", r.u64()?, self.state.len() as u64)?;
        for (v, array) in self.state.iter_mut().enumerate() {
            r.f64s_into(array.as_mut_slice(), &format!("variable `{}`", self.module.layout.vars[v].name))?;
        }
        for (p, list) in self.spikes.iter_mut().enumerate() {
            let saved = r.u32s()?;
            let size = self.sizes[p];
            if saved.len() > list.len() || saved.iter().any(|&i| i >= size) {
                return Err("the checkpoint is corrupt: a spike list does not fit its group".into());
            }
            list[..saved.len()].copy_from_slice(&saved);
            self.n_spikes[p] = saved.len() as u64;
        }
        for (p, delays) in self.delays.iter_mut().enumerate() {
            expect_equal("which pathways have delays", r.bool()?, delays.is_some())?;
            if let Some(d) = delays {
                expect_equal("the length of a delay queue", r.u64()?, d.ring.len() as u64)?;
                let synapses = self.synapses[p].len() as u32;
                for slot in &mut d.ring {
                    *slot = r.u32s()?;
                    if slot.iter().any(|&s| s >= synapses) {
                        return Err("the checkpoint is corrupt: a queued event names no synapse".into());
                    }
                }
            }
        }
        let positions = r.u64s()?;
        expect_equal("the number of spike generators", positions.len(), self.generators.len())?;
        for (g, position) in self.generators.iter_mut().zip(positions) {
            g.2 = usize::try_from(position).ok().filter(|&p| p <= g.1.len()).ok_or("the checkpoint is corrupt")?;
        }
        expect_equal("whether an environment is bound", r.bool()?, self.closed_loop.is_some())?;
        if let Some(closed_loop) = &mut self.closed_loop {
            closed_loop.restore(r)?;
        }
        Ok(())
    }

    fn refresh_pointers(&mut self) {
        self.var_pointers = self.state.iter_mut().map(|a| a.as_mut_ptr()).collect();
    }

    /// Draws the synapses of pathway `p` and sizes its variables.
    fn connect(&mut self, p: usize) -> Result<(), String> {
        let info = self.module.layout.pathways[p].clone();
        let (source, s0, s1) = info.source;
        let (target, t0, t1) = info.target;
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        match &info.rule {
            ConnectRule::Kernel => {
                let k = self
                    .module
                    .kernels
                    .iter()
                    .position(|k| k.kind == KernelKind::Connect && k.pathway == Some(p))
                    .ok_or_else(|| format!("pathway `{}` has no connect kernel", info.name))?;
                let mut accepted = vec![0u32; self.sizes[target] as usize];
                for i in s0..s1 {
                    let n = self.call_pairs(k, i, &mut accepted);
                    pairs.extend(accepted[..n].iter().filter(|&&j| (t0..t1).contains(&j)).map(|&j| (i, j)));
                }
            }
            ConnectRule::Explicit(sources, targets) => {
                pairs = sources.iter().zip(targets).map(|(&i, &j)| (i + s0, j + t0)).collect();
                pairs.sort_by_key(|&(i, _)| i);
            }
            ConnectRule::FanIn(k) => {
                for j in t0..t1 {
                    for i in self.choose(p, j, *k, s1 - s0) {
                        pairs.push((i + s0, j));
                    }
                }
                pairs.sort_by_key(|&(i, _)| i);
            }
            ConnectRule::FanOut(k) => {
                for i in s0..s1 {
                    for j in self.choose(p, i, *k, t1 - t0) {
                        pairs.push((i, j + t0));
                    }
                }
            }
        }
        let count =
            u32::try_from(pairs.len()).map_err(|_| format!("pathway `{}` has more than 2^32 synapses", info.name))?;
        self.synapses.push(Synapses::new(pairs, self.sizes[source], self.sizes[target]));
        self.sizes[info.population] = count;
        for &v in &self.module.layout.populations[info.population].vars {
            let var = &self.module.layout.vars[v];
            let size = if var.scalar { 1 } else { count as usize };
            self.state[v] = StateArray::filled(var.default, size);
        }
        self.refresh_pointers();
        Ok(())
    }

    /// How many synapses pathway `p` will have: exact for explicit and fixed
    /// fan-in/fan-out rules; for a connect condition, the rows of up to 64
    /// presynaptic neurons spread over the group are drawn and scaled up (each row
    /// is drawn from its own random numbers, so this is a sample of the real rows).
    fn estimate_synapses(&mut self, p: usize) -> f64 {
        let info = &self.module.layout.pathways[p];
        let (_, s0, s1) = info.source;
        let (target, t0, t1) = info.target;
        match &info.rule {
            ConnectRule::Explicit(sources, _) => sources.len() as f64,
            ConnectRule::FanIn(k) => f64::from(*k.min(&(s1 - s0))) * f64::from(t1 - t0),
            ConnectRule::FanOut(k) => f64::from(*k.min(&(t1 - t0))) * f64::from(s1 - s0),
            ConnectRule::Kernel => {
                let Some(k) =
                    self.module.kernels.iter().position(|k| k.kind == KernelKind::Connect && k.pathway == Some(p))
                else {
                    return 0.0;
                };
                let rows = s1 - s0;
                let sampled = rows.min(64);
                let mut accepted = vec![0u32; self.sizes[target] as usize];
                let mut found = 0u64;
                for r in 0..sampled {
                    // Evenly spread: rows r * rows / sampled.
                    let i = s0 + (u64::from(r) * u64::from(rows) / u64::from(sampled)) as u32;
                    let n = self.call_pairs(k, i, &mut accepted);
                    found += accepted[..n].iter().filter(|&&j| (t0..t1).contains(&j)).count() as u64;
                }
                if sampled == 0 { 0.0 } else { found as f64 / f64::from(sampled) * f64::from(rows) }
            }
        }
    }

    /// `k` distinct numbers from `0..n`, drawn for (pathway, neuron) (Floyd's algorithm).
    fn choose(&self, p: usize, neuron: u32, k: u32, n: u32) -> Vec<u32> {
        let mut chosen: Vec<u32> = Vec::with_capacity(k as usize);
        for (draw, m) in (n - k.min(n)..n).enumerate() {
            let u = abi::snnc_rand(self.seed, u64::from(neuron), draw as u64, CONNECT_STREAM + p as u64);
            // Uniform in 0..=m.
            let r = ((u * f64::from(m + 1)) as u32).min(m);
            chosen.push(if chosen.contains(&r) { m } else { r });
        }
        chosen.sort_unstable();
        chosen
    }

    /// Binds the model to an environment made in Rust (one the runtime does not
    /// build in); the model's binding must name its kind.
    pub fn set_environment(&mut self, env: Box<dyn Environment>) -> Result<(), String> {
        let info = self.module.environment.as_ref().ok_or("the model has no `environment` binding")?;
        self.closed_loop = Some(ClosedLoop::new(env, info, &self.sizes, self.seed)?);
        Ok(())
    }

    /// The closed loop, when the model is bound to an environment.
    pub fn closed_loop(&self) -> Option<&ClosedLoop> {
        self.closed_loop.as_ref()
    }

    /// The closed loop, to change its policy or start an episode.
    pub fn closed_loop_mut(&mut self) -> Option<&mut ClosedLoop> {
        self.closed_loop.as_mut()
    }

    /// The lowered model.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The current step.
    pub fn step_number(&self) -> u64 {
        self.step
    }

    /// The values of a state variable.
    pub fn values(&self, var: usize) -> &[f64] {
        self.state[var].as_slice()
    }

    /// The size of a population (the synapse count of a pathway's).
    pub fn population_size(&self, population: usize) -> u32 {
        self.sizes[population]
    }

    /// The synapses of pathway `p`.
    pub fn synapses(&self, p: usize) -> &Synapses {
        &self.synapses[p]
    }

    /// The spikes of a population in the last step.
    pub fn last_spikes(&self, population: usize) -> &[u32] {
        let n = self.n_spikes[population] as usize;
        &self.spikes[population][..n]
    }

    /// A connect kernel for presynaptic neuron `i`: returns how many targets it accepted into `out`.
    fn call_pairs(&mut self, k: usize, i: u32, out: &mut [u32]) -> usize {
        let mut accepted = 0u64;
        let pathway = self.module.kernels[k].pathway;
        let args = self.args(out.len() as u64, out.as_mut_ptr(), &mut accepted, pathway, u64::from(i));
        // Connect kernels draw their random numbers at "step" i, so every pair gets its own.
        let args = KernelArgs { step: u64::from(i), ..args };
        self.invoke(k, &args);
        accepted as usize
    }

    fn args(&self, n: u64, spikes: *mut u32, n_spikes: *mut u64, pathway: Option<usize>, aux: u64) -> KernelArgs {
        let null = std::ptr::null();
        let (pre, post, pre_offsets, post_offsets, post_order) = match pathway.and_then(|p| self.synapses.get(p)) {
            Some(s) => (
                s.pre.as_ptr(),
                s.post.as_ptr(),
                s.pre_offsets.as_ptr(),
                s.post_offsets.as_ptr(),
                s.post_order.as_ptr(),
            ),
            None => (null, null, null, null, null),
        };
        let env = self.closed_loop.as_ref().map_or(std::ptr::null(), |c| c.observations.as_ptr());
        KernelArgs {
            n,
            step: self.step,
            t: self.step as f64 * self.module.dt,
            dt: self.module.dt,
            vars: self.var_pointers.as_ptr(),
            params: self.params.as_ptr(),
            tables: self.table_pointers.as_ptr(),
            spikes,
            n_spikes,
            seed: self.seed,
            pre,
            post,
            pre_offsets,
            post_offsets,
            post_order,
            aux,
            env,
        }
    }

    fn invoke(&self, k: usize, args: &KernelArgs) {
        let f = self.kernels.functions()[k];
        // SAFETY: the kernel was compiled from this module's IR. It reads and writes
        // only the arrays of `vars` (each sized for its population, or 1 for scalar
        // variables) at indices below their sizes: neuron kernels loop below the
        // population size, synapse kernels over synapse ids below the synapse count
        // and at the `pre`/`post` neurons of those synapses (drawn inside the groups);
        // spike-driven kernels read `n` entries of a spike list of at most one entry
        // per neuron; threshold and connect kernels write at most one entry per
        // neuron into a buffer sized for the group.
        unsafe { f(args) };
    }

    /// Calls kernel `k` once (over its loop).
    fn call(&mut self, k: usize, aux: u64) {
        let kernel = &self.module.kernels[k];
        let population = kernel.population;
        let pathway = kernel.pathway;
        let list = self.schedule.spike_list[k];
        let n = match kernel.looping {
            Loop::Neurons => u64::from(self.sizes[population]),
            Loop::Spikes | Loop::PreSpikes | Loop::PostSpikes => self.n_spikes[list],
            Loop::Once => 1,
            Loop::Synapses => u64::from(self.sizes[population]),
            Loop::Pairs | Loop::SynapseList => 0,
        };
        // A spike-driven kernel with no spikes has nothing to do, unless its scalar
        // block writes a variable (run once per call, spikes or not).
        if n == 0 && self.schedule.idle_without_spikes[k] {
            return;
        }
        let is_threshold = kernel.kind == KernelKind::Threshold;
        let mut n_spikes = 0u64;
        let spikes = self.spikes[list].as_mut_ptr();
        let args = self.args(n, spikes, &mut n_spikes, pathway, aux);
        self.invoke(k, &args);
        if is_threshold {
            self.n_spikes[population] = n_spikes;
        }
    }

    /// Computes subexpressions of a population into their arrays (for monitors).
    pub fn observe(&mut self, population: usize) {
        for k in 0..self.module.kernels.len() {
            let kernel = &self.module.kernels[k];
            if kernel.kind == KernelKind::Observe && kernel.population == population {
                self.call(k, 0);
            }
        }
    }

    fn run(&mut self, slot: fn(&Schedule) -> &Vec<usize>) {
        for i in 0..slot(&self.schedule).len() {
            let k = slot(&self.schedule)[i];
            self.call(k, 0);
        }
    }

    /// Queues the events of this step's presynaptic spikes by their delays, then runs
    /// the `on_pre` kernel over the events due now.
    fn delayed_on_pre(&mut self, k: usize) {
        let Some(p) = self.module.kernels[k].pathway else { return };
        let source = self.module.layout.pathways[p].source.0;
        let n = self.n_spikes[source] as usize;
        let Some(delays) = self.delays[p].as_mut() else { return };
        let slots = delays.ring.len() as u64;
        let synapses = &self.synapses[p];
        for &i in &self.spikes[source][..n] {
            let (start, end) = (synapses.pre_offsets[i as usize], synapses.pre_offsets[i as usize + 1]);
            for s in start..end {
                let due = (self.step + u64::from(delays.steps[s as usize])) % slots;
                delays.ring[due as usize].push(s);
            }
        }
        let now = (self.step % slots) as usize;
        let mut due = std::mem::take(&mut delays.ring[now]);
        let mut unused = 0u64;
        let args = self.args(due.len() as u64, due.as_mut_ptr(), &mut unused, Some(p), 0);
        self.invoke(k, &args);
        due.clear();
        if let Some(delays) = self.delays[p].as_mut() {
            delays.ring[now] = due;
        }
    }

    /// Spikes prescribed for this step (`SpikeGeneratorGroup`), in place of a threshold.
    fn prescribed_spikes(&mut self) {
        for g in 0..self.generators.len() {
            let (population, spikes, next) = &mut self.generators[g];
            let mut count = 0usize;
            while let Some(&(step, index)) = spikes.get(*next) {
                if step > self.step {
                    break;
                }
                if step == self.step && count < self.spikes[*population].len() {
                    self.spikes[*population][count] = index;
                    count += 1;
                }
                *next += 1;
            }
            self.n_spikes[*population] = count as u64;
        }
    }

    /// Advances one step, recording into `monitors`.
    pub fn step(&mut self, monitors: &mut Monitors) {
        // start: periodic code, then monitors see the state.
        for i in 0..self.schedule.periodic.len() {
            let (k, period) = self.schedule.periodic[i];
            if self.step.is_multiple_of(period) {
                self.call(k, 0);
            }
        }
        // The environment shows its observations to the `sense` code.
        if let Some(closed_loop) = self.closed_loop.as_mut() {
            if std::mem::take(&mut closed_loop.fresh) {
                self.run(|s| &s.sense);
            } else {
                self.run(|s| &s.sense_every_step);
            }
        }
        monitors.record_state(self);
        // groups: summed variables (from the state at the step's start), state updates.
        self.run(|s| &s.summed);
        self.run(|s| &s.updates);
        // thresholds.
        self.n_spikes.iter_mut().for_each(|n| *n = 0);
        self.run(|s| &s.thresholds);
        self.prescribed_spikes();
        monitors.record_spikes(self);
        if let Some(closed_loop) = self.closed_loop.as_mut()
            && let Some(p) = closed_loop.voting_population()
        {
            let n = self.n_spikes[p] as usize;
            closed_loop.count_spikes(p, &self.spikes[p][..n]);
        }
        // synapses: pre then post pathways; then resets.
        for i in 0..self.schedule.on_pre.len() {
            let k = self.schedule.on_pre[i];
            if self.module.kernels[k].looping == Loop::SynapseList {
                self.delayed_on_pre(k);
            } else {
                self.call(k, 0);
            }
        }
        self.run(|s| &s.on_post);
        self.run(|s| &s.resets);
        // Clock-driven synapse updates and their periodic code, then the shared block.
        for i in 0..self.schedule.synapse_updates.len() {
            let (k, period) = self.schedule.synapse_updates[i];
            if self.step.is_multiple_of(period) {
                self.call(k, 0);
            }
        }
        self.run(|s| &s.shared_updates);
        // The decision, the move, and its reward.
        if let Some(closed_loop) = self.closed_loop.as_mut()
            && closed_loop.end_step()
        {
            self.run(|s| &s.reward);
        }
        if self.closed_loop.is_some() {
            monitors.record_move(self);
        }
        self.step += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn non_finite_values_are_found_in_every_lane() {
        for n in [0usize, 1, 7, 8, 9, 23] {
            let mut values: Vec<f64> = (0..n).map(|k| k as f64 * 1e300).collect();
            assert!(all_finite(&values));
            for k in 0..n {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let old = std::mem::replace(&mut values[k], bad);
                    assert!(!all_finite(&values), "{bad} at {k} of {n}");
                    values[k] = old;
                }
            }
        }
    }
}

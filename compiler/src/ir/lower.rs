//! Lowering the checked model to kernels: the state layout, expressions without
//! units, statements, thresholds, resets, refractoriness and periodic code. The
//! differential equations go through `integrate`.

use super::integrate;
use super::traces::Side;
use super::{
    Expr, Kernel, KernelKind, Layout, Loop, Module, Op1, Op2, ParamInfo, Population, Stmt, Ty, VarId, VarInfo,
};
use crate::ast::{AssignOp, BinaryOp, UnaryOp};
use crate::diagnostic::Diagnostic;
use crate::model::{self, Builtin, Dynamics, Func, GroupKind, Model, Period, Refractory, VarKind, VarRef};
use crate::span::Span;
use crate::units::Dimension;

/// Why a model can not be lowered (a diagnostic for the user).
pub type LowerError = Diagnostic;

/// The dynamics of a population without variables (input generators).
static EMPTY_DYNAMICS: std::sync::LazyLock<Dynamics> = std::sync::LazyLock::new(Dynamics::default);

/// Brian2's initial `lastspike`: long ago, so that no neuron starts refractory.
pub const LASTSPIKE_INIT: f64 = -1e4;

/// The names of the implicit refractoriness variables.
const LASTSPIKE: &str = "lastspike";
const NOT_REFRACTORY: &str = "not_refractory";

/// The integration method a population's equations get: the one given, or for
/// `auto` the one chosen (exact where it applies, else euler or heun), found by
/// lowering the equations on their own.
pub fn integration_method(model: &Model, dynamics: &Dynamics) -> Result<crate::model::Method, String> {
    let mut lowering = Lowering::new(model);
    let shared = if std::ptr::eq(dynamics, &model.shared) || model.shared.variables.is_empty() {
        None
    } else {
        let p = lowering.add_population("shared", 1, false);
        lowering.add_vars(p, &model.shared, true);
        Some(p)
    };
    let population = lowering.add_population("population", 1, false);
    lowering.add_vars(population, dynamics, false);
    let local = lowering.layout.populations[population].vars.clone();
    let shared_ids = lowering.shared_ids(shared);
    let mut scope = Scope::new(dynamics, local, shared_ids, 1, &lowering.layout);
    let mut kernel = KernelBuilder::new("probe".into(), KernelKind::StateUpdate, population, Loop::Neurons);
    integrate::integrate(&mut lowering, &mut scope, &mut kernel, dynamics.method(), None)
}

/// Lowers a checked model to kernels.
pub fn lower(model: &Model) -> Result<Module, Vec<LowerError>> {
    let mut lowering = Lowering::new(model);
    lowering.layout.params =
        model.constants.iter().map(|c| ParamInfo { name: c.name.clone(), value: c.value }).collect();
    // Populations: the groups in model order, then the shared block.
    for group in &model.groups {
        let dynamics = match group.kind {
            GroupKind::Neurons(t) => Some(&model.neuron_types[t]),
            _ => None,
        };
        let spiking = dynamics.is_none_or(|t| t.threshold.is_some());
        let population = lowering.add_population(&group.name, group.size, spiking);
        if let Some(t) = dynamics {
            lowering.add_vars(population, &t.dynamics, false);
        }
    }
    let shared = if model.shared.variables.is_empty() {
        None
    } else {
        let population = lowering.add_population("shared", 1, false);
        lowering.add_vars(population, &model.shared, true);
        Some(population)
    };
    for (p, pathway) in model.pathways.iter().enumerate() {
        lowering.declare_pathway(p, pathway);
    }
    for (g, group) in model.groups.iter().enumerate() {
        match &group.kind {
            GroupKind::Neurons(t) => lowering.neuron_group(g, *t, shared),
            GroupKind::Poisson { rates } => lowering.poisson_group(g, rates, shared),
            GroupKind::SpikeGenerator { indices, times } => {
                let mut spikes: Vec<(u64, u32)> =
                    times.iter().zip(indices).map(|(t, &i)| ((t / model.dt).round() as u64, i)).collect();
                spikes.sort();
                lowering.generators.push((g, spikes));
            }
        }
    }
    if let Some(shared) = shared {
        lowering.shared_block(shared);
    }
    for p in 0..model.pathways.len() {
        lowering.pathway(p, shared);
    }
    if let Some(env) = &model.environment {
        let blocks = env.sense.iter().map(|c| (KernelKind::Sense, "sense", c));
        for (k, (kind, what, code)) in
            blocks.chain(env.reward.iter().map(|c| (KernelKind::Reward, "reward", c))).enumerate()
        {
            lowering.env_kernel(kind, &format!("{what}{k}"), code, shared);
        }
    }
    if !lowering.errors.is_empty() {
        return Err(lowering.errors);
    }
    let mut module = Module {
        layout: lowering.layout,
        kernels: lowering.kernels,
        tables: lowering.tables,
        generators: lowering.generators,
        dt: model.dt,
        environment: model.environment.as_ref().map(|env| super::EnvironmentInfo {
            spec: env.spec,
            settings: env.settings.clone(),
            decision: env.decision.as_ref().map(|d| super::DecisionInfo {
                // Groups come first among the populations, in model order.
                population: d.group,
                every: period_steps(&d.every, model.dt),
                groups: d.groups,
                epsilon: d.epsilon,
            }),
        }),
        run_constants: Vec::new(),
    };
    for kernel in &mut module.kernels {
        super::opt::optimize(kernel, &module.layout);
    }
    super::opt::extract_run_constants(&mut module);
    Ok(module)
}

pub(super) struct Lowering<'m> {
    model: &'m Model,
    layout: Layout,
    tables: Vec<Vec<f64>>,
    kernels: Vec<Kernel>,
    /// Random streams handed out so far (one per `rand()` call site and noise term).
    streams: u32,
    errors: Vec<LowerError>,
    generators: Vec<(usize, Vec<(u64, u32)>)>,
    /// Per pathway: its variables kept once per neuron (`traces`), and where.
    traces: Vec<Vec<Trace>>,
}

/// A pathway variable kept once per neuron of one side (see `traces`).
#[derive(Clone, Copy, Debug)]
struct Trace {
    /// The variable in the pathway's `dynamics`.
    local: usize,
    side: Side,
    /// The per-neuron variable (of the source group for `Pre`, the target's for `Post`).
    var: VarId,
}

impl<'m> Lowering<'m> {
    fn new(model: &'m Model) -> Lowering<'m> {
        Lowering {
            model,
            layout: Layout::default(),
            tables: Vec::new(),
            kernels: Vec::new(),
            streams: 0,
            errors: Vec::new(),
            generators: Vec::new(),
            traces: Vec::new(),
        }
    }

    /// The pathway's population (its synapse variables, and `lastupdate` for
    /// event-driven ones) and its entry in the layout.
    fn declare_pathway(&mut self, p: usize, pathway: &model::Pathway) {
        let population = self.add_population(&pathway.name, 0, false);
        self.add_vars(population, &pathway.dynamics, false);
        let mut traces = Vec::new();
        for (local, side) in super::traces::neuron_traces(self.model, p, pathway) {
            let group = if side == Side::Pre { pathway.source.group } else { pathway.target.group };
            let synaptic = self.layout.vars[self.layout.populations[population].vars[local]].clone();
            let var = self.layout.vars.len();
            let name = format!("{}.{}", pathway.name, synaptic.name);
            self.layout.vars.push(VarInfo { name, population: group, ..synaptic });
            self.layout.populations[group].vars.push(var);
            traces.push(Trace { local, side, var });
        }
        let lastupdate = pathway
            .dynamics
            .variables
            .iter()
            .enumerate()
            .any(|(k, v)| v.flags.event_driven && !traces.iter().any(|t| t.local == k))
            .then(|| self.hidden_time(population, "lastupdate"));
        self.traces.push(traces);
        let delay = pathway.delay.is_some().then(|| self.hidden_time(population, "delay"));
        let c = &pathway.connectivity;
        let rule = match (&c.explicit, c.fan_in, c.fan_out) {
            (Some((s, t)), _, _) => super::ConnectRule::Explicit(s.clone(), t.clone()),
            (None, Some(k), _) => super::ConnectRule::FanIn(k),
            (None, None, Some(k)) => super::ConnectRule::FanOut(k),
            _ => super::ConnectRule::Kernel,
        };
        self.layout.pathways.push(super::PathwayInfo {
            name: pathway.name.clone(),
            population,
            source: (pathway.source.group, pathway.source.start, pathway.source.end),
            target: (pathway.target.group, pathway.target.start, pathway.target.end),
            rule,
            lastupdate,
            delay,
        });
    }

    /// A variable the compiler adds to a pathway (a time per synapse, starting at 0).
    fn hidden_time(&mut self, population: usize, name: &str) -> VarId {
        let id = self.layout.vars.len();
        self.layout.vars.push(VarInfo {
            name: name.into(),
            population,
            default: 0.0,
            dim: Dimension::TIME,
            boolean: false,
            scalar: false,
        });
        self.layout.populations[population].vars.push(id);
        id
    }

    /// A `PoissonGroup`: each neuron spikes with probability `rates*dt` each step.
    fn poisson_group(&mut self, g: usize, rates: &model::Expr, shared: Option<usize>) {
        let model = self.model;
        let empty = &EMPTY_DYNAMICS;
        let shared_ids = self.shared_ids(shared);
        let size = model.groups[g].size;
        let mut scope = Scope::new(empty, Vec::new(), shared_ids, size, &self.layout);
        let name = model.groups[g].name.clone();
        let mut kernel = KernelBuilder::new(format!("{name}_threshold"), KernelKind::Threshold, g, Loop::Neurons);
        let rate = self.expr(&mut scope, rates);
        let stream = self.next_stream();
        let fires = Expr::bin(Op2::Lt, Expr::Rand(stream), Expr::bin(Op2::Mul, rate, Expr::Dt));
        kernel.body.push(Stmt::If(fires, vec![Stmt::EmitSpike]));
        self.push(kernel);
    }

    /// The kernels of a pathway: connect, init, summed variables, clock-driven
    /// updates, periodic code, on_pre and on_post.
    fn pathway(&mut self, p: usize, shared: Option<usize>) {
        let model = self.model;
        let pw = &model.pathways[p];
        let info = self.layout.pathways[p].clone();
        let population = info.population;
        let local: Vec<VarId> = self.layout.populations[population].vars[..pw.dynamics.variables.len()].to_vec();
        let shared_ids = self.shared_ids(shared);
        let mut scope = Scope::new(&pw.dynamics, local.clone(), shared_ids, 0, &self.layout);
        scope.pre = self.layout.populations[info.source.0].vars.clone();
        scope.post = self.layout.populations[info.target.0].vars.clone();
        let relative = |at: super::At, start: u32| {
            let index = Expr::IndexAt(at);
            if start == 0 { index } else { Expr::bin(Op2::Sub, index, Expr::F64(f64::from(start))) }
        };
        scope.index_i = relative(super::At::Pre, info.source.1);
        scope.index_j = relative(super::At::Post, info.target.1);
        scope.sizes = (info.source.2 - info.source.1, info.target.2 - info.target.1);
        let traces = self.traces[p].clone();
        scope.neuron_traces = vec![None; local.len()];
        for t in &traces {
            let at = if t.side == Side::Pre { super::At::Pre } else { super::At::Post };
            scope.neuron_traces[t.local] = Some((t.var, at));
        }
        let name = pw.name.clone();
        let new_kernel = |kind: KernelKind, looping: Loop, suffix: &str| {
            let mut k = KernelBuilder::new(format!("{name}_{suffix}"), kind, population, looping);
            k.pathway = Some(p);
            k
        };

        // Which candidate pairs become synapses.
        if info.rule == super::ConnectRule::Kernel {
            let mut kernel = new_kernel(KernelKind::Connect, Loop::Pairs, "connect");
            let c = &pw.connectivity;
            let mut accept = Expr::Bool(true);
            if let Some(condition) = &c.condition {
                accept = self.expr(&mut scope, condition);
            }
            if let Some(j) = &c.j {
                let target = self.expr(&mut scope, j);
                let is_target = Expr::bin(Op2::Eq, scope.index_j.clone(), target);
                accept = Expr::bin(Op2::And, accept, is_target);
            }
            if let Some(probability) = &c.p {
                let probability = self.expr(&mut scope, probability);
                let draw = Expr::bin(Op2::Lt, Expr::Rand(self.next_stream()), probability);
                accept = Expr::bin(Op2::And, accept, draw);
            }
            kernel.body.push(Stmt::If(accept, vec![Stmt::EmitSpike]));
            self.push(kernel);
        }

        // Initial values, then the summed variables.
        let mut kernel = new_kernel(KernelKind::Init, Loop::Synapses, "init");
        if let (Some(delay), Some(id)) = (&pw.delay, info.delay) {
            let value = self.expr(&mut scope, delay);
            kernel.body.push(Stmt::Store(id, value));
        }
        for s in &pw.dynamics.init {
            self.stmt(&mut scope, &mut kernel, s);
        }
        self.push(kernel);
        for summed in &pw.summed {
            let (target, at, group) = match summed.target {
                VarRef::Post(k) => (scope.post[k], super::At::Post, info.target.0),
                VarRef::Pre(k) => (scope.pre[k], super::At::Pre, info.source.0),
                _ => continue,
            };
            let mut reset =
                KernelBuilder::new(format!("{name}_summed_reset"), KernelKind::SummedReset, group, Loop::Neurons);
            reset.pathway = Some(p);
            reset.body.push(Stmt::Store(target, Expr::F64(0.0)));
            self.push(reset);
            let mut kernel = new_kernel(KernelKind::Summed, Loop::Synapses, "summed");
            let term = scope.load(self, VarRef::Local(summed.var));
            kernel.body.push(Stmt::StoreAt(target, at, Expr::bin(Op2::Add, Expr::LoadAt(target, at), term)));
            self.push(kernel);
        }

        // Clock-driven equations, then periodic code (`every_step`). Code that runs
        // every step is fused into the same loop: each synapse's statements see the
        // same values as in two passes, and the synapses are visited once.
        let mut kernel = new_kernel(KernelKind::StateUpdate, Loop::Synapses, "state_update");
        match integrate::integrate(self, &mut scope, &mut kernel, pw.dynamics.method(), None) {
            Ok(method) => kernel.method = Some(method),
            Err(message) => {
                self.errors.push(Diagnostic::error("E0502", pw.span, format!("pathway `{name}`: {message}")))
            }
        }
        let steps = |p: &Period| period_steps(p, model.dt);
        for periodic in pw.dynamics.periodic.iter().filter(|p| steps(&p.period) == 1) {
            for s in &periodic.body {
                self.stmt(&mut scope, &mut kernel, s);
            }
        }
        if !kernel.body.is_empty() || !kernel.scalar.is_empty() {
            self.push(kernel);
        }
        for periodic in pw.dynamics.periodic.iter().filter(|p| steps(&p.period) != 1) {
            let period = steps(&periodic.period);
            let mut kernel = new_kernel(KernelKind::Periodic { period }, Loop::Synapses, &format!("every_{period}"));
            for s in &periodic.body {
                self.stmt(&mut scope, &mut kernel, s);
            }
            self.push(kernel);
        }

        // Neuron traces decay every step, with the neurons.
        for t in &traces {
            self.trace_decay(p, t, &local);
        }

        // Events: neuron traces jump once per spike; then, per synapse, event-driven
        // variables are brought up to date and the statements run.
        for (kind, side, looping, suffix, stmts) in [
            (KernelKind::OnPre, Side::Pre, Loop::PreSpikes, "on_pre", &pw.on_pre),
            (KernelKind::OnPost, Side::Post, Loop::PostSpikes, "on_post", &pw.on_post),
        ] {
            let jumps: Vec<&Trace> = traces.iter().filter(|t| t.side == side).collect();
            if !jumps.is_empty() {
                self.trace_jumps(p, side, &jumps, &local, stmts);
            }
            let is_jump = |s: &model::Stmt| jumps.iter().any(|t| s.target == VarRef::Local(t.local));
            let stmts: Vec<&model::Stmt> = stmts.iter().filter(|s| !is_jump(s)).collect();
            if stmts.is_empty() {
                continue;
            }
            let looping = if kind == KernelKind::OnPre && info.delay.is_some() { Loop::SynapseList } else { looping };
            let mut kernel = new_kernel(kind, looping, suffix);
            if let Some(lastupdate) = info.lastupdate
                && let Err(message) = integrate::event_driven(self, &mut scope, &mut kernel, lastupdate)
            {
                self.errors.push(Diagnostic::error("E0502", pw.span, format!("pathway `{name}`: {message}")));
            }
            for s in stmts {
                self.stmt(&mut scope, &mut kernel, s);
            }
            self.push(kernel);
        }
    }

    /// A neuron trace's exact decay over one step, for every neuron of its group.
    fn trace_decay(&mut self, p: usize, trace: &Trace, local: &[VarId]) {
        let pw = &self.model.pathways[p];
        let group = self.layout.vars[trace.var].population;
        let mut ids = local.to_vec();
        ids[trace.local] = trace.var;
        let mut scope = Scope::new(&pw.dynamics, ids, Vec::new(), 0, &self.layout);
        let name = format!("{}_{}_decay", pw.name, pw.dynamics.variables[trace.local].name);
        let mut kernel = KernelBuilder::new(name, KernelKind::StateUpdate, group, Loop::Neurons);
        if let Err(message) = integrate::trace_decay(self, &mut scope, &mut kernel, trace.local) {
            self.errors.push(Diagnostic::error("E0502", pw.span, format!("pathway `{}`: {message}", pw.name)));
        }
        self.push(kernel);
    }

    /// The statements that make neuron traces jump, once per spiking neuron of their
    /// side (in the pathway's slice of the group), before the pathway's synapses run.
    fn trace_jumps(&mut self, p: usize, side: Side, jumps: &[&Trace], local: &[VarId], stmts: &[model::Stmt]) {
        let pw = &self.model.pathways[p];
        let (slice, kind) =
            if side == Side::Pre { (&pw.source, KernelKind::OnPre) } else { (&pw.target, KernelKind::OnPost) };
        let mut ids = local.to_vec();
        for t in jumps {
            ids[t.local] = t.var;
        }
        let mut scope = Scope::new(&pw.dynamics, ids, Vec::new(), 0, &self.layout);
        let suffix = if side == Side::Pre { "pre_traces" } else { "post_traces" };
        let mut kernel = KernelBuilder::new(format!("{}_{suffix}", pw.name), kind, slice.group, Loop::Spikes);
        for s in stmts.iter().filter(|s| jumps.iter().any(|t| s.target == VarRef::Local(t.local))) {
            self.stmt(&mut scope, &mut kernel, s);
        }
        let size = self.layout.populations[slice.group].size;
        if slice.start != 0 || slice.end != size {
            let from = Expr::bin(Op2::Ge, Expr::Index, Expr::F64(f64::from(slice.start)));
            let below = Expr::bin(Op2::Lt, Expr::Index, Expr::F64(f64::from(slice.end)));
            kernel.body = vec![Stmt::If(Expr::bin(Op2::And, from, below), std::mem::take(&mut kernel.body))];
        }
        self.push(kernel);
    }

    fn add_population(&mut self, name: &str, size: u32, spiking: bool) -> usize {
        self.layout.populations.push(Population { name: name.to_string(), size, vars: Vec::new(), spiking });
        self.layout.populations.len() - 1
    }

    fn add_vars(&mut self, population: usize, dynamics: &Dynamics, all_scalar: bool) {
        for v in &dynamics.variables {
            let default = match v.name.as_str() {
                LASTSPIKE if v.implicit => LASTSPIKE_INIT,
                NOT_REFRACTORY if v.implicit => 1.0,
                _ => 0.0,
            };
            let id = self.layout.vars.len();
            self.layout.vars.push(VarInfo {
                name: v.name.clone(),
                population,
                default,
                dim: v.ty.dim().unwrap_or(Dimension::ONE),
                boolean: v.ty == model::Type::Bool,
                scalar: all_scalar || v.flags.shared,
            });
            self.layout.populations[population].vars.push(id);
        }
    }

    fn next_stream(&mut self) -> u32 {
        self.streams += 1;
        self.streams
    }

    fn shared_ids(&self, shared: Option<usize>) -> Vec<VarId> {
        shared.map_or_else(Vec::new, |p| self.layout.populations[p].vars.clone())
    }

    fn neuron_group(&mut self, g: usize, t: usize, shared: Option<usize>) {
        let model = self.model;
        let group = &model.groups[g];
        let neuron = &model.neuron_types[t];
        let population = g;
        let local = self.layout.populations[population].vars.clone();
        let shared_ids = self.shared_ids(shared);
        let size = group.size;
        let mut scope = Scope::new(&neuron.dynamics, local.clone(), shared_ids, size, &self.layout);
        let name = group.name.clone();

        // Initial values (the type's `init`, then the group's body) and periodic code.
        let init: Vec<&model::Stmt> = neuron.dynamics.init.iter().chain(&group.init).collect();
        self.code_kernels(&mut scope, &name, population, Loop::Neurons, &init, &neuron.dynamics.periodic);
        for link in &group.links {
            let span = group.span;
            self.errors.push(Diagnostic::error(
                "E0501",
                span,
                format!(
                    "group `{name}`: linked variables (`{}`) are not implemented yet",
                    neuron.dynamics.variables[link.var].name
                ),
            ));
        }

        // State update: refractoriness, then the integration.
        let refractory_vars =
            (neuron.dynamics.find(LASTSPIKE).map(|k| local[k]), neuron.dynamics.find(NOT_REFRACTORY).map(|k| local[k]));
        let mut kernel =
            KernelBuilder::new(format!("{name}_state_update"), KernelKind::StateUpdate, population, Loop::Neurons);
        let mut not_refractory = None;
        if let (Some(refractory), (Some(lastspike), Some(nr))) = (&neuron.refractory, refractory_vars) {
            let value = match refractory {
                Refractory::Duration(duration) => {
                    // Brian2: timestep(t - lastspike, dt) >= timestep(refractory, dt).
                    let duration = self.expr(&mut scope, duration);
                    let since = Expr::bin(Op2::Sub, Expr::Time, Expr::Load(lastspike));
                    if fixed(&duration) {
                        refractory_over(since, timestep(duration))
                    } else {
                        steps_at_least(steps(since), timestep(duration))
                    }
                }
                Refractory::Condition(condition) => {
                    // Brian2: not_refractory = not_refractory or not (condition).
                    let condition = self.expr(&mut scope, condition);
                    let was = Expr::bin(Op2::Ne, Expr::Load(nr), Expr::F64(0.0));
                    Expr::bin(Op2::Or, was, Expr::un(Op1::Not, condition))
                }
            };
            let ready = kernel.temp(value);
            kernel.body.push(Stmt::Store(nr, Expr::un(Op1::BoolToF64, ready.clone())));
            not_refractory = Some(ready);
        }
        match integrate::integrate(self, &mut scope, &mut kernel, neuron.dynamics.method(), not_refractory) {
            Ok(method) => kernel.method = Some(method),
            Err(message) => self.errors.push(Diagnostic::error(
                "E0502",
                neuron.span,
                format!("neuron type `{}`: {message}", neuron.name),
            )),
        }
        if !kernel.body.is_empty() || !kernel.scalar.is_empty() {
            self.push(kernel);
        }
        // After the state update, `(constant over dt)` values are read from their arrays.
        for (k, frozen) in scope.frozen.iter_mut().enumerate() {
            if frozen.is_some() {
                *frozen = Some(Expr::Load(local[k]));
            }
        }

        // Threshold.
        if let Some(threshold) = &neuron.threshold {
            let mut kernel =
                KernelBuilder::new(format!("{name}_threshold"), KernelKind::Threshold, population, Loop::Neurons);
            let condition = self.expr(&mut scope, threshold);
            let mut then = vec![Stmt::EmitSpike];
            if let (Some(_), (Some(lastspike), Some(nr))) = (&neuron.refractory, refractory_vars) {
                // `condition and not refractory`, short-circuited: the refractory flag is
                // read only for the few neurons past threshold.
                then.push(Stmt::Store(lastspike, Expr::Time));
                then.push(Stmt::Store(nr, Expr::F64(0.0)));
                let ready = Expr::bin(Op2::Ne, Expr::Load(nr), Expr::F64(0.0));
                then = vec![Stmt::If(ready, then)];
            }
            kernel.body.push(Stmt::If(condition, then));
            self.push(kernel);
        }

        // Subexpressions, computed into their arrays when a monitor records them.
        let subexpressions: Vec<usize> = neuron
            .dynamics
            .variables
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v.kind, VarKind::Subexpression(_)))
            .map(|(k, _)| k)
            .collect();
        if !subexpressions.is_empty() {
            let mut kernel =
                KernelBuilder::new(format!("{name}_observe"), KernelKind::Observe, population, Loop::Neurons);
            for k in subexpressions {
                let value = match &neuron.dynamics.variables[k].kind {
                    VarKind::Subexpression(e) if neuron.dynamics.variables[k].flags.constant_over_dt => {
                        self.expr(&mut scope, e)
                    }
                    _ => scope.load(self, VarRef::Local(k)),
                };
                let value = if self.layout.vars[local[k]].boolean { Expr::un(Op1::BoolToF64, value) } else { value };
                kernel.body.push(Stmt::Store(local[k], value));
            }
            self.push(kernel);
        }

        // Reset.
        if !neuron.reset.is_empty() {
            let mut kernel = KernelBuilder::new(format!("{name}_reset"), KernelKind::Reset, population, Loop::Spikes);
            for s in &neuron.reset {
                self.stmt(&mut scope, &mut kernel, s);
            }
            self.push(kernel);
        }
    }

    fn shared_block(&mut self, population: usize) {
        let model = self.model;
        let ids = self.layout.populations[population].vars.clone();
        let mut scope = Scope::new(&model.shared, ids, Vec::new(), 1, &self.layout);
        let init: Vec<&model::Stmt> = model.shared.init.iter().collect();
        self.code_kernels(&mut scope, "shared", population, Loop::Once, &init, &model.shared.periodic);
        let mut kernel =
            KernelBuilder::new("shared_state_update".into(), KernelKind::StateUpdate, population, Loop::Once);
        match integrate::integrate(self, &mut scope, &mut kernel, model.shared.method(), None) {
            Ok(method) => kernel.method = Some(method),
            Err(message) => {
                let span = model.shared.variables.first().map_or(Span::default(), |v| v.span);
                self.errors.push(Diagnostic::error("E0502", span, format!("shared block: {message}")));
            }
        }
        if !kernel.body.is_empty() || !kernel.scalar.is_empty() {
            self.push(kernel);
        }
    }

    /// The kernel of an environment block: over a group's neurons, or once for shared variables.
    fn env_kernel(&mut self, kind: KernelKind, name: &str, code: &model::EnvCode, shared: Option<usize>) {
        let model = self.model;
        let shared_ids = self.shared_ids(shared);
        let (dynamics, population, size, looping) = match code.group.map(|g| (g, &model.groups[g].kind)) {
            Some((g, GroupKind::Neurons(t))) => {
                (&model.neuron_types[*t].dynamics, g, model.groups[g].size, Loop::Neurons)
            }
            // The checker allows neuron groups only; without shared variables there is nothing to write.
            Some(_) => return,
            None => match shared {
                Some(p) => (&model.shared, p, 1, Loop::Once),
                None => return,
            },
        };
        // Shared code names shared variables as `VarRef::Shared`.
        let local = match code.group {
            Some(_) => self.layout.populations[population].vars.clone(),
            None => shared_ids.clone(),
        };
        let mut scope = Scope::new(dynamics, local, shared_ids, size, &self.layout);
        let prefix = self.layout.populations[population].name.clone();
        let mut kernel = KernelBuilder::new(format!("{prefix}_{name}"), kind, population, looping);
        for s in &code.body {
            self.stmt(&mut scope, &mut kernel, s);
        }
        self.push(kernel);
    }

    /// The `init` kernel and the periodic kernels of a population.
    fn code_kernels(
        &mut self,
        scope: &mut Scope<'_>,
        name: &str,
        population: usize,
        looping: Loop,
        init: &[&model::Stmt],
        periodic: &[model::Periodic],
    ) {
        let mut kernel = KernelBuilder::new(format!("{name}_init"), KernelKind::Init, population, looping);
        for s in init {
            self.stmt(scope, &mut kernel, s);
        }
        self.push(kernel);
        for p in periodic {
            let period = self.steps(&p.period);
            let mut kernel = KernelBuilder::new(
                format!("{name}_every_{period}"),
                KernelKind::Periodic { period },
                population,
                looping,
            );
            for s in &p.body {
                self.stmt(scope, &mut kernel, s);
            }
            self.push(kernel);
        }
    }

    fn steps(&self, period: &Period) -> u64 {
        period_steps(period, self.model.dt)
    }

    fn push(&mut self, kernel: KernelBuilder) {
        let mut kernel = kernel.finish();
        // Names are symbols in the JIT module: two periodic blocks of the same period get `_2`, `_3`, ...
        let base = kernel.name.clone();
        let mut k = 2;
        while self.kernels.iter().any(|other| other.name == kernel.name) {
            kernel.name = format!("{base}_{k}");
            k += 1;
        }
        self.kernels.push(kernel);
    }

    /// Lowers a statement into the kernel: statements that write a scalar variable
    /// from scalar values go to the scalar block (run once), as in Brian2.
    fn stmt(&mut self, scope: &mut Scope<'_>, kernel: &mut KernelBuilder, s: &model::Stmt) {
        let Some((var, at)) = scope.var(s.target) else {
            self.errors.push(Diagnostic::error(
                "E0502",
                s.span,
                "this statement writes a variable this code can not reach",
            ));
            return;
        };
        let value = self.expr(scope, &s.value);
        let old = match at {
            Some(at) => Expr::LoadAt(var, at),
            None => Expr::Load(var),
        };
        let value = match s.op {
            AssignOp::Set => value,
            AssignOp::Add => Expr::bin(Op2::Add, old, value),
            AssignOp::Sub => Expr::bin(Op2::Sub, old, value),
            AssignOp::Mul => Expr::bin(Op2::Mul, old, value),
            AssignOp::Div => Expr::bin(Op2::Div, old, value),
        };
        let value = if self.layout.vars[var].boolean { Expr::un(Op1::BoolToF64, value) } else { value };
        if let Some(at) = at {
            kernel.body.push(Stmt::StoreAt(var, at, value));
            return;
        }
        let scalar_target = self.layout.vars[var].scalar;
        if scalar_target {
            if reads_per_neuron(&value, &self.layout) {
                self.errors.push(
                    Diagnostic::error(
                        "E0503",
                        s.span,
                        format!("the shared variable `{}` is set from per-neuron values", self.layout.vars[var].name),
                    )
                    .with_note(
                        "a shared variable has one value for the whole group; set it from shared values and constants",
                    ),
                );
                return;
            }
            kernel.scalar.push(Stmt::Store(var, value));
        } else {
            kernel.body.push(Stmt::Store(var, value));
        }
    }

    /// Lowers an expression at the scope's current stage.
    pub(super) fn expr(&mut self, scope: &mut Scope<'_>, e: &model::Expr) -> Expr {
        use model::ExprKind as K;
        match &e.kind {
            K::Literal(x) => Expr::F64(*x),
            K::Bool(b) => Expr::Bool(*b),
            K::Const(k) => Expr::Param(*k),
            K::Var(r) => scope.load(self, *r),
            K::Builtin(b) => match b {
                Builtin::T => scope.time.clone(),
                Builtin::Dt => Expr::Dt,
                Builtin::I => scope.index_i.clone(),
                Builtin::J => scope.index_j.clone(),
                Builtin::NPre => Expr::F64(f64::from(scope.sizes.0)),
                Builtin::NPost => Expr::F64(f64::from(scope.sizes.1)),
                Builtin::N => Expr::F64(f64::from(scope.size)),
                Builtin::Pi => Expr::F64(std::f64::consts::PI),
                Builtin::Inf => Expr::F64(f64::INFINITY),
            },
            K::Unary(op, a) => {
                let a = self.expr(scope, a);
                match op {
                    UnaryOp::Neg => Expr::un(Op1::Neg, a),
                    UnaryOp::Pos => a,
                    UnaryOp::Not => Expr::un(Op1::Not, a),
                }
            }
            K::Binary(op, a, b) => {
                let (a, b) = (self.expr(scope, a), self.expr(scope, b));
                let simple = |op2| Expr::bin(op2, a.clone(), b.clone());
                match op {
                    BinaryOp::Add => simple(Op2::Add),
                    BinaryOp::Sub => simple(Op2::Sub),
                    BinaryOp::Mul => simple(Op2::Mul),
                    BinaryOp::Div => simple(Op2::Div),
                    BinaryOp::FloorDiv => Expr::un(Op1::Floor, simple(Op2::Div)),
                    BinaryOp::Mod => Expr::Call(super::MathFn::Mod, vec![a, b]),
                    // `x**2` is `x*x` (both correctly rounded: the same bits as `pow`).
                    BinaryOp::Pow if b == Expr::F64(2.0) => Expr::bin(Op2::Mul, a.clone(), a),
                    BinaryOp::Pow => Expr::Call(super::MathFn::Pow, vec![a, b]),
                    BinaryOp::Lt => simple(Op2::Lt),
                    BinaryOp::Le => simple(Op2::Le),
                    BinaryOp::Gt => simple(Op2::Gt),
                    BinaryOp::Ge => simple(Op2::Ge),
                    BinaryOp::Eq => simple(Op2::Eq),
                    BinaryOp::Ne => simple(Op2::Ne),
                    BinaryOp::And => simple(Op2::And),
                    BinaryOp::Or => simple(Op2::Or),
                }
            }
            K::Call(f, args) => {
                let args: Vec<Expr> = args.iter().map(|a| self.expr(scope, a)).collect();
                let a = |k: usize| args.get(k).cloned().unwrap_or(Expr::F64(f64::NAN));
                let call = |m: super::MathFn| Expr::Call(m, vec![a(0)]);
                use super::MathFn as M;
                match f {
                    Func::Exp => call(M::Exp),
                    Func::Log => call(M::Log),
                    Func::Log10 => call(M::Log10),
                    Func::Sin => call(M::Sin),
                    Func::Cos => call(M::Cos),
                    Func::Tan => call(M::Tan),
                    Func::Sinh => call(M::Sinh),
                    Func::Cosh => call(M::Cosh),
                    Func::Tanh => call(M::Tanh),
                    Func::Arcsin => call(M::Asin),
                    Func::Arccos => call(M::Acos),
                    Func::Arctan => call(M::Atan),
                    Func::Exprel => call(M::Exprel),
                    Func::Expm1 => call(M::Expm1),
                    Func::Log1p => call(M::Log1p),
                    Func::Sqrt => Expr::un(Op1::Sqrt, a(0)),
                    Func::Abs => Expr::un(Op1::Abs, a(0)),
                    Func::Floor => Expr::un(Op1::Floor, a(0)),
                    Func::Ceil => Expr::un(Op1::Ceil, a(0)),
                    Func::Sign => {
                        let x = a(0);
                        let negative = Expr::select(
                            Expr::bin(Op2::Lt, x.clone(), Expr::F64(0.0)),
                            Expr::F64(-1.0),
                            Expr::F64(0.0),
                        );
                        Expr::select(Expr::bin(Op2::Gt, x, Expr::F64(0.0)), Expr::F64(1.0), negative)
                    }
                    Func::Int => {
                        let x = a(0);
                        if x.ty(&[]) == Ty::Bool { Expr::un(Op1::BoolToF64, x) } else { Expr::un(Op1::Trunc, x) }
                    }
                    Func::Clip => Expr::bin(Op2::Min, Expr::bin(Op2::Max, a(0), a(1)), a(2)),
                    Func::Min => Expr::bin(Op2::Min, a(0), a(1)),
                    Func::Max => Expr::bin(Op2::Max, a(0), a(1)),
                    Func::Rand => Expr::Rand(self.next_stream()),
                    Func::Randn => Expr::Randn(self.next_stream()),
                }
            }
            K::Cond(c, t, o) => {
                let (c, t, o) = (self.expr(scope, c), self.expr(scope, t), self.expr(scope, o));
                Expr::select(c, t, o)
            }
            K::Noise(k) => Expr::Randn(scope.noise_stream(self, *k)),
            K::Table(values) => {
                self.tables.push(values.clone());
                Expr::Table(self.tables.len() - 1)
            }
            K::Observation { offset, len, index, .. } => {
                // `clamp(trunc(index), 0, len - 1)`: NaN becomes 0 (`max` selects 0).
                let whole = Expr::un(Op1::Trunc, self.expr(scope, index));
                let last = Expr::F64(f64::from(len.saturating_sub(1)));
                let index = Expr::bin(Op2::Min, Expr::bin(Op2::Max, whole, Expr::F64(0.0)), last);
                Expr::Env { offset: *offset, index: Box::new(index) }
            }
        }
    }
}

/// Steps between runs of periodic code: whole steps, at least one.
fn period_steps(period: &Period, dt: f64) -> u64 {
    match *period {
        Period::Steps(n) => n,
        Period::Time(t) => ((t / dt).round() as u64).max(1),
    }
}

/// `timestep(x, dt) = int((x + 1e-3*dt)/dt)`, Brian2's conversion of a time to steps.
fn timestep(x: Expr) -> Expr {
    Expr::un(Op1::Trunc, steps(x))
}

/// `(x + 1e-3*dt)/dt`: a time in steps, before `timestep` rounds it.
fn steps(x: Expr) -> Expr {
    Expr::bin(Op2::Div, shifted(x), Expr::Dt)
}

/// `x + 1e-3*dt`.
fn shifted(x: Expr) -> Expr {
    Expr::bin(Op2::Add, x, Expr::bin(Op2::Mul, Expr::F64(1e-3), Expr::Dt))
}

/// `steps_at_least(steps(since), n)` for an `n` the same all run, without the
/// division per neuron: `(s / dt >= n)` is `s >= q` for the least such `q`
/// (`abi::snnc_quotient_at_least`, a run constant), the same decision bit for bit.
fn refractory_over(since: Expr, n: Expr) -> Expr {
    let least = by_whole_steps(
        n,
        |n| Expr::Call(super::MathFn::QuotientAtLeast, vec![n, Expr::Dt]),
        |below| Expr::Call(super::MathFn::QuotientAbove, vec![below, Expr::Dt]),
    );
    Expr::bin(Op2::Ge, shifted(since), least)
}

/// Whether an expression reads only constants, parameters and `dt` (its value is
/// the same all run).
fn fixed(e: &Expr) -> bool {
    match e {
        Expr::F64(_) | Expr::Bool(_) | Expr::Param(_) | Expr::Dt => true,
        Expr::Unary(..) | Expr::Binary(..) | Expr::Call(..) | Expr::Select(..) => e.children().into_iter().all(fixed),
        _ => false,
    }
}

/// `trunc(x) >= n` for a whole number `n` and a finite `x`, without rounding `x`:
/// `x >= n` when `n >= 1`, else `x > n - 1` (both exact; `n - 1` is exact below 2^53).
fn steps_at_least(x: Expr, n: Expr) -> Expr {
    by_whole_steps(n, |n| Expr::bin(Op2::Ge, x.clone(), n), |below| Expr::bin(Op2::Gt, x.clone(), below))
}

/// `at_least(n)` when the whole number `n` is at least 1, else `above(n - 1)`: the
/// two exact forms of `trunc(x) >= n` (see `steps_at_least`).
fn by_whole_steps(n: Expr, at_least: impl FnOnce(Expr) -> Expr, above: impl FnOnce(Expr) -> Expr) -> Expr {
    let positive = Expr::bin(Op2::Ge, n.clone(), Expr::F64(1.0));
    let below = Expr::bin(Op2::Sub, n.clone(), Expr::F64(1.0));
    Expr::select(positive, at_least(n), above(below))
}

/// Whether an expression reads something that differs between neurons.
fn reads_per_neuron(e: &Expr, layout: &Layout) -> bool {
    match e {
        Expr::Load(v) => !layout.vars[*v].scalar,
        Expr::Index | Expr::Table(_) => true,
        _ => e.children().iter().any(|c| reads_per_neuron(c, layout)),
    }
}

/// A kernel under construction.
pub(super) struct KernelBuilder {
    name: String,
    kind: KernelKind,
    population: usize,
    looping: Loop,
    pub(super) scalar: Vec<Stmt>,
    pub(super) body: Vec<Stmt>,
    next_temp: usize,
    pub(super) method: Option<crate::model::Method>,
    pub(super) pathway: Option<usize>,
}

impl KernelBuilder {
    fn new(name: String, kind: KernelKind, population: usize, looping: Loop) -> KernelBuilder {
        KernelBuilder {
            name,
            kind,
            population,
            looping,
            scalar: Vec::new(),
            body: Vec::new(),
            next_temp: 0,
            method: None,
            pathway: None,
        }
    }

    /// A new temporary holding `value`, computed in the body.
    pub(super) fn temp(&mut self, value: Expr) -> Expr {
        let t = self.next_temp;
        self.next_temp += 1;
        self.body.push(Stmt::Let(t, value));
        Expr::Temp(t)
    }

    fn finish(self) -> Kernel {
        Kernel {
            name: self.name,
            kind: self.kind,
            population: self.population,
            looping: self.looping,
            scalar: self.scalar,
            body: self.body,
            temps: Vec::new(),
            method: self.method,
            pathway: self.pathway,
        }
    }
}

/// How a population's names lower at the current integration stage.
pub(super) struct Scope<'m> {
    pub(super) dynamics: &'m Dynamics,
    /// `VarRef::Local(k)` is variable `local[k]`.
    pub(super) local: Vec<VarId>,
    shared: Vec<VarId>,
    size: u32,
    /// Stage values of integrated variables (`None`: the stored value).
    pub(super) overrides: Vec<Option<Expr>>,
    /// The time of the current stage.
    pub(super) time: Expr,
    /// `(constant over dt)` subexpressions computed at the start of the step.
    pub(super) frozen: Vec<Option<Expr>>,
    /// Random streams of the noise terms.
    noise: Vec<Option<u32>>,
    booleans: Vec<bool>,
    /// Synapse code: the presynaptic and postsynaptic group's variables.
    pre: Vec<VarId>,
    post: Vec<VarId>,
    /// Synapse code: variables kept once per neuron (`traces`), and at which neuron.
    neuron_traces: Vec<Option<(VarId, super::At)>>,
    /// What `i`, `j`, `N_pre` and `N_post` are.
    index_i: Expr,
    index_j: Expr,
    sizes: (u32, u32),
}

impl<'m> Scope<'m> {
    fn new(dynamics: &'m Dynamics, local: Vec<VarId>, shared: Vec<VarId>, size: u32, layout: &Layout) -> Scope<'m> {
        let n = dynamics.variables.len();
        let booleans = local.iter().chain(&shared).map(|&v| layout.vars[v].boolean).collect();
        Scope {
            dynamics,
            local,
            shared,
            size,
            overrides: vec![None; n],
            time: Expr::Time,
            frozen: vec![None; n],
            noise: vec![None; dynamics.noise.len()],
            booleans,
            pre: Vec::new(),
            post: Vec::new(),
            neuron_traces: Vec::new(),
            index_i: Expr::Index,
            index_j: Expr::F64(f64::NAN),
            sizes: (size, size),
        }
    }

    /// The variable a reference names, and which neuron of a synapse it is read at.
    fn var(&self, r: VarRef) -> Option<(VarId, Option<super::At>)> {
        match r {
            VarRef::Local(k) => match self.neuron_traces.get(k).copied().flatten() {
                Some((v, at)) => Some((v, Some(at))),
                None => self.local.get(k).map(|&v| (v, None)),
            },
            VarRef::Shared(k) => self.shared.get(k).map(|&v| (v, None)),
            VarRef::Pre(k) => self.pre.get(k).map(|&v| (v, Some(super::At::Pre))),
            VarRef::Post(k) => self.post.get(k).map(|&v| (v, Some(super::At::Post))),
        }
    }

    fn noise_stream(&mut self, lowering: &mut Lowering<'_>, k: usize) -> u32 {
        if let Some(s) = self.noise.get(k).copied().flatten() {
            return s;
        }
        let s = lowering.next_stream();
        if let Some(slot) = self.noise.get_mut(k) {
            *slot = Some(s);
        }
        s
    }

    fn load(&mut self, lowering: &mut Lowering<'_>, r: VarRef) -> Expr {
        match r {
            VarRef::Local(k) => {
                if let Some(value) = self.overrides.get(k).cloned().flatten() {
                    return value;
                }
                if let Some(value) = self.frozen.get(k).cloned().flatten() {
                    return value;
                }
                if let Some(VarKind::Subexpression(e)) = self.dynamics.variables.get(k).map(|v| &v.kind) {
                    return lowering.expr(self, e);
                }
                if let Some((id, at)) = self.neuron_traces.get(k).copied().flatten() {
                    return self.as_value(k, Expr::LoadAt(id, at));
                }
                let id = self.local[k];
                self.as_value(k, Expr::Load(id))
            }
            VarRef::Shared(k) => {
                let id = self.shared[k];
                self.as_value(self.local.len() + k, Expr::Load(id))
            }
            VarRef::Pre(k) | VarRef::Post(k) => {
                let (at, list) = if matches!(r, VarRef::Pre(_)) {
                    (super::At::Pre, &self.pre)
                } else {
                    (super::At::Post, &self.post)
                };
                match list.get(k) {
                    Some(&id) => {
                        let load = Expr::LoadAt(id, at);
                        if lowering.layout.vars[id].boolean { Expr::bin(Op2::Ne, load, Expr::F64(0.0)) } else { load }
                    }
                    None => Expr::F64(f64::NAN),
                }
            }
        }
    }

    /// Whether pathway variable `k` is kept once per neuron (see `traces`).
    pub(super) fn is_neuron_trace(&self, k: usize) -> bool {
        self.neuron_traces.get(k).is_some_and(Option::is_some)
    }

    /// A stored boolean (0.0/1.0) read as a condition.
    fn as_value(&self, slot: usize, load: Expr) -> Expr {
        if self.booleans.get(slot).copied().unwrap_or(false) { Expr::bin(Op2::Ne, load, Expr::F64(0.0)) } else { load }
    }
}

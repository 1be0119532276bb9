//! The kernel IR: what both back ends translate, and nothing else.
//!
//! Semantics (the contract the back ends rely on):
//! - **Units are erased.** Every value is an `f64` in SI base units or a boolean.
//!   State arrays hold `f64` (booleans as 0.0/1.0).
//! - **A kernel is one function** with a `scalar` block run once per call and a `body`
//!   run per item of its `Loop`: every neuron of its population, every spike in the
//!   population's spike list, or once.
//! - **Statements run in order**; a `Store` is visible to later `Load`s of the same
//!   item. `Let` temporaries are assigned once (the scalar block's temporaries are
//!   visible in the body).
//! - **Floating-point operations are exactly these**, in this order: no back end
//!   reassociates, contracts to FMA, or replaces a division by a multiplication, so
//!   JIT and AOT compute the same bits. Transcendental functions are the `abi`
//!   functions. (The IR's own passes decide the order: `opt` multiplies a product's
//!   loop-invariant factors first.)
//! - **Random numbers** are `abi::snnc_rand/randn(seed, step, index, stream)`: a pure
//!   function of their coordinates, with a stream per call site.

mod integrate;
mod lower;
mod opt;
mod print;
mod traces;

pub use lower::{LASTSPIKE_INIT, LowerError, integration_method, lower};

/// Index of a state variable in `Layout::vars` (and of its array in `KernelArgs::vars`).
pub type VarId = usize;
/// Index of a run-time parameter (a model constant) in `Layout::params`.
pub type ParamId = usize;
/// A kernel-local temporary.
pub type TempId = usize;

/// The shape of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A 64-bit float.
    F64,
    /// A boolean.
    Bool,
}

/// Operations of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op1 {
    /// `-x`
    Neg,
    /// `not x`
    Not,
    /// `|x|`
    Abs,
    /// `floor(x)`
    Floor,
    /// `ceil(x)`
    Ceil,
    /// Truncation toward zero (`int(x)`).
    Trunc,
    /// `sqrt(x)` (correctly rounded).
    Sqrt,
    /// A boolean as 0.0 or 1.0.
    BoolToF64,
}

/// Operations of two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op2 {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `and`
    And,
    /// `or`
    Or,
    /// `a if a < b else b`
    Min,
    /// `a if a > b else b`
    Max,
}

impl Op2 {
    /// The infix symbol of arithmetic and comparisons (as in Rust and Python);
    /// `None` for the logical operators and `Min`/`Max`, which printers spell their way.
    pub fn infix(self) -> Option<&'static str> {
        Some(match self {
            Op2::Add => "+",
            Op2::Sub => "-",
            Op2::Mul => "*",
            Op2::Div => "/",
            Op2::Lt => "<",
            Op2::Le => "<=",
            Op2::Gt => ">",
            Op2::Ge => ">=",
            Op2::Eq => "==",
            Op2::Ne => "!=",
            Op2::And | Op2::Or | Op2::Min | Op2::Max => return None,
        })
    }

    /// Whether the result is a boolean.
    pub fn is_comparison(self) -> bool {
        matches!(self, Op2::Lt | Op2::Le | Op2::Gt | Op2::Ge | Op2::Eq | Op2::Ne)
    }
}

/// Functions called through the ABI (`abi::snnc_<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathFn {
    /// `exp`
    Exp,
    /// `log`
    Log,
    /// `log10`
    Log10,
    /// `sin`
    Sin,
    /// `cos`
    Cos,
    /// `tan`
    Tan,
    /// `sinh`
    Sinh,
    /// `cosh`
    Cosh,
    /// `tanh`
    Tanh,
    /// `arcsin`
    Asin,
    /// `arccos`
    Acos,
    /// `arctan`
    Atan,
    /// `expm1`
    Expm1,
    /// `log1p`
    Log1p,
    /// `exprel`
    Exprel,
    /// `pow(x, y)` (two arguments)
    Pow,
    /// Python's `x % y` (two arguments)
    Mod,
    /// The least `x` with `x / d >= n` (arguments `n`, `d`; not in the language:
    /// lowering's division-free comparisons, see `abi::snnc_quotient_at_least`).
    QuotientAtLeast,
    /// The least `x` with `x / d > n`.
    QuotientAbove,
}

impl MathFn {
    /// The ABI symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            MathFn::Exp => "snnc_exp",
            MathFn::Log => "snnc_log",
            MathFn::Log10 => "snnc_log10",
            MathFn::Sin => "snnc_sin",
            MathFn::Cos => "snnc_cos",
            MathFn::Tan => "snnc_tan",
            MathFn::Sinh => "snnc_sinh",
            MathFn::Cosh => "snnc_cosh",
            MathFn::Tanh => "snnc_tanh",
            MathFn::Asin => "snnc_asin",
            MathFn::Acos => "snnc_acos",
            MathFn::Atan => "snnc_atan",
            MathFn::Expm1 => "snnc_expm1",
            MathFn::Log1p => "snnc_log1p",
            MathFn::Exprel => "snnc_exprel",
            MathFn::Pow => "snnc_pow",
            MathFn::Mod => "snnc_mod",
            MathFn::QuotientAtLeast => "snnc_quotient_at_least",
            MathFn::QuotientAbove => "snnc_quotient_above",
        }
    }

    /// The number of arguments.
    pub fn arity(self) -> usize {
        if matches!(self, MathFn::Pow | MathFn::Mod | MathFn::QuotientAtLeast | MathFn::QuotientAbove) { 2 } else { 1 }
    }

    /// Evaluates the function (the same code the kernels call).
    pub fn eval(self, args: &[f64]) -> f64 {
        use crate::abi::*;
        let x = args.first().copied().unwrap_or(f64::NAN);
        let y = args.get(1).copied().unwrap_or(f64::NAN);
        match self {
            MathFn::Exp => snnc_exp(x),
            MathFn::Log => snnc_log(x),
            MathFn::Log10 => snnc_log10(x),
            MathFn::Sin => snnc_sin(x),
            MathFn::Cos => snnc_cos(x),
            MathFn::Tan => snnc_tan(x),
            MathFn::Sinh => snnc_sinh(x),
            MathFn::Cosh => snnc_cosh(x),
            MathFn::Tanh => snnc_tanh(x),
            MathFn::Asin => snnc_asin(x),
            MathFn::Acos => snnc_acos(x),
            MathFn::Atan => snnc_atan(x),
            MathFn::Expm1 => snnc_expm1(x),
            MathFn::Log1p => snnc_log1p(x),
            MathFn::Exprel => snnc_exprel(x),
            MathFn::Pow => snnc_pow(x, y),
            MathFn::Mod => snnc_mod(x, y),
            MathFn::QuotientAtLeast => snnc_quotient_at_least(x, y),
            MathFn::QuotientAbove => snnc_quotient_above(x, y),
        }
    }
}

/// An expression (a tree; common subexpressions become `Let` temporaries).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A float constant.
    F64(f64),
    /// A boolean constant.
    Bool(bool),
    /// A run-time parameter.
    Param(ParamId),
    /// A state variable at the current item; a `scalar` variable is read at index 0.
    Load(VarId),
    /// A neuron variable at the current synapse's presynaptic (`Pre`) or postsynaptic
    /// (`Post`) neuron, in synapse kernels.
    LoadAt(VarId, At),
    /// A temporary.
    Temp(TempId),
    /// Element `index` of a per-neuron table (`Module::tables`).
    Table(usize),
    /// The current item's neuron index, as a float.
    Index,
    /// In synapse kernels: the index of the presynaptic (`Pre`) or postsynaptic (`Post`)
    /// neuron of the current synapse, as a float.
    IndexAt(At),
    /// Time at the start of the step.
    Time,
    /// The time step.
    Dt,
    /// An operation of one operand.
    Unary(Op1, Box<Expr>),
    /// An operation of two operands.
    Binary(Op2, Box<Expr>, Box<Expr>),
    /// A call through the ABI.
    Call(MathFn, Vec<Expr>),
    /// `if cond { a } else { b }` (both evaluated).
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Uniform in [0, 1) for (seed, step, index, stream).
    Rand(u32),
    /// Standard normal for (seed, step, index, stream).
    Randn(u32),
    /// Element `offset + index` of the environment's observation array
    /// (`KernelArgs::env`). Lowering makes `index` a whole number within the
    /// observation (truncated and clamped in the IR), so back ends only convert it
    /// to an integer. Kernels never write the array.
    Env {
        /// Where the observation starts.
        offset: u32,
        /// Which of its values: a whole number in `0..len`, as a float.
        index: Box<Expr>,
    },
}

impl Expr {
    /// `a op b`.
    pub fn bin(op: Op2, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// `op a`.
    pub fn un(op: Op1, a: Expr) -> Expr {
        Expr::Unary(op, Box::new(a))
    }

    /// `c ? a : b`.
    pub fn select(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Select(Box::new(c), Box::new(a), Box::new(b))
    }

    /// The expression's type, given the types of temporaries.
    pub fn ty(&self, temps: &[Ty]) -> Ty {
        match self {
            Expr::Bool(_) => Ty::Bool,
            Expr::Temp(t) => temps.get(*t).copied().unwrap_or(Ty::F64),
            Expr::Unary(Op1::Not, _) => Ty::Bool,
            Expr::Binary(op, ..) if op.is_comparison() || matches!(op, Op2::And | Op2::Or) => Ty::Bool,
            Expr::Select(_, a, _) => a.ty(temps),
            _ => Ty::F64,
        }
    }

    /// Calls `f` on every direct child.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Unary(_, a) => vec![a],
            Expr::Binary(_, a, b) => vec![a, b],
            Expr::Call(_, args) => args.iter().collect(),
            Expr::Select(c, a, b) => vec![c, a, b],
            Expr::Env { index, .. } => vec![index],
            _ => Vec::new(),
        }
    }

    /// Whether the value can differ between the items of a loop (or depends on a
    /// random draw or memory that the body may write).
    pub fn varies_per_item(&self) -> bool {
        match self {
            Expr::Load(_)
            | Expr::LoadAt(..)
            | Expr::Index
            | Expr::IndexAt(_)
            | Expr::Table(_)
            | Expr::Rand(_)
            | Expr::Randn(_)
            | Expr::Temp(_) => true,
            _ => self.children().iter().any(|c| c.varies_per_item()),
        }
    }
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// Assigns a temporary (once).
    Let(TempId, Expr),
    /// Writes a state variable of the current item (index 0 for `scalar` variables).
    Store(VarId, Expr),
    /// Writes a neuron variable at the current synapse's presynaptic or postsynaptic neuron.
    StoreAt(VarId, At, Expr),
    /// Runs statements if the condition holds.
    If(Expr, Vec<Stmt>),
    /// Appends the current item's index to the spike list.
    EmitSpike,
}

/// Calls `f` on every expression of a statement (nested ones included), in order.
pub fn visit_exprs(s: &Stmt, f: &mut impl FnMut(&Expr)) {
    fn visit(e: &Expr, f: &mut impl FnMut(&Expr)) {
        f(e);
        for c in e.children() {
            visit(c, f);
        }
    }
    match s {
        Stmt::Let(_, e) | Stmt::Store(_, e) | Stmt::StoreAt(_, _, e) => visit(e, f),
        Stmt::If(c, body) => {
            visit(c, f);
            body.iter().for_each(|s| visit_exprs(s, f));
        }
        Stmt::EmitSpike => {}
    }
}

/// What a kernel touches, for a back end to load once at its start: variables
/// (read or written), parameters and tables (each sorted, without repeats), and
/// random streams (in order of first use; `normals` those drawn by `randn`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Uses {
    pub vars: Vec<VarId>,
    pub params: Vec<usize>,
    pub tables: Vec<usize>,
    pub streams: Vec<u32>,
    pub normals: Vec<u32>,
}

impl Uses {
    /// What the statements touch.
    pub fn of<'s>(stmts: impl IntoIterator<Item = &'s Stmt>) -> Uses {
        let mut uses = Uses::default();
        for s in stmts {
            visit_exprs(s, &mut |e| match e {
                Expr::Load(v) | Expr::LoadAt(v, _) => uses.vars.push(*v),
                Expr::Param(p) => uses.params.push(*p),
                Expr::Table(t) => uses.tables.push(*t),
                Expr::Rand(k) | Expr::Randn(k) if !uses.streams.contains(k) => {
                    uses.streams.push(*k);
                    if matches!(e, Expr::Randn(_)) {
                        uses.normals.push(*k);
                    }
                }
                _ => {}
            });
            visit_stores(s, &mut |v| uses.vars.push(v));
        }
        for list in [&mut uses.vars, &mut uses.params, &mut uses.tables] {
            list.sort_unstable();
            list.dedup();
        }
        uses
    }
}

impl Uses {
    /// What an expression reads.
    pub fn of_expr(e: &Expr) -> Uses {
        Uses::of(&[Stmt::Let(0, e.clone())])
    }
}

impl Kernel {
    /// The variables, parameters, tables and random streams the kernel uses.
    pub fn uses(&self) -> Uses {
        Uses::of(self.scalar.iter().chain(&self.body))
    }
}

/// Calls `f` with every variable a statement stores (inside `if`s too).
pub fn visit_stores(s: &Stmt, f: &mut impl FnMut(VarId)) {
    match s {
        Stmt::Store(v, _) | Stmt::StoreAt(v, _, _) => f(*v),
        Stmt::If(_, body) => body.iter().for_each(|s| visit_stores(s, f)),
        Stmt::Let(..) | Stmt::EmitSpike => {}
    }
}

/// The variables some statement of the list stores.
pub fn stored_vars(stmts: &[Stmt]) -> Vec<VarId> {
    let mut out = Vec::new();
    stmts.iter().for_each(|s| visit_stores(s, &mut |v| out.push(v)));
    out
}

/// Which neuron of a synapse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum At {
    /// The presynaptic neuron (`i`).
    Pre,
    /// The postsynaptic neuron (`j`).
    Post,
}

/// What a kernel loops over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// Every neuron of the population (`KernelArgs::n` of them).
    Neurons,
    /// Every index in the population's spike list (`KernelArgs::n` of them).
    Spikes,
    /// The body runs once, with index 0.
    Once,
    /// Every synapse of a pathway (`n` of them), with its pre- and postsynaptic neuron.
    Synapses,
    /// The outgoing synapses of each presynaptic neuron in the spike list (`n` spikes).
    PreSpikes,
    /// The incoming synapses of each postsynaptic neuron in the spike list (`n` spikes).
    PostSpikes,
    /// Candidate synapses from presynaptic neuron `KernelArgs::aux` to every
    /// postsynaptic neuron (`n` of them): accepted ones are appended like spikes.
    Pairs,
    /// The synapses whose ids are in the spike list (`n` of them): delayed events.
    SynapseList,
}

/// What a kernel is for: decides when the runtime calls it.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelKind {
    /// Initial values, once before the first step.
    Init,
    /// Periodic code at the start of a step: every `period` steps from step 0.
    Periodic {
        /// Steps between calls.
        period: u64,
    },
    /// Integration of the differential equations.
    StateUpdate,
    /// The spike condition; fills the spike list.
    Threshold,
    /// After-spike statements, over the spike list.
    Reset,
    /// Computes the population's subexpressions into their arrays, for monitors
    /// (called just before they record).
    Observe,
    /// Which candidate pairs of a pathway become synapses (`condition`, `p`).
    Connect,
    /// Sets a neuron parameter of the target group to zero before summed variables add into it.
    SummedReset,
    /// Adds each synapse's summed-variable term into its neuron (before state updates).
    Summed,
    /// Statements on presynaptic spikes (after event-driven variables are brought up to date).
    OnPre,
    /// Statements on postsynaptic spikes.
    OnPost,
    /// An environment's `sense` block: at the start of every step, after the
    /// environment has written its observations.
    Sense,
    /// An environment's `reward` block: after every move of the agent.
    Reward,
}

/// One compiled function.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// A unique name (`S_state_update`).
    pub name: String,
    /// When it runs.
    pub kind: KernelKind,
    /// The population it belongs to (index into `Layout::populations`).
    pub population: usize,
    /// What it loops over.
    pub looping: Loop,
    /// Runs once per call, before the loop.
    pub scalar: Vec<Stmt>,
    /// Runs per item.
    pub body: Vec<Stmt>,
    /// Types of the temporaries.
    pub temps: Vec<Ty>,
    /// For a state update: the integration method used (`auto` resolved).
    pub method: Option<crate::model::Method>,
    /// For synapse kernels: the pathway (index into `Layout::pathways`).
    pub pathway: Option<usize>,
}

/// A population's place in the state: a group, or the shared block (size 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    /// The group's name, or `shared`.
    pub name: String,
    /// Number of neurons.
    pub size: u32,
    /// Its variables (global ids).
    pub vars: Vec<VarId>,
    /// Whether its neurons can spike (it has a threshold).
    pub spiking: bool,
}

/// A state variable.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    /// Its name.
    pub name: String,
    /// Its population.
    pub population: usize,
    /// Its value before `init` runs.
    pub default: f64,
    /// Its dimension (for monitors and output files).
    pub dim: crate::units::Dimension,
    /// Whether it holds booleans (as 0.0/1.0).
    pub boolean: bool,
    /// One value for the whole population (`(shared)`, or the shared block): its array
    /// has one element and every item reads and writes index 0.
    pub scalar: bool,
}

/// A pathway: its synapses form a population whose size is known only after the
/// connectivity is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct PathwayInfo {
    /// The pathway's name.
    pub name: String,
    /// The population holding the synapse variables.
    pub population: usize,
    /// Presynaptic group (population) and the neuron range of the slice.
    pub source: (usize, u32, u32),
    /// Postsynaptic group (population) and the neuron range of the slice.
    pub target: (usize, u32, u32),
    /// How the synapses are drawn when no connect kernel decides.
    pub rule: ConnectRule,
    /// `lastupdate` of event-driven variables, if any.
    pub lastupdate: Option<VarId>,
    /// The transmission delay of each synapse in seconds, if the pathway has delays
    /// (its `on_pre` kernel then loops over the events due, `Loop::SynapseList`).
    pub delay: Option<VarId>,
}

/// How a pathway's synapses are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectRule {
    /// Its `Connect` kernel accepts candidate pairs (condition, `p`, `j`).
    Kernel,
    /// Exactly these (presynaptic, postsynaptic) pairs, relative to the slices.
    Explicit(Vec<u32>, Vec<u32>),
    /// Each postsynaptic neuron gets this many distinct presynaptic neurons, drawn uniformly.
    FanIn(u32),
    /// Each presynaptic neuron gets this many distinct postsynaptic neurons, drawn uniformly.
    FanOut(u32),
}

/// A run-time parameter (a model constant).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// Its name.
    pub name: String,
    /// Its value in SI units.
    pub value: f64,
}

/// Where everything lives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Populations: the groups in model order, then `shared`.
    pub populations: Vec<Population>,
    /// Every state variable.
    pub vars: Vec<VarInfo>,
    /// Run-time parameters, indexed like `Model::constants`.
    pub params: Vec<ParamInfo>,
    /// Pathways, in model order.
    pub pathways: Vec<PathwayInfo>,
}

impl Layout {
    /// The global id of a population's variable by name.
    pub fn var(&self, population: usize, name: &str) -> Option<VarId> {
        self.populations.get(population)?.vars.iter().copied().find(|&v| self.vars[v].name == name)
    }

    /// A population by name.
    pub fn population(&self, name: &str) -> Option<usize> {
        self.populations.iter().position(|p| p.name == name)
    }
}

/// A lowered model: layout and kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    /// The state layout and parameters.
    pub layout: Layout,
    /// The kernels, in schedule order within each kind.
    pub kernels: Vec<Kernel>,
    /// Per-neuron value tables (`Expr::Table`).
    pub tables: Vec<Vec<f64>>,
    /// Prescribed spikes (`SpikeGeneratorGroup`): population, then (step, neuron) in time order.
    pub generators: Vec<(usize, Vec<(u64, u32)>)>,
    /// The time step.
    pub dt: f64,
    /// The environment the model is bound to, if any.
    pub environment: Option<EnvironmentInfo>,
    /// Run constants: values computed from parameters and `dt` alone (`exp(-dt/tau)`),
    /// once per run rather than in every call of the kernels that use them.
    /// `Expr::Param(layout.params.len() + k)` is `run_constants[k]`, whose
    /// expression reads parameters, `dt` and earlier run constants.
    pub run_constants: Vec<Expr>,
}

impl Module {
    /// Whether kernel `k` computes only from the observations, constants and
    /// indices, into variables no other kernel but `init` writes: run again before
    /// the observations change, it would store the same values.
    pub fn observation_only(&self, k: usize) -> bool {
        let kernel = &self.kernels[k];
        let mut pure = true;
        for s in kernel.scalar.iter().chain(&kernel.body) {
            visit_exprs(s, &mut |e| {
                pure &= !matches!(e, Expr::Load(_) | Expr::LoadAt(..) | Expr::Time | Expr::Rand(_) | Expr::Randn(_));
            });
        }
        let targets = [stored_vars(&kernel.scalar), stored_vars(&kernel.body)].concat();
        let written_elsewhere = self.kernels.iter().enumerate().any(|(other, kernel)| {
            other != k
                && kernel.kind != KernelKind::Init
                && [&kernel.scalar, &kernel.body].iter().any(|s| stored_vars(s).iter().any(|v| targets.contains(v)))
        });
        pure && !written_elsewhere
    }

    /// The kernels' parameter array: the parameters' values, then the run
    /// constants computed from them (with the functions the kernels call).
    pub fn parameter_values(&self, params: &[f64]) -> Vec<f64> {
        let mut values = params.to_vec();
        for e in &self.run_constants {
            let value = opt::evaluate_with(e, &values, self.dt);
            values.push(value);
        }
        values
    }
}

/// What the runtime needs of an environment binding (its blocks are `Sense` and
/// `Reward` kernels).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentInfo {
    /// The environment's kind.
    pub spec: crate::env::EnvironmentSpec,
    /// The value of each of the kind's settings.
    pub settings: Vec<f64>,
    /// How actions are decided, if the model acts.
    pub decision: Option<DecisionInfo>,
}

/// `act G every n steps { ... }`, in steps and populations.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionInfo {
    /// The voting population.
    pub population: usize,
    /// Steps between decisions (the first at step `every - 1` of an episode).
    pub every: u64,
    /// Action groups: neuron `k` votes for action `k / (size / groups)`.
    pub groups: u32,
    /// Probability of a uniformly random action.
    pub epsilon: f64,
}

//! The checked model: every name resolved, every dimension checked, every
//! literal in SI base units. This is what the front end hands to the rest of the
//! pipeline (the kernel IR is built from it).
//!
//! Invariants (established by `sema`, relied on by everything after it):
//! - every `VarRef` points at an existing variable of the right population;
//! - every expression's `ty` is its checked type; units appear only as `Dimension`s;
//! - subexpressions do not depend on themselves (directly or through others);
//! - constants' values are known (`Constant::value`), but expressions refer to them
//!   by `ConstId` so that a run can override them.

use crate::ast::{AssignOp, BinaryOp, UnaryOp};
use crate::span::Span;
use crate::units::Dimension;

/// The type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// A real number with a physical dimension.
    Float(Dimension),
    /// A condition.
    Bool,
}

impl Type {
    /// Dimensionless number.
    pub const NUMBER: Type = Type::Float(Dimension::ONE);

    /// The dimension of a number, `None` for a condition.
    pub fn dim(self) -> Option<Dimension> {
        match self {
            Type::Float(d) => Some(d),
            Type::Bool => None,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Float(d) => write!(f, "{d}"),
            Type::Bool => f.write_str("boolean"),
        }
    }
}

/// Index of a constant in `Model::constants`.
pub type ConstId = usize;

/// A typed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// Its checked type.
    pub ty: Type,
    /// Where it was written.
    pub span: Span,
}

impl Expr {
    /// Calls `f` for this expression and every expression inside it, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Unary(_, a) => a.visit(f),
            ExprKind::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            ExprKind::Call(_, args) => args.iter().for_each(|a| a.visit(f)),
            ExprKind::Cond(c, t, o) => {
                c.visit(f);
                t.visit(f);
                o.visit(f);
            }
            ExprKind::Observation { index, .. } => index.visit(f),
            ExprKind::Literal(_)
            | ExprKind::Bool(_)
            | ExprKind::Const(_)
            | ExprKind::Var(_)
            | ExprKind::Builtin(_)
            | ExprKind::Noise(_)
            | ExprKind::Table(_) => {}
        }
    }

    /// Whether this expression or one inside it satisfies `p`.
    pub fn any(&self, p: impl Fn(&ExprKind) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= p(&e.kind));
        found
    }
}

/// The forms of typed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number in SI base units.
    Literal(f64),
    /// `True` / `False`.
    Bool(bool),
    /// A named constant (overridable at run time).
    Const(ConstId),
    /// A variable.
    Var(VarRef),
    /// `t`, `dt`, `i`, ...
    Builtin(Builtin),
    /// A prefix operator.
    Unary(UnaryOp, Box<Expr>),
    /// An infix operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A call of a built-in function.
    Call(Func, Vec<Expr>),
    /// `then if cond else otherwise`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// White noise `xi` (index into the population's `noise` list).
    Noise(usize),
    /// Element `i` (the neuron's index) of a per-neuron list of values in SI units;
    /// only in group bodies, where the list has one value per neuron.
    Table(Vec<f64>),
    /// Element `index` (rounded toward zero, clamped to `0..len`) of an environment
    /// observation that starts at `offset` in the observation array; only in
    /// environment bindings.
    Observation {
        /// Its name.
        name: &'static str,
        /// Where the observation starts in the flat array.
        offset: u32,
        /// How many values it has.
        len: u32,
        /// Which of them (a number).
        index: Box<Expr>,
    },
}

/// A reference to a variable, relative to the code it appears in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarRef {
    /// A variable of the population whose code this is (neuron type, pathway, shared block).
    Local(usize),
    /// A variable of the presynaptic group (synapse code: `v_pre`).
    Pre(usize),
    /// A variable of the postsynaptic group (synapse code: `v_post`, or an unsuffixed neuron variable).
    Post(usize),
    /// A network-wide shared variable (`shared { ... }`).
    Shared(usize),
}

/// Built-in names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// Time at the start of the step.
    T,
    /// The time step.
    Dt,
    /// Index of the neuron, or of the presynaptic neuron in synapse code.
    I,
    /// Index of the postsynaptic neuron (synapse code).
    J,
    /// Size of the group (number of synapses in synapse code).
    N,
    /// Size of the presynaptic group.
    NPre,
    /// Size of the postsynaptic group.
    NPost,
    /// The number pi.
    Pi,
    /// Infinity.
    Inf,
}

impl Builtin {
    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::T => "t",
            Builtin::Dt => "dt",
            Builtin::I => "i",
            Builtin::J => "j",
            Builtin::N => "N",
            Builtin::NPre => "N_pre",
            Builtin::NPost => "N_post",
            Builtin::Pi => "pi",
            Builtin::Inf => "inf",
        }
    }
}

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// `exp(x)`
    Exp,
    /// `log(x)`
    Log,
    /// `log10(x)`
    Log10,
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
    /// `sin(x)`
    Sin,
    /// `cos(x)`
    Cos,
    /// `tan(x)`
    Tan,
    /// `sinh(x)`
    Sinh,
    /// `cosh(x)`
    Cosh,
    /// `tanh(x)`
    Tanh,
    /// `arcsin(x)`
    Arcsin,
    /// `arccos(x)`
    Arccos,
    /// `arctan(x)`
    Arctan,
    /// `exprel(x) = (exp(x) - 1)/x`
    Exprel,
    /// `expm1(x)`
    Expm1,
    /// `log1p(x)`
    Log1p,
    /// `floor(x)`
    Floor,
    /// `ceil(x)`
    Ceil,
    /// `sign(x)`
    Sign,
    /// `int(x)`: truncation toward zero; `int(condition)` is 0 or 1
    Int,
    /// `clip(x, low, high)`
    Clip,
    /// `minimum(a, b)`
    Min,
    /// `maximum(a, b)`
    Max,
    /// `rand()`: uniform in [0, 1)
    Rand,
    /// `randn()`: standard normal
    Randn,
}

impl Func {
    /// Every function, for lookups and suggestions.
    pub const ALL: [Func; 26] = [
        Func::Exp,
        Func::Log,
        Func::Log10,
        Func::Sqrt,
        Func::Abs,
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Sinh,
        Func::Cosh,
        Func::Tanh,
        Func::Arcsin,
        Func::Arccos,
        Func::Arctan,
        Func::Exprel,
        Func::Expm1,
        Func::Log1p,
        Func::Floor,
        Func::Ceil,
        Func::Sign,
        Func::Int,
        Func::Clip,
        Func::Min,
        Func::Max,
        Func::Rand,
        Func::Randn,
    ];

    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Log10 => "log10",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Tanh => "tanh",
            Func::Arcsin => "arcsin",
            Func::Arccos => "arccos",
            Func::Arctan => "arctan",
            Func::Exprel => "exprel",
            Func::Expm1 => "expm1",
            Func::Log1p => "log1p",
            Func::Floor => "floor",
            Func::Ceil => "ceil",
            Func::Sign => "sign",
            Func::Int => "int",
            Func::Clip => "clip",
            Func::Min => "minimum",
            Func::Max => "maximum",
            Func::Rand => "rand",
            Func::Randn => "randn",
        }
    }

    /// Looks a function up by name.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The number of arguments.
    pub fn arity(self) -> usize {
        match self {
            Func::Rand | Func::Randn => 0,
            Func::Clip => 3,
            Func::Min | Func::Max => 2,
            _ => 1,
        }
    }

    /// Whether the function draws random numbers.
    pub fn is_random(self) -> bool {
        matches!(self, Func::Rand | Func::Randn)
    }
}

/// A statement `target op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// The variable assigned.
    pub target: VarRef,
    /// The operator.
    pub op: AssignOp,
    /// The value.
    pub value: Expr,
    /// Where it was written.
    pub span: Span,
}

/// The three kinds of variable, as in Brian2.
#[derive(Clone, Debug, PartialEq)]
pub enum VarKind {
    /// `dx/dt = rhs`
    Differential(Expr),
    /// `x = expr`
    Subexpression(Expr),
    /// `x : unit`: set by `init`, statements or the environment.
    Parameter,
}

/// Flags of a variable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `(unless refractory)`
    pub unless_refractory: bool,
    /// `(constant)`
    pub constant: bool,
    /// `(shared)`: one value for the whole group.
    pub shared: bool,
    /// `(clock-driven)`
    pub clock_driven: bool,
    /// `(event-driven)`
    pub event_driven: bool,
    /// `(summed)`
    pub summed: bool,
    /// `(constant over dt)`
    pub constant_over_dt: bool,
    /// `(linked)`
    pub linked: bool,
}

impl Flags {
    /// The flags as written, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.unless_refractory, "unless refractory"),
            (self.constant, "constant"),
            (self.shared, "shared"),
            (self.clock_driven, "clock-driven"),
            (self.event_driven, "event-driven"),
            (self.summed, "summed"),
            (self.constant_over_dt, "constant over dt"),
            (self.linked, "linked"),
        ];
        all.into_iter().filter(|(on, _)| *on).map(|(_, name)| name).collect()
    }
}

/// A variable of a population.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its type (`boolean` parameters are conditions).
    pub ty: Type,
    /// Whether it was declared `integer`.
    pub integer: bool,
    /// How its value is defined.
    pub kind: VarKind,
    /// Its flags.
    pub flags: Flags,
    /// The equation that declares it (the `refractory` item for implicit variables).
    pub span: Span,
    /// Added by the compiler, not declared: `lastspike` and `not_refractory` of a
    /// neuron type with a refractory period (readable, never assigned by code).
    pub implicit: bool,
}

impl Variable {
    /// Whether statements may assign it (in `init` constants may be set too).
    pub fn is_assignable(&self, in_init: bool) -> bool {
        if self.implicit {
            return false;
        }
        match self.kind {
            VarKind::Subexpression(_) => false,
            VarKind::Parameter => in_init || !self.flags.constant,
            VarKind::Differential(_) => true,
        }
    }
}

/// An integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// No `method` given: chosen when the equations are integrated.
    Auto,
    /// Forward Euler (Euler-Maruyama with noise).
    Euler,
    /// Midpoint Runge-Kutta.
    Rk2,
    /// Classic Runge-Kutta.
    Rk4,
    /// Stochastic Heun.
    Heun,
    /// Exponential Euler (equations linear in their own variable).
    ExponentialEuler,
    /// Exact integration of linear equations with constant coefficients.
    Exact,
}

impl Method {
    /// Every method with its names (Brian2's `linear` is `exact`).
    pub const NAMES: [(&'static str, Method); 8] = [
        ("euler", Method::Euler),
        ("rk2", Method::Rk2),
        ("rk4", Method::Rk4),
        ("heun", Method::Heun),
        ("exponential_euler", Method::ExponentialEuler),
        ("exact", Method::Exact),
        ("linear", Method::Exact),
        ("auto", Method::Auto),
    ];

    /// Looks a method up by name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::NAMES.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The method's name.
    pub fn name(self) -> &'static str {
        Method::NAMES.iter().find(|(_, m)| *m == self).map_or("auto", |(n, _)| n)
    }

    /// Whether the method integrates stochastic (`xi`) equations.
    pub fn supports_noise(self) -> bool {
        matches!(self, Method::Auto | Method::Euler | Method::Heun)
    }
}

/// How often periodic code runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Period {
    /// Every `n` steps.
    Steps(u64),
    /// Every so much model time (a constant expression, in seconds).
    Time(f64),
}

/// Code that runs periodically (`every_step { }`, `every 50 ms { }`).
#[derive(Clone, Debug, PartialEq)]
pub struct Periodic {
    /// How often.
    pub period: Period,
    /// What runs.
    pub body: Vec<Stmt>,
    /// Where it was written.
    pub span: Span,
}

/// The refractory period.
#[derive(Clone, Debug, PartialEq)]
pub enum Refractory {
    /// A duration (an expression of dimension time).
    Duration(Expr),
    /// A condition: refractory while it holds (after a spike).
    Condition(Expr),
}

/// The code and variables of a population: a neuron type, a pathway's synapses, or the shared block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dynamics {
    /// Variables in declaration order; `VarRef::Local(k)` is `variables[k]`.
    pub variables: Vec<Variable>,
    /// Names of the noise terms (`xi`, `xi_1`, ...); `ExprKind::Noise(k)` is `noise[k]`.
    pub noise: Vec<String>,
    /// The integration method.
    pub method: Option<Method>,
    /// `init { }` statements.
    pub init: Vec<Stmt>,
    /// Periodic statements.
    pub periodic: Vec<Periodic>,
}

impl Dynamics {
    /// Looks a variable up by name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.variables.iter().position(|v| v.name == name)
    }

    /// The integration method (`Auto` when none was given).
    pub fn method(&self) -> Method {
        self.method.unwrap_or(Method::Auto)
    }
}

/// A neuron type.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronType {
    /// Its name.
    pub name: String,
    /// Variables and code.
    pub dynamics: Dynamics,
    /// The spike condition.
    pub threshold: Option<Expr>,
    /// Statements run after a spike.
    pub reset: Vec<Stmt>,
    /// The refractory period or condition.
    pub refractory: Option<Refractory>,
    /// Where it was defined.
    pub span: Span,
}

/// What kind of group.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupKind {
    /// Neurons of a type (index into `Model::neuron_types`).
    Neurons(usize),
    /// Poisson spike trains with `rates` (dimension 1/second; may use `i` and `t`).
    Poisson {
        /// The rate expression.
        rates: Expr,
    },
    /// Prescribed spikes: neuron `indices[k]` spikes at `times[k]` (seconds).
    SpikeGenerator {
        /// Neuron indices.
        indices: Vec<u32>,
        /// Spike times in seconds.
        times: Vec<f64>,
    },
}

/// A parameter of a group bound to a variable of another group (`(linked)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The linked parameter (index into the group's neuron type variables).
    pub var: usize,
    /// The group it reads from.
    pub source_group: usize,
    /// The variable it reads.
    pub source_var: usize,
}

/// A group of neurons.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: GroupKind,
    /// The number of neurons.
    pub size: u32,
    /// Initial values for this group (after the type's `init`).
    pub init: Vec<Stmt>,
    /// Linked parameters.
    pub links: Vec<Link>,
    /// Where it was defined.
    pub span: Span,
}

/// A range `start..end` of neurons of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSlice {
    /// The group (index into `Model::groups`).
    pub group: usize,
    /// First neuron.
    pub start: u32,
    /// One past the last neuron.
    pub end: u32,
}

/// How synapses are drawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connectivity {
    /// A condition on `i`, `j` (and neuron variables).
    pub condition: Option<Expr>,
    /// The probability of each candidate pair.
    pub p: Option<Expr>,
    /// Exactly this many inputs per postsynaptic neuron.
    pub fan_in: Option<u32>,
    /// Exactly this many outputs per presynaptic neuron.
    pub fan_out: Option<u32>,
    /// Explicit lists of presynaptic and postsynaptic indices.
    pub explicit: Option<(Vec<u32>, Vec<u32>)>,
    /// `j = expr`: for each presynaptic `i`, the one postsynaptic index (skipped when out of range).
    pub j: Option<Expr>,
}

/// A summed variable: `x_post = expr : unit (summed)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Summed {
    /// The synapse subexpression computing each synapse's term.
    pub var: usize,
    /// `Post(k)` or `Pre(k)`: the neuron parameter receiving the sum.
    pub target: VarRef,
}

/// A pathway: synapses of a type between two groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Pathway {
    /// Its name (given, or `Source_Target`).
    pub name: String,
    /// The synapse type's name.
    pub synapse_type: String,
    /// Presynaptic neurons.
    pub source: GroupSlice,
    /// Postsynaptic neurons.
    pub target: GroupSlice,
    /// Per-synapse variables and their code.
    pub dynamics: Dynamics,
    /// Statements run on a presynaptic spike.
    pub on_pre: Vec<Stmt>,
    /// Statements run on a postsynaptic spike.
    pub on_post: Vec<Stmt>,
    /// Summed variables.
    pub summed: Vec<Summed>,
    /// How synapses are drawn.
    pub connectivity: Connectivity,
    /// The transmission delay of presynaptic spikes (may depend on `i`, `j`, `rand()`).
    pub delay: Option<Expr>,
    /// Where it was defined.
    pub span: Span,
}

/// What a monitor records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorKind {
    /// Every spike of groups.
    Spikes,
    /// Sampled variables.
    State,
    /// Population rates.
    Rate,
    /// Synaptic variables of pathways (at the end of each episode or run, or periodically).
    Weights,
}

/// What object a monitor target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A group.
    Group(usize),
    /// A pathway.
    Pathway(usize),
    /// The shared block.
    Shared,
}

/// One recorded thing.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorTarget {
    /// The object.
    pub object: Object,
    /// The variable (index in the object's variables), if any.
    pub var: Option<usize>,
    /// Index ranges recorded (all when `None`).
    pub indices: Option<Vec<(u32, u32)>>,
}

/// A monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// What it records.
    pub kind: MonitorKind,
    /// Its targets.
    pub targets: Vec<MonitorTarget>,
    /// How often (every step, or at episode ends for weights, when `None`).
    pub every: Option<Period>,
    /// Where it was defined.
    pub span: Span,
}

/// The environment a model is bound to and how (`environment GridWorld { ... }`).
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// Its kind.
    pub spec: crate::env::EnvironmentSpec,
    /// The value of every setting of the kind, in the spec's order.
    pub settings: Vec<f64>,
    /// `sense` blocks: run at the start of every step, after the environment
    /// has updated its observations.
    pub sense: Vec<EnvCode>,
    /// `reward` blocks: run after every move of the agent (`reward` is its reward).
    pub reward: Vec<EnvCode>,
    /// How actions are decided (`act`), if the model acts.
    pub decision: Option<Decision>,
    /// Where it was defined.
    pub span: Span,
}

impl Environment {
    /// A setting's value by name.
    pub fn setting(&self, name: &str) -> Option<f64> {
        let k = self.spec.settings.iter().position(|s| s.name == name)?;
        self.settings.get(k).copied()
    }
}

/// Statements of a `sense` or `reward` block.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvCode {
    /// The group whose neurons the statements run for (`VarRef::Local` are its
    /// variables); `None`: they run once and write shared variables.
    pub group: Option<usize>,
    /// The statements.
    pub body: Vec<Stmt>,
    /// Where the block was written.
    pub span: Span,
}

/// How the agent's action is decided from spikes (`act M every 10 steps { ... }`):
/// the group's neurons are split into `groups` consecutive equal parts, part `a`
/// voting for action `a`. Every `every` steps, the action is the part with most
/// spikes over those steps (a tie goes to a uniformly drawn one of the tied), or
/// uniformly random with probability `epsilon` or when the group was silent.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The voting group.
    pub group: usize,
    /// Time between decisions; the first is at step `every - 1` (in steps) of an episode.
    pub every: Period,
    /// Number of action groups (the environment's number of actions).
    pub groups: u32,
    /// Probability of a uniformly random action.
    pub epsilon: f64,
}

/// A named constant.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// Its name.
    pub name: String,
    /// Its value in SI base units.
    pub value: f64,
    /// Its dimension.
    pub dim: Dimension,
    /// Where it was defined.
    pub span: Span,
    /// Its definition had errors (never so in a model `check` returns).
    pub(crate) failed: bool,
}

impl Constant {
    /// A checked constant.
    pub fn new(name: impl Into<String>, value: f64, dim: crate::units::Dimension, span: Span) -> Constant {
        Constant { name: name.into(), value, dim, span, failed: false }
    }
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunLength {
    /// A number of steps.
    Steps(u64),
    /// Model time in seconds.
    Duration(f64),
}

/// The checked model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The time step in seconds.
    pub dt: f64,
    /// The run length, if the file gives one.
    pub run_length: Option<RunLength>,
    /// The random seed, if the file gives one.
    pub seed: Option<u64>,
    /// Named constants.
    pub constants: Vec<Constant>,
    /// Network-wide shared variables.
    pub shared: Dynamics,
    /// Neuron types.
    pub neuron_types: Vec<NeuronType>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Pathways.
    pub pathways: Vec<Pathway>,
    /// Monitors.
    pub monitors: Vec<Monitor>,
    /// The environment binding.
    pub environment: Option<Environment>,
}

impl Model {
    /// Looks a constant up by name.
    pub fn constant(&self, name: &str) -> Option<&Constant> {
        self.constants.iter().find(|c| c.name == name)
    }

    /// Looks a group up by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The variables of a group (empty for generators).
    pub fn group_dynamics(&self, group: usize) -> Option<&Dynamics> {
        match self.groups.get(group)?.kind {
            GroupKind::Neurons(t) => self.neuron_types.get(t).map(|t| &t.dynamics),
            _ => None,
        }
    }
}

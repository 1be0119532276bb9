//! The untyped syntax tree of a model file: what was written, with spans, no meaning yet.

use crate::span::Span;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A whole model file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// Top-level items in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
#[expect(clippy::large_enum_variant, reason = "a file has a few dozen items; boxing them buys nothing")]
pub enum Item {
    /// `const tau = 20 ms`
    Const(ConstDef),
    /// `dt = 0.1 ms`, `duration = 1 s`, `seed = 7`
    Setting(Setting),
    /// `neuron LIF { ... }`
    Neuron(TypeDef),
    /// `synapse STDP { ... }`
    Synapse(TypeDef),
    /// `shared { ... }`: network-wide scalar variables.
    Shared(TypeDef),
    /// `group S = LIF(64) { ... }`
    Group(GroupDef),
    /// `connect SM = S -> M with ThreeFactor { ... }`
    Connect(ConnectDef),
    /// `monitor state S.v every 100 steps`
    Monitor(MonitorDef),
    /// `environment GridWorld { ... }`
    Environment(EnvironmentDef),
}

/// `const name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDef {
    /// The constant's name.
    pub name: Ident,
    /// Its value: an expression of numbers, units and earlier constants.
    pub value: Expr,
    /// The whole definition.
    pub span: Span,
}

/// `name = value` at the top level, in a group or connect body, or in an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// The setting's name.
    pub name: Ident,
    /// Its value.
    pub value: Expr,
    /// The whole setting.
    pub span: Span,
}

/// A neuron type, synapse type or the shared block: a list of body items.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDef {
    /// The type's name (`shared` for the shared block).
    pub name: Ident,
    /// The items in source order.
    pub body: Vec<BodyItem>,
    /// The whole definition.
    pub span: Span,
}

/// One item of a type's body.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyItem {
    /// What it is.
    pub kind: BodyItemKind,
    /// The whole item (keyword included).
    pub span: Span,
    /// The keyword's span.
    pub keyword: Span,
}

/// The kinds of body item.
#[derive(Clone, Debug, PartialEq)]
pub enum BodyItemKind {
    /// `equations { ... }`
    Equations(Vec<Equation>),
    /// `threshold expr`
    Threshold(Expr),
    /// `reset { ... }`
    Reset(Vec<Stmt>),
    /// `refractory expr` (a duration or a condition)
    Refractory(Expr),
    /// `method name`
    Method(Ident),
    /// `init { ... }`
    Init(Vec<Stmt>),
    /// `on_pre { ... }`
    OnPre(Vec<Stmt>),
    /// `on_post { ... }`
    OnPost(Vec<Stmt>),
    /// `every_step { ... }`
    EveryStep(Vec<Stmt>),
    /// `every 50 ms { ... }` (Brian2's `run_regularly`)
    Every(Every, Vec<Stmt>),
}

/// `every <expr> [steps]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Every {
    /// The period: a duration, or a number of steps.
    pub period: Expr,
    /// Whether the word `steps` followed.
    pub steps: bool,
    /// The whole clause.
    pub span: Span,
}

/// One line of an `equations` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    /// Differential equation, subexpression or parameter.
    pub kind: EquationKind,
    /// The variable it defines.
    pub var: Ident,
    /// The right-hand side (none for a parameter).
    pub rhs: Option<Expr>,
    /// The declared unit.
    pub unit: UnitExpr,
    /// The flags in parentheses.
    pub flags: Vec<Flag>,
    /// The whole equation.
    pub span: Span,
}

/// The three kinds of equation, as in Brian2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EquationKind {
    /// `dx/dt = expr : unit`
    Differential,
    /// `x = expr : unit`
    Subexpression,
    /// `x : unit`
    Parameter,
}

/// A flag such as `unless refractory` or `event-driven`, words joined by one space.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    /// The normalized text.
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// A unit expression after `:`.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitExpr {
    /// What it is.
    pub kind: UnitExprKind,
    /// Where it was written.
    pub span: Span,
}

/// The forms of unit expression.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitExprKind {
    /// `1`
    One,
    /// `mV`, `siemens`, `integer`, `boolean`
    Name(String),
    /// `a * b`
    Mul(Box<UnitExpr>, Box<UnitExpr>),
    /// `a / b`
    Div(Box<UnitExpr>, Box<UnitExpr>),
    /// `a ** p`
    Pow(Box<UnitExpr>, f64),
}

/// A statement `target op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// The target: `v`, `I_syn_post`, or `S.I_env` in an environment.
    pub target: Target,
    /// `=`, `+=`, ...
    pub op: AssignOp,
    /// The value.
    pub value: Expr,
    /// The whole statement.
    pub span: Span,
}

/// An assignment target: a name, optionally qualified by a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `S` in `S.I_env`.
    pub group: Option<Ident>,
    /// The variable.
    pub name: Ident,
    /// The whole target.
    pub span: Span,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
}

impl AssignOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
}

/// The forms of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A plain number.
    Number(f64),
    /// A number with a juxtaposed unit: `-65 mV` is `Neg(Quantity(65, mV))`.
    Quantity {
        /// The number.
        value: f64,
        /// The unit word.
        unit: Ident,
        /// `**p` written right after the unit (1 if absent).
        power: i32,
    },
    /// `True` / `False`.
    Bool(bool),
    /// A name, possibly qualified: `v`, `v_post`, `S.v`.
    Name {
        /// `S` in `S.v`.
        group: Option<Ident>,
        /// The name.
        name: Ident,
    },
    /// `f(args)`.
    Call {
        /// The function.
        func: Ident,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// A prefix operator.
    Unary(UnaryOp, Box<Expr>),
    /// An infix operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `a if cond else b`.
    Cond {
        /// The condition.
        cond: Box<Expr>,
        /// The value when true.
        then: Box<Expr>,
        /// The value when false.
        otherwise: Box<Expr>,
    },
    /// `a[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `[a, b, c]`.
    List(Vec<Expr>),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
    /// `not`
    Not,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `**`
    Pow,
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
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::FloorDiv => "//",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "**",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    /// Whether the operator compares two values.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne)
    }
}

/// `group S = LIF(64) { init statements or generator settings }`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDef {
    /// The group's name.
    pub name: Ident,
    /// The neuron type, or a built-in generator (`PoissonGroup`, `SpikeGeneratorGroup`).
    pub type_name: Ident,
    /// The number of neurons.
    pub size: Expr,
    /// The statements of its body.
    pub body: Vec<Stmt>,
    /// The whole definition.
    pub span: Span,
}

/// `connect [name =] A[lo:hi] -> B with T { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectDef {
    /// The pathway's name, if given.
    pub name: Option<Ident>,
    /// The presynaptic group (or slice of it).
    pub source: Endpoint,
    /// The postsynaptic group (or slice of it).
    pub target: Endpoint,
    /// The synapse type.
    pub synapse: Ident,
    /// Connectivity settings (`p`, `condition`, `n`, `delay`, ...) and initial values.
    pub body: Vec<Stmt>,
    /// The whole definition.
    pub span: Span,
}

/// A group, optionally sliced: `H[128:160]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// The group.
    pub group: Ident,
    /// `lo:hi`, if given.
    pub slice: Option<(Expr, Expr)>,
    /// The whole endpoint.
    pub span: Span,
}

/// `monitor kind target, ... [every period]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorDef {
    /// `spikes`, `state`, `rate`, `weights`.
    pub kind: Ident,
    /// What is recorded.
    pub targets: Vec<MonitorTarget>,
    /// How often.
    pub every: Option<Every>,
    /// The whole definition.
    pub span: Span,
}

/// `S`, `S.v`, `S.v[0, 2:5]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorTarget {
    /// A group, pathway or `shared`.
    pub object: Ident,
    /// The variable, if given.
    pub var: Option<Ident>,
    /// Indices or index ranges, if given.
    pub indices: Option<Vec<IndexItem>>,
    /// The whole target.
    pub span: Span,
}

/// An index `e` or a range `lo:hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexItem {
    /// The index, or the range's start.
    pub start: Expr,
    /// The range's end.
    pub end: Option<Expr>,
    /// The whole item.
    pub span: Span,
}

/// `environment Kind { settings and blocks }`.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentDef {
    /// The environment's kind, e.g. `GridWorld`.
    pub kind: Ident,
    /// `name = value` settings.
    pub settings: Vec<Setting>,
    /// `name [object] [every period] { statements }` blocks.
    pub blocks: Vec<EnvBlock>,
    /// The whole definition.
    pub span: Span,
}

/// A block of an environment binding: `sense S { ... }`, `act M every 10 steps { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvBlock {
    /// `sense`, `act`, `reward`, ...
    pub kind: Ident,
    /// The group or variable it binds.
    pub object: Option<Ident>,
    /// How often.
    pub every: Option<Every>,
    /// Its statements.
    pub body: Vec<Stmt>,
    /// The whole block.
    pub span: Span,
}

//! Checking expressions and statements: name resolution, types and dimensions.

use super::suggest::did_you_mean;
use crate::ast::{self, AssignOp, BinaryOp, UnaryOp};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Builtin, Constant, Expr, ExprKind, Func, Stmt, Type, VarRef, Variable};
use crate::span::Span;
use crate::units::{self, Dimension};
use std::ops::{Div, Mul};

/// A declared variable as the checker sees it.
#[derive(Clone, Debug)]
pub(crate) struct Decl {
    pub name: String,
    pub ty: Type,
    /// Whether statements may assign it outside `init`.
    pub assignable: bool,
    /// Whether `init` may assign it.
    pub init_assignable: bool,
    /// Subexpression (for the error message).
    pub subexpression: bool,
    /// Its declaration was wrong (already reported): uses of it are not checked further.
    pub poisoned: bool,
}

impl Decl {
    pub fn of(variable: &Variable) -> Decl {
        Decl {
            name: variable.name.clone(),
            ty: variable.ty,
            assignable: variable.is_assignable(false),
            init_assignable: variable.is_assignable(true),
            subexpression: matches!(variable.kind, crate::model::VarKind::Subexpression(_)),
            poisoned: false,
        }
    }
}

/// Where code appears; decides which names exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A constant, a setting, a group size: numbers, units and earlier constants only.
    Constant,
    /// Neuron code.
    Neuron,
    /// Synapse code (pre/post variables, `i`, `j`).
    Synapse,
    /// The shared block.
    Shared,
}

/// The names visible to a piece of code.
pub(crate) struct Scope<'a> {
    pub place: Place,
    pub constants: &'a [Constant],
    pub shared: &'a [Decl],
    pub local: &'a [Decl],
    /// Presynaptic and postsynaptic group variables; `None` in a synapse type that
    /// no pathway uses (then such names are accepted unchecked).
    pub pre: Option<&'a [Decl]>,
    pub post: Option<&'a [Decl]>,
    /// Whether `xi` may appear (right-hand sides of differential equations).
    pub noise: bool,
    /// Whether `rand()`/`randn()` may appear.
    pub random: bool,
    /// Whether this is `init` code (constant parameters may be set).
    pub init: bool,
    /// In a group body: the group size, so that a list gives one value per neuron.
    pub list_len: Option<u32>,
    /// Names of the presynaptic and postsynaptic groups, and the `connect` (for messages).
    pub pre_group: &'a str,
    pub post_group: &'a str,
    pub pathway: Option<Span>,
    /// Constants defined later in the file (for "defined later" hints).
    pub pending: &'a [String],
    /// What owns the variables, for messages: "neuron type `LIF`".
    pub owner: &'a str,
    /// Why random numbers are refused here, for messages.
    pub random_hint: RandomHint,
    /// In environment bindings: the environment, whose observations code may read.
    pub environment: Option<&'a crate::env::EnvironmentSpec>,
}

/// Why `rand()` is not allowed somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RandomHint {
    /// Constants, settings, sizes.
    Constant,
    /// Right-hand sides of equations.
    Equation,
    /// Anything else that must be deterministic (refractory period, rates).
    Other,
}

impl<'a> Scope<'a> {
    /// A scope without pre/post variables, noise, random numbers or `init` rights.
    pub fn new(place: Place, constants: &'a [Constant], shared: &'a [Decl], local: &'a [Decl]) -> Scope<'a> {
        Scope {
            place,
            constants,
            shared,
            local,
            pre: None,
            post: None,
            noise: false,
            random: false,
            init: false,
            list_len: None,
            pre_group: "",
            post_group: "",
            pathway: None,
            pending: &[],
            owner: "this code",
            random_hint: if place == Place::Constant { RandomHint::Constant } else { RandomHint::Other },
            environment: None,
        }
    }

    /// Constants, settings and sizes: numbers, units and constants only.
    pub fn constant(constants: &'a [Constant]) -> Scope<'a> {
        Scope::new(Place::Constant, constants, &[], &[])
    }

    fn builtins(&self) -> &'static [Builtin] {
        match self.place {
            Place::Constant => &[Builtin::Pi, Builtin::Inf],
            Place::Neuron => &[Builtin::T, Builtin::Dt, Builtin::I, Builtin::N, Builtin::Pi, Builtin::Inf],
            Place::Synapse => &[
                Builtin::T,
                Builtin::Dt,
                Builtin::I,
                Builtin::J,
                // Not `N`: Brian2's number of synapses is known only once they are drawn.
                Builtin::NPre,
                Builtin::NPost,
                Builtin::Pi,
                Builtin::Inf,
            ],
            Place::Shared => &[Builtin::T, Builtin::Dt, Builtin::Pi, Builtin::Inf],
        }
    }

    /// Names to suggest for an unknown `name` (units only for names that could be one).
    fn candidates(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = self.local.iter().map(|d| d.name.clone()).collect();
        names.extend(self.shared.iter().map(|d| d.name.clone()));
        if let Some(pre) = self.pre {
            names.extend(pre.iter().map(|d| format!("{}_pre", d.name)));
        }
        if let Some(post) = self.post {
            names.extend(post.iter().map(|d| format!("{}_post", d.name)));
            names.extend(post.iter().map(|d| d.name.clone()));
        }
        names.extend(self.builtins().iter().map(|b| b.name().to_string()));
        names.extend(self.constants.iter().map(|c| c.name.clone()));
        if let Some(env) = self.environment {
            names.extend(env.observations.iter().map(|o| o.name.to_string()));
        }
        if name.chars().count() > 2 {
            names.extend(units::common_names());
        }
        names
    }
}

/// What a name resolves to.
enum Resolved {
    Var(VarRef, Type),
    Builtin(Builtin),
    Const(usize),
    Unit(f64, Dimension),
    Noise(String),
    /// An environment observation: (name, offset, length).
    Observation(&'static str, u32, u32),
    /// A pre/post name in a synapse type no pathway uses: accepted unchecked.
    Unbound,
}

/// Why a built-in name does not exist in code at `place`, if it is one.
fn builtin_elsewhere(name: &str, place: Place) -> Option<String> {
    Some(match (name, place) {
        ("lastspike" | "not_refractory", Place::Neuron) => {
            format!("`{name}` exists only in neuron types with a `refractory` period")
        }
        ("lastspike" | "not_refractory", _) => {
            format!("`{name}` is a variable of refractory neurons, not defined here")
        }
        ("i" | "N", Place::Shared) => {
            format!("`{name}` does not exist in the shared block: it holds single values, not neurons")
        }
        ("j" | "N_pre" | "N_post", Place::Neuron | Place::Shared) => format!("`{name}` exists only in synapse code"),
        ("N", Place::Constant) => "`N` is the size of a group, defined only in group and synapse code".to_string(),
        ("t" | "dt" | "i" | "j" | "N_pre" | "N_post", Place::Constant) => {
            format!("`{name}` is not a constant: it exists in neuron and synapse code")
        }
        _ => return None,
    })
}

/// A unit to divide by in examples: `mV` for voltages, `ms` for times.
fn reference_unit(dim: Dimension) -> &'static str {
    ["mV", "ms", "nA", "nS", "pF", "Hz", "MOhm", "um"]
        .into_iter()
        .find(|u| units::lookup(u).is_some_and(|unit| unit.dim == dim))
        .unwrap_or("(a reference value)")
}

/// The dimension of `xi`: 1/sqrt(second).
pub(crate) fn noise_dim() -> Dimension {
    Dimension::ONE.div(Dimension::TIME.sqrt().unwrap_or_default())
}

/// Names that can not be declared: built-ins and Brian2's internal variables.
pub(crate) fn reserved(name: &str) -> bool {
    matches!(
        name,
        "t" | "dt"
            | "i"
            | "j"
            | "N"
            | "N_pre"
            | "N_post"
            | "pi"
            | "inf"
            | "xi"
            | "lastspike"
            | "not_refractory"
            | "lastupdate"
            | "True"
            | "False"
    ) || name.starts_with("xi_")
        || Func::from_name(name).is_some()
}

fn is_noise_name(name: &str) -> bool {
    name == "xi" || (name.starts_with("xi_") && name.len() > 3)
}

/// Checks expressions of one scope, collecting diagnostics and noise names.
pub(crate) struct Checker<'s, 'd> {
    pub scope: &'s Scope<'s>,
    pub diags: &'d mut Diagnostics,
    /// Noise terms met so far (`xi`, `xi_1`, ...).
    pub noise: Vec<String>,
    /// Where noise was first used.
    pub noise_span: Option<Span>,
    /// Set while resolving an assignment's target (for the message when it is unknown).
    resolving_target: bool,
}

impl<'s, 'd> Checker<'s, 'd> {
    pub fn new(scope: &'s Scope<'s>, diags: &'d mut Diagnostics) -> Checker<'s, 'd> {
        Checker { scope, diags, noise: Vec::new(), noise_span: None, resolving_target: false }
    }

    fn error<T>(&mut self, diagnostic: Diagnostic) -> Option<T> {
        self.diags.push(diagnostic);
        None
    }

    fn resolve(&mut self, name: &ast::Ident) -> Option<Resolved> {
        let scope = self.scope;
        let text = name.name.as_str();
        if let Some(k) = scope.local.iter().position(|d| d.name == text) {
            if scope.local[k].poisoned {
                return Some(Resolved::Unbound);
            }
            return Some(Resolved::Var(VarRef::Local(k), scope.local[k].ty));
        }
        // `v_pre` / `v_post`: a variable of the presynaptic / postsynaptic group. A name
        // with the suffix that is no such variable may still be a constant (`tau_pre`).
        let mut suffix_miss: Option<(&str, bool)> = None;
        if scope.place == Place::Synapse {
            for (suffix, side, is_pre) in [("_pre", scope.pre, true), ("_post", scope.post, false)] {
                let Some(base) = text.strip_suffix(suffix) else { continue };
                let Some(decls) = side else { return Some(Resolved::Unbound) };
                if let Some(k) = decls.iter().position(|d| d.name == base) {
                    let r = if is_pre { VarRef::Pre(k) } else { VarRef::Post(k) };
                    return Some(Resolved::Var(r, decls[k].ty));
                }
                suffix_miss = Some((base, is_pre));
            }
        }
        if let Some(b) = scope.builtins().iter().find(|b| b.name() == text) {
            return Some(Resolved::Builtin(*b));
        }
        if is_noise_name(text) {
            if scope.noise {
                return Some(Resolved::Noise(text.to_string()));
            }
            self.diags.push(
                Diagnostic::error(
                    "E0404",
                    name.span,
                    format!("noise `{text}` is only allowed in differential equations"),
                )
                .with_note("white noise enters as `dx/dt = ... + sigma*xi : unit`; for a random number use `randn()`"),
            );
            return None;
        }
        if let Some(k) = scope.shared.iter().position(|d| d.name == text) {
            return Some(Resolved::Var(VarRef::Shared(k), scope.shared[k].ty));
        }
        if scope.place == Place::Synapse
            && let Some(post) = scope.post
            && let Some(k) = post.iter().position(|d| d.name == text)
        {
            return Some(Resolved::Var(VarRef::Post(k), post[k].ty));
        }
        if let Some((k, offset)) = scope.environment.and_then(|env| env.observation(text))
            && let Some(env) = scope.environment
        {
            let o = &env.observations[k];
            return Some(Resolved::Observation(o.name, offset, o.len));
        }
        if let Some(k) = scope.constants.iter().position(|c| c.name == text) {
            if scope.constants[k].failed {
                return Some(Resolved::Unbound);
            }
            return Some(Resolved::Const(k));
        }
        if let Some(unit) = units::lookup(text) {
            return Some(Resolved::Unit(unit.scale, unit.dim));
        }
        // In a synapse type that no pathway uses, an unsuffixed name may be a
        // postsynaptic variable: it can not be checked.
        if scope.place == Place::Synapse && scope.post.is_none() {
            return Some(Resolved::Unbound);
        }
        self.diags.push(self.unknown(name, suffix_miss));
        None
    }

    /// The diagnostic for a name that resolves to nothing.
    fn unknown(&self, name: &ast::Ident, suffix_miss: Option<(&str, bool)>) -> Diagnostic {
        let scope = self.scope;
        let text = name.name.as_str();
        if let Some((base, is_pre)) = suffix_miss {
            let (side, group, decls) = if is_pre {
                ("presynaptic", scope.pre_group, scope.pre.unwrap_or(&[]))
            } else {
                ("postsynaptic", scope.post_group, scope.post.unwrap_or(&[]))
            };
            let suffix = if is_pre { "_pre" } else { "_post" };
            let mut d =
                Diagnostic::error("E0205", name.span, format!("the {side} group `{group}` has no variable `{base}`"))
                    .with_label_message(format!("`{text}` refers to `{base}` of `{group}`"));
            if let Some(pathway) = scope.pathway {
                d = d.with_secondary(pathway, format!("in this pathway, `{group}` is the {side} group"));
            }
            if decls.is_empty() {
                d = d.with_note(format!("`{group}` has no variables"));
            }
            let names: Vec<String> = decls.iter().map(|d| format!("{}{suffix}", d.name)).collect();
            if let Some(hint) = did_you_mean(text, names.iter().map(String::as_str)) {
                d = d.with_note(hint);
            }
            return d;
        }
        if self.resolving_target && !text.ends_with("_pre") && !text.ends_with("_post") {
            let mut d = Diagnostic::error("E0205", name.span, format!("{} has no variable `{text}`", scope.owner))
                .with_label_message("not a variable");
            if let Some(hint) = did_you_mean(text, scope.local.iter().chain(scope.shared).map(|d| d.name.as_str())) {
                d = d.with_note(hint);
            }
            return d;
        }
        if let Some(message) = builtin_elsewhere(text, scope.place) {
            return Diagnostic::error("E0204", name.span, message).with_label_message("not defined here");
        }
        if scope.pending.iter().any(|p| p == text) {
            return Diagnostic::error("E0204", name.span, format!("constant `{text}` is used before it is defined"))
                .with_label_message("defined later in the file")
                .with_note("a constant can use the constants defined above it");
        }
        let mut d = if (text.ends_with("_pre") || text.ends_with("_post")) && scope.place != Place::Synapse {
            Diagnostic::error(
                "E0207",
                name.span,
                format!("`{text}` refers to a synaptic pre/post variable outside synapse code"),
            )
            .with_label_message("`_pre` and `_post` only exist in synapse code")
        } else {
            Diagnostic::error("E0204", name.span, format!("unknown name `{text}`")).with_label_message("not defined")
        };
        if text == "N" && scope.place == Place::Synapse {
            return d.with_note(
                "the number of synapses (Brian2's `N` in synapse code) is not available here; \
                 `N_pre` and `N_post` are the sizes of the two groups",
            );
        }
        if let Some(hint) = did_you_mean(text, scope.candidates(text).iter().map(String::as_str)) {
            d = d.with_note(hint);
        }
        d
    }

    /// Checks an expression; `None` means an error was reported.
    pub fn expr(&mut self, e: &ast::Expr) -> Option<Expr> {
        use ast::ExprKind as K;
        let span = e.span;
        let make = |kind, ty| Some(Expr { kind, ty, span });
        match &e.kind {
            K::Number(v) => make(ExprKind::Literal(*v), Type::NUMBER),
            K::Bool(b) => make(ExprKind::Bool(*b), Type::Bool),
            K::Quantity { value, unit, power } => {
                let Some(u) = units::lookup(&unit.name) else {
                    return self.error(Diagnostic::error("E0302", unit.span, format!("unknown unit `{}`", unit.name)));
                };
                let dim = u.dim.pow(f64::from(*power)).unwrap_or(u.dim);
                make(ExprKind::Literal(value * u.scale.powi(*power)), Type::Float(dim))
            }
            K::Name { group: Some(group), name } if self.scope.environment.is_some() => self.error(
                Diagnostic::error("E0208", group.span.to(name.span), format!("`{}.{}`: environment code reads variables by name", group.name, name.name))
                    .with_note("a block of a group reads that group's variables and shared variables by name; only a target may name its group"),
            ),
            K::Name { group: Some(group), name } => self.error(
                Diagnostic::error("E0208", group.span.to(name.span), format!("qualified name `{}.{}` outside an environment binding", group.name, name.name))
                    .with_note("code of a group or pathway refers to its own variables by name; use `_pre`/`_post` in synapse code"),
            ),
            K::Name { group: None, name } => match self.resolve(name)? {
                Resolved::Var(r, ty) => make(ExprKind::Var(r), ty),
                Resolved::Builtin(b) => {
                    let ty = match b {
                        Builtin::T | Builtin::Dt => Type::Float(Dimension::TIME),
                        _ => Type::NUMBER,
                    };
                    make(ExprKind::Builtin(b), ty)
                }
                Resolved::Const(k) => make(ExprKind::Const(k), Type::Float(self.scope.constants[k].dim)),
                Resolved::Unit(scale, dim) => make(ExprKind::Literal(scale), Type::Float(dim)),
                Resolved::Noise(text) => {
                    self.noise_span.get_or_insert(span);
                    let k = match self.noise.iter().position(|n| *n == text) {
                        Some(k) => k,
                        None => {
                            self.noise.push(text);
                            self.noise.len() - 1
                        }
                    };
                    make(ExprKind::Noise(k), Type::Float(noise_dim()))
                }
                Resolved::Observation(name, offset, 1) => {
                    let index = Box::new(Expr { kind: ExprKind::Literal(0.0), ty: Type::NUMBER, span });
                    make(ExprKind::Observation { name, offset, len: 1, index }, Type::NUMBER)
                }
                Resolved::Observation(_, _, len) => self.error(
                    Diagnostic::error("E0209", span, format!("`{}` holds {len} values: index it", name.name))
                        .with_label_message("a vector")
                        .with_note(format!("e.g. `{}[0]` ... `{}[{}]`", name.name, name.name, len - 1)),
                ),
                Resolved::Unbound => None,
            },
            K::Unary(op, a) => {
                let a = self.expr(a)?;
                match (op, a.ty) {
                    (UnaryOp::Not, Type::Bool) => make(ExprKind::Unary(*op, Box::new(a)), Type::Bool),
                    (UnaryOp::Not, ty) => self.error(
                        Diagnostic::error("E0311", a.span, format!("`not` needs a condition, found a value of unit `{ty}`"))
                            .with_label_message("not a condition"),
                    ),
                    (_, Type::Bool) => self.error(
                        Diagnostic::error("E0311", a.span, "arithmetic on a condition")
                            .with_label_message("this is a condition")
                            .with_note("use `int(condition)` to turn a condition into 0 or 1"),
                    ),
                    (_, ty) => make(ExprKind::Unary(*op, Box::new(a)), ty),
                }
            }
            K::Binary(op, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let (a, b) = (a?, b?);
                self.binary(*op, a, b, span)
            }
            K::Cond { cond, then, otherwise } => {
                let (c, t, o) = (self.expr(cond), self.expr(then), self.expr(otherwise));
                let (c, t, o) = (c?, t?, o?);
                if c.ty != Type::Bool {
                    return self.error(
                        Diagnostic::error("E0311", c.span, format!("the condition of `if` must be a condition, found unit `{}`", c.ty))
                            .with_label_message("not a condition"),
                    );
                }
                if t.ty != o.ty {
                    return self.error(
                        Diagnostic::error(
                            "E0301",
                            span,
                            format!("dimension mismatch in `if`/`else`: one branch is `{}`, the other `{}`", t.ty, o.ty),
                        )
                        .with_secondary(t.span, format!("`{}`", t.ty))
                        .with_secondary(o.span, format!("`{}`", o.ty)),
                    );
                }
                let ty = t.ty;
                make(ExprKind::Cond(Box::new(c), Box::new(t), Box::new(o)), ty)
            }
            K::Call { func, args } => self.call(func, args, span),
            K::Index(vector, index) => self.index(vector, index, span),
            K::List(items) => match self.scope.list_len {
                Some(n) => self.table(items, n, span),
                None => self.error(
                    Diagnostic::error("E0210", span, "a list is not allowed here")
                        .with_note("lists give per-neuron values in group bodies, spike times, indices and explicit connections"),
                ),
            },
        }
    }

    /// `observation[index]` in an environment binding.
    fn index(&mut self, vector: &ast::Expr, index: &ast::Expr, span: Span) -> Option<Expr> {
        let observation = match (&vector.kind, self.scope.environment) {
            (ast::ExprKind::Name { group: None, name }, Some(env)) => env
                .observation(&name.name)
                .map(|(k, offset)| (env.observations[k].name, offset, env.observations[k].len)),
            _ => None,
        };
        let Some((name, offset, len)) = observation else {
            let note = match self.scope.environment {
                Some(env) => format!(
                    "the observations of `{}`: {}",
                    env.name,
                    env.observations.iter().map(|o| format!("`{}`", o.name)).collect::<Vec<_>>().join(", ")
                ),
                None => "only environment observations can be indexed, in `sense` and `reward` blocks".to_string(),
            };
            let mut d = Diagnostic::error("E0209", vector.span, "only environment observations can be indexed")
                .with_label_message("not an observation")
                .with_note(note);
            if let (ast::ExprKind::Name { name, .. }, Some(env)) = (&vector.kind, self.scope.environment)
                && let Some(hint) = did_you_mean(&name.name, env.observations.iter().map(|o| o.name))
            {
                d = d.with_note(hint);
            }
            return self.error(d);
        };
        let index = self.expr(index)?;
        if index.ty != Type::NUMBER {
            return self.error(
                Diagnostic::error("E0301", index.span, format!("an index must be a number, found unit `{}`", index.ty))
                    .with_label_message("not a number"),
            );
        }
        let kind = ExprKind::Observation { name, offset, len, index: Box::new(index) };
        Some(Expr { kind, ty: Type::NUMBER, span })
    }

    /// A per-neuron list in a group body: constants of one unit, one per neuron.
    fn table(&mut self, items: &[ast::Expr], n: u32, span: Span) -> Option<Expr> {
        let scope = Scope::constant(self.scope.constants);
        let mut values = Vec::with_capacity(items.len());
        let mut ty: Option<Type> = None;
        for item in items {
            let checked = Checker::new(&scope, self.diags).expr(item)?;
            let Some(value) = eval_const(&checked, self.scope.constants) else {
                return self.error(Diagnostic::error("E0412", checked.span, "list entries must be constants"));
            };
            match ty {
                Some(t) if t != checked.ty => {
                    return self.error(Diagnostic::error(
                        "E0301",
                        checked.span,
                        format!("dimension mismatch in a list: this entry is `{}`, the first `{t}`", checked.ty),
                    ));
                }
                _ => ty = Some(checked.ty),
            }
            if checked.ty == Type::Bool {
                return self.error(Diagnostic::error("E0311", checked.span, "list entries must be numbers"));
            }
            values.push(value);
        }
        if values.len() != n as usize {
            return self.error(
                Diagnostic::error(
                    "E0416",
                    span,
                    format!("the list has {} values but the group has {n} neurons", values.len()),
                )
                .with_label_message("one value per neuron"),
            );
        }
        Some(Expr { kind: ExprKind::Table(values), ty: ty.unwrap_or(Type::NUMBER), span })
    }

    fn binary(&mut self, op: BinaryOp, a: Expr, b: Expr, span: Span) -> Option<Expr> {
        let sym = op.as_str();
        let ty = match op {
            BinaryOp::And | BinaryOp::Or => {
                for side in [&a, &b] {
                    if side.ty != Type::Bool {
                        return self.error(
                            Diagnostic::error(
                                "E0311",
                                side.span,
                                format!("`{sym}` needs conditions on both sides, found unit `{}`", side.ty),
                            )
                            .with_label_message("not a condition"),
                        );
                    }
                }
                Type::Bool
            }
            BinaryOp::Eq | BinaryOp::Ne if a.ty == Type::Bool && b.ty == Type::Bool => Type::Bool,
            _ => {
                for side in [&a, &b] {
                    if side.ty == Type::Bool {
                        return self.error(
                            Diagnostic::error("E0311", side.span, format!("`{sym}` needs numbers, found a condition"))
                                .with_label_message("this is a condition")
                                .with_note("use `int(condition)` to turn a condition into 0 or 1"),
                        );
                    }
                }
                let (da, db) = (a.ty.dim().unwrap_or_default(), b.ty.dim().unwrap_or_default());
                match op {
                    BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mod
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge
                    | BinaryOp::Eq
                    | BinaryOp::Ne => {
                        if da != db {
                            let what = if op.is_comparison() { "comparison" } else { "operation" };
                            return self.error(
                                Diagnostic::error(
                                    "E0301",
                                    span,
                                    format!("dimension mismatch in `{sym}`: left side is `{da}`, right side is `{db}`"),
                                )
                                .with_label_message(format!("both sides of this {what} must have the same unit"))
                                .with_secondary(a.span, format!("`{da}`"))
                                .with_secondary(b.span, format!("`{db}`")),
                            );
                        }
                        if op.is_comparison() { Type::Bool } else { Type::Float(da) }
                    }
                    BinaryOp::Mul => Type::Float(da.mul(db)),
                    BinaryOp::Div | BinaryOp::FloorDiv => Type::Float(da.div(db)),
                    BinaryOp::Pow => {
                        if !db.is_dimensionless() {
                            return self.error(
                                Diagnostic::error(
                                    "E0303",
                                    b.span,
                                    format!("the exponent must be dimensionless, found `{db}`"),
                                )
                                .with_label_message("exponent with a unit"),
                            );
                        }
                        if da.is_dimensionless() {
                            Type::NUMBER
                        } else {
                            let Some(p) = eval_const(&b, self.scope.constants) else {
                                return self.error(
                                    Diagnostic::error(
                                        "E0303",
                                        b.span,
                                        format!("the exponent of a value with unit `{da}` must be a constant number"),
                                    )
                                    .with_label_message("not a constant")
                                    .with_note("the unit of the result would depend on the value"),
                                );
                            };
                            let Some(dim) = da.pow(p) else {
                                return self.error(Diagnostic::error(
                                    "E0303",
                                    b.span,
                                    format!("`{da}` raised to the power {p} is not a physical unit"),
                                ));
                            };
                            Type::Float(dim)
                        }
                    }
                    BinaryOp::And | BinaryOp::Or => Type::Bool,
                }
            }
        };
        Some(Expr { kind: ExprKind::Binary(op, Box::new(a), Box::new(b)), ty, span })
    }

    fn call(&mut self, func: &ast::Ident, args: &[ast::Expr], span: Span) -> Option<Expr> {
        let Some(f) = Func::from_name(&func.name) else {
            let mut diagnostic = Diagnostic::error("E0206", func.span, format!("unknown function `{}`", func.name))
                .with_label_message("not a function");
            if let Some(hint) = did_you_mean(&func.name, Func::ALL.iter().map(|f| f.name())) {
                diagnostic = diagnostic.with_note(hint);
            }
            return self.error(diagnostic);
        };
        if args.len() != f.arity() {
            return self.error(
                Diagnostic::error(
                    "E0305",
                    span,
                    format!(
                        "`{}` takes {} argument{}, found {}",
                        f.name(),
                        f.arity(),
                        if f.arity() == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_label_message("wrong number of arguments"),
            );
        }
        if f.is_random() && !self.scope.random {
            let note = match self.scope.random_hint {
                RandomHint::Constant => {
                    "constants and settings are fixed numbers; draw random values in `init` or group bodies"
                }
                RandomHint::Equation => {
                    "for noise in a differential equation use `xi`; for a value drawn once per step use a `(constant over dt)` subexpression"
                }
                RandomHint::Other => {
                    "random values can be drawn in `init`, `reset`, `on_pre`/`on_post` and periodic code"
                }
            };
            return self.error(
                Diagnostic::error("E0306", span, format!("`{}()` is not allowed here", f.name()))
                    .with_label_message("random numbers are not allowed here")
                    .with_note(note),
            );
        }
        let checked: Vec<Option<Expr>> = args.iter().map(|a| self.expr(a)).collect();
        let args: Vec<Expr> = checked.into_iter().collect::<Option<_>>()?;
        let name = f.name();
        for a in &args {
            if a.ty == Type::Bool && f != Func::Int {
                return self.error(
                    Diagnostic::error("E0311", a.span, format!("`{name}` needs a number, found a condition"))
                        .with_label_message("this is a condition"),
                );
            }
        }
        let dim_of = |k: usize| args[k].ty.dim().unwrap_or_default();
        let ty = match f {
            Func::Rand | Func::Randn => Type::NUMBER,
            Func::Sqrt => Type::Float(dim_of(0).sqrt().unwrap_or_default()),
            Func::Abs | Func::Floor | Func::Ceil => Type::Float(dim_of(0)),
            Func::Sign => Type::NUMBER,
            Func::Int => {
                if args[0].ty != Type::Bool && !dim_of(0).is_dimensionless() {
                    return self.error(
                        Diagnostic::error(
                            "E0304",
                            args[0].span,
                            format!("the argument of `int` must be dimensionless, found `{}`", dim_of(0)),
                        )
                        .with_label_message("has a unit")
                        .with_note("divide by a unit first, e.g. `int(t/ms)`"),
                    );
                }
                Type::NUMBER
            }
            Func::Clip | Func::Min | Func::Max => {
                let first = dim_of(0);
                for (k, a) in args.iter().enumerate().skip(1) {
                    if dim_of(k) != first {
                        let what = if f == Func::Clip { "bounds of `clip`" } else { "arguments" };
                        return self.error(
                            Diagnostic::error(
                                "E0301",
                                a.span,
                                format!(
                                    "dimension mismatch in `{name}`: the value is `{first}`, this argument is `{}`",
                                    dim_of(k)
                                ),
                            )
                            .with_label_message(format!("the {what} must have the value's unit"))
                            .with_secondary(args[0].span, format!("`{first}`")),
                        );
                    }
                }
                Type::Float(first)
            }
            _ => {
                if !dim_of(0).is_dimensionless() {
                    return self.error(
                        Diagnostic::error(
                            "E0304",
                            args[0].span,
                            format!("the argument of `{name}` must be dimensionless, found `{}`", dim_of(0)),
                        )
                        .with_label_message("has a unit")
                        .with_note(format!(
                            "divide by a reference value of the same unit, e.g. `{name}(x/{})`",
                            reference_unit(dim_of(0))
                        )),
                    );
                }
                Type::NUMBER
            }
        };
        Some(Expr { kind: ExprKind::Call(f, args), ty, span })
    }

    /// Checks a statement; `place` names the block for messages (`reset`, `on_pre`, ...).
    pub fn stmt(&mut self, s: &ast::Stmt, place: &str) -> Option<Stmt> {
        let value = self.expr(&s.value);
        if let Some(group) = &s.target.group {
            self.diags.push(Diagnostic::error(
                "E0208",
                s.target.span,
                format!("qualified name `{}.{}` outside an environment binding", group.name, s.target.name.name),
            ));
            return None;
        }
        let name = &s.target.name;
        self.resolving_target = true;
        let resolved = self.resolve(name);
        self.resolving_target = false;
        let (target, ty) = match resolved? {
            Resolved::Var(r, ty) => {
                let decl = self.decl(r);
                let allowed = if self.scope.init { decl.init_assignable } else { decl.assignable };
                if !allowed {
                    let (what, note) = if decl.subexpression {
                        (
                            "subexpression",
                            "a subexpression is computed from its definition; make it a parameter (`x : unit`) to set it",
                        )
                    } else {
                        (
                            "constant parameter",
                            "`(constant)` parameters can only be set in `init` blocks and group or connect bodies",
                        )
                    };
                    return self.error(
                        Diagnostic::error(
                            "E0212",
                            name.span,
                            format!("cannot assign to {what} `{}` in `{place}`", name.name),
                        )
                        .with_label_message(format!("`{}` is a {what}", name.name))
                        .with_note(note),
                    );
                }
                (r, ty)
            }
            Resolved::Unbound => return None,
            other => {
                let what = match other {
                    Resolved::Const(_) => "constant",
                    Resolved::Builtin(_) => "built-in name",
                    Resolved::Unit(..) => "unit",
                    _ => "noise term",
                };
                return self.error(
                    Diagnostic::error("E0212", name.span, format!("cannot assign to {what} `{}`", name.name))
                        .with_label_message("not a variable"),
                );
            }
        };
        let value = value?;
        if ty == Type::Bool && s.op != AssignOp::Set {
            return self.error(
                Diagnostic::error(
                    "E0311",
                    s.span,
                    format!("`{}` can not be applied to the condition `{}`", s.op.as_str(), name.name),
                )
                .with_label_message("arithmetic on a condition")
                .with_note(format!("assign a condition with `=`, e.g. `{} = True`", name.name)),
            );
        }
        let ok = match s.op {
            AssignOp::Set | AssignOp::Add | AssignOp::Sub => {
                value.ty == ty && (s.op == AssignOp::Set || ty != Type::Bool)
            }
            AssignOp::Mul | AssignOp::Div => value.ty == Type::NUMBER && ty != Type::Bool,
        };
        if !ok {
            let expected = match s.op {
                AssignOp::Mul | AssignOp::Div => "1".to_string(),
                _ => ty.to_string(),
            };
            return self.error(
                Diagnostic::error(
                    "E0301",
                    s.span,
                    format!(
                        "dimension mismatch in `{} {} ...`: the right side is `{}`, expected `{expected}`",
                        name.name,
                        s.op.as_str(),
                        value.ty
                    ),
                )
                .with_secondary(value.span, format!("`{}`", value.ty))
                .with_secondary(name.span, format!("`{ty}`")),
            );
        }
        Some(Stmt { target, op: s.op, value, span: s.span })
    }

    fn decl(&self, r: VarRef) -> &Decl {
        let (list, k) = match r {
            VarRef::Local(k) => (self.scope.local, k),
            VarRef::Shared(k) => (self.scope.shared, k),
            VarRef::Pre(k) => (self.scope.pre.unwrap_or(&[]), k),
            VarRef::Post(k) => (self.scope.post.unwrap_or(&[]), k),
        };
        &list[k]
    }

    /// Checks a block of statements.
    pub fn block(&mut self, stmts: &[ast::Stmt], place: &str) -> Vec<Stmt> {
        stmts.iter().filter_map(|s| self.stmt(s, place)).collect()
    }
}

/// Evaluates an expression of literals, constants and pure functions.
pub(crate) fn eval_const(e: &Expr, constants: &[Constant]) -> Option<f64> {
    let v = |x: &Expr| eval_const(x, constants);
    Some(match &e.kind {
        ExprKind::Literal(x) => *x,
        ExprKind::Bool(b) => f64::from(u8::from(*b)),
        ExprKind::Const(k) => constants.get(*k).filter(|c| !c.failed)?.value,
        ExprKind::Builtin(Builtin::Pi) => std::f64::consts::PI,
        ExprKind::Builtin(Builtin::Inf) => f64::INFINITY,
        ExprKind::Builtin(_)
        | ExprKind::Var(_)
        | ExprKind::Noise(_)
        | ExprKind::Table(_)
        | ExprKind::Observation { .. } => return None,
        ExprKind::Unary(UnaryOp::Neg, a) => -v(a)?,
        ExprKind::Unary(UnaryOp::Pos, a) => v(a)?,
        ExprKind::Unary(UnaryOp::Not, a) => f64::from(u8::from(v(a)? == 0.0)),
        ExprKind::Binary(op, a, b) => {
            let (x, y) = (v(a)?, v(b)?);
            let truth = |c: bool| f64::from(u8::from(c));
            match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                BinaryOp::FloorDiv => (x / y).floor(),
                BinaryOp::Mod => x - y * (x / y).floor(),
                BinaryOp::Pow => x.powf(y),
                BinaryOp::Lt => truth(x < y),
                BinaryOp::Le => truth(x <= y),
                BinaryOp::Gt => truth(x > y),
                BinaryOp::Ge => truth(x >= y),
                BinaryOp::Eq => truth(x == y),
                BinaryOp::Ne => truth(x != y),
                BinaryOp::And => truth(x != 0.0 && y != 0.0),
                BinaryOp::Or => truth(x != 0.0 || y != 0.0),
            }
        }
        ExprKind::Cond(c, t, o) => {
            if v(c)? != 0.0 {
                v(t)?
            } else {
                v(o)?
            }
        }
        ExprKind::Call(f, args) => {
            let a = |k: usize| args.get(k).and_then(&v);
            match f {
                Func::Rand | Func::Randn => return None,
                Func::Exp => a(0)?.exp(),
                Func::Log => a(0)?.ln(),
                Func::Log10 => a(0)?.log10(),
                Func::Sqrt => a(0)?.sqrt(),
                Func::Abs => a(0)?.abs(),
                Func::Sin => a(0)?.sin(),
                Func::Cos => a(0)?.cos(),
                Func::Tan => a(0)?.tan(),
                Func::Sinh => a(0)?.sinh(),
                Func::Cosh => a(0)?.cosh(),
                Func::Tanh => a(0)?.tanh(),
                Func::Arcsin => a(0)?.asin(),
                Func::Arccos => a(0)?.acos(),
                Func::Arctan => a(0)?.atan(),
                Func::Exprel => {
                    let x = a(0)?;
                    if x.abs() < 1e-16 { 1.0 } else { x.exp_m1() / x }
                }
                Func::Expm1 => a(0)?.exp_m1(),
                Func::Log1p => a(0)?.ln_1p(),
                Func::Floor => a(0)?.floor(),
                Func::Ceil => a(0)?.ceil(),
                Func::Sign => {
                    let x = a(0)?;
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                }
                Func::Int => a(0)?.trunc(),
                Func::Clip => a(0)?.max(a(1)?).min(a(2)?),
                Func::Min => a(0)?.min(a(1)?),
                Func::Max => a(0)?.max(a(1)?),
            }
        }
    })
}

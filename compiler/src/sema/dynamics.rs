//! Checking the body of a neuron type, a synapse type or the shared block:
//! equations (units, flags, right-hand sides), subexpression cycles, Brian2's
//! rules for event-driven variables, and the code blocks.

use super::expr::{Checker, Decl, Place, RandomHint, Scope, reserved};
use super::suggest::did_you_mean;
use crate::ast::{self, BodyItemKind, EquationKind};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    Constant, Dynamics, Expr, ExprKind, Flags, Method, Period, Periodic, Refractory, Stmt, Type, VarKind, VarRef,
    Variable,
};
use crate::span::Span;
use crate::units::{self, Dimension};
use std::ops::{Div, Mul};

/// What kind of body is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Neuron,
    Synapse,
    Shared,
}

impl BodyKind {
    fn noun(self) -> &'static str {
        match self {
            BodyKind::Neuron => "a neuron type",
            BodyKind::Synapse => "a synapse type",
            BodyKind::Shared => "the shared block",
        }
    }

    fn place(self) -> Place {
        match self {
            BodyKind::Neuron => Place::Neuron,
            BodyKind::Synapse => Place::Synapse,
            BodyKind::Shared => Place::Shared,
        }
    }

    /// Flags Brian2 accepts for each kind of equation here.
    fn allowed_flags(self, kind: EquationKind) -> &'static [&'static str] {
        use EquationKind::*;
        match (self, kind) {
            (BodyKind::Neuron, Differential) => &["unless refractory"],
            (BodyKind::Neuron, Parameter) => &["constant", "shared", "linked"],
            (BodyKind::Neuron, Subexpression) => &["shared", "constant over dt"],
            (BodyKind::Synapse, Differential) => &["clock-driven", "event-driven"],
            (BodyKind::Synapse, Parameter) => &["constant", "shared"],
            (BodyKind::Synapse, Subexpression) => &["summed", "shared", "constant over dt"],
            (BodyKind::Shared, Differential) => &[],
            (BodyKind::Shared, Parameter) => &["constant"],
            (BodyKind::Shared, Subexpression) => &["constant over dt"],
        }
    }
}

const KNOWN_FLAGS: [&str; 8] =
    ["unless refractory", "constant", "shared", "clock-driven", "event-driven", "summed", "constant over dt", "linked"];

/// The items of a body, sorted by kind; duplicates and misplaced items reported.
#[derive(Default)]
pub(crate) struct Parts<'a> {
    pub equations: Vec<&'a ast::Equation>,
    pub threshold: Option<&'a ast::Expr>,
    pub reset: Option<&'a [ast::Stmt]>,
    pub refractory: Option<&'a ast::Expr>,
    pub method: Option<&'a ast::Ident>,
    pub init: Vec<&'a [ast::Stmt]>,
    pub on_pre: Option<&'a [ast::Stmt]>,
    pub on_post: Option<&'a [ast::Stmt]>,
    pub periodic: Vec<(Option<&'a ast::Every>, &'a [ast::Stmt], Span)>,
}

fn keyword(kind: &BodyItemKind) -> &'static str {
    match kind {
        BodyItemKind::Equations(_) => "equations",
        BodyItemKind::Threshold(_) => "threshold",
        BodyItemKind::Reset(_) => "reset",
        BodyItemKind::Refractory(_) => "refractory",
        BodyItemKind::Method(_) => "method",
        BodyItemKind::Init(_) => "init",
        BodyItemKind::OnPre(_) => "on_pre",
        BodyItemKind::OnPost(_) => "on_post",
        BodyItemKind::EveryStep(_) => "every_step",
        BodyItemKind::Every(..) => "every",
    }
}

pub(crate) fn split<'a>(def: &'a ast::TypeDef, kind: BodyKind, diags: &mut Diagnostics) -> Parts<'a> {
    let mut parts = Parts::default();
    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    for item in &def.body {
        let word = keyword(&item.kind);
        let allowed = match kind {
            BodyKind::Neuron => !matches!(item.kind, BodyItemKind::OnPre(_) | BodyItemKind::OnPost(_)),
            BodyKind::Synapse => {
                !matches!(item.kind, BodyItemKind::Threshold(_) | BodyItemKind::Reset(_) | BodyItemKind::Refractory(_))
            }
            BodyKind::Shared => matches!(
                item.kind,
                BodyItemKind::Equations(_)
                    | BodyItemKind::Method(_)
                    | BodyItemKind::Init(_)
                    | BodyItemKind::EveryStep(_)
                    | BodyItemKind::Every(..)
            ),
        };
        if !allowed {
            let note = match word {
                "on_pre" | "on_post" => "`on_pre` and `on_post` belong in a synapse type",
                _ => "`threshold`, `reset` and `refractory` belong in a neuron type",
            };
            diags.push(
                Diagnostic::error("E0408", item.keyword, format!("`{word}` is not allowed in {}", kind.noun()))
                    .with_label_message("not allowed here")
                    .with_note(note),
            );
            continue;
        }
        let single = matches!(word, "threshold" | "reset" | "refractory" | "method" | "on_pre" | "on_post");
        if single {
            if let Some((_, first)) = seen.iter().find(|(w, _)| *w == word) {
                diags.push(
                    Diagnostic::error("E0409", item.keyword, format!("`{word}` is given twice"))
                        .with_label_message("second definition")
                        .with_secondary(*first, "first given here"),
                );
                continue;
            }
            seen.push((word, item.keyword));
        }
        match &item.kind {
            BodyItemKind::Equations(eqs) => parts.equations.extend(eqs.iter()),
            BodyItemKind::Threshold(e) => parts.threshold = Some(e),
            BodyItemKind::Reset(s) => parts.reset = Some(s),
            BodyItemKind::Refractory(e) => parts.refractory = Some(e),
            BodyItemKind::Method(m) => parts.method = Some(m),
            BodyItemKind::Init(s) => parts.init.push(s),
            BodyItemKind::OnPre(s) => parts.on_pre = Some(s),
            BodyItemKind::OnPost(s) => parts.on_post = Some(s),
            BodyItemKind::EveryStep(s) => parts.periodic.push((None, s, item.span)),
            BodyItemKind::Every(every, s) => parts.periodic.push((Some(every), s, item.span)),
        }
    }
    parts
}

/// Resolves a declared unit to a type; `Err` after reporting.
fn declared_type(unit: &ast::UnitExpr, kind: EquationKind, diags: &mut Diagnostics) -> Result<(Type, bool), ()> {
    if let ast::UnitExprKind::Name(name) = &unit.kind {
        match name.as_str() {
            "boolean" | "integer" if kind == EquationKind::Differential => {
                diags.push(
                    Diagnostic::error(
                        "E0313",
                        unit.span,
                        format!("a differential equation can not be of type `{name}`"),
                    )
                    .with_note("integer and boolean variables are parameters or subexpressions"),
                );
                return Err(());
            }
            "boolean" => return Ok((Type::Bool, false)),
            "integer" => return Ok((Type::NUMBER, true)),
            _ => {}
        }
    }
    unit_dimension(unit, diags).map(|d| (Type::Float(d), false))
}

/// The dimension of a unit expression such as `siemens/meter**2`.
pub(crate) fn unit_dimension(unit: &ast::UnitExpr, diags: &mut Diagnostics) -> Result<Dimension, ()> {
    use ast::UnitExprKind as U;
    match &unit.kind {
        U::One => Ok(Dimension::ONE),
        U::Name(name) => match units::lookup(name) {
            Some(u) => Ok(u.dim),
            None => {
                let mut d = Diagnostic::error("E0302", unit.span, format!("unknown unit `{name}`"))
                    .with_label_message("not a unit");
                let names: Vec<String> = units::common_names().collect();
                if let Some(hint) = did_you_mean(name, names.iter().map(String::as_str)) {
                    d = d.with_note(hint);
                }
                diags.push(d);
                Err(())
            }
        },
        U::Mul(a, b) | U::Div(a, b) => {
            let (a_dim, b_dim) = (unit_dimension(a, diags), unit_dimension(b, diags));
            let (a_dim, b_dim) = (a_dim?, b_dim?);
            Ok(if matches!(unit.kind, U::Mul(..)) { a_dim.mul(b_dim) } else { a_dim.div(b_dim) })
        }
        U::Pow(base, p) => {
            let d = unit_dimension(base, diags)?;
            d.pow(*p).ok_or_else(|| {
                diags.push(Diagnostic::error(
                    "E0303",
                    unit.span,
                    format!("`{d}` raised to the power {p} is not a physical unit"),
                ));
            })
        }
    }
}

fn parse_flags(eq: &ast::Equation, kind: BodyKind, diags: &mut Diagnostics) -> Flags {
    let mut flags = Flags::default();
    let mut seen: Vec<&str> = Vec::new();
    let allowed = kind.allowed_flags(eq.kind);
    for flag in &eq.flags {
        let text = flag.text.as_str();
        let Some(known) = KNOWN_FLAGS.iter().find(|k| **k == text) else {
            let mut d = Diagnostic::error("E0401", flag.span, format!("unknown flag `{text}`"))
                .with_label_message("not a flag");
            if let Some(hint) = did_you_mean(text, KNOWN_FLAGS) {
                d = d.with_note(hint);
            }
            diags.push(d);
            continue;
        };
        if seen.contains(known) {
            diags.push(Diagnostic::error("E0403", flag.span, format!("flag `{text}` is given twice")));
            continue;
        }
        seen.push(known);
        if !allowed.contains(known) {
            let what = match eq.kind {
                EquationKind::Differential => "a differential equation",
                EquationKind::Subexpression => "a subexpression",
                EquationKind::Parameter => "a parameter",
            };
            let note = if allowed.is_empty() {
                format!("{what} in {} takes no flags", kind.noun())
            } else {
                format!(
                    "flags for {what} in {}: {}",
                    kind.noun(),
                    allowed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                )
            };
            diags.push(
                Diagnostic::error(
                    "E0402",
                    flag.span,
                    format!("flag `{text}` does not apply to {what} in {}", kind.noun()),
                )
                .with_label_message("not allowed here")
                .with_note(note),
            );
            continue;
        }
        match *known {
            "unless refractory" => flags.unless_refractory = true,
            "constant" => flags.constant = true,
            "shared" => flags.shared = true,
            "clock-driven" => flags.clock_driven = true,
            "event-driven" => flags.event_driven = true,
            "summed" => flags.summed = true,
            "constant over dt" => flags.constant_over_dt = true,
            _ => flags.linked = true,
        }
    }
    if flags.clock_driven && flags.event_driven {
        diags.push(
            Diagnostic::error(
                "E0403",
                eq.flags.first().map_or(eq.span, |f| f.span).to(eq.flags.last().map_or(eq.span, |f| f.span)),
                format!("`{}` can not be both clock-driven and event-driven", eq.var.name),
            )
            .with_label_message("conflicting flags"),
        );
    }
    flags
}

/// The neuron variables a synapse body may refer to, and for messages, whose they are.
#[derive(Clone, Copy)]
pub(crate) struct Sides<'a> {
    pub pre: Option<&'a [Decl]>,
    pub post: Option<&'a [Decl]>,
    pub pre_group: &'a str,
    pub post_group: &'a str,
    /// The `connect` being checked.
    pub pathway: Option<Span>,
}

impl Sides<'_> {
    /// No pathway: a neuron type, the shared block, or a synapse type no pathway uses.
    pub const NONE: Sides<'static> = Sides { pre: None, post: None, pre_group: "", post_group: "", pathway: None };
}

/// The checked parts of a body other than its `Dynamics`.
pub(crate) struct Checked {
    pub dynamics: Dynamics,
    pub decls: Vec<Decl>,
    pub threshold: Option<Expr>,
    pub reset: Vec<Stmt>,
    pub refractory: Option<Refractory>,
    pub on_pre: Vec<Stmt>,
    pub on_post: Vec<Stmt>,
}

/// Declares the variables of a body (types and flags), before any right-hand side is checked.
pub(crate) fn declare(parts: &Parts<'_>, kind: BodyKind, diags: &mut Diagnostics) -> (Vec<Variable>, Vec<Decl>) {
    let mut variables: Vec<Variable> = Vec::new();
    let mut decls: Vec<Decl> = Vec::new();
    for eq in &parts.equations {
        let name = &eq.var.name;
        if reserved(name) {
            diags.push(
                Diagnostic::error("E0211", eq.var.span, format!("`{name}` is a built-in name and can not be declared"))
                    .with_label_message("reserved"),
            );
            continue;
        }
        if let Some(first) = variables.iter().find(|v| v.name == *name) {
            diags.push(
                Diagnostic::error("E0201", eq.var.span, format!("variable `{name}` is defined twice"))
                    .with_label_message("second definition")
                    .with_secondary(first.span, "first defined here"),
            );
            continue;
        }
        let flags = parse_flags(eq, kind, diags);
        let (ty, integer, poisoned) = match declared_type(&eq.unit, eq.kind, diags) {
            Ok((ty, integer)) => (ty, integer, false),
            Err(()) => (Type::NUMBER, false, true),
        };
        let variable = Variable {
            name: name.clone(),
            ty,
            integer,
            kind: match eq.kind {
                EquationKind::Parameter => VarKind::Parameter,
                // Placeholders until the right-hand sides are checked.
                EquationKind::Differential => VarKind::Differential(placeholder(eq.span)),
                EquationKind::Subexpression => VarKind::Subexpression(placeholder(eq.span)),
            },
            flags,
            span: eq.var.span,
            implicit: false,
        };
        let mut decl = Decl::of(&variable);
        decl.poisoned = poisoned;
        decls.push(decl);
        variables.push(variable);
    }
    (variables, decls)
}

fn placeholder(span: Span) -> Expr {
    Expr { kind: ExprKind::Literal(0.0), ty: Type::NUMBER, span }
}

/// Checks a whole body. `shared` is the shared block's declarations (empty when
/// checking the shared block itself, whose variables are local to it).
pub(crate) fn check_body(
    def: &ast::TypeDef,
    kind: BodyKind,
    constants: &[Constant],
    shared: &[Decl],
    sides: Sides<'_>,
    diags: &mut Diagnostics,
) -> Checked {
    let parts = split(def, kind, diags);
    let (mut variables, mut decls) = declare(&parts, kind, diags);
    if let (BodyKind::Neuron, Some(refractory)) = (kind, parts.refractory) {
        // As in Brian2, a refractory neuron has these two variables; code may read them.
        for (name, ty) in [("lastspike", Type::Float(Dimension::TIME)), ("not_refractory", Type::Bool)] {
            let variable = Variable {
                name: name.to_string(),
                ty,
                integer: false,
                kind: VarKind::Parameter,
                flags: Flags::default(),
                span: refractory.span,
                implicit: true,
            };
            decls.push(Decl::of(&variable));
            variables.push(variable);
        }
    }
    let owner = match kind {
        BodyKind::Neuron => format!("neuron type `{}`", def.name.name),
        BodyKind::Synapse => format!("synapse type `{}`", def.name.name),
        BodyKind::Shared => "the shared block".to_string(),
    };

    // Right-hand sides: subexpressions first, so that one declared with a wrong unit is
    // reported once and its uses in the equations are not checked against that unit.
    let mut noise: Vec<String> = Vec::new();
    let mut noise_span: Option<Span> = None;
    let mut ok_rhs: Vec<bool> = vec![false; variables.len()];
    let subexpressions_first = parts
        .equations
        .iter()
        .filter(|eq| eq.kind == EquationKind::Subexpression)
        .chain(parts.equations.iter().filter(|eq| eq.kind != EquationKind::Subexpression));
    for eq in subexpressions_first {
        let Some(k) = variables.iter().position(|v| v.name == eq.var.name && v.span == eq.var.span) else {
            continue;
        };
        let Some(rhs) = &eq.rhs else {
            ok_rhs[k] = true;
            continue;
        };
        let differential = eq.kind == EquationKind::Differential;
        let s = Scope {
            noise: differential,
            random: variables[k].flags.constant_over_dt,
            random_hint: RandomHint::Equation,
            ..body_scope(kind, constants, shared, sides, &owner, &decls)
        };
        let mut checker = Checker::new(&s, diags);
        checker.noise = std::mem::take(&mut noise);
        let checked = checker.expr(rhs);
        if noise_span.is_none() {
            noise_span = checker.noise_span;
        }
        noise = std::mem::take(&mut checker.noise);
        if differential && variables[k].flags.event_driven && contains_noise_name(rhs) {
            diags.push(
                Diagnostic::error(
                    "E0406",
                    rhs.span,
                    format!("the event-driven equation of `{}` can not contain noise", eq.var.name),
                )
                .with_note("event-driven variables are updated exactly at events; make it clock-driven to add noise"),
            );
        }
        let checked = match checked {
            Some(c) if !decls[k].poisoned => c,
            _ => {
                decls[k].poisoned |= eq.kind == EquationKind::Subexpression;
                continue;
            }
        };
        let declared = variables[k].ty;
        match eq.kind {
            EquationKind::Differential => {
                let expected = declared.dim().map(|d| d.div(Dimension::TIME));
                if checked.ty.dim() != expected {
                    let expected_text = expected.map_or("?".to_string(), |d| d.to_string());
                    let mut d = Diagnostic::error(
                        "E0307",
                        checked.span,
                        format!(
                            "right-hand side of `d{}/dt` has unit `{}`, expected `{expected_text}`",
                            eq.var.name, checked.ty
                        ),
                    )
                    .with_label_message(format!("`{}`", checked.ty))
                    .with_secondary(eq.unit.span, format!("`{}` is declared `{declared}`", eq.var.name));
                    if checked.ty == declared {
                        d = d.with_note("a derivative has the variable's unit per second: divide by a time constant");
                    }
                    diags.push(d);
                    continue;
                }
                variables[k].kind = VarKind::Differential(checked);
            }
            EquationKind::Subexpression => {
                if checked.ty != declared {
                    diags.push(
                        Diagnostic::error(
                            "E0308",
                            checked.span,
                            format!(
                                "`{}` is declared with unit `{declared}`, but its expression has unit `{}`",
                                eq.var.name, checked.ty
                            ),
                        )
                        .with_label_message(format!("`{}`", checked.ty))
                        .with_secondary(eq.unit.span, "declared here"),
                    );
                    decls[k].poisoned = true;
                    continue;
                }
                variables[k].kind = VarKind::Subexpression(checked);
            }
            EquationKind::Parameter => {}
        }
        ok_rhs[k] = true;
    }

    let scope = |noise: bool, random: bool, init: bool| Scope {
        noise,
        random,
        init,
        ..body_scope(kind, constants, shared, sides, &owner, &decls)
    };
    check_cycles(&variables, &ok_rhs, diags);
    if kind == BodyKind::Synapse {
        check_event_driven(&variables, &ok_rhs, diags);
    }

    // Method.
    let method = parts.method.and_then(|m| match Method::from_name(&m.name) {
        Some(method) => Some((method, m.span)),
        None => {
            let names = Method::NAMES.iter().map(|(n, _)| *n);
            let mut d = Diagnostic::error("E0407", m.span, format!("unknown integration method `{}`", m.name))
                .with_label_message("not a method")
                .with_note("methods: `euler`, `rk2`, `rk4`, `heun`, `exponential_euler`, `exact`");
            if let Some(hint) = did_you_mean(&m.name, names) {
                d = d.with_note(hint);
            }
            diags.push(d);
            None
        }
    });
    if let (Some((m, span)), Some(xi)) = (method, noise_span)
        && !m.supports_noise()
    {
        diags.push(
            Diagnostic::error("E0405", span, format!("method `{}` can not integrate stochastic equations", m.name()))
                .with_label_message("deterministic method")
                .with_secondary(xi, "noise here")
                .with_note("use `euler` (Euler-Maruyama) or `heun` for equations with `xi`"),
        );
    }

    // Threshold, reset, refractory.
    let threshold = parts.threshold.and_then(|e| {
        let s = scope(false, true, false);
        let checked = Checker::new(&s, diags).expr(e)?;
        if checked.ty != Type::Bool {
            diags.push(
                Diagnostic::error(
                    "E0309",
                    checked.span,
                    format!("the threshold must be a condition, found a value of unit `{}`", checked.ty),
                )
                .with_label_message("not a condition")
                .with_note("write a comparison, e.g. `threshold v > v_th`"),
            );
            return None;
        }
        Some(checked)
    });
    let reset = parts.reset.map_or_else(Vec::new, |stmts| {
        let s = scope(false, true, false);
        Checker::new(&s, diags).block(stmts, "reset")
    });
    if let (Some(stmts), None) = (parts.reset, parts.threshold)
        && let Some(first) = stmts.first()
    {
        diags.push(
            Diagnostic::warning("W0001", first.span, "`reset` without a `threshold` never runs")
                .with_note("add `threshold <condition>` to the neuron type"),
        );
    }
    let refractory = parts.refractory.and_then(|e| {
        let s = scope(false, false, false);
        let checked = Checker::new(&s, diags).expr(e)?;
        match checked.ty {
            Type::Bool => Some(Refractory::Condition(checked)),
            Type::Float(d) if d == Dimension::TIME => Some(Refractory::Duration(checked)),
            ty => {
                diags.push(
                    Diagnostic::error(
                        "E0310",
                        checked.span,
                        format!("`refractory` must be a duration or a condition, found unit `{ty}`"),
                    )
                    .with_label_message("not a duration")
                    .with_note("e.g. `refractory 2 ms` or `refractory v > v_th`"),
                );
                None
            }
        }
    });

    // Code blocks.
    let on_pre = parts.on_pre.map_or_else(Vec::new, |stmts| {
        let s = scope(false, true, false);
        Checker::new(&s, diags).block(stmts, "on_pre")
    });
    let on_post = parts.on_post.map_or_else(Vec::new, |stmts| {
        let s = scope(false, true, false);
        Checker::new(&s, diags).block(stmts, "on_post")
    });
    let init: Vec<Stmt> = parts
        .init
        .iter()
        .flat_map(|stmts| {
            let s = scope(false, true, true);
            Checker::new(&s, diags).block(stmts, "init")
        })
        .collect();
    let periodic: Vec<Periodic> = parts
        .periodic
        .iter()
        .filter_map(|(every, stmts, span)| {
            let s = scope(false, true, false);
            let place = if every.is_some() { "every" } else { "every_step" };
            let body = Checker::new(&s, diags).block(stmts, place);
            let period = match every {
                None => Period::Steps(1),
                Some(every) => period(every, constants, diags)?,
            };
            Some(Periodic { period, body, span: *span })
        })
        .collect();

    Checked {
        dynamics: Dynamics { variables, noise, method: method.map(|(m, _)| m), init, periodic },
        decls,
        threshold,
        reset,
        refractory,
        on_pre,
        on_post,
    }
}

/// The scope of code in a body: its variables, the shared block, and in synapse code the pathway's groups.
fn body_scope<'a>(
    kind: BodyKind,
    constants: &'a [Constant],
    shared: &'a [Decl],
    sides: Sides<'a>,
    owner: &'a str,
    local: &'a [Decl],
) -> Scope<'a> {
    Scope {
        pre: sides.pre,
        post: sides.post,
        pre_group: sides.pre_group,
        post_group: sides.post_group,
        pathway: sides.pathway,
        owner,
        ..Scope::new(kind.place(), constants, shared, local)
    }
}

fn contains_noise_name(e: &ast::Expr) -> bool {
    use ast::ExprKind as K;
    match &e.kind {
        K::Name { group: None, name } => name.name == "xi" || name.name.starts_with("xi_"),
        K::Name { .. } | K::Number(_) | K::Quantity { .. } | K::Bool(_) => false,
        K::Call { args, .. } | K::List(args) => args.iter().any(contains_noise_name),
        K::Unary(_, a) => contains_noise_name(a),
        K::Binary(_, a, b) | K::Index(a, b) => contains_noise_name(a) || contains_noise_name(b),
        K::Cond { cond, then, otherwise } => {
            contains_noise_name(cond) || contains_noise_name(then) || contains_noise_name(otherwise)
        }
    }
}

/// Checks `every <period> [steps]`: a duration, or a positive whole number of steps.
pub(crate) fn period(every: &ast::Every, constants: &[Constant], diags: &mut Diagnostics) -> Option<Period> {
    let s = Scope::constant(constants);
    let checked = Checker::new(&s, diags).expr(&every.period)?;
    let Some(value) = super::expr::eval_const(&checked, constants) else {
        diags.push(
            Diagnostic::error("E0412", checked.span, "the period must be a constant")
                .with_label_message("not a constant"),
        );
        return None;
    };
    match checked.ty.dim() {
        Some(d) if d == Dimension::TIME && !every.steps => {
            if value > 0.0 && value.is_finite() {
                Some(Period::Time(value))
            } else {
                diags.push(Diagnostic::error(
                    "E0412",
                    checked.span,
                    format!("the period must be positive, found {value} s"),
                ));
                None
            }
        }
        Some(d) if d.is_dimensionless() => {
            if value >= 1.0 && value.fract() == 0.0 && value <= 1e15 {
                // A whole number in range, checked above.
                Some(Period::Steps(value as u64))
            } else {
                diags.push(
                    Diagnostic::error(
                        "E0412",
                        checked.span,
                        format!("a period in steps must be a positive whole number, found {value}"),
                    )
                    .with_label_message("not a whole number of steps"),
                );
                None
            }
        }
        _ => {
            diags.push(
                Diagnostic::error(
                    "E0301",
                    checked.span,
                    format!("the period must be a duration or a number of steps, found unit `{}`", checked.ty),
                )
                .with_note("e.g. `every 10 ms` or `every 100 steps`"),
            );
            None
        }
    }
}

/// Calls `f` for every variable an expression refers to.
pub(crate) fn visit_vars(e: &Expr, f: &mut impl FnMut(VarRef, Span)) {
    e.visit(&mut |e| {
        if let ExprKind::Var(r) = &e.kind {
            f(*r, e.span);
        }
    });
}

fn rhs(v: &Variable) -> Option<&Expr> {
    match &v.kind {
        VarKind::Differential(e) | VarKind::Subexpression(e) => Some(e),
        VarKind::Parameter => None,
    }
}

/// Local variables an expression refers to, directly.
fn local_refs(e: &Expr) -> Vec<usize> {
    local_refs_at(e).into_iter().map(|(k, _)| k).collect()
}

/// Local variables an expression refers to, directly, each with where it is first read.
fn local_refs_at(e: &Expr) -> Vec<(usize, Span)> {
    let mut out: Vec<(usize, Span)> = Vec::new();
    visit_vars(e, &mut |r, span| {
        if let VarRef::Local(k) = r
            && !out.iter().any(|(o, _)| *o == k)
        {
            out.push((k, span));
        }
    });
    out
}

/// Reports subexpressions that depend on themselves.
fn check_cycles(variables: &[Variable], ok: &[bool], diags: &mut Diagnostics) {
    let is_sub = |k: usize| matches!(variables[k].kind, VarKind::Subexpression(_)) && ok[k];
    let edges: Vec<Vec<usize>> = variables
        .iter()
        .enumerate()
        .map(|(k, v)| {
            if is_sub(k) {
                rhs(v).map(local_refs).unwrap_or_default().into_iter().filter(|&d| is_sub(d)).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; variables.len()];
    let mut reported: Vec<usize> = Vec::new();
    for start in 0..variables.len() {
        if state[start] != 0 || !is_sub(start) {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match state[dep] {
                    0 => {
                        state[dep] = 1;
                        stack.push((dep, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                        if !cycle.iter().any(|c| reported.contains(c)) {
                            reported.extend(&cycle);
                            let path: Vec<String> = cycle
                                .iter()
                                .chain(std::iter::once(&dep))
                                .map(|&k| format!("`{}`", variables[k].name))
                                .collect();
                            let mut d = Diagnostic::error(
                                "E0203",
                                variables[dep].span,
                                format!(
                                    "subexpression `{}` depends on itself: {}",
                                    variables[dep].name,
                                    path.join(" -> ")
                                ),
                            )
                            .with_label_message("defined in terms of itself");
                            for &k in cycle.iter().filter(|&&k| k != dep) {
                                d = d.with_secondary(variables[k].span, "part of the cycle");
                            }
                            diags.push(d.with_note(
                                "subexpressions are substituted into each other, so they can not form a cycle",
                            ));
                        }
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
}

/// Local variables an expression depends on, through subexpressions, with the path.
/// Each dependency comes with the subexpressions it is reached through and where the
/// right-hand side of `k` reads the first of them.
fn dependencies(variables: &[Variable], k: usize) -> Vec<(usize, Vec<usize>, Span)> {
    let mut out: Vec<(usize, Vec<usize>, Span)> = Vec::new();
    let mut queue: Vec<(usize, Vec<usize>, Span)> = rhs(&variables[k])
        .map(local_refs_at)
        .unwrap_or_default()
        .into_iter()
        .map(|(d, at)| (d, Vec::new(), at))
        .collect();
    queue.reverse();
    while let Some((d, via, at)) = queue.pop() {
        if out.iter().any(|(o, _, _)| *o == d) || d == k {
            continue;
        }
        if let VarKind::Subexpression(e) = &variables[d].kind {
            let mut next_via = via.clone();
            next_via.push(d);
            queue.extend(local_refs(e).into_iter().map(|x| (x, next_via.clone(), at)));
        }
        out.push((d, via, at));
    }
    out
}

/// A test on a variable.
type VarTest<'a> = &'a dyn Fn(&Variable) -> bool;

/// Brian2's rules: clock-driven equations and summed variables must not depend on
/// event-driven variables, and event-driven equations not on clock-driven ones.
fn check_event_driven(variables: &[Variable], ok: &[bool], diags: &mut Diagnostics) {
    let is_event = |v: &Variable| matches!(v.kind, VarKind::Differential(_)) && v.flags.event_driven;
    let is_clock = |v: &Variable| matches!(v.kind, VarKind::Differential(_)) && !v.flags.event_driven;
    for (k, v) in variables.iter().enumerate() {
        if !ok[k] {
            continue;
        }
        let (what, forbidden, forbidden_name): (&str, VarTest<'_>, &str) = if is_event(v) {
            ("event-driven equation", &|d: &Variable| is_clock(d) || d.flags.summed, "clock-driven")
        } else if is_clock(v) {
            ("clock-driven equation", &is_event, "event-driven")
        } else if v.flags.summed {
            ("summed variable", &is_event, "event-driven")
        } else {
            continue;
        };
        for (d, via, at) in dependencies(variables, k) {
            if forbidden(&variables[d]) {
                let via_text = if via.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (via {})",
                        via.iter().map(|&x| format!("`{}`", variables[x].name)).collect::<Vec<_>>().join(", ")
                    )
                };
                let kind = if variables[d].flags.summed { "summed" } else { forbidden_name };
                diags.push(
                    Diagnostic::error(
                        "E0406",
                        at,
                        format!("the {what} of `{}` depends on the {kind} variable `{}`{via_text}", v.name, variables[d].name),
                    )
                    .with_label_message(if via.is_empty() {
                        format!("reads `{}`", variables[d].name)
                    } else {
                        format!("reads `{}`, which depends on `{}`", variables[via[0]].name, variables[d].name)
                    })
                    .with_secondary(variables[d].span, format!("{kind} variable declared here"))
                    .with_note("event-driven variables are only up to date at events, so continuously updated code can not read them (and vice versa)"),
                );
            }
        }
    }
}

//! A readable text form of the checked model (`snnc check --dump`): groups,
//! variables with their dimensions and kinds, equations with names resolved
//! (`v_post` of synapse code, constants by name, literals in SI units).

use crate::ast::{AssignOp, BinaryOp, UnaryOp};
use crate::model::*;
use std::fmt::Write as _;

/// The names an expression's references resolve to.
struct Names<'a> {
    local: &'a [Variable],
    pre: &'a [Variable],
    post: &'a [Variable],
    shared: &'a [Variable],
    constants: &'a [Constant],
    noise: &'a [String],
}

fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne => 4,
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::FloorDiv | BinaryOp::Mod => 6,
        BinaryOp::Pow => 8,
    }
}

/// Precedence of an expression's top operator (9 for atoms).
fn expr_precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => precedence(*op),
        ExprKind::Unary(UnaryOp::Not, _) => 3,
        ExprKind::Unary(..) => 7,
        ExprKind::Cond(..) => 0,
        ExprKind::Literal(_) if e.ty.dim().is_some_and(|d| !d.is_dimensionless()) => 6,
        ExprKind::Literal(x) if *x < 0.0 => 7,
        _ => 9,
    }
}

impl Names<'_> {
    fn var(&self, r: VarRef) -> String {
        let name = |list: &[Variable], k: usize| list.get(k).map_or("?", |v| v.name.as_str()).to_string();
        match r {
            VarRef::Local(k) => name(self.local, k),
            VarRef::Pre(k) => format!("{}_pre", name(self.pre, k)),
            VarRef::Post(k) => format!("{}_post", name(self.post, k)),
            VarRef::Shared(k) => name(self.shared, k),
        }
    }

    fn expr(&self, e: &Expr) -> String {
        let wrap = |child: &Expr, min: u8| {
            let text = self.expr(child);
            if expr_precedence(child) < min { format!("({text})") } else { text }
        };
        match &e.kind {
            ExprKind::Literal(x) => match e.ty.dim() {
                Some(d) if !d.is_dimensionless() => format!("{}*{d}", number(*x)),
                _ => number(*x),
            },
            ExprKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            ExprKind::Const(k) => self.constants.get(*k).map_or("?".to_string(), |c| c.name.clone()),
            ExprKind::Var(r) => self.var(*r),
            ExprKind::Builtin(b) => b.name().to_string(),
            ExprKind::Noise(k) => self.noise.get(*k).cloned().unwrap_or_else(|| "xi".into()),
            ExprKind::Unary(op, a) => match op {
                UnaryOp::Neg => format!("-{}", wrap(a, 7)),
                UnaryOp::Pos => format!("+{}", wrap(a, 7)),
                UnaryOp::Not => format!("not {}", wrap(a, 3)),
            },
            ExprKind::Binary(op, a, b) => {
                let p = precedence(*op);
                // `**` is right-associative; the others left-associative.
                let (left_min, right_min) = if *op == BinaryOp::Pow { (p + 1, p) } else { (p, p + 1) };
                format!("{} {} {}", wrap(a, left_min), op.as_str(), wrap(b, right_min))
            }
            ExprKind::Call(f, args) => {
                format!("{}({})", f.name(), args.iter().map(|a| self.expr(a)).collect::<Vec<_>>().join(", "))
            }
            ExprKind::Cond(c, t, o) => {
                format!("{} if {} else {}", wrap(t, 1), wrap(c, 1), self.expr(o))
            }
            ExprKind::Table(values) => {
                let shown: Vec<String> = values.iter().map(|v| number(*v)).collect();
                let unit = e.ty.dim().filter(|d| !d.is_dimensionless()).map_or(String::new(), |d| format!(" ({d})"));
                format!("[{}][i]{unit}", shown.join(", "))
            }
            ExprKind::Observation { name, len: 1, .. } => name.to_string(),
            ExprKind::Observation { name, index, .. } => format!("{name}[{}]", self.expr(index)),
        }
    }

    fn stmt(&self, s: &Stmt) -> String {
        let op = match s.op {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
        };
        format!("{} {op} {}", self.var(s.target), self.expr(&s.value))
    }

    fn block(&self, out: &mut String, title: &str, stmts: &[Stmt]) {
        if stmts.is_empty() {
            return;
        }
        let _ = writeln!(out, "    {title}:");
        for s in stmts {
            let _ = writeln!(out, "      {}", self.stmt(s));
        }
    }
}

/// A number as it reads best: `0.02`, `1e-9`, `2.5e6`.
fn number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-3..1e6).contains(&x.abs()) { format!("{x:e}") } else { format!("{x}") }
}

fn seconds(x: f64) -> String {
    format!("{} s", number(x))
}

fn period(p: &Period) -> String {
    match p {
        Period::Steps(1) => "every step".to_string(),
        Period::Steps(n) => format!("every {n} steps"),
        Period::Time(t) => format!("every {}", seconds(*t)),
    }
}

fn dynamics(out: &mut String, names: &Names<'_>, model: &Model, d: &Dynamics) {
    let has_equations = d.variables.iter().any(|v| matches!(v.kind, VarKind::Differential(_)) && !v.flags.event_driven);
    let method = match (d.method(), has_equations) {
        (_, false) => "none (no differential equations)".to_string(),
        (Method::Auto, true) => match crate::ir::integration_method(model, d) {
            Ok(chosen) => format!("auto (chose {})", chosen.name()),
            Err(e) => format!("auto ({e})"),
        },
        (m, true) => m.name().to_string(),
    };
    let _ = writeln!(out, "    method: {method}");
    if !d.noise.is_empty() {
        let _ = writeln!(out, "    noise: {}", d.noise.join(", "));
    }
    let _ = writeln!(out, "    variables:");
    for v in &d.variables {
        let (kind, rhs) = match &v.kind {
            VarKind::Differential(e) => ("differential", Some(format!("d{}/dt = {}", v.name, names.expr(e)))),
            VarKind::Subexpression(e) => ("subexpression", Some(format!("{} = {}", v.name, names.expr(e)))),
            VarKind::Parameter if v.implicit => ("implicit", None),
            VarKind::Parameter => ("parameter", None),
        };
        let ty = if v.integer { "integer".to_string() } else { v.ty.to_string() };
        let flags = v.flags.names();
        let flags = if flags.is_empty() { String::new() } else { format!(" ({})", flags.join(", ")) };
        let _ = writeln!(out, "      {} : {ty}  [{kind}]{flags}", v.name);
        if let Some(rhs) = rhs {
            let _ = writeln!(out, "          {rhs}");
        }
    }
    names.block(out, "init", &d.init);
    for p in &d.periodic {
        names.block(out, &period(&p.period), &p.body);
    }
}

/// The checked model as text.
pub fn dump(model: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "dt = {}", seconds(model.dt));
    match model.run_length {
        Some(RunLength::Steps(n)) => {
            let _ = writeln!(out, "run length = {n} steps");
        }
        Some(RunLength::Duration(t)) => {
            let _ = writeln!(out, "run length = {}", seconds(t));
        }
        None => {}
    }
    if let Some(seed) = model.seed {
        let _ = writeln!(out, "seed = {seed}");
    }
    if !model.constants.is_empty() {
        let _ = writeln!(out, "constants:");
        for c in &model.constants {
            let _ = writeln!(out, "  {} = {} : {}", c.name, number(c.value), c.dim);
        }
    }
    let empty: &[Variable] = &[];
    if !model.shared.variables.is_empty() {
        let _ = writeln!(out, "shared:");
        let n = Names {
            local: &model.shared.variables,
            pre: empty,
            post: empty,
            shared: empty,
            constants: &model.constants,
            noise: &model.shared.noise,
        };
        dynamics(&mut out, &n, model, &model.shared);
    }
    for t in &model.neuron_types {
        let _ = writeln!(out, "neuron {}:", t.name);
        let n = Names {
            local: &t.dynamics.variables,
            pre: empty,
            post: empty,
            shared: &model.shared.variables,
            constants: &model.constants,
            noise: &t.dynamics.noise,
        };
        dynamics(&mut out, &n, model, &t.dynamics);
        if let Some(th) = &t.threshold {
            let _ = writeln!(out, "    threshold: {}", n.expr(th));
        }
        n.block(&mut out, "reset", &t.reset);
        match &t.refractory {
            Some(Refractory::Duration(e)) => {
                let _ = writeln!(out, "    refractory: {} (duration)", n.expr(e));
            }
            Some(Refractory::Condition(e)) => {
                let _ = writeln!(out, "    refractory: {} (condition)", n.expr(e));
            }
            None => {}
        }
    }
    for g in &model.groups {
        let kind = match &g.kind {
            GroupKind::Neurons(t) => model.neuron_types.get(*t).map_or("?".to_string(), |t| t.name.clone()),
            GroupKind::Poisson { .. } => "PoissonGroup".to_string(),
            GroupKind::SpikeGenerator { indices, .. } => {
                format!("SpikeGeneratorGroup ({} spikes)", indices.len())
            }
        };
        let _ = writeln!(out, "group {}: {kind}, {} neurons", g.name, g.size);
        let variables = match g.kind {
            GroupKind::Neurons(t) => &model.neuron_types[t].dynamics.variables[..],
            _ => empty,
        };
        let n = Names {
            local: variables,
            pre: empty,
            post: empty,
            shared: &model.shared.variables,
            constants: &model.constants,
            noise: &[],
        };
        if let GroupKind::Poisson { rates } = &g.kind {
            let _ = writeln!(out, "    rates = {}", n.expr(rates));
        }
        n.block(&mut out, "init", &g.init);
        for link in &g.links {
            let source = &model.groups[link.source_group];
            let var = |list: &[Variable], k: usize| list.get(k).map_or("?".to_string(), |v| v.name.clone());
            let source_vars = model.group_dynamics(link.source_group).map_or(empty, |d| &d.variables[..]);
            let _ = writeln!(
                out,
                "    link: {} = {}.{}",
                var(variables, link.var),
                source.name,
                var(source_vars, link.source_var)
            );
        }
    }
    for p in &model.pathways {
        let group = |s: &GroupSlice| {
            let g = &model.groups[s.group];
            if s.start == 0 && s.end == g.size { g.name.clone() } else { format!("{}[{}:{}]", g.name, s.start, s.end) }
        };
        let _ =
            writeln!(out, "pathway {}: {} -> {} with {}", p.name, group(&p.source), group(&p.target), p.synapse_type);
        let vars = |s: &GroupSlice| model.group_dynamics(s.group).map_or(empty, |d| &d.variables[..]);
        let n = Names {
            local: &p.dynamics.variables,
            pre: vars(&p.source),
            post: vars(&p.target),
            shared: &model.shared.variables,
            constants: &model.constants,
            noise: &p.dynamics.noise,
        };
        let c = &p.connectivity;
        if let Some(e) = &c.condition {
            let _ = writeln!(out, "    condition: {}", n.expr(e));
        }
        if let Some(e) = &c.p {
            let _ = writeln!(out, "    p: {}", n.expr(e));
        }
        if let Some(k) = c.fan_in {
            let _ = writeln!(out, "    fan_in: {k}");
        }
        if let Some(k) = c.fan_out {
            let _ = writeln!(out, "    fan_out: {k}");
        }
        if let Some(e) = &c.j {
            let _ = writeln!(out, "    j: {}", n.expr(e));
        }
        if let Some((s, _)) = &c.explicit {
            let _ = writeln!(out, "    explicit: {} synapses", s.len());
        }
        if let Some(d) = &p.delay {
            let _ = writeln!(out, "    delay: {}", n.expr(d));
        }
        dynamics(&mut out, &n, model, &p.dynamics);
        n.block(&mut out, "on_pre", &p.on_pre);
        n.block(&mut out, "on_post", &p.on_post);
        for s in &p.summed {
            let name = p.dynamics.variables.get(s.var).map_or("?", |v| v.name.as_str());
            let _ = writeln!(out, "    summed: {name} -> {}", n.var(s.target));
        }
    }
    for m in &model.monitors {
        let kind = match m.kind {
            MonitorKind::Spikes => "spikes",
            MonitorKind::State => "state",
            MonitorKind::Rate => "rate",
            MonitorKind::Weights => "weights",
        };
        let targets: Vec<String> = m
            .targets
            .iter()
            .map(|t| {
                let (object, vars) = match t.object {
                    Object::Group(g) => {
                        (model.groups[g].name.clone(), model.group_dynamics(g).map_or(empty, |d| &d.variables[..]))
                    }
                    Object::Pathway(p) => (model.pathways[p].name.clone(), &model.pathways[p].dynamics.variables[..]),
                    Object::Shared => ("shared".to_string(), &model.shared.variables[..]),
                };
                let var = t.var.and_then(|k| vars.get(k)).map_or(String::new(), |v| format!(".{}", v.name));
                let indices = t.indices.as_ref().map_or(String::new(), |r| {
                    let parts: Vec<String> =
                        r.iter().map(|(a, b)| if b - a == 1 { a.to_string() } else { format!("{a}:{b}") }).collect();
                    format!("[{}]", parts.join(", "))
                });
                format!("{object}{var}{indices}")
            })
            .collect();
        let every = m.every.as_ref().map_or(String::new(), |p| format!(" {}", period(p)));
        let _ = writeln!(out, "monitor {kind}: {}{every}", targets.join(", "));
    }
    if let Some(env) = &model.environment {
        environment(&mut out, model, env);
    }
    out
}

fn environment(out: &mut String, model: &Model, env: &crate::model::Environment) {
    let settings: Vec<String> =
        env.spec.settings.iter().zip(&env.settings).map(|(s, v)| format!("{} = {}", s.name, number(*v))).collect();
    let _ = writeln!(out, "environment {}: {}", env.spec.name, settings.join(", "));
    let empty: &[Variable] = &[];
    let blocks = env.sense.iter().map(|c| ("sense", c)).chain(env.reward.iter().map(|c| ("reward", c)));
    for (kind, code) in blocks {
        let group = code.group.and_then(|g| model.groups.get(g));
        let local = group.and_then(|g| match g.kind {
            GroupKind::Neurons(t) => model.neuron_types.get(t).map(|t| &t.dynamics.variables[..]),
            _ => None,
        });
        let n = Names {
            local: local.unwrap_or(empty),
            pre: empty,
            post: empty,
            shared: &model.shared.variables,
            constants: &model.constants,
            noise: &[],
        };
        let title = match group {
            Some(g) => format!("{kind} {}", g.name),
            None => kind.to_string(),
        };
        n.block(out, &title, &code.body);
    }
    if let Some(d) = &env.decision {
        let group = model.groups.get(d.group).map_or("?", |g| g.name.as_str());
        let _ = writeln!(
            out,
            "    act {group} {}: {} action groups, epsilon = {}",
            period(&d.every),
            d.groups,
            number(d.epsilon)
        );
    }
}

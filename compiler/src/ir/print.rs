//! The IR's text form (`snnc emit --ir`): one kernel after another, statements one per line.

use super::{Expr, Kernel, KernelKind, Loop, Module, Op1, Op2, Stmt};
use std::fmt::{self, Write as _};

struct Names<'a>(&'a Module);

impl Names<'_> {
    fn var(&self, v: usize) -> String {
        let layout = &self.0.layout;
        match layout.vars.get(v) {
            Some(info) => format!("{}.{}", layout.populations[info.population].name, info.name),
            None => format!("var{v}"),
        }
    }

    fn param(&self, p: usize) -> String {
        let n = self.0.layout.params.len();
        match self.0.layout.params.get(p) {
            Some(info) => format!("${}", info.name),
            None => format!("$${}", p - n),
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match e {
            Expr::F64(x) => format!("{x:?}"),
            Expr::Bool(b) => b.to_string(),
            Expr::Param(p) => self.param(*p),
            Expr::Load(v) => self.var(*v),
            Expr::LoadAt(v, at) => format!("{}[{}]", self.var(*v), if *at == super::At::Pre { "i" } else { "j" }),
            Expr::IndexAt(at) => if *at == super::At::Pre { "i" } else { "j" }.into(),
            Expr::Temp(t) => format!("%{t}"),
            Expr::Table(k) => format!("table{k}[i]"),
            Expr::Env { offset, index } => format!("env[{offset} + {}]", self.expr(index)),
            Expr::Index => "i".into(),
            Expr::Time => "t".into(),
            Expr::Dt => "dt".into(),
            Expr::Unary(op, a) => {
                let name = match op {
                    Op1::Neg => return format!("-({})", self.expr(a)),
                    Op1::Not => "not",
                    Op1::Abs => "abs",
                    Op1::Floor => "floor",
                    Op1::Ceil => "ceil",
                    Op1::Trunc => "trunc",
                    Op1::Sqrt => "sqrt",
                    Op1::BoolToF64 => "float",
                };
                format!("{name}({})", self.expr(a))
            }
            Expr::Binary(op, a, b) => {
                let sym = match (op.infix(), op) {
                    (Some(sym), _) => sym,
                    (None, Op2::And) => "and",
                    (None, Op2::Or) => "or",
                    (None, Op2::Min) => return format!("min({}, {})", self.expr(a), self.expr(b)),
                    (None, _) => return format!("max({}, {})", self.expr(a), self.expr(b)),
                };
                format!("({} {sym} {})", self.expr(a), self.expr(b))
            }
            Expr::Call(m, args) => {
                let name = m.symbol().trim_start_matches("snnc_");
                format!("{name}({})", args.iter().map(|a| self.expr(a)).collect::<Vec<_>>().join(", "))
            }
            Expr::Select(c, a, b) => format!("select({}, {}, {})", self.expr(c), self.expr(a), self.expr(b)),
            Expr::Rand(s) => format!("rand#{s}"),
            Expr::Randn(s) => format!("randn#{s}"),
        }
    }

    fn stmts(&self, out: &mut String, stmts: &[Stmt], indent: usize) {
        let pad = " ".repeat(indent);
        for s in stmts {
            match s {
                Stmt::Let(t, e) => {
                    let _ = writeln!(out, "{pad}%{t} = {}", self.expr(e));
                }
                Stmt::Store(v, e) => {
                    let _ = writeln!(out, "{pad}{} <- {}", self.var(*v), self.expr(e));
                }
                Stmt::StoreAt(v, at, e) => {
                    let index = if *at == super::At::Pre { "i" } else { "j" };
                    let _ = writeln!(out, "{pad}{}[{index}] <- {}", self.var(*v), self.expr(e));
                }
                Stmt::If(c, body) => {
                    let _ = writeln!(out, "{pad}if {} {{", self.expr(c));
                    self.stmts(out, body, indent + 4);
                    let _ = writeln!(out, "{pad}}}");
                }
                Stmt::EmitSpike => {
                    let _ = writeln!(out, "{pad}spike(i)");
                }
            }
        }
    }

    fn kernel(&self, out: &mut String, k: &Kernel) {
        let population = self.0.layout.populations.get(k.population).map_or("?", |p| p.name.as_str());
        let when = match &k.kind {
            KernelKind::Init => "init".to_string(),
            KernelKind::Periodic { period } => format!("every {period} steps"),
            KernelKind::StateUpdate => match k.method {
                Some(m) => format!("state update, method {}", m.name()),
                None => "state update".to_string(),
            },
            KernelKind::Threshold => "threshold".to_string(),
            KernelKind::Reset => "reset".to_string(),
            KernelKind::Observe => "observe subexpressions".to_string(),
            KernelKind::Connect => "connect".to_string(),
            KernelKind::SummedReset => "summed: reset".to_string(),
            KernelKind::Summed => "summed".to_string(),
            KernelKind::OnPre => "on_pre".to_string(),
            KernelKind::OnPost => "on_post".to_string(),
            KernelKind::Sense => "environment: sense".to_string(),
            KernelKind::Reward => "environment: reward".to_string(),
        };
        let looping = match k.looping {
            Loop::Neurons => "for i in neurons",
            Loop::Spikes => "for i in spikes",
            Loop::Once => "once",
            Loop::Synapses => "for s in synapses",
            Loop::PreSpikes => "for s in synapses of spiking i",
            Loop::PostSpikes => "for s in synapses of spiking j",
            Loop::Pairs => "for j in candidate targets of i",
            Loop::SynapseList => "for s in delayed events due",
        };
        let _ = writeln!(out, "kernel {} ({when}) on {population}:", k.name);
        if !k.scalar.is_empty() {
            let _ = writeln!(out, "  scalar:");
            self.stmts(out, &k.scalar, 4);
        }
        let _ = writeln!(out, "  {looping}:");
        self.stmts(out, &k.body, 4);
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Names(self);
        let mut out = String::new();
        let _ = writeln!(out, "dt = {:?} s", self.dt);
        for p in &self.layout.populations {
            let vars: Vec<String> = p
                .vars
                .iter()
                .map(|&v| {
                    let info = &self.layout.vars[v];
                    if info.scalar { format!("{} (scalar)", info.name) } else { info.name.clone() }
                })
                .collect();
            let _ = writeln!(out, "population {} ({} neurons): {}", p.name, p.size, vars.join(", "));
        }
        for (k, e) in self.run_constants.iter().enumerate() {
            let _ = writeln!(out, "run constant $${k} = {}", names.expr(e));
        }
        for k in &self.kernels {
            names.kernel(&mut out, k);
        }
        f.write_str(&out)
    }
}

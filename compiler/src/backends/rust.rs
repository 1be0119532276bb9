//! The Rust back end: every kernel of an IR module becomes an `unsafe extern "C" fn`
//! in Rust source, for the `model!` proc-macro (AOT) and `snnc emit --rust`.
//!
//! The translation is literal, like the Cranelift back end's: one Rust operation per
//! IR operation, in the IR's order (rustc neither reassociates floating point nor
//! forms FMAs), the same `abi` functions for transcendentals and random numbers. So
//! AOT and JIT kernels compute the same bits.
//!
//! The generated code names the ABI through `crate_path` (`::snnc_runtime::abi` in a
//! user's crate).

use crate::ir::{At, Expr, Kernel, KernelKind, Loop, Module, Op1, Op2, Stmt, Ty};
use std::fmt::Write as _;

/// Rust source for every kernel: `pub unsafe extern "C" fn kernel_<k>` and
/// `pub static KERNELS: [KernelFn; n]`. `abi` is the path of the ABI module.
pub fn generate(module: &Module, abi: &str) -> String {
    let mut out = String::new();
    for (k, kernel) in module.kernels.iter().enumerate() {
        let _ = writeln!(out, "/// Kernel `{}`.", kernel.name);
        let _ = writeln!(
            out,
            "/// # Safety\n/// `args` must describe arrays laid out as the model's `ir::Module` says (the runtime's `Simulation` does)."
        );
        let _ =
            writeln!(out, "#[allow(unused_variables, unused_mut, unused_unsafe, clippy::all, reason = \"generated\")]");
        let _ = writeln!(out, "pub unsafe extern \"C\" fn kernel_{k}(args: *const {abi}::KernelArgs) {{");
        let _ = writeln!(out, "    #[inline(always)]\n    unsafe fn body(args: *const {abi}::KernelArgs) {{");
        let mut g = Gen { module, kernel, abi, out: String::new(), depth: 2 };
        g.kernel();
        out.push_str(&g.out);
        out.push_str("    }\n");
        // The body compiled twice, for the baseline CPU and for AVX2 (wider vectors,
        // no FMA: the same bits), chosen at run time.
        let _ = writeln!(
            out,
            "    #[cfg(target_arch = \"x86_64\")]\n    #[target_feature(enable = \"avx2\")]\n    unsafe fn body_avx2(args: *const {abi}::KernelArgs) {{\n        unsafe {{ body(args) }}\n    }}"
        );
        let _ = writeln!(
            out,
            "    #[cfg(target_arch = \"x86_64\")]\n    if ::std::is_x86_feature_detected!(\"avx2\") {{\n        return unsafe {{ body_avx2(args) }};\n    }}\n    unsafe {{ body(args) }}"
        );
        out.push_str("}\n\n");
    }
    let names: Vec<String> = (0..module.kernels.len()).map(|k| format!("kernel_{k}")).collect();
    let _ = writeln!(out, "/// The kernels, in the order of the lowered module.");
    let _ = writeln!(out, "pub static KERNELS: [{abi}::KernelFn; {}] = [{}];", names.len(), names.join(", "));
    out
}

struct Gen<'a> {
    module: &'a Module,
    kernel: &'a Kernel,
    abi: &'a str,
    out: String,
    depth: usize,
}

impl Gen<'_> {
    fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn kernel(&mut self) {
        self.line("unsafe {");
        self.depth += 1;
        self.line("let a = &*args;");
        self.line("let (n, step, t, dt, seed, aux) = (a.n, a.step, a.t, a.dt, a.seed, a.aux);");
        self.line("let spikes = a.spikes;");
        self.line("let mut count: u64 = 0;");
        self.line("let (mut index, mut pre_index, mut post_index): (u64, u64, u64) = (0, 0, 0);");
        // Base pointers, parameters and tables used by the kernel.
        let (mut vars, mut params, mut tables) = (Vec::new(), Vec::new(), Vec::new());
        for s in self.kernel.scalar.iter().chain(&self.kernel.body) {
            collect(s, &mut vars, &mut params, &mut tables);
        }
        vars.sort_unstable();
        vars.dedup();
        params.sort_unstable();
        params.dedup();
        tables.sort_unstable();
        tables.dedup();
        for v in vars {
            self.line(&format!("let v{v}: *mut f64 = *a.vars.add({v});"));
        }
        for p in params {
            self.line(&format!("let p{p}: f64 = *a.params.add({p});"));
        }
        for t in tables {
            self.line(&format!("let tb{t}: *const f64 = *a.tables.add({t});"));
        }
        // One key per random stream, computed once per call.
        let mut streams = Vec::new();
        for s in self.kernel.scalar.iter().chain(&self.kernel.body) {
            crate::ir::visit_exprs(s, &mut |e| {
                if let Expr::Rand(k) | Expr::Randn(k) = e
                    && !streams.contains(k)
                {
                    streams.push(*k);
                }
            });
        }
        for k in streams {
            self.line(&format!("let key{k}: u64 = {}::snnc_rng_key(seed, step, {k});", self.abi));
        }
        for s in &self.kernel.scalar {
            self.stmt(s);
        }
        match self.kernel.looping {
            Loop::Once => self.body(),
            looping => {
                self.line("for k in 0..n {");
                self.depth += 1;
                match looping {
                    Loop::Neurons => self.line("index = k;"),
                    Loop::Spikes => self.line("index = u64::from(*spikes.add(k as usize));"),
                    Loop::Synapses => {
                        self.line("index = k;");
                        self.line("pre_index = u64::from(*a.pre.add(k as usize));");
                        self.line("post_index = u64::from(*a.post.add(k as usize));");
                    }
                    Loop::SynapseList => {
                        self.line("index = u64::from(*spikes.add(k as usize));");
                        self.line("pre_index = u64::from(*a.pre.add(index as usize));");
                        self.line("post_index = u64::from(*a.post.add(index as usize));");
                    }
                    Loop::Pairs => {
                        self.line("index = k;");
                        self.line("pre_index = aux;");
                        self.line("post_index = k;");
                    }
                    Loop::PreSpikes | Loop::PostSpikes => {
                        let offsets = if looping == Loop::PreSpikes { "pre_offsets" } else { "post_offsets" };
                        self.line("let neuron = u64::from(*spikes.add(k as usize));");
                        self.line(&format!("let start = u64::from(*a.{offsets}.add(neuron as usize));"));
                        self.line(&format!("let end = u64::from(*a.{offsets}.add(neuron as usize + 1));"));
                        self.line("for m in start..end {");
                        self.depth += 1;
                        if looping == Loop::PreSpikes {
                            self.line("index = m;");
                            self.line("pre_index = neuron;");
                            self.line("post_index = u64::from(*a.post.add(m as usize));");
                        } else {
                            self.line("index = u64::from(*a.post_order.add(m as usize));");
                            self.line("pre_index = u64::from(*a.pre.add(index as usize));");
                            self.line("post_index = neuron;");
                        }
                        self.body();
                        self.depth -= 1;
                        self.line("}");
                    }
                    Loop::Once => {}
                }
                if !matches!(looping, Loop::PreSpikes | Loop::PostSpikes) {
                    self.body();
                }
                self.depth -= 1;
                self.line("}");
            }
        }
        if matches!(self.kernel.kind, KernelKind::Threshold | KernelKind::Connect) {
            self.line("*a.n_spikes = count;");
        }
        self.depth -= 1;
        self.line("}");
    }

    fn body(&mut self) {
        for s in &self.kernel.body {
            self.stmt(s);
        }
    }

    fn place(&self, v: usize, index: &str) -> String {
        let scalar = self.module.layout.vars.get(v).is_none_or(|info| info.scalar);
        if scalar { format!("*v{v}") } else { format!("*v{v}.add({index} as usize)") }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let(t, e) => {
                let ty = if self.kernel.temps.get(*t) == Some(&Ty::Bool) { "bool" } else { "f64" };
                let value = self.expr(e);
                self.line(&format!("let t{t}: {ty} = {value};"));
            }
            Stmt::Store(v, e) => {
                let value = self.expr(e);
                let place = self.place(*v, "index");
                self.line(&format!("{place} = {value};"));
            }
            Stmt::StoreAt(v, at, e) => {
                let value = self.expr(e);
                let place = self.place(*v, at_index(*at));
                self.line(&format!("{place} = {value};"));
            }
            Stmt::If(c, body) => {
                let c = self.expr(c);
                self.line(&format!("if {c} {{"));
                self.depth += 1;
                for s in body {
                    self.stmt(s);
                }
                self.depth -= 1;
                self.line("}");
            }
            Stmt::EmitSpike => {
                self.line("*spikes.add(count as usize) = index as u32;");
                self.line("count += 1;");
            }
        }
    }

    fn expr(&self, e: &Expr) -> String {
        let abi = self.abi;
        match e {
            // The exact bits, whatever the decimal printing would round to.
            Expr::F64(x) => format!("f64::from_bits({:#x})", x.to_bits()),
            Expr::Bool(b) => b.to_string(),
            Expr::Param(p) => format!("p{p}"),
            Expr::Load(v) => format!("({})", self.place(*v, "index")),
            Expr::LoadAt(v, at) => format!("({})", self.place(*v, at_index(*at))),
            Expr::Temp(t) => format!("t{t}"),
            Expr::Table(k) => format!("(*tb{k}.add(index as usize))"),
            Expr::Index => "(index as f64)".into(),
            Expr::IndexAt(at) => format!("({} as f64)", at_index(*at)),
            Expr::Time => "t".into(),
            Expr::Dt => "dt".into(),
            Expr::Unary(op, a) => {
                let a = self.expr(a);
                match op {
                    Op1::Neg => format!("(-{a})"),
                    Op1::Not => format!("(!{a})"),
                    Op1::Abs => format!("{a}.abs()"),
                    // Without SSE4.1 `f64::floor` etc. are library calls: the abi's
                    // integer versions give the same bits, inline.
                    Op1::Floor => format!("{}::snnc_floor({a})", self.abi),
                    Op1::Ceil => format!("{}::snnc_ceil({a})", self.abi),
                    Op1::Trunc => format!("{}::snnc_trunc({a})", self.abi),
                    Op1::Sqrt => format!("{a}.sqrt()"),
                    Op1::BoolToF64 => format!("(if {a} {{ 1.0f64 }} else {{ 0.0f64 }})"),
                }
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.expr(a), self.expr(b));
                let sym = match (op.infix(), op) {
                    (Some(sym), _) => sym,
                    (None, Op2::And) => "&",
                    (None, Op2::Or) => "|",
                    (None, Op2::Min) => {
                        return format!("{{ let x: f64 = {x}; let y: f64 = {y}; if x < y {{ x }} else {{ y }} }}");
                    }
                    (None, _) => {
                        return format!("{{ let x: f64 = {x}; let y: f64 = {y}; if x > y {{ x }} else {{ y }} }}");
                    }
                };
                format!("({x} {sym} {y})")
            }
            Expr::Call(m, args) => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a)).collect();
                format!("{abi}::{}({})", m.symbol(), args.join(", "))
            }
            Expr::Select(c, a, b) => {
                format!(
                    "{{ let c: bool = {}; let x = {}; let y = {}; if c {{ x }} else {{ y }} }}",
                    self.expr(c),
                    self.expr(a),
                    self.expr(b)
                )
            }
            // The index is a whole number within the observation (see `ir::Expr::Env`).
            Expr::Env { offset, index } => format!("(*(*args).env.add({offset} + ({}) as usize))", self.expr(index)),
            Expr::Rand(s) => format!("{abi}::snnc_uniform(key{s}, index)"),
            Expr::Randn(s) => format!("{abi}::snnc_normal(key{s}, index)"),
        }
    }
}

fn at_index(at: At) -> &'static str {
    if at == At::Pre { "pre_index" } else { "post_index" }
}

fn collect(s: &Stmt, vars: &mut Vec<usize>, params: &mut Vec<usize>, tables: &mut Vec<usize>) {
    fn walk(e: &Expr, vars: &mut Vec<usize>, params: &mut Vec<usize>, tables: &mut Vec<usize>) {
        match e {
            Expr::Load(v) | Expr::LoadAt(v, _) => vars.push(*v),
            Expr::Param(p) => params.push(*p),
            Expr::Table(t) => tables.push(*t),
            _ => {}
        }
        for c in e.children() {
            walk(c, vars, params, tables);
        }
    }
    match s {
        Stmt::Let(_, e) => walk(e, vars, params, tables),
        Stmt::Store(v, e) | Stmt::StoreAt(v, _, e) => {
            vars.push(*v);
            walk(e, vars, params, tables);
        }
        Stmt::If(c, body) => {
            walk(c, vars, params, tables);
            for s in body {
                collect(s, vars, params, tables);
            }
        }
        Stmt::EmitSpike => {}
    }
}

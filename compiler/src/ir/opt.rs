//! IR passes: constant folding, hoisting of loop-invariant values into the scalar
//! block, and common-subexpression elimination. Folding evaluates exactly the
//! operations the kernel would (with the same `abi` functions). One rewrite changes
//! rounding: in a product of several factors, those the same for every item are
//! multiplied first (`regroup_products`), so that the loop does one multiplication
//! fewer per item; the result differs from left-to-right order by rounding only, as
//! Brian2's own rewriting of expressions (through sympy) does. Both back ends see
//! the rewritten IR, so they still agree bit for bit.

use super::{Expr, Kernel, MathFn, Op1, Op2, Stmt};
use std::collections::BTreeMap;

/// Runs every pass on a kernel.
pub(super) fn optimize(kernel: &mut Kernel, layout: &super::Layout) {
    for s in kernel.scalar.iter_mut().chain(kernel.body.iter_mut()) {
        fold_stmt(s);
    }
    let mut next = next_temp(kernel);
    hoist(kernel, &mut next, layout);
    cse(&mut kernel.body, &mut next);
    kernel.temps = temp_types(kernel, next);
}

/// The type of every temporary, from its `Let`.
fn temp_types(kernel: &Kernel, n: usize) -> Vec<super::Ty> {
    fn walk(stmts: &[Stmt], temps: &mut Vec<super::Ty>) {
        for s in stmts {
            match s {
                Stmt::Let(t, e) => temps[*t] = e.ty(temps),
                Stmt::If(_, body) => walk(body, temps),
                _ => {}
            }
        }
    }
    let mut temps = vec![super::Ty::F64; n];
    walk(&kernel.scalar, &mut temps);
    walk(&kernel.body, &mut temps);
    temps
}

fn next_temp(kernel: &Kernel) -> usize {
    fn walk(stmts: &[Stmt], max: &mut usize) {
        for s in stmts {
            match s {
                Stmt::Let(t, _) => *max = (*max).max(t + 1),
                Stmt::If(_, body) => walk(body, max),
                _ => {}
            }
        }
    }
    let mut max = 0;
    walk(&kernel.scalar, &mut max);
    walk(&kernel.body, &mut max);
    max
}

// ---------------------------------------------------------------- folding

fn fold_stmt(s: &mut Stmt) {
    match s {
        Stmt::Let(_, e) | Stmt::Store(_, e) | Stmt::StoreAt(_, _, e) => fold(e),
        Stmt::If(c, body) => {
            fold(c);
            body.iter_mut().for_each(fold_stmt);
        }
        Stmt::EmitSpike => {}
    }
}

/// Folds operations whose operands are all constants.
pub(super) fn fold(e: &mut Expr) {
    match e {
        Expr::Unary(_, a) => fold(a),
        Expr::Binary(_, a, b) => {
            fold(a);
            fold(b);
        }
        Expr::Call(_, args) => args.iter_mut().for_each(fold),
        Expr::Select(c, a, b) => {
            fold(c);
            fold(a);
            fold(b);
        }
        _ => return,
    }
    if let Some(value) = evaluate(e) {
        *e = value;
    }
}

fn evaluate(e: &Expr) -> Option<Expr> {
    let f = |x: &Expr| if let Expr::F64(v) = x { Some(*v) } else { None };
    let b = |x: &Expr| if let Expr::Bool(v) = x { Some(*v) } else { None };
    Some(match e {
        Expr::Unary(op, a) => match op {
            Op1::Not => Expr::Bool(!b(a)?),
            Op1::BoolToF64 => Expr::F64(if b(a)? { 1.0 } else { 0.0 }),
            Op1::Neg => Expr::F64(-f(a)?),
            Op1::Abs => Expr::F64(f(a)?.abs()),
            Op1::Floor => Expr::F64(f(a)?.floor()),
            Op1::Ceil => Expr::F64(f(a)?.ceil()),
            Op1::Trunc => Expr::F64(f(a)?.trunc()),
            Op1::Sqrt => Expr::F64(f(a)?.sqrt()),
        },
        Expr::Binary(op, a, c) => match op {
            Op2::And => Expr::Bool(b(a)? && b(c)?),
            Op2::Or => Expr::Bool(b(a)? || b(c)?),
            Op2::Eq if b(a).is_some() => Expr::Bool(b(a)? == b(c)?),
            Op2::Ne if b(a).is_some() => Expr::Bool(b(a)? != b(c)?),
            _ => {
                let (x, y) = (f(a)?, f(c)?);
                match op {
                    Op2::Add => Expr::F64(x + y),
                    Op2::Sub => Expr::F64(x - y),
                    Op2::Mul => Expr::F64(x * y),
                    Op2::Div => Expr::F64(x / y),
                    Op2::Lt => Expr::Bool(x < y),
                    Op2::Le => Expr::Bool(x <= y),
                    Op2::Gt => Expr::Bool(x > y),
                    Op2::Ge => Expr::Bool(x >= y),
                    Op2::Eq => Expr::Bool(x == y),
                    Op2::Ne => Expr::Bool(x != y),
                    Op2::Min => Expr::F64(if x < y { x } else { y }),
                    Op2::Max => Expr::F64(if x > y { x } else { y }),
                    Op2::And | Op2::Or => return None,
                }
            }
        },
        Expr::Call(m, args) => {
            let values: Vec<f64> = args.iter().map(f).collect::<Option<_>>()?;
            if values.len() != m.arity() {
                return None;
            }
            Expr::F64(MathFn::eval(*m, &values))
        }
        Expr::Select(c, a, d) => {
            if b(c)? {
                (**a).clone()
            } else {
                (**d).clone()
            }
        }
        _ => return None,
    })
}

/// The value of an expression of parameters (`params`, run constants included),
/// `dt` and constants, computed as a kernel would (NaN for anything else).
pub(super) fn evaluate_with(e: &Expr, params: &[f64], dt: f64) -> f64 {
    fn substitute(e: &Expr, params: &[f64], dt: f64) -> Expr {
        match e {
            Expr::Param(p) => Expr::F64(params.get(*p).copied().unwrap_or(f64::NAN)),
            Expr::Dt => Expr::F64(dt),
            Expr::Unary(op, a) => Expr::un(*op, substitute(a, params, dt)),
            Expr::Binary(op, a, b) => Expr::bin(*op, substitute(a, params, dt), substitute(b, params, dt)),
            Expr::Call(m, args) => Expr::Call(*m, args.iter().map(|a| substitute(a, params, dt)).collect()),
            Expr::Select(c, a, b) => {
                Expr::select(substitute(c, params, dt), substitute(a, params, dt), substitute(b, params, dt))
            }
            other => other.clone(),
        }
    }
    let mut e = substitute(e, params, dt);
    fold(&mut e);
    match e {
        Expr::F64(x) => x,
        Expr::Bool(b) => f64::from(u8::from(b)),
        _ => f64::NAN,
    }
}

// ---------------------------------------------------------------- run constants

/// Moves the scalar blocks' values computed from parameters and `dt` alone into
/// `Module::run_constants` (one entry per distinct expression): kernels then read
/// them as parameters. Only `f64` values are moved; the computation is the same,
/// done once per run.
pub(super) fn extract_run_constants(module: &mut super::Module) {
    let base = module.layout.params.len();
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut constants: Vec<Expr> = Vec::new();
    for kernel in &mut module.kernels {
        let mut moved: BTreeMap<usize, usize> = BTreeMap::new();
        for s in &mut kernel.scalar {
            let Stmt::Let(t, e) = s else { continue };
            let Some(value) = run_constant(e, &moved, base) else { continue };
            if !matches!(value, Expr::Unary(..) | Expr::Binary(..) | Expr::Call(..) | Expr::Select(..))
                || value.ty(&kernel.temps) != super::Ty::F64
            {
                continue;
            }
            let k = *keys.entry(format!("{value:?}")).or_insert_with(|| {
                constants.push(value);
                constants.len() - 1
            });
            moved.insert(*t, k);
            *e = Expr::Param(base + k);
        }
    }
    module.run_constants = constants;
}

/// `e` with moved temporaries replaced by their run constants, if it reads only
/// parameters, `dt`, constants and such temporaries.
fn run_constant(e: &Expr, moved: &BTreeMap<usize, usize>, base: usize) -> Option<Expr> {
    Some(match e {
        Expr::F64(_) | Expr::Bool(_) | Expr::Param(_) | Expr::Dt => e.clone(),
        Expr::Temp(t) => Expr::Param(base + moved.get(t)?),
        Expr::Unary(op, a) => Expr::un(*op, run_constant(a, moved, base)?),
        Expr::Binary(op, a, b) => Expr::bin(*op, run_constant(a, moved, base)?, run_constant(b, moved, base)?),
        Expr::Call(m, args) => {
            Expr::Call(*m, args.iter().map(|a| run_constant(a, moved, base)).collect::<Option<_>>()?)
        }
        Expr::Select(c, a, b) => {
            Expr::select(run_constant(c, moved, base)?, run_constant(a, moved, base)?, run_constant(b, moved, base)?)
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------- hoisting

/// What stays the same for every item of a kernel's loop.
struct Invariants {
    /// Temporaries of the scalar block.
    temps: Vec<usize>,
    /// Scalar variables the kernel never writes: the same value for every item.
    loads: Vec<usize>,
}

impl Invariants {
    /// Whether the value is the same for every item: no per-item state, no index, no
    /// table, no random number, and only invariant temporaries and loads.
    fn holds(&self, e: &Expr) -> bool {
        match e {
            Expr::Load(v) => self.loads.contains(v),
            Expr::LoadAt(..) | Expr::Index | Expr::IndexAt(_) | Expr::Table(_) | Expr::Rand(_) | Expr::Randn(_) => {
                false
            }
            Expr::Temp(t) => self.temps.contains(t),
            _ => e.children().iter().all(|c| self.holds(c)),
        }
    }
}

/// Whether computing it once saves anything (not a leaf).
fn worth_a_temp(e: &Expr) -> bool {
    matches!(e, Expr::Unary(..) | Expr::Binary(..) | Expr::Call(..) | Expr::Select(..))
}

/// Moves loop-invariant values into the scalar block: whole `Let`s, and the largest
/// invariant parts of other expressions.
fn hoist(kernel: &mut Kernel, next: &mut usize, layout: &super::Layout) {
    let writes = [super::stored_vars(&kernel.scalar), super::stored_vars(&kernel.body)].concat();
    let mut invariants = Invariants {
        temps: kernel.scalar.iter().filter_map(|s| if let Stmt::Let(t, _) = s { Some(*t) } else { None }).collect(),
        loads: layout
            .vars
            .iter()
            .enumerate()
            .filter(|(v, info)| info.scalar && !writes.contains(v))
            .map(|(v, _)| v)
            .collect(),
    };
    for s in &mut kernel.body {
        regroup_stmt(s, &invariants);
    }
    let mut hoisted: BTreeMap<String, usize> = BTreeMap::new();
    let mut body = Vec::with_capacity(kernel.body.len());
    for mut s in std::mem::take(&mut kernel.body) {
        if let Stmt::Let(t, e) = &s
            && invariants.holds(e)
        {
            invariants.temps.push(*t);
            kernel.scalar.push(s);
            continue;
        }
        extract_stmt(&mut s, &mut kernel.scalar, &mut invariants, &mut hoisted, next);
        body.push(s);
    }
    kernel.body = body;
}

fn regroup_stmt(s: &mut Stmt, inv: &Invariants) {
    match s {
        Stmt::Let(_, e) | Stmt::Store(_, e) | Stmt::StoreAt(_, _, e) => regroup_products(e, inv),
        Stmt::If(c, body) => {
            regroup_products(c, inv);
            body.iter_mut().for_each(|s| regroup_stmt(s, inv));
        }
        Stmt::EmitSpike => {}
    }
}

/// A product of factors that vary per item and two or more that do not
/// (`eta*da*e*dt`, `((eta*da)*e)*dt`) becomes `(invariant product) * (varying
/// product)`, each side in its factors' order (`((eta*da)*dt)*e`): hoisting then
/// computes the invariant side once per call.
fn regroup_products(e: &mut Expr, inv: &Invariants) {
    match e {
        Expr::Unary(_, a) => regroup_products(a, inv),
        Expr::Binary(_, a, b) => {
            regroup_products(a, inv);
            regroup_products(b, inv);
        }
        Expr::Call(_, args) => args.iter_mut().for_each(|a| regroup_products(a, inv)),
        Expr::Select(c, a, b) => {
            regroup_products(c, inv);
            regroup_products(a, inv);
            regroup_products(b, inv);
        }
        _ => {}
    }
    if !matches!(e, Expr::Binary(Op2::Mul, ..)) {
        return;
    }
    fn factors(e: &Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::Binary(Op2::Mul, a, b) => {
                factors(a, out);
                factors(b, out);
            }
            _ => out.push(e.clone()),
        }
    }
    let mut all = Vec::new();
    factors(e, &mut all);
    let (fixed, varying): (Vec<Expr>, Vec<Expr>) = all.into_iter().partition(|f| inv.holds(f));
    if fixed.len() < 2 || varying.is_empty() {
        return;
    }
    let product = |list: Vec<Expr>| list.into_iter().reduce(|a, b| Expr::bin(Op2::Mul, a, b));
    if let (Some(fixed), Some(varying)) = (product(fixed), product(varying)) {
        *e = Expr::bin(Op2::Mul, fixed, varying);
    }
}

fn extract_stmt(
    s: &mut Stmt,
    scalar: &mut Vec<Stmt>,
    inv: &mut Invariants,
    hoisted: &mut BTreeMap<String, usize>,
    next: &mut usize,
) {
    match s {
        Stmt::Let(_, e) | Stmt::Store(_, e) | Stmt::StoreAt(_, _, e) => extract_expr(e, scalar, inv, hoisted, next),
        Stmt::If(c, body) => {
            extract_expr(c, scalar, inv, hoisted, next);
            for s in body {
                extract_stmt(s, scalar, inv, hoisted, next);
            }
        }
        Stmt::EmitSpike => {}
    }
}

fn extract_expr(
    e: &mut Expr,
    scalar: &mut Vec<Stmt>,
    inv: &mut Invariants,
    hoisted: &mut BTreeMap<String, usize>,
    next: &mut usize,
) {
    if worth_a_temp(e) && inv.holds(e) {
        let key = format!("{e:?}");
        let t = *hoisted.entry(key).or_insert_with(|| {
            let t = *next;
            *next += 1;
            scalar.push(Stmt::Let(t, e.clone()));
            inv.temps.push(t);
            t
        });
        *e = Expr::Temp(t);
        return;
    }
    match e {
        Expr::Unary(_, a) => extract_expr(a, scalar, inv, hoisted, next),
        Expr::Binary(_, a, b) => {
            extract_expr(a, scalar, inv, hoisted, next);
            extract_expr(b, scalar, inv, hoisted, next);
        }
        Expr::Call(_, args) => args.iter_mut().for_each(|a| extract_expr(a, scalar, inv, hoisted, next)),
        Expr::Select(c, a, b) => {
            extract_expr(c, scalar, inv, hoisted, next);
            extract_expr(a, scalar, inv, hoisted, next);
            extract_expr(b, scalar, inv, hoisted, next);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- common subexpressions

/// A key for a subtree that distinguishes loads of a variable across stores to it.
fn key(e: &Expr, versions: &BTreeMap<usize, usize>) -> String {
    match e {
        Expr::Load(v) => format!("Load({v}@{})", versions.get(v).copied().unwrap_or(0)),
        Expr::LoadAt(v, at) => format!("LoadAt({v},{at:?}@{})", versions.get(v).copied().unwrap_or(0)),
        Expr::Unary(op, a) => format!("{op:?}({})", key(a, versions)),
        Expr::Binary(op, a, b) => format!("{op:?}({},{})", key(a, versions), key(b, versions)),
        Expr::Call(m, args) => {
            format!("{m:?}({})", args.iter().map(|a| key(a, versions)).collect::<Vec<_>>().join(","))
        }
        Expr::Select(c, a, b) => format!("Select({},{},{})", key(c, versions), key(a, versions), key(b, versions)),
        other => format!("{other:?}"),
    }
}

/// Repeated loads are worth a temporary too: the back end can not know that no store
/// came between them (the keys are versioned by stores, so reuse is safe).
fn worth_sharing(e: &Expr) -> bool {
    worth_a_temp(e) || matches!(e, Expr::Load(_) | Expr::LoadAt(..))
}

fn count(e: &Expr, versions: &BTreeMap<usize, usize>, counts: &mut BTreeMap<String, usize>) {
    if worth_sharing(e) {
        *counts.entry(key(e, versions)).or_default() += 1;
    }
    for c in e.children() {
        count(c, versions, counts);
    }
}

/// Replaces repeated subtrees of the body's top-level statements by temporaries,
/// computed once before their first use.
fn cse(body: &mut Vec<Stmt>, next: &mut usize) {
    // Pass 1: how often each (versioned) subtree occurs.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut versions: BTreeMap<usize, usize> = BTreeMap::new();
    for s in body.iter() {
        match s {
            Stmt::Let(_, e) => count(e, &versions, &mut counts),
            Stmt::Store(v, e) | Stmt::StoreAt(v, _, e) => {
                count(e, &versions, &mut counts);
                *versions.entry(*v).or_default() += 1;
            }
            Stmt::If(c, _) => {
                count(c, &versions, &mut counts);
                // Stores inside the branch make every later load unknown.
                bump_all_stored(s, &mut versions);
            }
            Stmt::EmitSpike => {}
        }
    }
    // Pass 2: materialize the repeated ones before their first use.
    let mut versions: BTreeMap<usize, usize> = BTreeMap::new();
    let mut made: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(body.len());
    for mut s in std::mem::take(body) {
        let mut lets = Vec::new();
        match &mut s {
            Stmt::Let(_, e) | Stmt::Store(_, e) | Stmt::StoreAt(_, _, e) => {
                replace(e, &versions, &counts, &mut made, &mut lets, next)
            }
            Stmt::If(c, _) => replace(c, &versions, &counts, &mut made, &mut lets, next),
            Stmt::EmitSpike => {}
        }
        out.extend(lets);
        // Store-to-load forwarding: a later load of the stored variable is the stored temporary.
        if let Stmt::Store(v, Expr::Temp(t)) = &s {
            let version = versions.get(v).copied().unwrap_or(0) + 1;
            made.insert(format!("Load({v}@{version})"), *t);
        }
        match &s {
            Stmt::Store(v, _) | Stmt::StoreAt(v, _, _) => *versions.entry(*v).or_default() += 1,
            Stmt::If(..) => bump_all_stored(&s, &mut versions),
            _ => {}
        }
        out.push(s);
    }
    *body = out;
}

fn bump_all_stored(s: &Stmt, versions: &mut BTreeMap<usize, usize>) {
    match s {
        Stmt::Store(v, _) | Stmt::StoreAt(v, _, _) => *versions.entry(*v).or_default() += 1,
        Stmt::If(_, body) => body.iter().for_each(|s| bump_all_stored(s, versions)),
        _ => {}
    }
}

fn replace(
    e: &mut Expr,
    versions: &BTreeMap<usize, usize>,
    counts: &BTreeMap<String, usize>,
    made: &mut BTreeMap<String, usize>,
    lets: &mut Vec<Stmt>,
    next: &mut usize,
) {
    if !worth_sharing(e) {
        return;
    }
    let k = key(e, versions);
    if let Some(&t) = made.get(&k) {
        *e = Expr::Temp(t);
        return;
    }
    // Inner subtrees first, so that a temporary's value uses earlier temporaries.
    match e {
        Expr::Unary(_, a) => replace(a, versions, counts, made, lets, next),
        Expr::Binary(_, a, b) => {
            replace(a, versions, counts, made, lets, next);
            replace(b, versions, counts, made, lets, next);
        }
        Expr::Call(_, args) => args.iter_mut().for_each(|a| replace(a, versions, counts, made, lets, next)),
        Expr::Select(c, a, b) => {
            replace(c, versions, counts, made, lets, next);
            replace(a, versions, counts, made, lets, next);
            replace(b, versions, counts, made, lets, next);
        }
        _ => {}
    }
    if counts.get(&k).copied().unwrap_or(0) >= 2 {
        let t = *next;
        *next += 1;
        lets.push(Stmt::Let(t, std::mem::replace(e, Expr::Temp(t))));
        made.insert(k, t);
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{Expr, Op2, Stmt};

    /// The body of kernel `name` of a one-group model with a shared `g` and the given
    /// `every_step` code.
    fn body(code: &str, name: &str) -> (Vec<Stmt>, Vec<Stmt>) {
        let src = format!(
            "const a = 2\nconst b = 3\nneuron N {{\n equations {{\n  dv/dt = -v/(10 ms) : 1\n  x : 1\n }}\n \
             every_step {{ {code} }}\n}}\nshared {{\n equations {{ g : 1 }}\n}}\ngroup G = N(5)\n"
        );
        let (model, diagnostics) = crate::check(&src);
        let model = model.unwrap_or_else(|| panic!("{diagnostics:?}\n{src}"));
        let module = crate::ir::lower(&model).expect("lowers");
        let kernel = module.kernels.iter().find(|k| k.name == name).expect("the kernel");
        (kernel.scalar.clone(), kernel.body.clone())
    }

    /// The one expression stored by a body.
    fn stored(body: &[Stmt]) -> &Expr {
        body.iter().find_map(|s| if let Stmt::Store(_, e) = s { Some(e) } else { None }).expect("a store")
    }

    #[test]
    fn invariant_factors_of_a_product_are_multiplied_once_per_call() {
        let (scalar, body) = body("x = a*g*v*(dt/(1 ms))*b", "G_every_1");
        // One multiplication per neuron: (hoisted invariant product) * v.
        let Expr::Binary(Op2::Mul, left, right) = stored(&body) else { panic!("{body:?}") };
        assert!(matches!(**left, Expr::Temp(_) | Expr::Param(_)), "{body:?}");
        assert!(matches!(**right, Expr::Load(_)), "{body:?}");
        assert!(!scalar.is_empty() || matches!(**left, Expr::Param(_)), "{scalar:?}");
    }

    #[test]
    fn a_product_with_one_invariant_factor_keeps_its_order() {
        let (_, body) = body("x = v*a*x", "G_every_1");
        // (v * a) * x: nothing to gain, nothing moved.
        let Expr::Binary(Op2::Mul, left, right) = stored(&body) else { panic!("{body:?}") };
        assert!(matches!(**right, Expr::Load(_)), "{body:?}");
        assert!(
            matches!(**left, Expr::Binary(Op2::Mul, ref v, ref a) if matches!(**v, Expr::Load(_)) && matches!(**a, Expr::Param(_))),
            "{body:?}"
        );
    }
}

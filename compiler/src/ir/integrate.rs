//! Integration methods: differential equations to update statements, as Brian2
//! does: `euler` (Euler-Maruyama with noise), `heun` (stochastic Heun), `rk2`,
//! `rk4`, `exponential_euler`, and `exact` for linear equations with constant
//! coefficients, found by analysing the lowered right-hand sides.
//!
//! `exact` handles systems whose coupling is triangular (each variable may be
//! driven by variables solved before it, as synaptic currents drive a membrane):
//! every solution is a constant plus a sum of exponentials `exp(b_m t)`, one per
//! variable's own rate `b_m`; the rates must differ.

use super::lower::{KernelBuilder, Lowering, Scope};
use super::{Expr, Op1, Op2, Stmt, VarId};
use crate::model::{Method, VarKind};

/// Appends the update of every clock-driven differential equation of the scope's
/// population to the kernel. Returns the method used.
pub(super) fn integrate(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    requested: Method,
    not_refractory: Option<Expr>,
) -> Result<Method, String> {
    let variables = &scope.dynamics.variables;
    // `(constant over dt)` subexpressions: computed once, at the start of the step.
    for (k, v) in variables.iter().enumerate() {
        if let (VarKind::Subexpression(e), true) = (&v.kind, v.flags.constant_over_dt) {
            let value = lowering.expr(scope, e);
            let value = kernel.temp(value);
            kernel.body.push(Stmt::Store(scope.local[k], value.clone()));
            scope.frozen[k] = Some(value);
        }
    }
    let diffs: Vec<usize> = variables
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v.kind, VarKind::Differential(_)) && !v.flags.event_driven)
        .map(|(k, _)| k)
        .collect();
    if diffs.is_empty() {
        return Ok(requested);
    }
    let f0 = rhs_at(lowering, scope, &diffs);
    let noisy = f0.iter().any(has_noise);
    let method = match requested {
        Method::Auto if !noisy && exact_solution(scope, &diffs, &f0).is_some() => Method::Exact,
        Method::Auto => {
            if f0.iter().all(|f| additive_noise(f, scope)) {
                Method::Euler
            } else {
                Method::Heun
            }
        }
        m => m,
    };
    let new_values: Vec<Expr> = match method {
        Method::Euler | Method::Auto => euler(scope, kernel, &diffs, &f0)?,
        Method::Heun => heun(lowering, scope, kernel, &diffs, &f0)?,
        Method::Rk2 => {
            no_noise(&f0, "rk2")?;
            rk2(lowering, scope, kernel, &diffs, &f0)
        }
        Method::Rk4 => {
            no_noise(&f0, "rk4")?;
            rk4(lowering, scope, kernel, &diffs, &f0)
        }
        Method::ExponentialEuler => {
            no_noise(&f0, "exponential_euler")?;
            exponential_euler(scope, kernel, &diffs, &f0)?
        }
        Method::Exact => {
            no_noise(&f0, "exact")?;
            exact_solution(scope, &diffs, &f0).ok_or_else(|| {
                "method `exact` needs linear equations with constant coefficients, each driven only by \
                 variables solved before it (and distinct time constants); use `exponential_euler`, `rk4` or `euler`"
                    .to_string()
            })?
        }
    };
    // All new values are computed from the old state; then they are stored.
    let mut stores = Vec::new();
    for (&k, value) in diffs.iter().zip(new_values) {
        let id = scope.local[k];
        let value = kernel.temp(value);
        let gated = match &not_refractory {
            Some(ready) if scope.dynamics.variables[k].flags.unless_refractory => {
                Expr::select(ready.clone(), value, Expr::Load(id))
            }
            _ => value,
        };
        stores.push(Stmt::Store(id, gated));
    }
    kernel.body.extend(stores);
    Ok(method)
}

/// Brings the event-driven variables of a pathway up to date at an event: their
/// (linear) equations are solved exactly over the time since `lastupdate`.
pub(super) fn event_driven(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    lastupdate: VarId,
) -> Result<(), String> {
    let diffs: Vec<usize> = scope
        .dynamics
        .variables
        .iter()
        .enumerate()
        .filter(|&(k, v)| {
            matches!(v.kind, VarKind::Differential(_)) && v.flags.event_driven && !scope.is_neuron_trace(k)
        })
        .map(|(k, _)| k)
        .collect();
    if diffs.is_empty() {
        return Ok(());
    }
    let solution = solve_event_driven(lowering, scope, &diffs)?;
    let elapsed = kernel.temp(sub(Expr::Time, Expr::Load(lastupdate)));
    let values: Vec<Expr> = solution.into_iter().map(|e| kernel.temp(replace_dt(e, &elapsed))).collect();
    for (&k, value) in diffs.iter().zip(values) {
        kernel.body.push(Stmt::Store(scope.local[k], value));
    }
    kernel.body.push(Stmt::Store(lastupdate, Expr::Time));
    Ok(())
}

/// One step of the exact solution of variable `k` alone (a neuron trace, whose
/// equation reads only itself and constants; see `traces`).
pub(super) fn trace_decay(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    k: usize,
) -> Result<(), String> {
    for value in solve_event_driven(lowering, scope, &[k])? {
        kernel.body.push(Stmt::Store(scope.local[k], value));
    }
    Ok(())
}

/// The exact one-step solution (in `dt`) of event-driven variables `diffs`.
fn solve_event_driven(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    diffs: &[usize],
) -> Result<Vec<Expr>, String> {
    let f = rhs_at(lowering, scope, diffs);
    exact_solution(scope, diffs, &f).ok_or_else(|| {
        "event-driven equations must be linear with constant coefficients (they are solved exactly between events)"
            .to_string()
    })
}

/// `e` with the time step replaced by `elapsed`.
fn replace_dt(e: Expr, elapsed: &Expr) -> Expr {
    match e {
        Expr::Dt => elapsed.clone(),
        Expr::Unary(op, a) => Expr::un(op, replace_dt(*a, elapsed)),
        Expr::Binary(op, a, b) => Expr::bin(op, replace_dt(*a, elapsed), replace_dt(*b, elapsed)),
        Expr::Call(m, args) => Expr::Call(m, args.into_iter().map(|a| replace_dt(a, elapsed)).collect()),
        Expr::Select(c, a, b) => {
            Expr::select(replace_dt(*c, elapsed), replace_dt(*a, elapsed), replace_dt(*b, elapsed))
        }
        other => other,
    }
}

/// The right-hand sides at the scope's current stage.
fn rhs_at(lowering: &mut Lowering<'_>, scope: &mut Scope<'_>, diffs: &[usize]) -> Vec<Expr> {
    diffs
        .iter()
        .map(|&k| match &scope.dynamics.variables[k].kind {
            VarKind::Differential(e) => lowering.expr(scope, e),
            _ => Expr::F64(0.0),
        })
        .collect()
}

fn has_noise(e: &Expr) -> bool {
    contains(e, &|x| matches!(x, Expr::Randn(_)))
}

fn contains(e: &Expr, p: &dyn Fn(&Expr) -> bool) -> bool {
    p(e) || e.children().iter().any(|c| contains(c, p))
}

fn no_noise(f: &[Expr], method: &str) -> Result<(), String> {
    if f.iter().any(has_noise) {
        Err(format!("method `{method}` can not integrate stochastic equations (`xi`); use `euler` or `heun`"))
    } else {
        Ok(())
    }
}

fn mul(a: Expr, b: Expr) -> Expr {
    Expr::bin(Op2::Mul, a, b)
}
fn add(a: Expr, b: Expr) -> Expr {
    Expr::bin(Op2::Add, a, b)
}
fn sub(a: Expr, b: Expr) -> Expr {
    Expr::bin(Op2::Sub, a, b)
}
fn div(a: Expr, b: Expr) -> Expr {
    Expr::bin(Op2::Div, a, b)
}
fn neg(a: Expr) -> Expr {
    Expr::un(Op1::Neg, a)
}

/// The linear form of `e` in some symbols: `e = sum(coefficients[k] * symbol_k) + rest`,
/// with `None` for zero. `None` overall when `e` is not linear in them (a product of
/// two symbol-dependent factors, a symbol inside a function, a division by one).
struct Linear {
    coefficients: Vec<Option<Expr>>,
    rest: Option<Expr>,
}

fn linear(e: &Expr, symbol: &dyn Fn(&Expr) -> Option<usize>, n: usize) -> Option<Linear> {
    let has_symbol = |x: &Expr| contains(x, &|y| symbol(y).is_some());
    if !has_symbol(e) {
        return Some(Linear { coefficients: vec![None; n], rest: Some(e.clone()) });
    }
    if let Some(k) = symbol(e) {
        let mut coefficients = vec![None; n];
        coefficients[k] = Some(Expr::F64(1.0));
        return Some(Linear { coefficients, rest: None });
    }
    let combine = |a: Option<Expr>, b: Option<Expr>, subtract: bool| match (a, b) {
        (None, None) => None,
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(if subtract { neg(b) } else { b }),
        (Some(a), Some(b)) => Some(if subtract { sub(a, b) } else { add(a, b) }),
    };
    // `factor * x`, avoiding multiplications by one.
    let scale = |x: Option<Expr>, factor: &Expr, left: bool| {
        x.map(|x| match (x, left) {
            (Expr::F64(1.0), _) => factor.clone(),
            (x, true) => mul(factor.clone(), x),
            (x, false) => mul(x, factor.clone()),
        })
    };
    match e {
        Expr::Binary(op @ (Op2::Add | Op2::Sub), a, b) => {
            let (a, b) = (linear(a, symbol, n)?, linear(b, symbol, n)?);
            let subtract = *op == Op2::Sub;
            let coefficients =
                a.coefficients.into_iter().zip(b.coefficients).map(|(x, y)| combine(x, y, subtract)).collect();
            Some(Linear { coefficients, rest: combine(a.rest, b.rest, subtract) })
        }
        Expr::Unary(Op1::Neg, a) => {
            let a = linear(a, symbol, n)?;
            Some(Linear {
                coefficients: a.coefficients.into_iter().map(|c| c.map(neg)).collect(),
                rest: a.rest.map(neg),
            })
        }
        Expr::Binary(Op2::Mul, a, b) if !has_symbol(a) => {
            let b = linear(b, symbol, n)?;
            Some(Linear {
                coefficients: b.coefficients.into_iter().map(|c| scale(c, a, true)).collect(),
                rest: b.rest.map(|r| mul((**a).clone(), r)),
            })
        }
        Expr::Binary(Op2::Mul, a, b) if !has_symbol(b) => {
            let a = linear(a, symbol, n)?;
            Some(Linear {
                coefficients: a.coefficients.into_iter().map(|c| scale(c, b, false)).collect(),
                rest: a.rest.map(|r| mul(r, (**b).clone())),
            })
        }
        Expr::Binary(Op2::Div, a, b) if !has_symbol(b) => {
            let a = linear(a, symbol, n)?;
            let over = |x: Expr| match x {
                Expr::F64(1.0) => div(Expr::F64(1.0), (**b).clone()),
                x => div(x, (**b).clone()),
            };
            Some(Linear {
                coefficients: a.coefficients.into_iter().map(|c| c.map(over)).collect(),
                rest: a.rest.map(over),
            })
        }
        _ => None,
    }
}

/// The noise streams of the scope's equations, in a fixed order.
fn noise_streams(f: &[Expr]) -> Vec<u32> {
    let mut streams = Vec::new();
    fn walk(e: &Expr, out: &mut Vec<u32>) {
        if let Expr::Randn(s) = e
            && !out.contains(s)
        {
            out.push(*s);
        }
        for c in e.children() {
            walk(c, out);
        }
    }
    for e in f {
        walk(e, &mut streams);
    }
    streams
}

/// `f = deterministic + sum(g_s * xi_s)`.
fn split_noise(f: &Expr, streams: &[u32]) -> Option<(Expr, Vec<Option<Expr>>)> {
    let symbol = |e: &Expr| match e {
        Expr::Randn(s) => streams.iter().position(|x| x == s),
        _ => None,
    };
    let l = linear(f, &symbol, streams.len())?;
    Some((l.rest.unwrap_or(Expr::F64(0.0)), l.coefficients))
}

/// Whether the noise of `f` is additive: its coefficients do not depend on the state.
fn additive_noise(f: &Expr, scope: &Scope<'_>) -> bool {
    let streams = noise_streams(std::slice::from_ref(f));
    match split_noise(f, &streams) {
        Some((_, gs)) => {
            gs.iter().flatten().all(|g| !contains(g, &|e| matches!(e, Expr::Load(v) if scope.local.contains(v))))
        }
        None => false,
    }
}

/// `sqrt(dt) * N(0, 1)`: the Wiener increment of a noise stream.
fn wiener(stream: u32) -> Expr {
    mul(Expr::un(Op1::Sqrt, Expr::Dt), Expr::Randn(stream))
}

/// Euler-Maruyama: `x + dt*f(x) + g(x)*dW`.
fn euler(scope: &Scope<'_>, kernel: &mut KernelBuilder, diffs: &[usize], f: &[Expr]) -> Result<Vec<Expr>, String> {
    let streams = noise_streams(f);
    let dw: Vec<Expr> = streams.iter().map(|&s| kernel.temp(wiener(s))).collect();
    let mut out = Vec::new();
    for (k, fk) in f.iter().enumerate() {
        let (deterministic, gs) = split_noise(fk, &streams)
            .ok_or_else(|| "the noise term `xi` must enter linearly (`... + g*xi`)".to_string())?;
        let mut value = add(old(scope, diffs[k]), mul(Expr::Dt, deterministic));
        for (g, w) in gs.into_iter().zip(&dw) {
            if let Some(g) = g {
                value = add(value, mul(g, w.clone()));
            }
        }
        out.push(value);
    }
    Ok(out)
}

/// Stochastic Heun (Brian2's `heun`): with `dW` the Wiener increment,
/// `x_s = x + g(x)*dW`, `x_new = x + dt*f(x) + dW*(g(x) + g(x_s))/2`.
fn heun(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    diffs: &[usize],
    f: &[Expr],
) -> Result<Vec<Expr>, String> {
    let streams = noise_streams(f);
    if streams.is_empty() {
        return euler(scope, kernel, diffs, f);
    }
    let dw: Vec<Expr> = streams.iter().map(|&s| kernel.temp(wiener(s))).collect();
    let split: Vec<(Expr, Vec<Option<Expr>>)> = f
        .iter()
        .map(|fk| {
            split_noise(fk, &streams)
                .ok_or_else(|| "the noise term `xi` must enter linearly (`... + g*xi`)".to_string())
        })
        .collect::<Result<_, _>>()?;
    // Support values.
    let mut support = Vec::new();
    for (i, &k) in diffs.iter().enumerate() {
        let mut value = old(scope, k);
        for (g, w) in split[i].1.iter().zip(&dw) {
            if let Some(g) = g {
                value = add(value, mul(g.clone(), w.clone()));
            }
        }
        support.push(kernel.temp(value));
    }
    for (i, &k) in diffs.iter().enumerate() {
        scope.overrides[k] = Some(support[i].clone());
    }
    scope.time = add(Expr::Time, Expr::Dt);
    let f_support = rhs_at(lowering, scope, diffs);
    reset_stage(scope);
    let mut out = Vec::new();
    for (i, &k) in diffs.iter().enumerate() {
        let (deterministic, gs) = &split[i];
        let (_, gs_support) = split_noise(&f_support[i], &streams)
            .ok_or_else(|| "the noise term `xi` must enter linearly".to_string())?;
        let mut value = add(old(scope, k), mul(Expr::Dt, deterministic.clone()));
        for ((g, gs_), w) in gs.iter().zip(gs_support).zip(&dw) {
            let both = match (g.clone(), gs_) {
                (Some(a), Some(b)) => add(a, b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => continue,
            };
            value = add(value, mul(mul(Expr::F64(0.5), w.clone()), both));
        }
        out.push(value);
    }
    Ok(out)
}

/// The stored value of integrated variable `k`.
fn old(scope: &Scope<'_>, k: usize) -> Expr {
    Expr::Load(scope.local[k])
}

fn reset_stage(scope: &mut Scope<'_>) {
    for o in &mut scope.overrides {
        *o = None;
    }
    scope.time = Expr::Time;
}

/// Evaluates the right-hand sides at `x + factor*k` and time `t + time_factor*dt`.
fn stage(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    diffs: &[usize],
    increments: &[Expr],
    factor: Option<f64>,
    time_factor: f64,
) -> Vec<Expr> {
    for (i, &k) in diffs.iter().enumerate() {
        let x = old(scope, k);
        let shifted = match factor {
            None => add(increments[i].clone(), x),
            Some(c) => add(div(increments[i].clone(), Expr::F64(1.0 / c)), x),
        };
        scope.overrides[k] = Some(kernel.temp(shifted));
    }
    scope.time = if time_factor == 1.0 {
        add(Expr::Time, Expr::Dt)
    } else {
        add(Expr::Time, div(Expr::Dt, Expr::F64(1.0 / time_factor)))
    };
    let f = rhs_at(lowering, scope, diffs);
    reset_stage(scope);
    f.into_iter().map(|fk| kernel.temp(mul(Expr::Dt, fk))).collect()
}

/// Midpoint Runge-Kutta: `k = dt*f(x, t)`, `x + dt*f(x + k/2, t + dt/2)`.
fn rk2(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    diffs: &[usize],
    f: &[Expr],
) -> Vec<Expr> {
    let k1: Vec<Expr> = f.iter().map(|fk| kernel.temp(mul(Expr::Dt, fk.clone()))).collect();
    let k2 = stage(lowering, scope, kernel, diffs, &k1, Some(0.5), 0.5);
    diffs.iter().zip(k2).map(|(&k, k2)| add(old(scope, k), k2)).collect()
}

/// Classic Runge-Kutta with weights 1/6, 1/3, 1/3, 1/6.
fn rk4(
    lowering: &mut Lowering<'_>,
    scope: &mut Scope<'_>,
    kernel: &mut KernelBuilder,
    diffs: &[usize],
    f: &[Expr],
) -> Vec<Expr> {
    let k1: Vec<Expr> = f.iter().map(|fk| kernel.temp(mul(Expr::Dt, fk.clone()))).collect();
    let k2 = stage(lowering, scope, kernel, diffs, &k1, Some(0.5), 0.5);
    let k3 = stage(lowering, scope, kernel, diffs, &k2, Some(0.5), 0.5);
    let k4 = stage(lowering, scope, kernel, diffs, &k3, None, 1.0);
    diffs
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let sum = add(
                add(
                    add(div(k1[i].clone(), Expr::F64(6.0)), div(k2[i].clone(), Expr::F64(3.0))),
                    div(k3[i].clone(), Expr::F64(3.0)),
                ),
                div(k4[i].clone(), Expr::F64(6.0)),
            );
            add(sum, old(scope, k))
        })
        .collect()
}

/// Exponential Euler: each `dx/dt = A + B*x` (A, B from the old state) becomes
/// `x <- -A/B + (x + A/B)*exp(B*dt)`; `x + A*dt` where B is zero.
fn exponential_euler(
    scope: &Scope<'_>,
    kernel: &mut KernelBuilder,
    diffs: &[usize],
    f: &[Expr],
) -> Result<Vec<Expr>, String> {
    let mut out = Vec::new();
    for (i, &k) in diffs.iter().enumerate() {
        let id = scope.local[k];
        let symbol = |e: &Expr| matches!(e, Expr::Load(v) if *v == id).then_some(0);
        let name = &scope.dynamics.variables[k].name;
        let l = linear(&f[i], &symbol, 1)
            .ok_or_else(|| format!("`exponential_euler` needs `d{name}/dt` to be linear in `{name}`"))?;
        let a = l.rest.unwrap_or(Expr::F64(0.0));
        match l.coefficients.into_iter().next().flatten() {
            None => out.push(add(old(scope, k), mul(a, Expr::Dt))),
            Some(b) => {
                let ba = kernel.temp(div(a, b.clone()));
                let decay = Expr::Call(super::MathFn::Exp, vec![mul(b, Expr::Dt)]);
                out.push(add(neg(ba.clone()), mul(add(ba, old(scope, k)), decay)));
            }
        }
    }
    Ok(out)
}

/// The exact solution of a triangular linear system with constant coefficients.
fn exact_solution(scope: &Scope<'_>, diffs: &[usize], f: &[Expr]) -> Option<Vec<Expr>> {
    let ids: Vec<VarId> = diffs.iter().map(|&k| scope.local[k]).collect();
    let symbol = |e: &Expr| match e {
        Expr::Load(v) => ids.iter().position(|x| x == v),
        _ => None,
    };
    let n = diffs.len();
    let forms: Vec<Linear> = f.iter().map(|fk| linear(fk, &symbol, n)).collect::<Option<_>>()?;
    // Coefficients must be constant over the step: no time, no randomness, no state
    // being integrated here.
    let constant =
        |e: &Expr| !contains(e, &|x| matches!(x, Expr::Time | Expr::Rand(_) | Expr::Randn(_)) || symbol(x).is_some());
    for form in &forms {
        if !form.coefficients.iter().flatten().chain(&form.rest).all(constant) {
            return None;
        }
    }
    // Order: each variable after those that drive it (triangular coupling).
    let mut order: Vec<usize> = Vec::new();
    while order.len() < n {
        let next = (0..n).find(|&k| {
            !order.contains(&k)
                && forms[k].coefficients.iter().enumerate().all(|(j, c)| j == k || c.is_none() || order.contains(&j))
        })?;
        order.push(next);
    }
    // Solution of k: constant[k] + sum over m of terms[k][m] * exp(rate[m]*t).
    let rate: Vec<Option<Expr>> = (0..n).map(|k| forms[k].coefficients[k].clone()).collect();
    let mut constant_part: Vec<Option<Expr>> = vec![None; n];
    let mut terms: Vec<Vec<(usize, Expr)>> = vec![Vec::new(); n];
    let mut result: Vec<Option<Expr>> = vec![None; n];
    for &k in &order {
        let x0 = old(scope, diffs[k]);
        // Forcing: rest + sum over drivers j of a_kj * x_j(t).
        let mut forcing_constant = forms[k].rest.clone();
        let mut forcing_terms: Vec<(usize, Expr)> = Vec::new();
        for (j, a) in forms[k].coefficients.iter().enumerate() {
            let Some(a) = a else { continue };
            if j == k {
                continue;
            }
            if let Some(c) = &constant_part[j] {
                let term = mul(a.clone(), c.clone());
                forcing_constant = Some(forcing_constant.map_or(term.clone(), |f| add(f, term)));
            }
            for (m, c) in &terms[j] {
                let term = mul(a.clone(), c.clone());
                match forcing_terms.iter_mut().find(|(x, _)| x == m) {
                    Some((_, existing)) => *existing = add(existing.clone(), term),
                    None => forcing_terms.push((*m, term)),
                }
            }
        }
        match &rate[k] {
            None => {
                // dx/dt = constant: only if nothing exponential drives it and nothing depends on it.
                let driven_by_others = (0..n).any(|other| other != k && forms[other].coefficients[k].is_some());
                if !forcing_terms.is_empty() || driven_by_others {
                    return None;
                }
                let step = forcing_constant.map_or(x0.clone(), |c| add(x0.clone(), mul(c, Expr::Dt)));
                result[k] = Some(step);
            }
            Some(b) => {
                for (m, _) in &forcing_terms {
                    if rate[*m].as_ref() == Some(b) {
                        return None; // equal rates: the solution has t*exp(bt) terms
                    }
                }
                let k_const = forcing_constant.map(|c| neg(div(c, b.clone())));
                let mut own: Expr = match &k_const {
                    Some(c) => sub(x0.clone(), c.clone()),
                    None => x0.clone(),
                };
                // The step: x(dt) = K + (x0 - K) e^(b dt) + sum over m of d_m (e^(r_m dt) - e^(b dt)) / (r_m - b),
                // each last term written d_m dt e^(b dt) exprel((r_m - b) dt): no division by
                // r_m - b, so it stays exact (t e^(bt)) when constants make the rates equal.
                let decay = Expr::Call(super::MathFn::Exp, vec![mul(b.clone(), Expr::Dt)]);
                let mut value = match &k_const {
                    Some(c) => add(c.clone(), mul(sub(x0.clone(), c.clone()), decay.clone())),
                    None => mul(x0.clone(), decay.clone()),
                };
                let mut my_terms = Vec::new();
                for (m, d) in forcing_terms {
                    let rm = rate[m].clone()?;
                    let exprel = Expr::Call(super::MathFn::Exprel, vec![mul(sub(rm.clone(), b.clone()), Expr::Dt)]);
                    value = add(value, mul(d.clone(), mul(mul(Expr::Dt, decay.clone()), exprel)));
                    // As exponentials, for variables this one drives in turn.
                    let c = div(d, sub(rm, b.clone()));
                    own = sub(own, c.clone());
                    my_terms.push((m, c));
                }
                my_terms.push((k, own));
                constant_part[k] = k_const;
                terms[k] = my_terms;
                result[k] = Some(value);
            }
        }
    }
    result.into_iter().collect()
}

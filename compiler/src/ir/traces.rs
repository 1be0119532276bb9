//! Neuron traces: event-driven synaptic variables kept once per neuron.
//!
//! A presynaptic trace such as `x_pre` in
//!
//! ```text
//! dx_pre/dt = -x_pre/tau_plus : 1 (event-driven)
//! on_pre { x_pre += 1 }
//! ```
//!
//! is the same function of time for every synapse of one presynaptic neuron: it
//! decays the same way everywhere and jumps only when that neuron spikes. Stored
//! per synapse, every event brings it up to date with an `exp` per synapse;
//! stored per neuron (as NEST and GeNN do) it decays by one multiplication per
//! neuron and step and jumps once per spike. Mathematically the two agree; the
//! bits differ by rounding (one step's decay applied n times versus the decay over
//! n steps at once).
//!
//! A variable qualifies when the per-neuron value is the per-synapse value:
//! - it is event-driven, and its equation reads only itself and values that are
//!   the same for every synapse and step (constants);
//! - only one pathway's statements (`on_pre` or `on_post`) write it, at the top
//!   level, from itself and constants; for `on_pre`, the pathway has no delay;
//! - in that pathway no other statement reads it before its last write;
//! - nothing else names it: not `init`, periodic code, other equations, summed
//!   variables, connection rules or monitors.

use crate::model::{Builtin, Dynamics, ExprKind, Func, Model, MonitorKind, Object, Pathway, Stmt, VarKind, VarRef};

/// Which neuron of a synapse a trace belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// Written by `on_pre`: one value per presynaptic neuron.
    Pre,
    /// Written by `on_post`: one value per postsynaptic neuron.
    Post,
}

/// The pathway's variables (indices into its `dynamics.variables`) that become
/// neuron traces, with their side.
pub(super) fn neuron_traces(model: &Model, p: usize, pathway: &Pathway) -> Vec<(usize, Side)> {
    let dynamics = &pathway.dynamics;
    (0..dynamics.variables.len()).filter_map(|k| side(model, p, pathway, k).map(|side| (k, side))).collect()
}

fn side(model: &Model, p: usize, pathway: &Pathway, k: usize) -> Option<Side> {
    let dynamics = &pathway.dynamics;
    let variable = &dynamics.variables[k];
    let VarKind::Differential(rhs) = &variable.kind else { return None };
    if !variable.flags.event_driven || !synapse_independent(rhs, k) {
        return None;
    }
    let writes = |stmts: &[Stmt]| stmts.iter().any(|s| s.target == VarRef::Local(k));
    let (side, stmts) = match (writes(&pathway.on_pre), writes(&pathway.on_post)) {
        (true, false) if pathway.delay.is_none() => (Side::Pre, &pathway.on_pre),
        (false, true) => (Side::Post, &pathway.on_post),
        _ => return None,
    };
    // Writes from itself and constants; no other statement reads it before the last write.
    let last_write = stmts.iter().rposition(|s| s.target == VarRef::Local(k))?;
    for (n, s) in stmts.iter().enumerate() {
        if s.target == VarRef::Local(k) {
            if !synapse_independent(&s.value, k) {
                return None;
            }
        } else if n < last_write && reads(&s.value, k) {
            return None;
        }
    }
    (!named_elsewhere(model, p, pathway, dynamics, k)).then_some(side)
}

/// Whether anything but the pathway's statements and the variable's own equation names it.
fn named_elsewhere(model: &Model, p: usize, pathway: &Pathway, dynamics: &Dynamics, k: usize) -> bool {
    let in_stmts = |stmts: &[Stmt]| stmts.iter().any(|s| s.target == VarRef::Local(k) || reads(&s.value, k));
    let in_equations = dynamics.variables.iter().enumerate().any(|(m, v)| match &v.kind {
        VarKind::Differential(e) | VarKind::Subexpression(e) => m != k && reads(e, k),
        VarKind::Parameter => false,
    });
    let c = &pathway.connectivity;
    let in_rules = [&c.condition, &c.p, &c.j, &pathway.delay].into_iter().flatten().any(|e| reads(e, k));
    let monitored = model.monitors.iter().any(|m| {
        m.kind != MonitorKind::Spikes
            && m.targets.iter().any(|t| t.object == Object::Pathway(p) && t.var.is_none_or(|v| v == k))
    });
    in_equations
        || in_rules
        || monitored
        || in_stmts(&dynamics.init)
        || dynamics.periodic.iter().any(|periodic| in_stmts(&periodic.body))
        || pathway.summed.iter().any(|s| s.var == k)
}

/// Whether the expression reads variable `k` of the pathway.
fn reads(e: &crate::model::Expr, k: usize) -> bool {
    e.any(|kind| matches!(kind, ExprKind::Var(VarRef::Local(m)) if *m == k))
}

/// Whether the value is the same for every synapse: it reads no variable but `k`,
/// no index, no noise, no random number, no table.
fn synapse_independent(e: &crate::model::Expr, k: usize) -> bool {
    !e.any(|kind| match kind {
        ExprKind::Var(r) => *r != VarRef::Local(k),
        ExprKind::Builtin(b) => !matches!(b, Builtin::T | Builtin::Dt | Builtin::Pi | Builtin::Inf),
        ExprKind::Call(f, _) => matches!(f, Func::Rand | Func::Randn),
        ExprKind::Noise(_) | ExprKind::Table(_) | ExprKind::Observation { .. } => true,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::{Side, neuron_traces};

    /// The traces of a pathway `S` whose synapse type has `x` and `y` (event-driven)
    /// and the given code.
    fn traces(on_pre: &str, on_post: &str, extra: &str) -> Vec<(String, Side)> {
        let src = format!(
            "neuron N {{\n equations {{ dv/dt = -v/(10 ms) : volt }}\n threshold v > 1 mV\n reset {{ v = 0 mV }}\n}}\n\
             synapse Syn {{\n equations {{\n  w : volt\n  dx/dt = -x/(20 ms) : 1 (event-driven)\n  \
             dy/dt = (1 - y)/(20 ms) : 1 (event-driven)\n }}\n on_pre {{ {on_pre} }}\n on_post {{ {on_post} }}\n}}\n\
             group A = N(4)\ngroup B = N(3)\nconnect S = A -> B with Syn {{ w = 1 mV }}\n{extra}\n"
        );
        let (model, diagnostics) = crate::check(&src);
        let model = model.unwrap_or_else(|| panic!("{diagnostics:?}\n{src}"));
        let pathway = &model.pathways[0];
        neuron_traces(&model, 0, pathway)
            .into_iter()
            .map(|(k, side)| (pathway.dynamics.variables[k].name.clone(), side))
            .collect()
    }

    fn names(list: &[(&str, Side)]) -> Vec<(String, Side)> {
        list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn pre_and_post_traces_are_found() {
        let found = traces("v_post += w\nx += 1", "y = y + 0.5\nw += x*1 mV", "");
        assert_eq!(found, names(&[("x", Side::Pre), ("y", Side::Post)]));
    }

    #[test]
    fn a_read_before_the_write_keeps_it_per_synapse() {
        assert_eq!(traces("w += x*1 mV\nx += 1", "y += 1", ""), names(&[("y", Side::Post)]));
        // After the last write is fine.
        assert_eq!(traces("x += 1\nw += x*1 mV", "", ""), names(&[("x", Side::Pre)]));
    }

    #[test]
    fn writes_from_per_synapse_values_or_both_sides_keep_it_per_synapse() {
        assert_eq!(traces("x += w/(1 mV)", "", ""), names(&[]));
        assert_eq!(traces("x += 1", "x += 1", ""), names(&[]));
        assert_eq!(traces("x += rand()", "", ""), names(&[]));
        assert_eq!(traces("x += 1", "y = v_post/(1 mV)", ""), names(&[("x", Side::Pre)]));
    }

    #[test]
    fn monitored_or_never_written_variables_stay_per_synapse() {
        assert_eq!(traces("x += 1", "y += 1", "monitor state S.x every 10 steps"), names(&[("y", Side::Post)]));
        assert_eq!(traces("v_post += w", "w += x*1 mV", ""), names(&[]));
    }
}

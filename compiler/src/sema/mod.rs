//! Semantic analysis: from the AST to the checked `Model`.
//!
//! Every check reports into one `Diagnostics` sink and carries on, so a file
//! with several mistakes gets all of them; a failed expression is dropped
//! (`None`) rather than given a guessed type, so one mistake does not cascade.

mod dynamics;
mod expr;
mod network;
mod suggest;

use crate::ast::{self, Item};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Constant, Dynamics, Model, RunLength};
use crate::span::Span;
use crate::units::Dimension;
use dynamics::{BodyKind, Sides};
use expr::{Checker, Scope, eval_const};
use suggest::did_you_mean;

/// The closest name to `name` among `candidates`, if one is close enough.
pub(crate) fn suggest_name<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    suggest::closest(name, candidates).map(str::to_string)
}

/// The time step when the file gives none (Brian2's default).
pub const DEFAULT_DT: f64 = 1e-4;

/// Checks a parsed file. Returns the model when there are no errors, and every
/// diagnostic (errors and warnings) in source order.
pub fn check(file: &ast::File) -> (Option<Model>, Vec<Diagnostic>) {
    check_with(file, &[])
}

/// `check` with constants overridden (see `crate::check_with`).
pub fn check_with(file: &ast::File, overrides: &[crate::Override]) -> (Option<Model>, Vec<Diagnostic>) {
    check_in(file, overrides, crate::env::BUILTIN)
}

/// `check_with` for a model that may name these environments.
pub fn check_in(
    file: &ast::File,
    overrides: &[crate::Override],
    environments: &[crate::env::EnvironmentSpec],
) -> (Option<Model>, Vec<Diagnostic>) {
    let mut diags = Diagnostics::default();
    let constants = constants(file, overrides, &mut diags);
    let settings = settings(file, &constants, &mut diags);
    check_top_names(file, &mut diags);

    // The shared block: its variables are visible everywhere.
    let shared_defs: Vec<&ast::TypeDef> =
        file.items.iter().filter_map(|i| if let Item::Shared(d) = i { Some(d) } else { None }).collect();
    for extra in shared_defs.iter().skip(1) {
        diags.push(
            Diagnostic::error("E0409", extra.name.span, "`shared` is given twice")
                .with_label_message("second shared block")
                .with_secondary(shared_defs[0].name.span, "first given here")
                .with_note("put all shared variables in one block"),
        );
    }
    let (shared, shared_decls) = match shared_defs.first() {
        Some(def) => {
            let checked = dynamics::check_body(def, BodyKind::Shared, &constants, &[], Sides::NONE, &mut diags);
            (checked.dynamics, checked.decls)
        }
        None => (Dynamics::default(), Vec::new()),
    };

    let mut network = network::Network::new(&constants, &shared_decls, environments);
    network.check(file, &mut diags);
    let network = network.finish();

    let (dt, run_length, seed) = settings;
    let model = Model {
        dt,
        run_length,
        seed,
        constants,
        shared,
        neuron_types: network.neuron_types,
        groups: network.groups,
        pathways: network.pathways,
        monitors: network.monitors,
        environment: network.environment,
    };
    let ok = !diags.has_errors();
    (ok.then_some(model), diags.into_vec())
}

/// Checks the names of top-level definitions for clashes (types, groups, pathways).
fn check_top_names(file: &ast::File, diags: &mut Diagnostics) {
    {
        let mut seen: Vec<(&str, Span, &str)> = Vec::new();
        for item in &file.items {
            let (name, what) = match item {
                Item::Neuron(d) => (&d.name, "neuron type"),
                Item::Synapse(d) => (&d.name, "synapse type"),
                Item::Group(g) => (&g.name, "group"),
                Item::Connect(c) => match &c.name {
                    Some(n) => (n, "pathway"),
                    None => continue,
                },
                _ => continue,
            };
            if let Some((_, first, first_what)) = seen.iter().find(|(n, _, _)| *n == name.name) {
                diags.push(
                    Diagnostic::error("E0201", name.span, format!("`{}` is defined twice", name.name))
                        .with_label_message(format!("this {what}"))
                        .with_secondary(*first, format!("first defined here as a {first_what}")),
                );
            } else {
                seen.push((&name.name, name.span, what));
            }
        }
    }
}

/// `const` definitions, in order; each may use the ones before it.
fn constants(file: &ast::File, overrides: &[crate::Override], diags: &mut Diagnostics) -> Vec<Constant> {
    let defs: Vec<&ast::ConstDef> =
        file.items.iter().filter_map(|i| if let Item::Const(d) = i { Some(d) } else { None }).collect();
    let names: Vec<String> = defs.iter().map(|d| d.name.name.clone()).collect();
    let mut constants: Vec<Constant> = Vec::new();
    for (k, def) in defs.iter().enumerate() {
        let name = &def.name.name;
        if let Some(first) = constants.iter().find(|c| c.name == *name) {
            diags.push(
                Diagnostic::error("E0201", def.name.span, format!("constant `{name}` is defined twice"))
                    .with_label_message("second definition")
                    .with_secondary(first.span, "first defined here"),
            );
            continue;
        }
        let mut value = constant_value(def, &constants, &names[k + 1..], diags);
        if let (Some((_, dim)), Some(o)) = (value, overrides.iter().find(|o| o.name == *name)) {
            value = if o.dim == dim {
                Some((o.value, dim))
            } else {
                diags.push(
                    Diagnostic::error(
                        "E0420",
                        def.name.span,
                        format!(
                            "`--set {name}={}`: `{name}` has unit `{dim}`, the value given has unit `{}`",
                            o.text, o.dim
                        ),
                    )
                    .with_label_message(format!("`{name}` is defined here"))
                    .with_note(format!("give a value in `{dim}`")),
                );
                None
            };
        }
        let mut constant = Constant::new(name.clone(), f64::NAN, Dimension::ONE, def.name.span);
        match value {
            Some((value, dim)) => (constant.value, constant.dim) = (value, dim),
            // Kept, marked failed, so that its uses are not reported as unknown names.
            None => constant.failed = true,
        }
        constants.push(constant);
    }
    constants
}

/// The value and dimension of one constant; `None` after reporting why not.
fn constant_value(
    def: &ast::ConstDef,
    constants: &[Constant],
    pending: &[String],
    diags: &mut Diagnostics,
) -> Option<(f64, Dimension)> {
    let name = &def.name.name;
    if expr::reserved(name) {
        diags.push(
            Diagnostic::error("E0211", def.name.span, format!("`{name}` is a built-in name and can not be a constant"))
                .with_label_message("reserved")
                .with_note(if name == "N" {
                    "`N` is the size of the group in neuron and synapse code; use another name, e.g. `n_input`"
                } else {
                    "built-in names: t, dt, i, j, N, N_pre, N_post, pi, inf, xi, lastspike, not_refractory, and the functions"
                }),
        );
        return None;
    }
    let scope = Scope { pending, ..Scope::constant(constants) };
    let value_expr = Checker::new(&scope, diags).expr(&def.value)?;
    let Some(dim) = value_expr.ty.dim() else {
        diags.push(
            Diagnostic::error(
                "E0311",
                value_expr.span,
                format!("constant `{name}` must be a number, found a condition"),
            )
            .with_note("write `1` or `0`, or use the condition where it is needed"),
        );
        return None;
    };
    let value = eval_const(&value_expr, constants)?;
    if !value.is_finite() {
        diags.push(
            Diagnostic::error("E0412", value_expr.span, format!("constant `{name}` is not a finite number ({value})"))
                .with_label_message("not finite"),
        );
        return None;
    }
    Some((value, dim))
}

/// The known top-level settings.
const SETTINGS: [&str; 4] = ["dt", "duration", "steps", "seed"];

/// `dt`, `duration`, `steps`, `seed`.
fn settings(
    file: &ast::File,
    constants: &[Constant],
    diags: &mut Diagnostics,
) -> (f64, Option<RunLength>, Option<u64>) {
    let mut dt = DEFAULT_DT;
    let mut run_length: Option<(RunLength, Span)> = None;
    let mut seed = None;
    let mut seen: Vec<(&str, Span)> = Vec::new();
    for item in &file.items {
        let Item::Setting(setting) = item else {
            continue;
        };
        let name = setting.name.name.as_str();
        if !SETTINGS.contains(&name) {
            let mut d = Diagnostic::error("E0413", setting.name.span, format!("unknown setting `{name}`"))
                .with_label_message("not a setting")
                .with_note(
                    "top-level settings: `dt`, `duration`, `steps`, `seed`; constants are written `const name = value`",
                );
            if let Some(hint) = did_you_mean(name, SETTINGS) {
                d = d.with_note(hint);
            }
            diags.push(d);
            continue;
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            diags.push(
                Diagnostic::error("E0201", setting.name.span, format!("setting `{name}` is given twice"))
                    .with_secondary(*first, "first given here"),
            );
            continue;
        }
        seen.push((name, setting.name.span));
        let scope = Scope::constant(constants);
        let Some(value_expr) = Checker::new(&scope, diags).expr(&setting.value) else {
            continue;
        };
        let Some(value) = eval_const(&value_expr, constants) else {
            continue;
        };
        let want_time = matches!(name, "dt" | "duration");
        let expected = if want_time { Dimension::TIME } else { Dimension::ONE };
        if value_expr.ty.dim() != Some(expected) {
            let what = if want_time { "a duration" } else { "a number" };
            diags.push(
                Diagnostic::error(
                    "E0301",
                    value_expr.span,
                    format!("`{name}` must be {what}, found unit `{}`", value_expr.ty),
                )
                .with_label_message(format!("expected `{expected}`")),
            );
            continue;
        }
        let bad = |diags: &mut Diagnostics, why: &str| {
            diags.push(Diagnostic::error("E0412", value_expr.span, format!("`{name}` {why}, found {value}")));
        };
        match name {
            "dt" if value > 0.0 && value.is_finite() => dt = value,
            "dt" => bad(diags, "must be positive"),
            "duration" | "steps" => {
                if let Some((_, first)) = &run_length {
                    diags.push(
                        Diagnostic::error("E0415", setting.name.span, "the run length is given twice")
                            .with_secondary(*first, "first given here")
                            .with_note("give either `duration` or `steps`"),
                    );
                } else if name == "duration" && value >= 0.0 && value.is_finite() {
                    run_length = Some((RunLength::Duration(value), setting.name.span));
                } else if name == "steps" && value >= 0.0 && value.fract() == 0.0 && value < 9e15 {
                    // A whole number in range, checked above.
                    run_length = Some((RunLength::Steps(value as u64), setting.name.span));
                } else {
                    bad(
                        diags,
                        if name == "steps" { "must be a whole number of steps" } else { "must not be negative" },
                    );
                }
            }
            _ if value >= 0.0 && value.fract() == 0.0 && value < 9e15 => seed = Some(value as u64),
            _ => bad(diags, "must be a whole number"),
        }
    }
    (dt, run_length.map(|(r, _)| r), seed)
}

#[cfg(test)]
mod tests {
    use crate::model::*;

    fn model(source: &str) -> Model {
        let (model, diagnostics) = crate::check(source);
        let rendered = crate::diagnostic::render_to_string(&diagnostics, "test.snn", source);
        model.unwrap_or_else(|| panic!("{rendered}"))
    }

    fn constant(m: &Model, name: &str) -> f64 {
        m.constant(name).map(|c| c.value).unwrap_or(f64::NAN)
    }

    #[test]
    fn values_are_stored_in_si_units() {
        let m = model(
            "dt = 0.1 ms\nconst a = 20 ms\nconst b = -65 mV\nconst c = 1 um**2\nconst d = 0.5 mV/s\nconst e = 200*pF\n\
             const f = 2*a\nconst g = 100 MOhm * 0.25 nA\nconst h = 1 cm2",
        );
        assert_eq!(m.dt, 0.1 * 1e-3);
        assert_eq!(constant(&m, "a"), 20.0 * 1e-3);
        assert_eq!(constant(&m, "b"), -(65.0 * 1e-3));
        assert_eq!(constant(&m, "c"), 1e-12);
        assert_eq!(constant(&m, "d"), 0.5 * 1e-3);
        assert_eq!(constant(&m, "e"), 200.0 * 1e-12);
        assert_eq!(constant(&m, "f"), 2.0 * 20.0 * 1e-3);
        assert!((constant(&m, "g") - 0.025).abs() < 1e-15);
        assert!((constant(&m, "h") - 1e-4).abs() < 1e-20);
        assert_eq!(m.constant("g").map(|c| c.dim), Some(crate::units::Dimension::VOLT));
    }

    #[test]
    fn noise_and_square_roots_balance() {
        let m = model(
            "const tau = 10 ms\nconst sigma = 2 mV\nneuron N { equations { dv/dt = -v/tau + sigma*sqrt(2/tau)*xi : volt } method euler }",
        );
        assert_eq!(m.neuron_types[0].dynamics.noise, vec!["xi".to_string()]);
    }

    #[test]
    fn brian2_exponent_forms_check() {
        // From the COBAHH example: `(mV**-1)` and `4./...` numbers.
        model(
            "const VT = -63 mV\nneuron HH { equations {\n\
               dm/dt = alpha_m*(1-m) - beta_m*m : 1\n\
               alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz\n\
               beta_m = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz\n\
               v : volt\n } method exponential_euler }",
        );
    }

    #[test]
    fn synapse_names_resolve_to_pre_post_and_local() {
        let m = model(
            "neuron N { equations { dv/dt = -v/(10 ms) : volt \n I : volt } threshold v > 1 mV }\n\
             synapse S { equations { w : volt\n dx_pre/dt = -x_pre/(20 ms) : 1 (event-driven) }\n\
               on_pre { v_post += w; I += w*x_pre; x_pre += int(v_pre > v) } }\n\
             group A = N(2)\ngroup B = N(3)\nconnect A -> B with S { w = 1 mV }",
        );
        let p = &m.pathways[0];
        assert_eq!(p.name, "A_B");
        let targets: Vec<VarRef> = p.on_pre.iter().map(|s| s.target).collect();
        // `v_post`, unsuffixed `I` (postsynaptic), local `x_pre` (shadows the suffix).
        assert_eq!(targets, vec![VarRef::Post(0), VarRef::Post(1), VarRef::Local(1)]);
        let ExprKind::Call(Func::Int, args) = &p.on_pre[2].value.kind else { panic!("{:?}", p.on_pre[2].value) };
        let ExprKind::Binary(_, lhs, rhs) = &args[0].kind else { panic!() };
        assert_eq!(lhs.kind, ExprKind::Var(VarRef::Pre(0)));
        assert_eq!(rhs.kind, ExprKind::Var(VarRef::Post(0)));
    }

    #[test]
    fn constants_stay_symbolic_in_expressions() {
        let m = model("const tau = 10 ms\nneuron N { equations { dv/dt = -v/tau : 1 } }");
        let VarKind::Differential(rhs) = &m.neuron_types[0].dynamics.variables[0].kind else { panic!() };
        let ExprKind::Binary(_, _, tau) = &rhs.kind else { panic!("{rhs:?}") };
        assert_eq!(tau.kind, ExprKind::Const(0));
    }

    #[test]
    fn defaults_and_settings() {
        let m = model("neuron N { equations { v : 1 } }");
        assert_eq!(m.dt, super::DEFAULT_DT);
        assert_eq!(m.run_length, None);
        let m = model("dt = 1 ms\nsteps = 50000\nseed = 7");
        assert_eq!(m.run_length, Some(RunLength::Steps(50000)));
        assert_eq!(m.seed, Some(7));
    }

    #[test]
    fn an_unused_synapse_type_is_a_warning_in_a_correct_file_only() {
        let source = "synapse S { equations { w : 1 } on_pre { v_post += w } }";
        let (model, diagnostics) = crate::check(source);
        assert!(model.is_some());
        assert_eq!(diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["W0002"]);
        let (model, diagnostics) = crate::check(&format!("{source}\nconst x = 1 mV + 1 ms"));
        assert!(model.is_none());
        assert_eq!(diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["E0301"]);
    }

    #[test]
    fn lists_give_one_value_per_neuron() {
        let m = model("neuron N { equations { I : amp (constant) } }\ngroup G = N(3) { I = [0.15, 0.25, 0.4]*nA }");
        let ExprKind::Binary(_, table, _) = &m.groups[0].init[0].value.kind else { panic!() };
        assert_eq!(table.kind, ExprKind::Table(vec![0.15, 0.25, 0.4]));
        let (model, diagnostics) = crate::check("neuron N { equations { I : amp } }\ngroup G = N(3) { I = [1, 2]*nA }");
        assert!(model.is_none());
        assert_eq!(diagnostics[0].code, "E0416");
    }

    #[test]
    fn refractory_neurons_have_lastspike_and_not_refractory() {
        let m = model(
            "neuron N { equations { dv/dt = -v/(10 ms) : 1 } threshold v > 1 refractory (t - lastspike) < 2 ms }\n\
             group G = N(2)\nmonitor state G.not_refractory",
        );
        let names: Vec<&str> = m.neuron_types[0].dynamics.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["v", "lastspike", "not_refractory"]);
        assert!(matches!(m.neuron_types[0].refractory, Some(Refractory::Condition(_))));
        let (_, diagnostics) =
            crate::check("neuron N { equations { dv/dt = -v/(10 ms) : 1 } threshold v > lastspike/ms }");
        assert!(diagnostics[0].message.contains("only in neuron types with a `refractory` period"), "{diagnostics:?}");
    }

    #[test]
    fn all_errors_of_a_file_are_reported() {
        let (model, diagnostics) = crate::check(
            "const a = 1 mV + 1 ms\nneuron N { equations { dv/dt = -v : volt\n x = y : 1 } threshold v }\ngroup G = M(3)",
        );
        assert!(model.is_none());
        let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["E0301", "E0307", "E0204", "E0309", "E0202"]);
    }
}

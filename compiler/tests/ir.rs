//! Lowering to the kernel IR: method choice, refusals, and the shape of the kernels.

use snnc_compiler::model::Method;

fn model(source: &str) -> snnc_compiler::Model {
    let (model, diagnostics) = snnc_compiler::check(source);
    model.unwrap_or_else(|| panic!("{}", snnc_compiler::diagnostic::render_to_string(&diagnostics, "t.snn", source)))
}

fn method_of(source: &str) -> Result<Method, String> {
    let m = model(source);
    snnc_compiler::ir::integration_method(&m, &m.neuron_types[0].dynamics)
}

#[test]
fn auto_chooses_like_brian2() {
    let linear = "neuron A { equations { dv/dt = (I - v)/(10 ms) : 1\n dI/dt = -I/(3 ms) : 1 } }";
    assert_eq!(method_of(linear), Ok(Method::Exact));
    let nonlinear = "neuron B { equations { dv/dt = -v**2/(10 ms) : 1 } }";
    assert_eq!(method_of(nonlinear), Ok(Method::Euler));
    let time_dependent = "neuron C { equations { dv/dt = (sin(t/ms) - v)/(10 ms) : 1 } }";
    assert_eq!(method_of(time_dependent), Ok(Method::Euler));
    let noisy = "neuron D { equations { dv/dt = -v/(10 ms) + 0.1*xi/sqrt(ms) : 1 } }";
    assert_eq!(method_of(noisy), Ok(Method::Euler));
    let multiplicative = "neuron E { equations { dv/dt = -v/(10 ms) + 0.1*v*xi/sqrt(ms) : 1 } }";
    assert_eq!(method_of(multiplicative), Ok(Method::Heun));
    // Complex eigenvalues: Brian2's `exact` refuses them too.
    let rotation =
        "neuron F { equations { dx/dt = -x/(200 ms) + y/(30 ms) : 1\n dy/dt = -x/(30 ms) - y/(200 ms) : 1 } }";
    assert_eq!(method_of(rotation), Ok(Method::Euler));
}

#[test]
fn exact_is_refused_where_it_does_not_apply() {
    let m = model("neuron B { equations { dv/dt = -v**2/(10 ms) : 1 } method exact }\ngroup G = B(1)");
    let errors = snnc_compiler::ir::lower(&m).expect_err("not linear");
    assert_eq!(errors[0].code, "E0502");
    assert!(errors[0].message.contains("method `exact` needs linear equations"), "{}", errors[0].message);
    let m = model("neuron B { equations { dv/dt = -v**2/(10 ms) : 1 } method exponential_euler }\ngroup G = B(1)");
    let errors = snnc_compiler::ir::lower(&m).expect_err("not linear in v");
    assert!(errors[0].message.contains("linear in `v`"), "{}", errors[0].message);
}

#[test]
fn kernels_of_a_refractory_lif() {
    let m = model(
        "const tau = 10 ms\nneuron LIF { equations { dv/dt = (15 mV - v)/tau : volt (unless refractory) }\n\
         threshold v > 10 mV\n reset { v = 0 mV }\n refractory 2 ms }\ngroup G = LIF(8)",
    );
    let module = snnc_compiler::ir::lower(&m).expect("lowers");
    let text = module.to_string();
    for expected in [
        "population G (8 neurons): v, lastspike, not_refractory",
        "kernel G_init (init) on G:",
        "kernel G_state_update (state update, method exact) on G:",
        "kernel G_threshold (threshold) on G:",
        "kernel G_reset (reset) on G:",
        "G.not_refractory <- 0.0",
        "G.lastspike <- t",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    // The decay factor depends on parameters and dt alone: a run constant, computed
    // once per run, that the kernel reads like a parameter.
    let update = module.kernels.iter().find(|k| k.name == "G_state_update").expect("state update");
    assert!(!format!("{:?}{:?}", update.scalar, update.body).contains("Exp"), "{update:?}");
    let k = module.run_constants.iter().position(|e| format!("{e:?}").contains("Exp")).expect("exp(-dt/tau)");
    let n = module.layout.params.len();
    assert!(format!("{:?}", update.scalar).contains(&format!("Param({})", n + k)), "{:?}", update.scalar);
    assert!(text.contains(&format!("run constant $${k} = exp(")), "{text}");
    // Computed from the parameters' values (as `--set` gives them), with the kernels' exp.
    let tau = m.constants.iter().position(|c| c.name == "tau").expect("tau");
    let mut params: Vec<f64> = module.layout.params.iter().map(|p| p.value).collect();
    for tau_value in [10e-3, 25e-3] {
        params[tau] = tau_value;
        let values = module.parameter_values(&params);
        assert_eq!(values.len(), n + module.run_constants.len());
        let expected = snnc_compiler::abi::snnc_exp((-1.0 / tau_value) * module.dt);
        assert_eq!(values[n + k].to_bits(), expected.to_bits(), "tau = {tau_value}");
    }
}

#[test]
fn squares_are_products_and_constants_fold() {
    let m = model("neuron N { equations { dv/dt = -(v**2 + 2**3)/(10 ms) : 1 } method euler }\ngroup G = N(1)");
    let module = snnc_compiler::ir::lower(&m).expect("lowers");
    let text = module.to_string();
    // `v` is loaded once (a temporary) and multiplied by itself.
    let temp = text.lines().find_map(|l| l.trim().strip_suffix(" = G.v")).expect("v loaded into a temporary");
    assert!(text.contains(&format!("({temp} * {temp})")), "{text}");
    assert!(text.contains("8.0"), "2**3 folds to 8: {text}");
    assert!(!text.contains("pow"), "{text}");
}

#[test]
fn kernel_names_are_unique() {
    // Two periodic blocks with the same period (found by the AOT/JIT cross-check).
    let m = model("neuron N { equations { v : 1 } every_step { v += 1 } every 1 steps { v *= 2 } }\ngroup G = N(2)");
    let module = snnc_compiler::ir::lower(&m).expect("lowers");
    let mut names: Vec<&str> = module.kernels.iter().map(|k| k.name.as_str()).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "{names:?}");
    snnc_compiler::backends::cranelift::compile(&module, Default::default()).expect("the JIT accepts every kernel");
}

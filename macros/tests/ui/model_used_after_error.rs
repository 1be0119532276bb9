// A program that uses a model with an error: the build fails with the checker's
// message where `model!` is called.

mod model {
    snnc_macros::model!("tests/ui/unit_mismatch.snn");
}

fn main() {
    let (_, mut sim) = snnc_runtime::aot::build(model::SOURCE, model::kernels(), 1).expect("the model builds");
    let mut monitors = snnc_runtime::Monitors::default();
    sim.step(&mut monitors);
}

// `model!` on tests/ui/unknown_variable.snn: the build fails with the checker's message.

mod model {
    snnc_macros::model!("tests/ui/unknown_variable.snn");
}

fn main() {}

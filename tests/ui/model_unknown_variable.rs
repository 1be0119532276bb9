// `model!` on ui/unknown_variable.snn: the build fails with the checker's message.

mod model {
    snnc_macros::model!("ui/unknown_variable.snn");
}

fn main() {}

// `model!` on tests/ui/syntax_error.snn: the build fails with the checker's message.

mod model {
    snnc_macros::model!("tests/ui/syntax_error.snn");
}

fn main() {}

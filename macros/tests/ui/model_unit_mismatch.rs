// `model!` on tests/ui/unit_mismatch.snn: the build fails with the checker's message.

mod model {
    snnc_macros::model!("tests/ui/unit_mismatch.snn");
}

fn main() {}

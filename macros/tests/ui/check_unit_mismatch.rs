// `check!` on tests/ui/unit_mismatch.snn: the build fails with the checker's message.

snnc_macros::check!("tests/ui/unit_mismatch.snn");

fn main() {}

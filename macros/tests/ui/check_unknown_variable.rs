// `check!` on tests/ui/unknown_variable.snn: the build fails with the checker's message.

snnc_macros::check!("tests/ui/unknown_variable.snn");

fn main() {}

// `check!` on ui/unknown_variable.snn: the build fails with the checker's message.

snnc_macros::check!("ui/unknown_variable.snn");

fn main() {}

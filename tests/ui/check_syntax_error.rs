// `check!` on ui/syntax_error.snn: the build fails with the checker's message.

snnc_macros::check!("ui/syntax_error.snn");

fn main() {}

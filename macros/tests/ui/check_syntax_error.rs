// `check!` on tests/ui/syntax_error.snn: the build fails with the checker's message.

snnc_macros::check!("tests/ui/syntax_error.snn");

fn main() {}

// `check!` takes one string literal: not a number, nor a `concat!`.

snnc_macros::check!(42);
snnc_macros::check!(concat!("tests/ui/", "valid.snn"));

fn main() {}

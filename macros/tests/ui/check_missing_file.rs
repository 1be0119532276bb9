// `check!` on a file that does not exist (see model_missing_file.rs).

snnc_macros::check!("/nonexistent/snnc/no_such_model.snn");

fn main() {}

// `model!` takes one string literal: not a name, nor two paths.

mod by_name {
    snnc_macros::model!(valid);
}

mod two_paths {
    snnc_macros::model!("tests/ui/valid.snn", "tests/ui/valid.snn");
}

fn main() {}

//! Front-end speed: parse and check the reference agent (target: under 2 ms).

use std::path::PathBuf;

fn main() {
    divan::main();
}

fn source(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[divan::bench]
fn parse_forager(bencher: divan::Bencher) {
    let text = source("forager.snn");
    bencher.bench(|| snnc_compiler::syntax::parse(divan::black_box(&text)).map(|f| f.items.len()));
}

#[divan::bench]
fn check_forager(bencher: divan::Bencher) {
    let text = source("forager.snn");
    bencher.bench(|| {
        let (model, diagnostics) = snnc_compiler::check(divan::black_box(&text));
        assert!(model.is_some(), "{diagnostics:?}");
        model
    });
}

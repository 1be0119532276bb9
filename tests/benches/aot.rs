//! Steps per second of whole models under the AOT and JIT back ends, in one run.
//!
//! `cargo bench -p snnc-tests --bench aot`

use snnc_runtime::{Monitors, Simulation};

mod forager {
    snnc_macros::model!("../models/forager.snn");
}
mod cuba {
    snnc_macros::model!("../models/cuba.snn");
}

fn main() {
    divan::main();
}

const STEPS: u64 = 1000;

fn run(bencher: divan::Bencher, mut sim: Simulation) {
    let mut monitors = Monitors::default();
    bencher.counter(divan::counter::ItemsCount::new(STEPS)).bench_local(|| {
        for _ in 0..STEPS {
            sim.step(&mut monitors);
        }
    });
}

fn jit(source: &str) -> Simulation {
    let model = snnc_compiler::check(source).0.expect("checks");
    snnc_runtime::build(&model, 1).expect("builds")
}

#[divan::bench]
fn forager_aot(bencher: divan::Bencher) {
    run(bencher, snnc_runtime::aot::build(forager::SOURCE, forager::kernels(), 1).expect("builds").1);
}

#[divan::bench]
fn forager_jit(bencher: divan::Bencher) {
    run(bencher, jit(forager::SOURCE));
}

#[divan::bench]
fn cuba_aot(bencher: divan::Bencher) {
    run(bencher, snnc_runtime::aot::build(cuba::SOURCE, cuba::kernels(), 1).expect("builds").1);
}

#[divan::bench]
fn cuba_jit(bencher: divan::Bencher) {
    run(bencher, jit(cuba::SOURCE));
}

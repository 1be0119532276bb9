//! `snnc emit --rust`: the Rust source `snnc_macros::model!` compiles, formatted by
//! prettyplease, snapshotted for a small model (insta, `runtime/tests/snapshots/`).
//! Bless with `INSTA_UPDATE=always cargo test -p snnc-runtime --test emit`.

mod common;
use common::*;

/// Two leaky integrate-and-fire neurons with a refractory period, noisy
/// initial values, and a synapse from the first to the second: an init kernel
/// with random numbers, exact integration, threshold, reset and `on_pre`.
const LIF: &str = "dt = 0.1 ms\nduration = 10 ms\nconst tau = 10 ms\nconst drive = 25 mV\n\
    neuron N {\n    equations { dv/dt = (drive - v)/tau : volt (unless refractory) }\n\
    threshold v > 10 mV\n    reset { v = 0 mV }\n    refractory 2 ms\n}\n\
    group G = N(2) { v = rand() * 5 mV }\n\
    synapse Kick { on_pre { v_post += 1 mV } }\n\
    connect S = G[0:1] -> G[1:2] with Kick\n";

#[test]
fn emit_rust_prints_the_formatted_kernels() {
    let model = temp_model("lif.snn", LIF);
    let out = snnc(&["emit", "--rust", model.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let rust = String::from_utf8(out.stdout).expect("utf-8 output");
    insta::assert_snapshot!("emit_rust_lif", rust);
}

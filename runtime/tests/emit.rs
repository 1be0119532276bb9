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

/// A reader that stops early (`snnc emit --asm model | head -1`) is no error: the
/// command printed with `print!`, which panics on a closed pipe.
#[test]
fn emit_to_a_reader_that_stops_early_is_no_panic() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    // More than a pipe holds (64 KiB), so that snnc is still writing when it closes.
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/forager.snn");
    let mut child = Command::new(env!("CARGO_BIN_EXE_snnc"))
        .args(["emit", "--asm", model])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("snnc runs");
    let mut first = [0u8; 16];
    child.stdout.take().expect("a pipe").read_exact(&mut first).expect("some output");
    // The pipe's reading end is closed here, before snnc has written everything.
    let out = child.wait_with_output().expect("snnc ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

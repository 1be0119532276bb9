//! End-to-end tests of the `snnc` program: exit statuses, messages, `--dump`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn snnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snnc")).args(args).output().expect("snnc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn temp_model(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("snnc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write model");
    path
}

#[test]
fn check_accepts_the_reference_agent() {
    let forager = models_dir().join("forager.snn");
    let out = snnc(&["check", forager.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("forager.snn: ok"));
}

#[test]
fn dump_shows_groups_dimensions_and_equations() {
    let forager = models_dir().join("forager.snn");
    let out = snnc(&["check", "--dump", forager.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0));
    let dump = text(&out.stdout);
    for expected in [
        "group S: LIF, 64 neurons",
        "v : volt  [differential] (unless refractory)",
        "dv/dt = (v_rest - v + I_syn + I_env) / tau_m + sigma * sqrt(2 / tau_m) * xi",
        "x_pre : 1  [differential] (event-driven)",
        "pathway SM: S -> M with ThreeFactor",
        "I_syn_post += w",
        "monitor state: S.v, H.v, M.v, shared.da every 100 steps",
    ] {
        assert!(dump.contains(expected), "missing `{expected}` in:\n{dump}");
    }
}

#[test]
fn model_errors_exit_1_with_file_line_and_column() {
    let path = temp_model("bad.snn", "neuron N {\n    equations {\n        dv/dt = -v : volt\n    }\n}\n");
    let out = snnc(&["check", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error[E0307]"), "{err}");
    assert!(err.contains("bad.snn:3:17"), "{err}");
    assert!(err.contains("right-hand side of `dv/dt` has unit `volt`, expected `volt/second`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn syntax_errors_exit_1_without_a_pest_dump() {
    let path = temp_model("syntax.snn", "neuron N {\n    threshold v >\n}\n");
    let out = snnc(&["check", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error[E0100]: syntax error: expected"), "{err}");
    assert!(err.contains("syntax.snn:3:1"), "{err}");
    assert!(!err.contains("Rule::"), "{err}");
}

#[test]
fn a_missing_file_exits_2() {
    let out = snnc(&["check", "/nonexistent/model.snn"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `/nonexistent/model.snn`"));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(snnc(&["check"]).status.code(), Some(2));
    assert_eq!(snnc(&["check", "--frobnicate", "x.snn"]).status.code(), Some(2));
    assert_eq!(snnc(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(snnc(&["--help"]).status.code(), Some(0));
}

#[test]
fn the_worst_status_of_several_files_wins() {
    let good = models_dir().join("forager.snn");
    let bad = temp_model("bad2.snn", "const x = 1 mV + 1 ms\n");
    let good = good.to_str().expect("utf-8 path");
    let bad = bad.to_str().expect("utf-8 path");
    assert_eq!(snnc(&["check", good, bad]).status.code(), Some(1));
    assert_eq!(snnc(&["check", good, bad, "/nonexistent.snn"]).status.code(), Some(2));
}

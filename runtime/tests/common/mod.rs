//! Helpers the end-to-end tests of the `snnc` program share: running it, paths
//! and scratch folders, reading its outputs.

#![allow(dead_code, reason = "each test file uses a part of these")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `snnc` program built for the tests (without `SNNC_MEMORY_LIMIT`).
pub fn snnc(args: &[&str]) -> Output {
    snnc_with(args, &[])
}

/// Runs `snnc` with these environment variables set.
pub fn snnc_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_snnc"));
    command.args(args).env_remove("SNNC_MEMORY_LIMIT");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("snnc runs")
}

/// Runs `snnc` and asserts it succeeds; returns its output.
pub fn run_ok(args: &[&str]) -> Output {
    let out = snnc(args);
    assert_eq!(out.status.code(), Some(0), "snnc {args:?}: {}", text(&out.stderr));
    out
}

/// Asserts that a run of `snnc` succeeded.
pub fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Program output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as an argument.
pub fn path_text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A file of the repository (`models/forager.snn`), as an argument.
pub fn repo_file(relative: &str) -> String {
    path_text(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)).to_string()
}

/// The repository's `models/` folder.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A folder of this test process that does not exist (yet): for outputs.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("snnc-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An empty folder of this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = out_dir(name);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Writes a model file into this test process's folder of models.
pub fn temp_model(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("snnc-test-{}-models", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write model");
    path
}

/// A JSON file (`run.json`, `summary.json`).
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that two files hold the same bytes.
pub fn assert_same_bytes(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).expect("file"), std::fs::read(b).expect("file"));
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

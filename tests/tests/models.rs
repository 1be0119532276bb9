//! Every model file in `models/` and `tests/conformance/` passes the checker.
//!
//! The conformance models are our versions of the Brian2 golden-data cases in
//! `../shared/conformance/` (one `<case>.snn` per case directory); when that
//! directory is present, the two sets of names must agree.

use std::fs;
use std::path::{Path, PathBuf};

/// The conformance cases, as named by the directories of `shared/conformance/`.
const CONFORMANCE_CASES: [&str; 10] = [
    "adex",
    "cuba_small",
    "feat_delay",
    "feat_subexpr",
    "feat_summed",
    "hh",
    "integrators",
    "izhikevich",
    "lif_const",
    "stdp_pair",
];

/// The `tests/` crate directory.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `*.snn` files of a directory, sorted by name.
fn snn_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("can not read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("can not list {}: {e}", dir.display())).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "snn"))
        .collect();
    files.sort();
    files
}

/// The file stems of `files`, sorted.
fn stems(files: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> =
        files.iter().filter_map(|f| f.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Checks every file; returns one rendered report per failing file.
fn failures(files: &[PathBuf]) -> Vec<String> {
    let root = crate_dir().join("..");
    let root = root.canonicalize().unwrap_or(root);
    let mut failed = Vec::new();
    for path in files {
        let name = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        let source = fs::read_to_string(path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()));
        let (model, diags) = snnc_compiler::check(&source);
        let has_errors = diags.iter().any(|d| d.severity == snnc_compiler::Severity::Error);
        if model.is_none() || has_errors {
            let rendered = snnc_compiler::diagnostic::render_to_string(&diags, &name, &source);
            failed.push(format!("{name}: rejected\n{rendered}"));
        }
    }
    failed
}

fn assert_all_pass(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.as_path();
    let files = snn_files(dir);
    assert!(!files.is_empty(), "no model files in {}", dir.display());
    let failed = failures(&files);
    assert!(
        failed.is_empty(),
        "{} of {} model files in {} do not pass the checker:\n\n{}",
        failed.len(),
        files.len(),
        dir.display(),
        failed.join("\n")
    );
}

#[test]
fn models_pass_the_checker() {
    assert_all_pass(&crate_dir().join("../models"));
}

#[test]
fn conformance_models_pass_the_checker() {
    assert_all_pass(&crate_dir().join("conformance"));
}

#[test]
fn every_conformance_case_has_a_model() {
    let ours = stems(&snn_files(&crate_dir().join("conformance")));
    let shared = crate_dir().join("../../shared/conformance");
    let cases: Vec<String> = if shared.is_dir() {
        let mut cases: Vec<String> = fs::read_dir(&shared)
            .unwrap_or_else(|e| panic!("can not read {}: {e}", shared.display()))
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        cases.sort();
        cases
    } else {
        // The golden data is not checked out here (e.g. in CI): expect the known cases.
        CONFORMANCE_CASES.iter().map(|c| c.to_string()).collect()
    };
    assert_eq!(
        ours.len(),
        cases.len(),
        "tests/conformance/ has {} models, the conformance suite {} cases",
        ours.len(),
        cases.len()
    );
    assert_eq!(ours, cases, "tests/conformance/<case>.snn must match the case directories");
}

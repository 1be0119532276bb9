//! Diagnostics snapshots: every bad model in `tests/cases/fail` is rejected with the
//! error codes its first line expects, and its rendered diagnostics match a snapshot
//! in `tests/cases/snapshots`; every model in `tests/cases/pass` checks cleanly.
//!
//! Each failing case starts with `# expect: E0xxx [E0yyy ...]`. Snapshots are
//! (re)generated with `INSTA_UPDATE=always cargo test -p snnc-tests --test diagnostics`.
//! A passing case may pin the SI value of a constant with a line `# value: name = 1.5e-3`.

use std::fs;
use std::path::{Path, PathBuf};

/// `tests/cases/<kind>`.
fn cases_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases").join(kind)
}

/// The `.snn` files of a directory, sorted by name.
fn snn_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("can not read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "snn"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()))
}

/// The codes listed on the first line, `# expect: E0301 E0204` (commas allowed).
fn expected_codes(source: &str) -> Option<Vec<&str>> {
    let rest = source.lines().next()?.trim().strip_prefix("# expect:")?;
    let codes: Vec<&str> =
        rest.split(|c: char| c.is_whitespace() || c == ',').filter(|code| !code.is_empty()).collect();
    (!codes.is_empty()).then_some(codes)
}

#[test]
fn failing_cases_report_expected_diagnostics() {
    let files = snn_files(&cases_dir("fail"));
    assert!(files.len() >= 40, "expected at least 40 failing cases, found {}", files.len());
    let mut problems: Vec<String> = Vec::new();
    for path in &files {
        let file = file_name(path);
        let name = file.trim_end_matches(".snn").to_string();
        let source = read(path);
        let (model, diagnostics) = snnc_compiler::check(&source);
        let rendered = snnc_compiler::diagnostic::render_to_string(&diagnostics, &file, &source);

        if model.is_some() {
            problems.push(format!("{file}: accepted, but it has a deliberate mistake"));
        }
        let found: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
        match expected_codes(&source) {
            None => problems.push(format!("{file}: the first line must be `# expect: E0xxx ...`")),
            Some(expected) => {
                for code in expected {
                    if !found.contains(&code) {
                        problems.push(format!("{file}: expected {code}, found [{}]", found.join(", ")));
                    }
                }
            }
        }

        let snapshot = format!("----- SOURCE\n{}\n----- ERROR\n{}", source.trim_end(), rendered.trim_end());
        insta::with_settings!({
            snapshot_path => "../cases/snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("tests/cases/fail/{file}"),
        }, {
            insta::assert_snapshot!(name, snapshot);
        });
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

/// `# value: name = number` lines of a passing case.
fn expected_values(source: &str) -> Vec<(&str, f64)> {
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("# value:"))
        .map(|rest| {
            let (name, value) =
                rest.split_once('=').unwrap_or_else(|| panic!("`# value: name = number`, found `{rest}`"));
            let value: f64 = value.trim().parse().unwrap_or_else(|e| panic!("bad number in `# value:{rest}`: {e}"));
            (name.trim(), value)
        })
        .collect()
}

#[test]
fn passing_cases_check_without_diagnostics() {
    let files = snn_files(&cases_dir("pass"));
    assert!(!files.is_empty(), "no passing cases found");
    let mut problems: Vec<String> = Vec::new();
    for path in &files {
        let file = file_name(path);
        let source = read(path);
        let (model, diagnostics) = snnc_compiler::check(&source);
        if !diagnostics.is_empty() {
            let rendered = snnc_compiler::diagnostic::render_to_string(&diagnostics, &file, &source);
            problems.push(format!("{file}: expected no diagnostics, found:\n{rendered}"));
            continue;
        }
        let Some(model) = model else {
            problems.push(format!("{file}: no model and no diagnostics"));
            continue;
        };
        for (name, expected) in expected_values(&source) {
            match model.constants.iter().find(|c| c.name == name) {
                None => problems.push(format!("{file}: no constant `{name}`")),
                Some(c) if (c.value - expected).abs() > 1e-9 * expected.abs().max(1e-30) => {
                    problems.push(format!("{file}: `{name}` is {}, expected {expected}", c.value));
                }
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

//! The documentation's examples are true: every fenced `snn` block of `README.md`
//! and `docs/*.md` is compiled, and every `snnc` command of a `sh` block parses.
//!
//! Fence kinds (the words after the backticks):
//! - `snn`: a whole model file. It checks without any diagnostic and lowers to kernels (so it runs).
//! - `snn fragment`: the body of a neuron type. It is checked as
//!   `neuron Fragment { <block> }` with `group fragment = Fragment(1)`, and lowered.
//! - `snn error`: a model with a deliberate mistake. The next block must be a `text` block
//!   holding exactly what `snnc check model.snn` prints for it (the check's diagnostics, or
//!   the lowering's when the check passes).
//! - `snn excerpt <path>`: lines copied from a model file of the repository; the file must
//!   contain them verbatim, and the file itself must check and lower.
//! - `sh`: commands. Each line that calls `snnc` (directly, or as `cargo run ... -p snnc-runtime -- `)
//!   must parse with the program's own argument parser. In a `sh run` block each such command
//!   also runs, in a scratch folder that sees the repository's `models/`, `tests/` and `docs/`,
//!   and must exit 0.
//!
//! `EXPECTED` pins how many blocks of each kind every file has, so that a renamed fence
//! can not silently skip its examples.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Per file: how many `snn`, `snn fragment`, `snn error` and `snn excerpt` blocks it has, how many
/// `snnc` commands its `sh` blocks quote, and how many of them run.
const EXPECTED: [(&str, Counts); 4] = [
    ("README.md", Counts { whole: 1, fragments: 0, errors: 0, excerpts: 0, commands: 18, run: 9 }),
    ("docs/language.md", Counts { whole: 12, fragments: 3, errors: 3, excerpts: 0, commands: 0, run: 0 }),
    ("docs/from-brian2.md", Counts { whole: 0, fragments: 0, errors: 0, excerpts: 12, commands: 5, run: 4 }),
    ("docs/embedding.md", Counts { whole: 0, fragments: 0, errors: 0, excerpts: 0, commands: 0, run: 0 }),
];

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()))
}

/// A fenced code block: its info string, its text, and the line its fence opens on.
#[derive(Debug)]
struct Block {
    info: String,
    body: String,
    line: usize,
}

/// The fenced blocks of a Markdown text (fences of three backticks at the start of a line).
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (k, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block { info: info.trim().to_string(), body: String::new(), line: k + 1 })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => out.extend(open.take()),
            (Some(block), _) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fenced block is not closed: {open:?}");
    out
}

/// Errors of checking and lowering a model, rendered as `snnc check` prints them; empty when it is correct.
fn problems(source: &str, file_name: &str) -> String {
    let (model, diagnostics) = snnc_compiler::check(source);
    let rendered = snnc_compiler::diagnostic::render_to_string(&diagnostics, file_name, source);
    match model {
        None => rendered,
        Some(_) if !diagnostics.is_empty() => rendered,
        Some(model) => match snnc_compiler::ir::lower(&model) {
            Ok(_) => String::new(),
            Err(errors) => snnc_compiler::diagnostic::render_to_string(&errors, file_name, source),
        },
    }
}

/// The `snnc` arguments of a shell line, if it runs the program.
fn snnc_args(line: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
    match words.as_slice() {
        ["snnc", args @ ..] => Some(args.to_vec()),
        ["cargo", "run", rest @ ..] if rest.windows(2).any(|w| w == ["-p", "snnc-runtime"]) => {
            let at = rest.iter().position(|w| *w == "--")?;
            Some(rest[at + 1..].to_vec())
        }
        _ => None,
    }
}

/// A scratch folder with links to the repository's `models/`, `tests/` and `docs/`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("snnc-docs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    for folder in ["models", "tests", "docs"] {
        let target = root().join(folder).canonicalize().expect("a repository folder");
        std::os::unix::fs::symlink(target, dir.join(folder)).expect("link a repository folder");
    }
    dir
}

/// What a file holds (see `EXPECTED`).
#[derive(Default, Debug, PartialEq)]
struct Counts {
    whole: usize,
    fragments: usize,
    errors: usize,
    excerpts: usize,
    commands: usize,
    run: usize,
}

/// Checks every block of one file; returns what it found and the failures.
fn check_file(file: &str) -> (Counts, Vec<String>) {
    let text = read(&root().join(file));
    let blocks = blocks(&text);
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut runs_in: Option<PathBuf> = None;
    for (k, block) in blocks.iter().enumerate() {
        let at = format!("{file}:{}", block.line);
        let words: Vec<&str> = block.info.split_whitespace().collect();
        match words.as_slice() {
            ["snn"] => {
                counts.whole += 1;
                let found = problems(&block.body, "model.snn");
                if !found.is_empty() {
                    failures.push(format!("{at}: the model has diagnostics:\n{found}"));
                }
            }
            ["snn", "fragment"] => {
                counts.fragments += 1;
                let source = format!("neuron Fragment {{\n{}}}\ngroup fragment = Fragment(1)\n", block.body);
                let found = problems(&source, "fragment.snn");
                if !found.is_empty() {
                    failures.push(format!("{at}: the fragment (in a neuron type) has diagnostics:\n{found}"));
                }
            }
            ["snn", "error"] => {
                counts.errors += 1;
                let found = problems(&block.body, "model.snn");
                match blocks.get(k + 1) {
                    _ if found.is_empty() => failures.push(format!("{at}: the error example has no error")),
                    Some(next) if next.info == "text" => {
                        let trim = |s: &str| s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
                        if trim(&next.body).trim() != trim(&found).trim() {
                            failures.push(format!("{at}: documented:\n{}\nbut the compiler says:\n{found}", next.body));
                        }
                    }
                    _ => failures.push(format!("{at}: an error example must be followed by a `text` block")),
                }
            }
            ["snn", "excerpt", path] => {
                counts.excerpts += 1;
                let source = read(&root().join(path));
                if !source.contains(&block.body) {
                    failures.push(format!("{at}: not a verbatim excerpt of {path}:\n{}", block.body));
                }
                let found = problems(&source, path);
                if !found.is_empty() {
                    failures.push(format!("{at}: {path} has diagnostics:\n{found}"));
                }
            }
            ["snn", ..] => failures.push(format!("{at}: unknown fence `{}`", block.info)),
            ["sh", rest @ ..] => {
                let run = match rest {
                    [] => false,
                    ["run"] => true,
                    _ => {
                        failures.push(format!("{at}: unknown fence `{}`", block.info));
                        continue;
                    }
                };
                for line in block.body.lines() {
                    let Some(args) = snnc_args(line) else { continue };
                    counts.commands += 1;
                    if let Err(e) = snnc_runtime::cli::parse_args(&args) {
                        failures.push(format!("{at}: `{line}` does not parse:\n{e}"));
                        continue;
                    }
                    if run {
                        counts.run += 1;
                        let dir = runs_in.get_or_insert_with(|| scratch(&file.replace('/', "-")));
                        let out = Command::new(env!("CARGO_BIN_EXE_snnc"))
                            .args(&args)
                            .current_dir(&*dir)
                            .output()
                            .expect("snnc runs");
                        if !out.status.success() {
                            failures.push(format!(
                                "{at}: `{line}` exits with {}:\n{}",
                                out.status,
                                String::from_utf8_lossy(&out.stderr)
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(dir) = runs_in {
        let _ = std::fs::remove_dir_all(dir);
    }
    (counts, failures)
}

/// Every file of `EXPECTED`: its blocks are true, and it has the blocks it should.
#[test]
fn documented_examples_are_true() {
    let mut problems = Vec::new();
    for (file, want) in &EXPECTED {
        let (counts, failures) = check_file(file);
        problems.extend(failures);
        if counts != *want {
            problems.push(format!("{file}: found {counts:?}, expected {want:?}"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n\n{}", problems.len(), problems.join("\n\n"));
}

/// Every guide in `docs/` is listed in `EXPECTED`, so none is skipped.
#[test]
fn every_guide_is_checked() {
    let entries = std::fs::read_dir(root().join("docs")).expect("the docs folder");
    let mut missing = Vec::new();
    for entry in entries {
        let name = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && !EXPECTED.iter().any(|(file, _)| *file == format!("docs/{name}")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "docs not in EXPECTED: {missing:?}");
}

#[test]
fn blocks_and_commands_are_found() {
    let text = "a\n```snn\nx = 1\n```\n```sh run\nsnnc check a.snn  # comment\n```\n";
    let found = blocks(text);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].info.as_str(), found[0].body.as_str(), found[0].line), ("snn", "x = 1\n", 2));
    assert_eq!(found[1].info, "sh run");
    assert_eq!(snnc_args("snnc check a.snn  # comment"), Some(vec!["check", "a.snn"]));
    assert_eq!(
        snnc_args("cargo run --release -p snnc-runtime -- run m.snn --steps 5"),
        Some(vec!["run", "m.snn", "--steps", "5"])
    );
    assert_eq!(snnc_args("cargo test --workspace"), None);
    assert!(snnc_runtime::cli::parse_args(&["run", "m.snn", "--steps", "5"]).is_ok());
    assert!(snnc_runtime::cli::parse_args(&["run", "m.snn", "--stepz", "5"]).is_err());
    assert!(problems("const a = 1 mV + 1 ms", "x.snn").contains("E0301"));
    assert!(problems("const a = 1 mV", "x.snn").is_empty());
}

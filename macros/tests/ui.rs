//! The `model!` and `check!` macros seen from a user's crate: a model error is a
//! build error naming the model file, line and column with the message of `snnc
//! check` (trybuild UI tests in `tests/ui/`), and editing the model file makes
//! cargo rebuild the crate that names it.
//!
//! These tests live in the macros crate, not in `snnc-tests`, because trybuild
//! checks the UI cases in a crate of its own with every dev-dependency of the
//! crate that runs it: here that is the runtime without `cli` and `jit`, not
//! Cranelift, proptest, insta and divan.
//!
//! Bless changed `.stderr` files with `TRYBUILD=overwrite cargo test -p snnc-macros --test ui`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `macros/` crate directory.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's target directory, as trybuild finds it (`cargo metadata`).
fn target_dir() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version=1", "--offline"])
        .current_dir(crate_dir())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let dir = metadata["target_directory"].as_str().expect("cargo metadata names the target directory");
    PathBuf::from(dir)
}

/// Copies the model files of `tests/ui/` into `tests/ui/` of the crate trybuild
/// builds the UI tests in (`<target>/tests/trybuild/snnc-macros/`): the macros read
/// a file relative to the manifest of the crate being compiled, so
/// `model!("tests/ui/x.snn")` reads the same file there as it would in this crate.
fn stage_ui_models() {
    let staged = target_dir().join("tests/trybuild/snnc-macros/tests/ui");
    fs::create_dir_all(&staged).expect("create the trybuild crate's tests/ui/ folder");
    let models = ui_models();
    assert!(models.len() >= 4, "tests/ui/ has its model files");
    for path in models {
        let name = path.file_name().expect("a file name");
        fs::copy(&path, staged.join(name)).expect("copy a ui model");
    }
}

/// The model files of `tests/ui/`, sorted.
fn ui_models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = fs::read_dir(crate_dir().join("tests/ui"))
        .expect("list tests/ui")
        .map(|entry| entry.expect("a tests/ui entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "snn"))
        .collect();
    models.sort();
    models
}

/// Every `tests/ui/*.rs` fails to build, with the errors of its `.stderr`.
///
/// There is no trybuild `pass` case: one makes trybuild `cargo build` (not `cargo
/// check`) every dependency of this crate in its own target folder (in
/// `snnc-tests`, with Cranelift, that took a cold build from about 2 to about 5
/// minutes on 2 cores). A crate using `model!` is built and run by
/// `editing_the_model_file_rebuilds_the_crate`, `examples/embed` and
/// `tests/tests/aot.rs`.
#[test]
fn ui() {
    stage_ui_models();
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

/// The `.stderr` files show `snnc check`'s rendering of each model's errors
/// (the macros' message, indented by rustc, is the checker's text).
#[test]
fn ui_errors_are_the_checkers() {
    let mut compared = 0;
    for model in ui_models() {
        let stem = model.file_stem().expect("a name").to_string_lossy().into_owned();
        let source = fs::read_to_string(&model).expect("read a ui model");
        let name = format!("tests/ui/{stem}.snn");
        let (checked, diagnostics) = snnc_compiler::check(&source);
        if checked.is_some() {
            continue;
        }
        let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
        let rendered = snnc_compiler::diagnostic::render_to_string(&errors, &name, &source);
        let expected: Vec<&str> = rendered.lines().map(str::trim_end).collect();
        for mac in ["model", "check"] {
            let golden = crate_dir().join(format!("tests/ui/{mac}_{stem}.stderr"));
            let stderr = fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
            let mut lines = stderr.lines();
            assert_eq!(lines.next(), Some(format!("error: errors in model file `{name}`:").as_str()), "{mac}_{stem}");
            let message: Vec<&str> = lines
                .take_while(|line| !line.starts_with(" --> "))
                .map(|line| line.strip_prefix("       ").unwrap_or(line).trim_end())
                .collect();
            assert_eq!(message.join("\n").trim_end(), expected.join("\n").trim_end(), "{mac}_{stem}.stderr");
            compared += 1;
        }
    }
    assert_eq!(compared, 6, "three models with errors, each under `model!` and `check!`");
}

/// The files of a tiny crate that compiles `model.snn` next to it with `model!`
/// and prints the size of its group.
fn write_user_crate(dir: &Path) {
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let workspace = crate_dir().parent().expect("the workspace folder");
    let manifest = format!(
        "[package]\nname = \"snnc-rebuild-user\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nsnnc-macros = {{ path = {} }}\nsnnc-runtime = {{ path = {}, default-features = false }}\n\n\
         # Not part of the snnc workspace around it.\n[workspace]\n",
        path(&workspace.join("macros")),
        path(&workspace.join("runtime")),
    );
    let main = "\
mod model {
    snnc_macros::model!(\"model.snn\");
}

fn main() {
    let (_, sim) = snnc_runtime::aot::build(model::SOURCE, model::kernels(), 1).expect(\"the model builds\");
    println!(\"{} neurons\", sim.population_size(0));
}
";
    fs::create_dir_all(dir.join("src")).expect("create the user crate");
    fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    fs::write(dir.join("src/main.rs"), main).expect("write main.rs");
    // The workspace's versions of every dependency, so the build works offline.
    fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
}

/// A model of `n` neurons; with `error`, its equation adds a current to a voltage
/// (line 8, column 18).
fn model_text(n: u32, error: bool) -> String {
    let rhs = if error { "(E_L - v + I_ext)/tau_m" } else { "(E_L - v)/tau_m + I_ext/C" };
    format!(
        "# Written by macros/tests/ui.rs.\nconst tau_m = 20 ms\nconst E_L = -70 mV\nconst C = 200 pF\n\n\
         neuron LIF {{\n    equations {{\n        dv/dt = {rhs} : volt\n        I_ext : amp\n    }}\n    \
         threshold v > -50 mV\n    reset {{ v = E_L }}\n}}\n\ngroup G = LIF({n})\n"
    )
}

/// `cargo run` of the user crate, offline, with its own target directory (kept
/// between test runs, so only the first run builds the dependencies).
fn cargo_run(dir: &Path, target: &Path) -> Output {
    Command::new(env!("CARGO"))
        .args(["run", "--offline", "--quiet", "--color=never", "--target-dir"])
        .arg(target)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs")
}

/// Describes a cargo run for a failed assertion.
fn show(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Cargo tracks the model file named by `model!`: an edit that breaks it fails
/// the next build with the checker's message and location, and an edit that
/// fixes it builds a program with the new model.
#[test]
fn editing_the_model_file_rebuilds_the_crate() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rebuild-test");
    fs::create_dir_all(&root).expect("create the rebuild-test folder");
    // Another `cargo test` of this workspace may be editing the same crate.
    let lock = fs::File::create(root.join("lock")).expect("create the lock file");
    lock.lock().expect("lock the rebuild-test folder");
    let dir = root.join("user");
    let target = root.join("target");
    write_user_crate(&dir);
    let model = dir.join("model.snn");

    fs::write(&model, model_text(3, false)).expect("write the model");
    let output = cargo_run(&dir, &target);
    assert!(output.status.success(), "the first build: {}", show(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "3 neurons\n", "{}", show(&output));

    fs::write(&model, model_text(3, true)).expect("break the model");
    let output = cargo_run(&dir, &target);
    assert!(!output.status.success(), "the build after breaking the model must fail: {}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "error: errors in model file `model.snn`:",
        "error[E0301]: dimension mismatch in `+`: left side is `volt`, right side is `amp`",
        "┌─ model.snn:8:18",
        "dv/dt = (E_L - v + I_ext)/tau_m : volt",
        "src/main.rs:2:5",
    ] {
        assert!(stderr.contains(expected), "`{expected}` missing from the build's errors: {}", show(&output));
    }

    fs::write(&model, model_text(5, false)).expect("fix the model");
    let output = cargo_run(&dir, &target);
    assert!(output.status.success(), "the build after fixing the model: {}", show(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "5 neurons\n", "the new model runs: {}", show(&output));
}

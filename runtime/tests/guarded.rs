//! End-to-end tests of checkpoints and resuming, Ctrl-C, the NaN guard and the
//! memory estimate of `snnc run`.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::*;

/// Every `.npz` of `a` is in `b` with the same bytes, and there is at least one.
fn assert_same_outputs(a: &Path, b: &Path) {
    let mut compared = 0;
    for entry in std::fs::read_dir(a).expect("run folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "npz") {
            let name = path.file_name().expect("name");
            let (x, y) = (std::fs::read(&path).expect("file"), std::fs::read(b.join(name)).expect("same file"));
            assert!(x == y, "{} differs between {} and {}", name.to_string_lossy(), a.display(), b.display());
            compared += 1;
        }
    }
    assert!(compared >= 3, "only {compared} .npz files in {}", a.display());
}

fn status(dir: &Path) -> String {
    read_json(&dir.join("run.json"))["status"].as_str().expect("status").to_string()
}

/// A run stopped twice and resumed gives the bytes of the same run in one go,
/// for the forager (closed loop, episodes: stopped inside an episode and at its
/// end) and for a model with delayed synapses (queued events).
#[test]
fn stopped_and_resumed_runs_equal_uninterrupted_ones() {
    let dir = scratch("resume");
    let cases = [
        ("forager", repo_file("models/forager.snn"), vec!["--steps", "1000", "--episodes", "2", "--seed", "3"]),
        ("delay", repo_file("tests/conformance/feat_delay.snn"), vec!["--steps", "1500"]),
    ];
    for (name, model, args) in &cases {
        let whole = dir.join(format!("{name}-whole"));
        let mut command = vec!["run", model, "-q", "--out", path_text(&whole)];
        command.extend(args);
        assert_ok(&snnc(&command));
        assert_eq!(status(&whole), "complete");
        assert!(!whole.join("checkpoint.bin").exists(), "a complete run keeps no checkpoint");

        let parts = dir.join(format!("{name}-parts"));
        let mut command = vec!["run", model, "-q", "--out", path_text(&parts), "--stop-after", "700"];
        command.extend(args);
        assert_ok(&snnc(&command));
        let info = read_json(&parts.join("run.json"));
        assert_eq!((info["status"].as_str(), info["completed_steps"].as_u64()), (Some("stopped"), Some(700)));
        assert!(parts.join("checkpoint.bin").exists());
        // Stopped again at the end of the forager's first episode, then to the end.
        assert_ok(&snnc(&["run", "-q", "--resume", path_text(&parts), "--stop-after", "1000"]));
        assert_eq!(read_json(&parts.join("run.json"))["completed_steps"].as_u64(), Some(1000));
        let last = snnc(&["run", "--resume", path_text(&parts)]);
        assert_ok(&last);
        assert_eq!(status(&parts), "complete");
        assert!(!parts.join("checkpoint.bin").exists());
        assert_same_outputs(&whole, &parts);
        assert_same_outputs(&parts, &whole);
        if *name == "forager" {
            // The first episode's summary is kept across the sessions.
            let (a, b) = (read_json(&whole.join("run.json")), read_json(&parts.join("run.json")));
            assert_eq!(a["episodes"], b["episodes"], "{}", text(&last.stderr));
        }
    }
}

/// `--checkpoint-every` writes a resumable folder along the way and does not
/// change the results.
#[test]
fn periodic_checkpoints_change_nothing() {
    let dir = scratch("periodic");
    let model = repo_file("models/forager.snn");
    let (plain, checked) = (dir.join("plain"), dir.join("checked"));
    assert_ok(&snnc(&["run", &model, "-q", "--steps", "1200", "--out", path_text(&plain)]));
    let stopped = ["--checkpoint-every", "250", "--stop-after", "1100"];
    let mut command = vec!["run", &model, "-q", "--steps", "1200", "--out", path_text(&checked)];
    command.extend(stopped);
    assert_ok(&snnc(&command));
    let info = read_json(&checked.join("run.json"));
    assert_eq!(info["run"]["checkpoint_every"].as_u64(), Some(250));
    assert_ok(&snnc(&["run", "-q", "--resume", path_text(&checked)]));
    assert_same_outputs(&plain, &checked);
}

/// Ctrl-C stops after the current step with the outputs so far and a checkpoint,
/// exit status 130; those outputs are a `--stop-after` run's of the same length,
/// and resuming continues it.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_with_a_checkpoint() {
    let dir = scratch("interrupt");
    let model = dir.join("endless.snn");
    std::fs::write(
        &model,
        "dt = 0.1 ms\nneuron Cell {\n    equations {\n        dv/dt = (1.5 - v)/(10 ms) : 1\n    }\n    \
         threshold v > 1\n    reset { v = 0 }\n}\ngroup G = Cell(50) {\n    v = rand()\n}\nmonitor spikes G\n",
    )
    .expect("model");
    let out = dir.join("run");
    let result = interrupted(&["run", path_text(&model), "-q", "--steps", "4000000000", "--out", path_text(&out)]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after") && stderr.contains("--resume"), "{stderr}");
    let info = read_json(&out.join("run.json"));
    assert_eq!(info["status"].as_str(), Some("interrupted"));
    let steps = info["completed_steps"].as_u64().expect("steps");
    assert!(steps > 0 && out.join("checkpoint.bin").exists());

    let same = dir.join("same");
    let stop = steps.to_string();
    let command = ["run", path_text(&model), "-q", "--steps", "4000000000", "--out", path_text(&same)];
    assert_ok(&snnc(&[&command[..], &["--stop-after", &stop]].concat()));
    assert_same_outputs(&out, &same);
    let further = (steps + 1234).to_string();
    for run in [&out, &same] {
        assert_ok(&snnc(&["run", "-q", "--resume", path_text(run), "--stop-after", &further]));
    }
    assert_same_outputs(&out, &same);

    // Replicas: each stops with its outputs and a checkpoint; the run is marked.
    let replicas = dir.join("replicas");
    let args = ["run", path_text(&model), "-q", "--steps", "4000000000", "--replicas", "2", "--out"];
    let result = interrupted(&[&args[..], &[path_text(&replicas)]].concat());
    assert_eq!(result.status.code(), Some(130), "{}", text(&result.stderr));
    assert_eq!(status(&replicas), "interrupted");
    for r in 0..2 {
        let replica = replicas.join(format!("replica-{r}"));
        assert_eq!(status(&replica), "interrupted");
        let done = read_json(&replica.join("run.json"))["completed_steps"].as_u64().expect("steps");
        let further = (done + 100).to_string();
        assert_ok(&snnc(&["run", "-q", "--resume", path_text(&replica), "--stop-after", &further]));
    }
}

/// Runs `snnc` with `args`, sends it SIGINT after 1.5 s, and returns how it ended.
#[cfg(unix)]
fn interrupted(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_snnc"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("snnc starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    child.wait_with_output().expect("snnc ends")
}

/// A model that diverges on purpose: the run stops at the first check after a
/// value becomes infinite, naming the variable, group, neuron and step; exit 3;
/// the outputs up to then are kept, and it can not be resumed.
#[test]
fn the_guard_stops_a_diverging_run() {
    let dir = scratch("diverge");
    let model = dir.join("blowup.snn");
    std::fs::write(
        &model,
        "dt = 0.1 ms\nduration = 100 ms\nneuron Grow {\n    equations {\n        dv/dt = v*k/(1 ms) : 1\n        \
         k : 1 (constant)\n    }\n    method euler\n}\ngroup G = Grow(4) {\n    v = 1\n    k = [0, 0, 50, 1]\n}\n\
         monitor state G.v every 1 ms\n",
    )
    .expect("model");
    let out = dir.join("run");
    let result = snnc(&["run", path_text(&model), "--out", path_text(&out)]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(3), "{stderr}");
    // 6^n passes the range of f64 within 397 steps; the guard looks every 100.
    assert!(stderr.contains("`v` of group `G` is inf at neuron 2 at step 400"), "{stderr}");
    assert!(stderr.contains("finite at step 300"), "{stderr}");
    let info = read_json(&out.join("run.json"));
    assert_eq!(info["status"].as_str(), Some("diverged"));
    assert_eq!(info["completed_steps"].as_u64(), Some(400));
    assert!(out.join("state.npz").exists() && !out.join("checkpoint.bin").exists());
    let again = snnc(&["run", "--resume", path_text(&out)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("diverged"), "{}", text(&again.stderr));

    // A finer guard finds it sooner; without a guard the run goes to its end.
    let fine = snnc(&["run", path_text(&model), "--guard-every", "7", "--out", path_text(&dir.join("fine"))]);
    assert!(text(&fine.stderr).contains("at step 392 (all values were finite at step 385)"), "{}", text(&fine.stderr));
    assert_ok(&snnc(&["run", path_text(&model), "-q", "--guard-every", "0", "--out", path_text(&dir.join("off"))]));
    // A variable set to infinity on purpose is not an error, NaN is.
    let source = std::fs::read_to_string(&model).expect("model").replace("v = 1\n", "v = inf\n");
    std::fs::write(&model, source.replace("[0, 0, 50, 1]", "[1, 1, 1, 1]")).expect("model");
    assert_ok(&snnc(&["run", path_text(&model), "-q", "--out", path_text(&dir.join("inf"))]));
    std::fs::write(&model, source.replace("[0, 0, 50, 1]", "[1, 0, 1, 1]")).expect("model");
    let nan = snnc(&["run", path_text(&model), "-q", "--out", path_text(&dir.join("nan"))]);
    assert_eq!(nan.status.code(), Some(3));
    assert!(text(&nan.stderr).contains("is NaN at neuron 1 at step 100"), "{}", text(&nan.stderr));
}

/// Models whose state or synapses would not fit in memory are refused before
/// anything is allocated or written, with the estimate.
#[test]
fn runs_too_big_for_memory_are_refused() {
    let dir = scratch("memory");
    let cell = "dt = 0.1 ms\nduration = 1 ms\nneuron Cell {\n    equations {\n        dv/dt = -v/(10 ms) : 1\n    \
                }\n    threshold v > 1\n    reset { v = 0 }\n}\nsynapse Static {\n    equations {\n        w : 1\n    \
                }\n    on_pre { v += w }\n}\n";
    let cases = [
        ("neurons", "group P = Cell(4000000000)\n", "state of `P` (4000000000 neurons)"),
        (
            "synapses",
            "group P = Cell(20000)\nconnect S = P -> P with Static { p = 0.5; w = 0.1 }\n",
            "synapses of `S` (about 2.0",
        ),
    ];
    for (name, body, expected) in cases {
        let model = dir.join(format!("{name}.snn"));
        std::fs::write(&model, format!("{cell}{body}")).expect("model");
        let out = dir.join(name);
        let result = snnc_with(&["run", path_text(&model), "--out", path_text(&out)], &[("SNNC_MEMORY_LIMIT", "1G")]);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("refused before allocating") && stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("1.0 GiB are available"), "{stderr}");
        assert!(!out.exists(), "nothing written");
    }
    // Beyond 2^32 synapses is refused whatever the memory.
    let model = dir.join("huge.snn");
    std::fs::write(&model, format!("{cell}group P = Cell(300000)\nconnect S = P -> P with Static {{ p = 0.5 }}\n"))
        .expect("model");
    let result = snnc(&["run", path_text(&model), "--out", path_text(&dir.join("huge"))]);
    assert!(text(&result.stderr).contains("more than 2^32"), "{}", text(&result.stderr));
    // Monitors count too: every synapse's weight every step.
    let forager = repo_file("models/forager.snn");
    let result = snnc_with(
        &["run", &forager, "--steps", "2000", "--out", path_text(&dir.join("forager"))],
        &[("SNNC_MEMORY_LIMIT", "100K")],
    );
    assert_eq!(result.status.code(), Some(1));
    assert!(text(&result.stderr).contains("refused before allocating"), "{}", text(&result.stderr));
}

/// `--resume` refuses what it can not continue, with a reason.
#[test]
fn resume_refuses_what_it_can_not_continue() {
    let dir = scratch("refusals");
    let model = dir.join("lif.snn");
    std::fs::copy(repo_file("tests/conformance/lif_const.snn"), &model).expect("copy");
    let stopped = dir.join("stopped");
    assert_ok(&snnc(&["run", path_text(&model), "-q", "--stop-after", "500", "--out", path_text(&stopped)]));
    let complete = dir.join("complete");
    assert_ok(&snnc(&["run", path_text(&model), "-q", "--out", path_text(&complete)]));

    let refused = |args: &[&str], expected: &str| {
        let result = snnc(args);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(&["run", "--resume", path_text(&complete)], "nothing to resume");
    refused(&["run", "--resume", path_text(&dir)], "not an snnc run folder");
    refused(&["run", "--resume", path_text(&stopped), "--seed", "4"], "cannot be used with");
    refused(&["run", "--resume", path_text(&stopped), "--stop-after", "300"], "already done 500 steps");
    refused(&["run", path_text(&model), "--stop-after", "5000"], "the run has only 2000 steps");
    refused(&["run", path_text(&model), "--replicas", "2", "--checkpoint-every", "10"], "single runs");
    // A damaged checkpoint is refused, and the folder stays as it was.
    let checkpoint = stopped.join("checkpoint.bin");
    let bytes = std::fs::read(&checkpoint).expect("checkpoint");
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).expect("truncate");
    refused(&["run", "--resume", path_text(&stopped)], "the checkpoint is corrupt");
    std::fs::write(&checkpoint, &bytes).expect("restore");
    // The model must be the one the run started with.
    let source = std::fs::read_to_string(&model).expect("model");
    std::fs::write(&model, source.replace("const tau = 10 ms", "const tau = 12 ms")).expect("edit");
    refused(&["run", "--resume", path_text(&stopped)], "changed since the run started");
    std::fs::write(&model, source).expect("put back");
    assert_ok(&snnc(&["run", "-q", "--resume", path_text(&stopped)]));
    assert_same_outputs(&complete, &stopped);
}

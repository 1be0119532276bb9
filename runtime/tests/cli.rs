//! End-to-end tests of the `snnc` program: exit statuses, messages, `--dump`.

use std::process::Command;

mod common;
use common::*;

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

const LIF: &str = "dt = 0.1 ms\nduration = 50 ms\nconst tau = 10 ms\nconst drive = 25 mV\n\
    neuron N { equations { dv/dt = (drive - v)/tau : volt (unless refractory) }\n\
    threshold v > 10 mV\n reset { v = 0 mV }\n refractory 2 ms }\n\
    group G = N(4) { v = i*2 mV }\nmonitor spikes G\nmonitor state G.v every 10 steps\nmonitor rate G\n";

#[test]
fn run_writes_the_monitors_and_run_json() {
    let model = temp_model("lif_run.snn", LIF);
    let out = out_dir("ok");
    let result = snnc(&["run", model.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8"), "--seed", "3"]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    for file in ["spikes.npz", "state.npz", "rates.npz", "run.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let summary = text(&result.stderr);
    assert!(summary.contains("500 steps"), "{summary}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("json");
    assert_eq!(info["steps"], 500);
    assert_eq!(info["seed"], 3);
    assert_eq!(info["backend"], "jit");
    assert_eq!(info["constants"]["tau"], 0.01);
    assert!(info["spikes"]["G"].as_u64().is_some_and(|n| n > 0));
    // No staging folder is left behind.
    let parent = out.parent().expect("parent");
    let stem = out.file_name().expect("name").to_string_lossy().into_owned();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .expect("temp dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{stem}.")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    numpy_check(&out);
}

/// Runs a Python script that checks output files with NumPy, when a Python with
/// NumPy is available (`SNNC_PYTHON`, else `python3`); the script must succeed.
fn run_python(script: &str) {
    let python = std::env::var("SNNC_PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&python).args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: numpy not available (set SNNC_PYTHON to a python with numpy to check the .npz files)");
        return;
    }
    let result = Command::new(&python).args(["-c", script]).output().expect("python runs");
    assert!(result.status.success(), "{}{}", text(&result.stdout), text(&result.stderr));
}

/// Loads the run's files with NumPy when it is available (`SNNC_PYTHON` or `python3`).
fn numpy_check(out: &std::path::Path) {
    let script = format!(
        "import numpy as np\n\
         s = np.load('{0}/spikes.npz'); st = np.load('{0}/state.npz'); r = np.load('{0}/rates.npz')\n\
         assert s['G.step'].dtype == np.int64 and s['G.index'].dtype == np.uint32, s['G.step'].dtype\n\
         assert len(s['G.step']) == len(s['G.index']) > 0\n\
         assert st['G.v'].shape == (50, 4), st['G.v'].shape\n\
         assert list(st['G.v.step'][:3]) == [0, 10, 20]\n\
         assert abs(st['G.v'][0, 1] - 0.002) < 1e-15\n\
         assert r['G'].shape == (500,)\n\
         assert float(s['dt']) == 1e-4\n\
         print('ok')\n",
        out.display()
    );
    run_python(&script);
}

#[test]
fn set_overrides_constants_with_units() {
    let model = temp_model("lif_set.snn", LIF);
    let model = model.to_str().expect("utf-8");
    let out = out_dir("set");
    let result = snnc(&["run", model, "--out", out.to_str().expect("utf-8"), "--set", "drive=5mV", "-q"]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("json");
    assert_eq!(info["constants"]["drive"], 0.005);
    assert_eq!(info["spikes"]["G"], 0, "a drive below threshold never fires");

    let wrong_unit = snnc(&["run", model, "--out", out.to_str().expect("utf-8"), "--set", "tau=10mV"]);
    assert_eq!(wrong_unit.status.code(), Some(1));
    let err = text(&wrong_unit.stderr);
    assert!(err.contains("E0420") && err.contains("`tau` has unit `second`, the value given has unit `volt`"), "{err}");

    let unknown = snnc(&["run", model, "--set", "tau_x=10ms"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no constant `tau_x`"));

    let malformed = snnc(&["run", model, "--set", "tau"]);
    assert_eq!(malformed.status.code(), Some(2));
    let not_a_quantity = snnc(&["run", model, "--set", "tau=ten"]);
    assert_eq!(not_a_quantity.status.code(), Some(2));
}

#[test]
fn run_refuses_bad_outputs_and_bad_models_without_writing() {
    let model = temp_model("lif_bad_out.snn", LIF);
    let model = model.to_str().expect("utf-8");
    // A path below a regular file can not be created.
    let file = temp_model("not_a_dir", "x");
    let below_file = file.join("run");
    let result = snnc(&["run", model, "--out", below_file.to_str().expect("utf-8")]);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
    assert!(text(&result.stderr).contains("not_a_dir"));
    // A folder that is not an earlier run is never replaced.
    let precious = out_dir("precious");
    std::fs::create_dir_all(&precious).expect("mkdir");
    std::fs::write(precious.join("thesis.tex"), "months of work").expect("write");
    let result = snnc(&["run", model, "--out", precious.to_str().expect("utf-8")]);
    assert_eq!(result.status.code(), Some(2));
    assert!(precious.join("thesis.tex").exists());
    // A model with errors writes nothing.
    let bad =
        temp_model("bad_run.snn", "neuron N { equations { dv/dt = -v : volt } }\ngroup G = N(1)\nduration = 1 ms");
    let out = out_dir("bad_model");
    let result = snnc(&["run", bad.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert_eq!(result.status.code(), Some(1));
    assert!(!out.exists());
    // No run length anywhere.
    let endless = temp_model("endless.snn", "neuron N { equations { v : 1 } }\ngroup G = N(1)");
    let result = snnc(&["run", endless.to_str().expect("utf-8")]);
    assert_eq!(result.status.code(), Some(2));
    assert!(text(&result.stderr).contains("--steps"));
}

#[test]
fn emit_prints_the_ir_and_cranelift_functions() {
    let model = temp_model("lif_emit.snn", LIF);
    let ir = snnc(&["emit", "--ir", model.to_str().expect("utf-8")]);
    assert_eq!(ir.status.code(), Some(0), "{}", text(&ir.stderr));
    let ir = text(&ir.stdout);
    assert!(ir.contains("kernel G_state_update (state update, method exact) on G:"), "{ir}");
    assert!(ir.contains("spike(i)"));
    let clif = snnc(&["emit", "--clif", model.to_str().expect("utf-8")]);
    assert_eq!(clif.status.code(), Some(0));
    assert!(text(&clif.stdout).contains("function"));
}

/// Runs the reference agent for `args` more arguments into `out`; returns the run.json.
fn run_forager(out: &std::path::Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let forager = models_dir().join("forager.snn");
    let mut all = vec!["run", forager.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8"), "-q"];
    all.extend_from_slice(args);
    let result = snnc(&all);
    if result.status.code() != Some(0) {
        return Err(text(&result.stderr));
    }
    let json = std::fs::read_to_string(out.join("run.json")).map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

#[test]
fn the_forager_runs_episodes_in_its_gridworld() {
    let out = out_dir("forager");
    let info = run_forager(&out, &["--steps", "2000", "--episodes", "2", "--seed", "5"]).expect("the run succeeds");
    assert_eq!(info["steps"], 4000);
    assert_eq!(info["environment"], "GridWorld");
    assert_eq!(info["policy"], "model");
    let episodes = info["episodes"].as_array().expect("episodes");
    assert_eq!(episodes.len(), 2);
    for e in episodes {
        assert_eq!(e["moves"], 200, "one move every 10 steps: {e}");
        assert!(e["food"].as_f64().is_some() && e["reward"].as_f64().is_some(), "{e}");
    }
    for file in ["trajectory.npz", "weights.npz", "spikes.npz", "state.npz"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let script = format!(
        "import numpy as np\n\
         t = np.load('{0}/trajectory.npz'); w = np.load('{0}/weights.npz'); st = np.load('{0}/state.npz')\n\
         assert sorted(t.keys()) == ['action', 'episode', 'reward', 'step', 'x', 'y'], list(t.keys())\n\
         assert t['step'].shape == (4000,) and list(t['step'][:3]) == [0, 1, 2]\n\
         assert t['episode'].tolist() == [0] * 2000 + [1] * 2000\n\
         a = t['action']; assert a.dtype == np.int64\n\
         moved = np.arange(4000) % 2000 % 10 == 9\n\
         assert (a[~moved] == -1).all() and ((a[moved] >= 0) & (a[moved] < 4)).all(), a[:20]\n\
         assert (t['reward'][~moved] == 0).all()\n\
         assert ((t['x'] >= 0) & (t['x'] < 16) & (t['y'] >= 0) & (t['y'] < 16)).all()\n\
         steps = np.abs(np.diff(t['x'])) + np.abs(np.diff(t['y']))\n\
         same = t['episode'][1:] == t['episode'][:-1]\n\
         assert (steps[same] <= 1).all() and (steps[same & ~moved[1:]] == 0).all()\n\
         assert w['SM.w'].shape == (2, 2048) and w['HM.w'].shape == (2, 5120), (w['SM.w'].shape, w['HM.w'].shape)\n\
         assert w['SM.pre'].shape == (2048,) and w['HM.post'].max() < 32\n\
         assert (w['SM.w'] >= 0).all() and (w['SM.w'] <= 4e-3).all()\n\
         assert list(w['SM.w.step']) == [2000, 4000]\n\
         assert st['S.v'].shape == (40, 64) and st['H.v'].shape == (40, 160) and st['M.v'].shape == (40, 32)\n\
         assert st['shared.da'].shape == (40, 1)\n\
         print('ok')\n",
        out.display()
    );
    run_python(&script);
}

#[test]
fn closed_loop_flags_need_an_environment() {
    let model = temp_model("lif_no_env.snn", LIF);
    let path = model.to_str().expect("utf-8");
    for (flag, expected) in
        [("--episodes", "not bound to an environment"), ("--random-policy", "the model takes no actions")]
    {
        let out = out_dir("no-env");
        let mut args = vec!["run", path, "--out", out.to_str().expect("utf-8")];
        args.push(flag);
        if flag == "--episodes" {
            args.push("3");
        }
        let result = snnc(&args);
        assert_eq!(result.status.code(), Some(2), "{flag}");
        assert!(text(&result.stderr).contains(expected), "{flag}: {}", text(&result.stderr));
        assert!(!out.exists(), "{flag}: nothing is written");
    }
    let result = snnc(&["run", path, "--episodes", "0"]);
    assert_eq!(result.status.code(), Some(2));
}

#[test]
fn random_policy_runs_the_same_world() {
    let out = out_dir("random");
    let info = run_forager(&out, &["--steps", "1000", "--random-policy"]).expect("the run succeeds");
    assert_eq!(info["policy"], "random");
    assert_eq!(info["episodes"][0]["moves"], 100);
}

/// With the `aot` feature (as `cargo test --workspace` builds it), the built-in
/// kernels of the forager give the JIT's trajectory; an edited copy is refused.
#[test]
fn the_aot_backend_runs_built_in_models_and_refuses_edited_ones() {
    let (jit, aot) = (out_dir("jit-traj"), out_dir("aot-traj"));
    let args = ["--steps", "2000", "--seed", "9"];
    let a = run_forager(&jit, &args).expect("the JIT run succeeds");
    let aot_args = [&args[..], &["--backend", "aot"]].concat();
    let b = match run_forager(&aot, &aot_args) {
        Ok(b) => b,
        Err(message) => {
            assert!(message.contains("built without AOT models"), "{message}");
            eprintln!("SKIPPED: this snnc was built without the `aot` feature");
            return;
        }
    };
    assert_eq!(b["backend"], "aot");
    assert_eq!(a["episodes"], b["episodes"]);
    assert_eq!(a["spikes"], b["spikes"]);
    let bytes = |dir: &std::path::Path, file: &str| std::fs::read(dir.join(file)).expect("file");
    for file in ["trajectory.npz", "spikes.npz", "state.npz", "weights.npz"] {
        assert!(bytes(&jit, file) == bytes(&aot, file), "{file} differs between JIT and AOT");
    }
    // A changed model file is refused, with what to do.
    let source = std::fs::read_to_string(models_dir().join("forager.snn")).expect("forager");
    let edited = temp_model("forager.snn", &source.replace("const sigma   = 6 mV", "const sigma   = 5 mV"));
    let out = out_dir("aot-edited");
    let result =
        snnc(&["run", edited.to_str().expect("utf-8"), "--backend", "aot", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(result.status.code(), Some(2));
    let message = text(&result.stderr);
    assert!(message.contains("changed since this snnc was built") && message.contains("--backend jit"), "{message}");
    let unknown = temp_model("mine.snn", LIF);
    let result = snnc(&["run", unknown.to_str().expect("utf-8"), "--backend", "aot"]);
    assert_eq!(result.status.code(), Some(2));
    assert!(text(&result.stderr).contains("no AOT kernels for `mine.snn`"), "{}", text(&result.stderr));
}

/// `snnc bench`: steps/s of each back end; with AOT built in (as `cargo test --workspace`
/// builds it), the back ends take turns and JIT / AOT is the median of the per-repeat ratios,
/// with their range. A model without a run length needs `--steps`.
#[test]
fn bench_interleaves_back_ends_and_gives_the_per_repeat_ratio() {
    let out = run_ok(&["bench", &repo_file("models/forager.snn"), "--steps", "200", "--repeats", "3"]);
    let table = text(&out.stdout);
    let value = |label: &str| table.lines().find_map(|line| line.strip_prefix(label)).map(str::trim);
    let number = |text: &str| text.trim_matches(|c| "[], ms".contains(c)).parse::<f64>().expect("a number");
    assert!(table.starts_with(&format!("{}: 200 steps per run", repo_file("models/forager.snn"))), "{table}");
    let jit = value("steps/s, jit").expect("a JIT row");
    assert!(number(jit.split(" ± ").next().expect("rate")) > 0.0, "{table}");
    for label in ["JIT compile", "file to first step (JIT)"] {
        assert!(value(label).is_some_and(|v| v.ends_with(" ms") && number(v) > 0.0), "{label}: {table}");
    }
    if value("steps/s, aot").is_none() {
        assert!(text(&out.stderr).contains("aot: skipped"), "{}", text(&out.stderr));
        assert!(value("JIT / AOT").is_none(), "{table}");
    } else {
        assert!(table.lines().next().is_some_and(|l| l.ends_with("median of 3, back ends interleaved")), "{table}");
        let ratio: Vec<f64> = value("JIT / AOT").expect("a ratio row").split_whitespace().map(number).collect();
        assert!(matches!(ratio[..], [median, low, high] if 0.0 < low && low <= median && median <= high), "{table}");
    }
    let model = temp_model("bench_no_length.snn", &LIF.replace("duration = 50 ms\n", ""));
    let out = snnc(&["bench", path_text(&model)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the model gives no run length: give `--steps N`"), "{}", text(&out.stderr));
}

/// Asserts that `mean`, `sd`, `min` and `max` in `stats` are those of `values`
/// (up to JSON's round trip of floats).
fn assert_stats(stats: &serde_json::Value, values: &[f64], what: &str) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for (key, expected) in [("mean", mean), ("sd", sd), ("min", min), ("max", max)] {
        let got = stats[key].as_f64().unwrap_or_else(|| panic!("{what}: no {key} in {stats}"));
        assert!((got - expected).abs() <= 1e-12 * expected.abs().max(1.0), "{what} {key}: {got} vs {expected}");
    }
}

#[test]
fn replicas_are_single_runs_with_consecutive_seeds_and_a_summary() {
    let out = out_dir("replicas");
    let args = ["--steps", "2000", "--episodes", "2"];
    let info = run_forager(&out, &[&args[..], &["--seed", "5", "--replicas", "3"]].concat()).expect("the run succeeds");
    assert_eq!(info["replicas"], 3);
    assert_eq!(info["seeds"], serde_json::json!([5, 6, 7]));
    assert_eq!(info["replica_dirs"], serde_json::json!(["replica-0", "replica-1", "replica-2"]));
    assert_eq!(info["steps"], 4000);
    // Replica 2 is the single run with seed 7, byte for byte.
    let single = out_dir("replicas-single");
    let alone = run_forager(&single, &[&args[..], &["--seed", "7"]].concat()).expect("the run succeeds");
    let replica = out.join("replica-2");
    for file in ["spikes.npz", "state.npz", "trajectory.npz", "weights.npz", "rates.npz"] {
        assert_same_bytes(&replica.join(file), &single.join(file));
    }
    let own = read_json(&replica.join("run.json"));
    assert_eq!(own["replica"], 2);
    for key in ["seed", "steps", "episodes", "spikes", "mean_rate_hz", "constants", "policy", "model_fnv1a64"] {
        assert_eq!(own[key], alone[key], "{key}");
    }
    // The summary holds the statistics of the replicas' own results.
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["seeds"], serde_json::json!([5, 6, 7]));
    let runs: Vec<serde_json::Value> =
        (0..3).map(|r| read_json(&out.join(format!("replica-{r}")).join("run.json"))).collect();
    let episodes = summary["episodes"].as_array().expect("episodes");
    assert_eq!(episodes.len(), 2);
    for (e, stats) in episodes.iter().enumerate() {
        for key in ["food_per_1000_steps", "reward", "food", "moves"] {
            let values: Vec<f64> = runs.iter().map(|run| run["episodes"][e][key].as_f64().expect("a number")).collect();
            assert_stats(&stats[key], &values, &format!("episode {e} {key}"));
        }
    }
    for (r, run) in runs.iter().enumerate() {
        assert_eq!(run["seed"], 5 + r);
        assert_eq!(summary["per_replica"][r]["seed"], run["seed"]);
        assert_eq!(summary["per_replica"][r]["reward"][1], run["episodes"][1]["reward"]);
    }
    let rates: Vec<f64> = runs.iter().map(|run| run["mean_rate_hz"]["M"].as_f64().expect("rate")).collect();
    assert_stats(&summary["mean_rate_hz"]["M"], &rates, "rate of M");
}

#[test]
fn replicas_of_a_model_without_environment_and_other_options() {
    // No environment: no episodes in the summary, but every replica runs.
    let model = temp_model("lif_replicas.snn", LIF);
    let model = model.to_str().expect("utf-8");
    let out = out_dir("replicas-lif");
    let result = snnc(&["run", model, "--out", out.to_str().expect("utf-8"), "--replicas", "2", "--threads", "1"]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    let err = text(&result.stderr);
    assert!(err.contains("replica 1 (seed 1): 500 steps") && err.contains("mean rate (Hz)"), "{err}");
    let summary = read_json(&out.join("summary.json"));
    assert!(summary.get("episodes").is_none(), "{summary}");
    assert_eq!(summary["mean_rate_hz"]["G"]["sd"], 0.0, "no noise: the replicas agree");
    for r in 0..2 {
        assert!(out.join(format!("replica-{r}/spikes.npz")).is_file());
    }
    // Replicas with the random policy, a constant set, and the AOT back end when built in.
    let out = out_dir("replicas-random");
    let args = ["--steps", "1000", "--random-policy", "--set", "epsilon=0.1", "--replicas", "2"];
    let info = run_forager(&out, &args).expect("the run succeeds");
    assert_eq!(info["policy"], "random");
    let own = read_json(&out.join("replica-1/run.json"));
    assert_eq!((own["policy"].clone(), own["constants"]["epsilon"].clone()), ("random".into(), 0.1.into()));
    let aot = out_dir("replicas-aot");
    match run_forager(&aot, &["--steps", "1000", "--replicas", "2", "--seed", "3", "--backend", "aot"]) {
        Ok(info) => {
            assert_eq!(info["backend"], "aot");
            let jit = out_dir("replicas-jit");
            run_forager(&jit, &["--steps", "1000", "--seed", "4"]).expect("the run succeeds");
            assert_same_bytes(&aot.join("replica-1/trajectory.npz"), &jit.join("trajectory.npz"));
        }
        Err(message) => assert!(message.contains("built without AOT models"), "{message}"),
    }
}

#[test]
fn bad_replica_counts_exit_2_without_writing() {
    let model = temp_model("lif_replicas_bad.snn", LIF);
    let model = model.to_str().expect("utf-8");
    let out = out_dir("replicas-bad");
    for (args, expected) in [
        (&["--replicas", "0"][..], "at least one replica"),
        (&["--replicas", "two"][..], "expected a whole number of replicas"),
        (&["--replicas", "2", "--seed", "18446744073709551615"][..], "overflows"),
        (&["--replicas", "2", "--threads", "0"][..], "--threads"),
    ] {
        let all = [&["run", model, "--out", out.to_str().expect("utf-8")][..], args].concat();
        let result = snnc(&all);
        let err = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected) && !err.contains("panicked"), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
}

//! End-to-end tests of `snnc sweep`: the grid's folders and table, shards and
//! their merging, points equal to plain `snnc run`s, structural constants, errors.

use std::path::{Path, PathBuf};

mod common;
use common::*;

fn forager() -> String {
    repo_file("models/forager.snn")
}

/// Runs `snnc` and asserts it succeeds; returns its stderr.
fn ok(args: &[&str]) -> String {
    let result = snnc(args);
    let err = text(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{args:?}: {err}");
    err
}

/// Runs `snnc` and asserts it fails with `status` and a message containing `expected`, without a panic.
fn fails(args: &[&str], status: i32, expected: &str) {
    let result = snnc(args);
    let err = text(&result.stderr);
    assert_eq!(result.status.code(), Some(status), "{args:?}: {err}");
    assert!(err.contains(expected) && !err.contains("panicked"), "{args:?}: expected `{expected}` in: {err}");
}

/// The rows of a CSV file (header first), split at commas (the tests' fields hold none).
fn csv_rows(file: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines().map(|line| line.split(',').map(str::to_string).collect()).collect()
}

const GRID: [&str; 8] =
    ["--steps", "1000", "--set", "tau_e=100ms,300ms", "--set", "eta=0.1mV/s,0.5 mV/s", "--replicas", "2"];

const MONITORS: [&str; 5] = ["spikes.npz", "state.npz", "rates.npz", "trajectory.npz", "weights.npz"];

#[test]
fn a_2x2_grid_with_2_replicas_writes_8_runs_and_8_rows() {
    let out = out_dir("grid");
    let model = forager();
    let err = ok(&[&["sweep", &model, "--out", path_text(&out), "--seed", "4"][..], &GRID].concat());
    assert!(err.contains("8 runs (4 points x 2 replicas)") && err.contains("compiled once"), "{err}");
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows.len(), 9, "a header and 8 rows");
    let header = &rows[0];
    let column =
        |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no `{name}` in {header:?}"));
    for name in ["tau_e.given", "spikes.H", "rate_hz.M", "food_per_1000_steps.mean", "reward.last", "error"] {
        column(name);
    }
    let mut dirs: Vec<String> = Vec::new();
    for (run, row) in rows[1..].iter().enumerate() {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[column("run")], run.to_string());
        assert_eq!(row[column("point")], (run / 2).to_string());
        assert_eq!(row[column("replica")], (run % 2).to_string());
        // Replica r of every point has seed `seed + r`.
        assert_eq!(row[column("seed")], (4 + run % 2).to_string());
        assert_eq!(row[column("status")], "ok");
        // The first constant varies slowest; values in SI and as given.
        assert_eq!(row[column("tau_e")], ["0.1", "0.3"][run / 4]);
        assert_eq!(row[column("eta.given")], ["0.1mV/s", "0.5 mV/s"][(run / 2) % 2]);
        assert_eq!(row[column("eta")], ["0.0001", "0.0005"][(run / 2) % 2]);
        // Each run's folder is a single run's; its table row holds its own results.
        let dir = out.join(&row[column("dir")]);
        let info = read_json(&dir.join("run.json"));
        assert_eq!(info["seed"].to_string(), row[column("seed")]);
        assert_eq!(info["spikes"]["H"].to_string(), row[column("spikes.H")]);
        // serde_json may read a float an ulp off: compare closely, not exactly.
        let same = |json: &serde_json::Value, name: &str| {
            let (a, b) = (json.as_f64().expect("a number"), row[column(name)].parse::<f64>().expect("a number"));
            assert!((a - b).abs() <= 1e-14 * a.abs().max(1.0), "{name}: {a} in run.json, {b} in sweep.csv");
        };
        same(&info["mean_rate_hz"]["M"], "rate_hz.M");
        same(&info["episodes"][0]["food_per_1000_steps"], "food_per_1000_steps.last");
        same(&info["episodes"][0]["reward"], "reward.mean");
        same(&info["episodes"][0]["moves"], "moves.last");
        assert_eq!(info["sweep"], serde_json::json!({"run": run, "point": run / 2, "replica": run % 2}));
        for file in MONITORS {
            assert!(dir.join(file).is_file(), "{}: no {file}", dir.display());
        }
        dirs.push(row[column("dir")].clone());
    }
    assert_eq!(dirs[7], "p003-tau_e=300ms-eta=0.5mV_s/replica-1");
    let points: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .expect("the sweep folder")
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        points,
        [
            "p000-tau_e=100ms-eta=0.1mV_s",
            "p001-tau_e=100ms-eta=0.5mV_s",
            "p002-tau_e=300ms-eta=0.1mV_s",
            "p003-tau_e=300ms-eta=0.5mV_s"
        ]
    );
    let manifest = read_json(&out.join("sweep.json"));
    assert_eq!(
        (manifest["points"].clone(), manifest["runs"].clone(), manifest["seed"].clone()),
        (4.into(), 8.into(), 4.into())
    );

    // Point 2 replica 1 is `snnc run --set tau_e=300ms --set eta=0.1mV/s --seed 5`, byte for byte.
    let single = out_dir("grid-single");
    let args = ["run", &model, "--steps", "1000", "--set", "tau_e=300ms", "--set", "eta=0.1mV/s", "--seed", "5"];
    ok(&[&args[..], &["--out", path_text(&single), "-q"]].concat());
    let point = out.join("p002-tau_e=300ms-eta=0.1mV_s/replica-1");
    for file in MONITORS {
        assert_same_bytes(&point.join(file), &single.join(file));
    }
    let (own, alone) = (read_json(&point.join("run.json")), read_json(&single.join("run.json")));
    for key in ["seed", "steps", "episodes", "spikes", "mean_rate_hz", "constants", "overrides", "model_fnv1a64"] {
        assert_eq!(own[key], alone[key], "{key}");
    }

    // Running the same sweep again replaces its runs; a different one is refused there.
    ok(&[&["sweep", &model, "--out", path_text(&out), "--seed", "4", "-q"][..], &GRID].concat());
    fails(
        &[&["sweep", &model, "--out", path_text(&out), "--seed", "5", "-q"][..], &GRID].concat(),
        2,
        "holds another sweep",
    );
}

#[test]
fn shards_merged_equal_the_whole_sweep() {
    let model = forager();
    let whole = out_dir("whole");
    ok(&[&["sweep", &model, "--out", path_text(&whole), "-q"][..], &GRID].concat());
    // Shards in one folder, as a job array on a shared file system does.
    let shared = out_dir("shards");
    for k in ["2/2", "1/2"] {
        ok(&[&["sweep", &model, "--out", path_text(&shared), "-q", "--shard", k][..], &GRID].concat());
    }
    for k in 1..=2 {
        let rows = csv_rows(&shared.join(format!("sweep-shard-{k}-of-2.csv")));
        assert_eq!(rows.len(), 5, "shard {k}: a header and 4 rows");
        // Runs are dealt in turn: shard 1 has the even runs.
        assert!(rows[1..].iter().all(|row| row[0].parse::<usize>().expect("run") % 2 == k - 1), "{rows:?}");
    }
    assert!(!shared.join("sweep.csv").exists());
    let err = ok(&["sweep", "--merge", path_text(&shared)]);
    assert!(err.contains("8 runs"), "{err}");
    assert_same_bytes(&shared.join("sweep.csv"), &whole.join("sweep.csv"));
    assert_same_bytes(&shared.join("sweep.json"), &whole.join("sweep.json"));
    for dir in ["p000-tau_e=100ms-eta=0.1mV_s/replica-1", "p003-tau_e=300ms-eta=0.5mV_s/replica-0"] {
        for file in MONITORS {
            assert_same_bytes(&shared.join(dir).join(file), &whole.join(dir).join(file));
        }
    }

    // Shards in their own folders (one per node), in three slices, merged elsewhere.
    let parts: Vec<PathBuf> = (1..=3).map(|k| out_dir(&format!("part-{k}"))).collect();
    for (k, part) in parts.iter().enumerate() {
        let shard = format!("{}/3", k + 1);
        ok(&[&["sweep", &model, "--out", path_text(part), "-q", "--shard", &shard][..], &GRID].concat());
    }
    let merged = out_dir("merged");
    fails(
        &["sweep", "--merge", path_text(&parts[0]), path_text(&parts[2]), "--out", path_text(&merged)],
        2,
        "shard 2/3 is missing",
    );
    fails(
        &["sweep", "--merge", path_text(&parts[0]), path_text(&parts[0]), "--out", path_text(&merged)],
        2,
        "given twice",
    );
    fails(
        &["sweep", "--merge", path_text(&parts[0]), path_text(&shared), "--out", path_text(&merged)],
        2,
        "different splits",
    );
    assert!(!merged.exists(), "nothing is written");
    ok(&[
        "sweep",
        "--merge",
        path_text(&parts[0]),
        path_text(&parts[1]),
        path_text(&parts[2]),
        "--out",
        path_text(&merged),
        "-q",
    ]);
    assert_same_bytes(&merged.join("sweep.csv"), &whole.join("sweep.csv"));
    // A shard of another sweep does not merge.
    let other = out_dir("part-other");
    let grid: Vec<&str> = GRID.iter().map(|a| if *a == "1000" { "500" } else { a }).collect();
    ok(&[&["sweep", &model, "--out", path_text(&other), "-q", "--shard", "2/3"][..], &grid].concat());
    fails(&["sweep", "--merge", path_text(&parts[0]), path_text(&other), path_text(&parts[2])], 2, "different sweeps");
}

#[test]
fn structural_constants_compile_per_structure_or_are_refused() {
    let model = forager();
    // `n_hidden` sizes a group: compiled once per value; the environment's settings
    // and epsilon are read by the runtime only: no extra compile.
    let out = out_dir("structure");
    let args = ["--steps", "500", "--set", "n_hidden=160,96", "--set", "grid_size=8,16", "--set", "epsilon=0.05,0.3"];
    let err = ok(&[&["sweep", &model, "--out", path_text(&out)][..], &args].concat());
    assert!(err.contains("`n_hidden` changes the model's structure") && err.contains("compiled 2 times"), "{err}");
    let single = out_dir("structure-single");
    let set = ["--set", "n_hidden=96", "--set", "grid_size=8", "--set", "epsilon=0.3"];
    ok(&[&["run", &model, "--steps", "500", "--out", path_text(&single), "-q"][..], &set].concat());
    let point = out.join("p005-n_hidden=96-grid_size=8-epsilon=0.3/replica-0");
    for file in MONITORS {
        assert_same_bytes(&point.join(file), &single.join(file));
    }
    let err = ok(&[
        "sweep",
        &model,
        "--steps",
        "200",
        "--set",
        "grid_size=8,16",
        "--set",
        "epsilon=0.05,0.3",
        "--out",
        path_text(&out_dir("runtime-only")),
    ]);
    assert!(err.contains("compiled once") && !err.contains("note"), "{err}");
    // The AOT kernels have one structure: a sweep that changes it is refused.
    fails(
        &["sweep", &model, "--set", "n_hidden=96", "--backend", "aot", "--out", path_text(&out_dir("aot-refused"))],
        2,
        "`n_hidden` changes the model's structure, which the AOT kernels were compiled for",
    );
    let aot = out_dir("aot");
    let result = snnc(&[
        "sweep",
        &model,
        "--steps",
        "500",
        "--set",
        "epsilon=0.05,0.3",
        "--backend",
        "aot",
        "--seed",
        "2",
        "--out",
        path_text(&aot),
        "-q",
    ]);
    match result.status.code() {
        Some(0) => {
            let jit = out_dir("aot-jit");
            ok(&[
                "run",
                &model,
                "--steps",
                "500",
                "--set",
                "epsilon=0.3",
                "--seed",
                "2",
                "--out",
                path_text(&jit),
                "-q",
            ]);
            for file in MONITORS {
                assert_same_bytes(&aot.join("p001-epsilon=0.3/replica-0").join(file), &jit.join(file));
            }
        }
        _ => assert!(text(&result.stderr).contains("built without AOT models"), "{}", text(&result.stderr)),
    }
}

const LIF: &str = "dt = 0.1 ms\nduration = 20 ms\nconst tau = 10 ms\nconst drive = 25 mV\n\
    neuron N { equations { dv/dt = (drive - v)/tau + 2 mV*sqrt(2/tau)*xi : volt (unless refractory) }\n\
    threshold v > 10 mV\n reset { v = 0 mV }\n refractory 2 ms }\n\
    group G = N(4) { v = i*2 mV }\nmonitor spikes G\nmonitor rate G\n";

fn lif_model(name: &str) -> PathBuf {
    let dir = out_dir(&format!("model-{name}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("{name}.snn"));
    std::fs::write(&file, LIF).expect("write model");
    file
}

#[test]
fn a_model_without_environment_and_run_options() {
    let model = lif_model("lif");
    let out = out_dir("lif");
    let args = [
        "sweep",
        path_text(&model),
        "--set",
        "drive=20mV,30mV",
        "--replicas",
        "3",
        "--threads",
        "1",
        "--duration",
        "10ms",
    ];
    ok(&[&args[..], &["--out", path_text(&out)]].concat());
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows[0].join(","), "run,point,drive,drive.given,replica,seed,status,dir,steps,spikes.G,rate_hz.G,error");
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[6][..9].join(","), "5,1,0.03,30mV,2,2,ok,p001-drive=30mV/replica-2,100");
    // More drive, more spikes (same seeds).
    let spikes = |row: usize| rows[row][9].parse::<u64>().expect("spikes");
    assert!(spikes(4) > spikes(1), "{rows:?}");
    // A run that fails (here: its folder can not be written) is a row with its
    // error; the others run; the exit status says so.
    let blocked = out.join("p000-drive=20mV/replica-1");
    std::fs::remove_dir_all(&blocked).expect("a run folder");
    std::fs::write(&blocked, "in the way").expect("a file");
    fails(&[&args[..], &["--out", path_text(&out), "-q"]].concat(), 2, "1 of 6 runs failed");
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[2][..9].join(","), "1,0,0.02,20mV,1,1,failed,,");
    assert!(rows[2].last().expect("error").contains("p000-drive=20mV/replica-1"), "{:?}", rows[2]);
    assert!(rows[3][6] == "ok" && out.join("p000-drive=20mV/replica-2/spikes.npz").is_file());
    // No `--set`: one point, the model as written; `--quiet` prints nothing.
    let plain = out_dir("lif-plain");
    let result = snnc(&["sweep", path_text(&model), "--replicas", "2", "--out", path_text(&plain), "-q"]);
    assert_eq!((result.status.code(), text(&result.stderr)), (Some(0), String::new()));
    assert_eq!(csv_rows(&plain.join("sweep.csv"))[2][..7].join(","), "1,0,1,1,ok,p000/replica-1,200");
}

#[test]
fn bad_sweeps_exit_with_a_message_and_write_nothing() {
    let model = forager();
    let lif = lif_model("lif-bad");
    let out = out_dir("bad");
    let o = path_text(&out);
    for (args, status, expected) in [
        (vec!["--set", "nope=1,2"], 2, "the model has no constant `nope` (constants: tau_m, tau_syn"),
        (vec!["--set", "tau_e=1mV,2mV"], 1, "`tau_e`"),
        (vec!["--set", "tau_e=1ms,2mV"], 2, "the values of one constant have one unit"),
        (vec!["--set", "tau_e=1ms", "--set", "tau_e=2ms"], 2, "`tau_e` is swept twice"),
        (vec!["--set", "tau_e=1ms,,2ms"], 2, "an empty value"),
        (vec!["--set", "tau_e"], 2, "expected NAME=V1,V2"),
        (vec!["--set", "tau_e=fast"], 2, "is not a quantity"),
        (vec!["--shard", "0/2"], 2, "K counts from 1 to N"),
        (vec!["--shard", "3/2"], 2, "K counts from 1 to N"),
        (vec!["--shard", "1/0"], 2, "K counts from 1 to N"),
        (vec!["--shard", "half"], 2, "expected K/N"),
        (vec!["--shard", "a/b"], 2, "whole numbers"),
        (vec!["--replicas", "0"], 2, "at least one replica"),
        (vec!["--threads", "0"], 2, "--threads"),
        (vec!["--episodes", "2", "--set", "tau=1ms"], 2, "not bound to an environment"),
        (vec!["--steps", "5", "--duration", "1s"], 2, "cannot be used with"),
    ] {
        let file = if args.contains(&"tau=1ms") { path_text(&lif) } else { &model };
        fails(&[&["sweep", file, "--out", o][..], &args].concat(), status, expected);
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
    fails(&["sweep", "/nonexistent/model.snn", "--out", o], 2, "cannot read `/nonexistent/model.snn`");
    fails(&["sweep"], 2, "<FILE>");
    fails(&["sweep", &model, "--merge", o], 2, "cannot be used with");
    fails(&["sweep", "--merge", o], 2, "cannot read");
    fails(&["sweep", "--merge", o, "--steps", "5"], 2, "give it only folders");
    std::fs::create_dir_all(&out).expect("folder");
    fails(&["sweep", "--merge", o], 2, "no shard tables");
    std::fs::write(out.join("notes.txt"), "mine").expect("a file");
    fails(&["sweep", &model, "--steps", "10", "--out", o], 2, "is not an snnc sweep folder");
    assert_eq!(std::fs::read_dir(&out).expect("folder").count(), 1, "nothing is written");
}

//! End-to-end tests of `snnc plot`: every figure of short runs decodes as a PNG of the documented
//! size with data drawn in it; figures without data are skipped with a reason; bad folders fail.

use std::path::Path;

mod common;
use common::*;

/// Decodes a figure and checks its size (1000 x 600), that it is not a blank canvas (many
/// colours), and that data was drawn: saturated pixels in the middle of the picture (axes and
/// text are black and grey; legend swatches are a few hundred pixels, empty axes would fail).
fn assert_figure(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut pixels).expect("PNG data");
    assert_eq!((info.width, info.height), (1000, 600), "{}", path.display());
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()].chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    let mut colours = rgb.clone();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() >= 10, "{}: only {} colours", path.display(), colours.len());
    let white = rgb.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white > rgb.len() / 5, "{}: a white background", path.display());
    let coloured = rgb
        .iter()
        .enumerate()
        .filter(|(k, _)| (100..900).contains(&(k % 1000)) && (80..540).contains(&(k / 1000)))
        .filter(|(_, p)| p.iter().max().unwrap_or(&0) - p.iter().min().unwrap_or(&0) > 40)
        .count();
    assert!(coloured > 500, "{}: only {coloured} data pixels", path.display());
}

const ALL: [&str; 5] = ["raster.png", "traces.png", "rates.png", "trajectory.png", "learning.png"];

#[test]
fn forager_run_gets_every_figure_with_a_random_policy_baseline() {
    let dir = scratch("forager");
    let (run, random) = (dir.join("run"), dir.join("random"));
    let forager = repo_file("models/forager.snn");
    let common = ["run", &forager, "--steps", "2000", "--episodes", "2", "--quiet"];
    run_ok(&[&common[..], &["--out", path_text(&run)]].concat());
    run_ok(&[&common[..], &["--random-policy", "--out", path_text(&random)]].concat());
    let out = run_ok(&["plot", path_text(&run), "--baseline", path_text(&random)]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("skipped"), "{stderr}");
    let stdout = text(&out.stdout);
    let written: Vec<&str> = stdout.lines().collect();
    let expected: Vec<String> = ALL.iter().map(|f| run.join("plots").join(f).display().to_string()).collect();
    assert_eq!(written, expected);
    for figure in ALL {
        assert_figure(&run.join("plots").join(figure));
    }
    // Written atomically: no temporary file is left.
    let left: Vec<_> = std::fs::read_dir(run.join("plots")).expect("plots").filter_map(Result::ok).collect();
    assert_eq!(left.len(), ALL.len());
    // A baseline without episodes is refused.
    let cuba = dir.join("cuba");
    run_ok(&[
        "run",
        &repo_file("tests/conformance/cuba_small.snn"),
        "--steps",
        "200",
        "--quiet",
        "--out",
        path_text(&cuba),
    ]);
    let out = snnc(&["plot", path_text(&run), "--baseline", path_text(&cuba)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the run has no episodes"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replicas_run_gets_a_learning_curve_across_replicas() {
    let dir = scratch("replicas");
    let run = dir.join("run");
    let forager = repo_file("models/forager.snn");
    run_ok(&[
        "run",
        &forager,
        "--steps",
        "1000",
        "--episodes",
        "3",
        "--replicas",
        "2",
        "--threads",
        "1",
        "--quiet",
        "--out",
        path_text(&run),
    ]);
    let plots = dir.join("figures");
    let out = run_ok(&["plot", path_text(&run), "--out", path_text(&plots)]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("replica-0"), "{stderr}");
    for figure in ALL {
        assert_figure(&plots.join(figure));
    }
    assert!(!run.join("plots").exists());
    // One replica's folder is a run folder of its own.
    run_ok(&["plot", path_text(&run.join("replica-1"))]);
    assert_figure(&run.join("replica-1/plots/learning.png"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_without_environment_skips_trajectory_and_learning_curve() {
    let dir = scratch("cuba");
    // A copy of the model, removed before plotting: units are then unknown, the figures still drawn.
    let model = dir.join("cuba_small.snn");
    std::fs::copy(repo_file("tests/conformance/cuba_small.snn"), &model).expect("copy model");
    let run = dir.join("run");
    run_ok(&["run", path_text(&model), "--quiet", "--out", path_text(&run)]);
    let out = run_ok(&["plot", path_text(&run)]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("skipped trajectory.png: no trajectory.npz"), "{stderr}");
    assert!(stderr.contains("skipped learning.png: the run has no episodes"), "{stderr}");
    assert!(!stderr.contains("SI units"), "the model is there: {stderr}");
    for figure in ["raster.png", "traces.png", "rates.png"] {
        assert_figure(&run.join("plots").join(figure));
    }
    assert!(!run.join("plots/trajectory.png").exists());
    std::fs::remove_file(&model).expect("remove model");
    let out = run_ok(&["plot", path_text(&run)]);
    assert!(text(&out.stderr).contains("not readable"), "{}", text(&out.stderr));
    assert_figure(&run.join("plots/traces.png"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_folders_exit_2_with_a_message() {
    let dir = scratch("errors");
    let out = snnc(&["plot", path_text(&dir.join("missing"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such run folder"), "{}", text(&out.stderr));

    let out = snnc(&["plot", path_text(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not an snnc run folder (no run.json)"), "{}", text(&out.stderr));

    std::fs::write(dir.join("run.json"), "{ not json").expect("write");
    let out = snnc(&["plot", path_text(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not valid JSON"), "{}", text(&out.stderr));

    std::fs::write(dir.join("run.json"), r#"{"dt": 0.001, "steps": 10}"#).expect("write");
    std::fs::write(dir.join("spikes.npz"), "not a zip archive").expect("write");
    let out = snnc(&["plot", path_text(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("cannot read `{}`", dir.join("spikes.npz").display())), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A run folder with nothing recorded: every figure skipped, not an error.
    std::fs::remove_file(dir.join("spikes.npz")).expect("remove");
    let out = run_ok(&["plot", path_text(&dir)]);
    assert_eq!(text(&out.stderr).matches("skipped").count(), 5, "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

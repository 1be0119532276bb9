//! `snnc plot RUN_DIR`: PNG figures of a run folder, drawn with `plotters` and the font shipped in
//! `runtime/assets/` (no system fonts, no Python).
//!
//! This file reads a run folder (a single run, a `--replicas` run, or one of its `replica-<r>/`
//! folders) into plain data and decides which figures its files allow; `figures` draws them.
//! Every figure is [`WIDTH`] x [`HEIGHT`] pixels, written atomically into `RUN_DIR/plots/` (or
//! `--out`). A figure whose data the run did not record is skipped, with the reason.

mod figures;

use crate::npz::{Npz, read_npz};
use snnc_compiler::Model;
use snnc_compiler::units::Dimension;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The width of every figure, in pixels.
pub const WIDTH: u32 = 1000;
/// The height of every figure, in pixels.
pub const HEIGHT: u32 = 600;

/// The figures, in the order they are drawn: file name and what it shows.
pub const FIGURES: [(&str, &str); 5] = [
    ("raster.png", "spike raster"),
    ("traces.png", "sampled state traces"),
    ("rates.png", "population rates"),
    ("trajectory.png", "trajectory over the grid"),
    ("learning.png", "learning curve"),
];

/// What `snnc plot` was asked to do.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The run folder (`snnc run --out DIR`): a single run, a `--replicas` run (per-run figures
    /// from its first replica, the learning curve across all), or one `replica-<r>/` folder.
    pub run_dir: PathBuf,
    /// Folder for the figures (default: `RUN_DIR/plots`); created if missing, figures replaced.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A baseline run folder for the learning curve, typically `snnc run --random-policy` of the
    /// same model: the mean of its episodes (over all its replicas, if it has any) is drawn as a
    /// dashed line, with its min-max range as a band.
    #[arg(long, value_name = "RUN_DIR")]
    pub baseline: Option<PathBuf>,
}

/// What a call of [`plot`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// The figures written.
    pub written: Vec<PathBuf>,
    /// The figures not drawn: file name and why.
    pub skipped: Vec<(&'static str, String)>,
    /// Remarks about what was drawn (where units or sizes came from, what was left out).
    pub notes: Vec<String>,
}

/// `snnc plot`: draws the figures, prints the written paths (stdout) and the skipped figures and
/// notes (stderr). Exit status 0, or 2 when the folder is missing, not a run folder, or a file in
/// it or a figure cannot be read or written.
pub fn command(args: &PlotArgs) -> ExitCode {
    match plot(args) {
        Ok(report) => {
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            for (name, why) in &report.skipped {
                eprintln!("skipped {name}: {why}");
            }
            for path in &report.written {
                println!("{}", path.display());
            }
            if report.written.is_empty() {
                eprintln!("no figures: the run recorded nothing to draw");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Draws every figure the run folder's data allows into `args.out` (default `RUN_DIR/plots`).
///
/// # Errors
///
/// A message when the folder is missing or not a run folder, a file in it is malformed, the
/// baseline is unusable, or a figure cannot be drawn or written.
pub fn plot(args: &PlotArgs) -> Result<Report, String> {
    let run = RunFolder::open(&args.run_dir)?;
    let baseline = args.baseline.as_deref().map(RunFolder::open).transpose()?;
    let mut report = Report::default();
    let figures = run.figures(baseline.as_ref(), &mut report)?;
    let out = args.out.clone().unwrap_or_else(|| args.run_dir.join("plots"));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    for ((name, _), figure) in FIGURES.iter().zip(figures) {
        match figure {
            Ok(figure) => {
                let png = figures::draw(&figure).map_err(|e| format!("cannot draw {name}: {e}"))?;
                let path = out.join(name);
                crate::output::write_file(&path, &png).map_err(|e| e.to_string())?;
                report.written.push(path);
            }
            Err(why) => report.skipped.push((name, why)),
        }
    }
    Ok(report)
}

/// One figure's data, ready to draw.
#[derive(Debug)]
enum Figure {
    Raster(Raster),
    Traces(Vec<Trace>),
    Rates(Rates),
    Trajectory(Track),
    Learning(Curve),
}

/// How times are shown: seconds, or milliseconds for runs shorter than a second.
#[derive(Clone, Copy, Debug)]
struct TimeAxis {
    /// Seconds per step.
    dt: f64,
    /// Displayed units per second.
    scale: f64,
    unit: &'static str,
    /// The run's end, in displayed units.
    end: f64,
}

impl TimeAxis {
    fn new(dt: f64, steps: u64) -> TimeAxis {
        let seconds = dt * steps as f64;
        let (scale, unit) = if seconds >= 1.0 { (1.0, "s") } else { (1e3, "ms") };
        TimeAxis { dt, scale, unit, end: (seconds * scale).max(f64::MIN_POSITIVE) }
    }

    fn at(&self, step: i64) -> f64 {
        step as f64 * self.dt * self.scale
    }
}

#[derive(Debug)]
struct SpikeGroup {
    name: String,
    size: u32,
    steps: Vec<i64>,
    indices: Vec<i64>,
}

#[derive(Debug)]
struct Raster {
    time: TimeAxis,
    groups: Vec<SpikeGroup>,
}

/// One sampled variable: up to [`MAX_TRACES`] of its recorded neurons.
#[derive(Debug)]
struct Trace {
    key: String,
    /// The recorded neurons in all.
    recorded: usize,
    /// The axis label with its unit (`v (mV)`), and the factor from SI to it.
    label: String,
    scale: f64,
    time: TimeAxis,
    steps: Vec<i64>,
    /// The neuron of each line, and its values (one per step).
    lines: Vec<(i64, Vec<f64>)>,
}

#[derive(Debug)]
struct Rates {
    time: TimeAxis,
    bin_steps: u64,
    /// Per group: its name and its rate (Hz) per bin.
    groups: Vec<(String, Vec<f64>)>,
}

#[derive(Debug)]
struct Track {
    /// Cells per side (x, y).
    grid: (usize, usize),
    /// Steps spent in each cell, row-major by y.
    visits: Vec<u64>,
    /// The last episode (from 1), and its positions, one per step.
    episode: i64,
    path: Vec<(f64, f64)>,
}

#[derive(Debug)]
struct Curve {
    /// The y axis label.
    metric: String,
    /// Replicas behind each point (1: a single run).
    replicas: usize,
    /// Per episode.
    points: Vec<Point>,
    policy: String,
    baseline: Option<Baseline>,
}

#[derive(Clone, Copy, Debug)]
struct Point {
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
}

#[derive(Debug)]
struct Baseline {
    label: String,
    mean: f64,
    min: f64,
    max: f64,
}

/// The most variables `traces.png` shows (in a grid of panels), and lines per variable.
const MAX_PANELS: usize = 6;
const MAX_TRACES: usize = 5;
/// The most cells per side of a grid `trajectory.png` draws.
const MAX_CELLS: usize = 4096;
/// About how many bins `rates.png` has over the run.
const RATE_BINS: u64 = 200;

/// A run folder and what it says about itself.
struct RunFolder {
    dir: PathBuf,
    /// `run.json` of the folder.
    info: serde_json::Value,
    /// The folder with the monitors' files: the folder itself, or a `--replicas` run's first replica.
    data_dir: PathBuf,
    /// `run.json` of `data_dir`.
    data_info: serde_json::Value,
    /// `summary.json` of a `--replicas` run.
    summary: Option<serde_json::Value>,
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}` is not valid JSON: {e}", path.display()))
}

impl RunFolder {
    fn open(dir: &Path) -> Result<RunFolder, String> {
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("`{}`: no such run folder", dir.display()));
            }
            Err(e) => return Err(format!("cannot read `{}`: {e}", dir.display())),
            Ok(meta) if !meta.is_dir() => return Err(format!("`{}` is not a folder", dir.display())),
            Ok(_) => {}
        }
        if !dir.join("run.json").is_file() {
            return Err(format!("`{}` is not an snnc run folder (no run.json)", dir.display()));
        }
        let info = read_json(&dir.join("run.json"))?;
        if !info.is_object() {
            return Err(format!("`{}` is not a run's description", dir.join("run.json").display()));
        }
        let (data_dir, data_info, summary) = match info.get("replica_dirs").and_then(|d| d.as_array()) {
            Some(dirs) => {
                let first = dirs
                    .first()
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| format!("`{}` lists no replica folders", dir.join("run.json").display()))?;
                let data_dir = dir.join(first);
                let data_info = read_json(&data_dir.join("run.json"))?;
                (data_dir, data_info, Some(read_json(&dir.join("summary.json"))?))
            }
            None => (dir.to_path_buf(), info.clone(), None),
        };
        Ok(RunFolder { dir: dir.to_path_buf(), info, data_dir, data_info, summary })
    }

    /// A monitors' file of the run, if it is there.
    fn npz(&self, name: &str) -> Result<Option<Npz>, String> {
        let path = self.data_dir.join(name);
        if path.is_file() { read_npz(&path).map(Some) } else { Ok(None) }
    }

    /// The model the run was made from, checked again, if its file is where the run read it
    /// and unchanged since (same FNV-1a hash); else why not.
    fn model(&self) -> Result<Model, String> {
        // `model_path` is absolute (runs since checkpoints); `model` is the path as typed.
        let path = ["model_path", "model"]
            .iter()
            .find_map(|key| self.info.get(*key).and_then(|m| m.as_str()))
            .ok_or("run.json names no model file")?;
        let source = std::fs::read_to_string(path).map_err(|e| format!("model file `{path}` not readable ({e})"))?;
        let hash = format!("{:016x}", crate::aot::fnv1a(source.as_bytes()));
        if self.info.get("model_fnv1a64").and_then(|h| h.as_str()) != Some(hash.as_str()) {
            return Err(format!("model file `{path}` changed since the run"));
        }
        snnc_compiler::check(&source).0.ok_or_else(|| format!("model file `{path}` has errors"))
    }

    fn dt(&self, npz: Option<&Npz>) -> Result<f64, String> {
        let dt = npz
            .and_then(|z| z.get("dt"))
            .and_then(|a| a.to_f64().first().copied())
            .or_else(|| self.data_info.get("dt").and_then(serde_json::Value::as_f64));
        match dt {
            Some(dt) if dt > 0.0 && dt.is_finite() => Ok(dt),
            _ => Err(format!("`{}` gives no valid time step `dt`", self.data_dir.join("run.json").display())),
        }
    }

    fn steps(&self) -> u64 {
        self.data_info.get("steps").and_then(serde_json::Value::as_u64).unwrap_or(0)
    }

    /// Every figure's data, or why it is skipped. `Err` only for malformed files.
    fn figures(
        &self,
        baseline: Option<&RunFolder>,
        report: &mut Report,
    ) -> Result<Vec<Result<Figure, String>>, String> {
        if self.summary.is_some() {
            report.notes.push(format!(
                "a run of replicas: raster, traces, rates and trajectory show `{}` (for another: `snnc plot {}`)",
                self.data_dir.display(),
                self.dir.join("replica-<r>").display()
            ));
        }
        let model = match self.model() {
            Ok(model) => Some(model),
            Err(why) => {
                report.notes.push(format!("{why}: state values in SI units, sizes from run.json"));
                None
            }
        };
        let spikes = self.npz("spikes.npz")?;
        let state = self.npz("state.npz")?;
        let rates = self.npz("rates.npz")?;
        let trajectory = self.npz("trajectory.npz")?;
        let groups = match &spikes {
            Some(z) => self.spike_groups(z, model.as_ref(), report)?,
            None => Vec::new(),
        };
        let no_steps = || "the run has no steps".to_string();
        let rates = match (rates.as_ref().or(spikes.as_ref()), self.steps()) {
            (None, _) => Err("no rates.npz or spikes.npz".to_string()),
            (Some(_), 0) => Err(no_steps()),
            (Some(z), _) => self.rates(rates.as_ref(), self.dt(Some(z))?, &groups).map(Figure::Rates),
        };
        let raster = match &spikes {
            None => Err("no spikes.npz".to_string()),
            Some(_) if self.steps() == 0 => Err(no_steps()),
            Some(_) if groups.is_empty() => Err("no spike monitor (spikes.npz holds no group)".to_string()),
            Some(z) => Ok(Figure::Raster(Raster { time: TimeAxis::new(self.dt(Some(z))?, self.steps()), groups })),
        };
        let traces = match &state {
            None => Err("no state.npz".to_string()),
            Some(z) => self.traces(z, model.as_ref(), report)?.map(Figure::Traces),
        };
        let track = match &trajectory {
            None => Err("no trajectory.npz (the model is not bound to an environment)".to_string()),
            Some(z) => track(z, self.grid_size(model.as_ref()))?.map(Figure::Trajectory),
        };
        let curve = self.curve(baseline)?.map(Figure::Learning);
        // In the order of `FIGURES`.
        Ok(vec![raster, traces, rates, track, curve])
    }

    /// The size of each group: from the model, else from run.json (spikes / (rate x duration)).
    fn group_size(&self, name: &str, model: Option<&Model>) -> Option<u32> {
        if let Some(group) = model.and_then(|m| m.group(name)) {
            return Some(group.size);
        }
        let spikes = self.data_info.get("spikes")?.get(name)?.as_f64()?;
        let rate = self.data_info.get("mean_rate_hz")?.get(name)?.as_f64()?;
        let seconds = self.data_info.get("dt")?.as_f64()? * self.steps() as f64;
        let size = spikes / (rate * seconds);
        (size.is_finite() && size >= 0.5).then(|| size.round() as u32)
    }

    fn spike_groups(&self, z: &Npz, model: Option<&Model>, report: &mut Report) -> Result<Vec<SpikeGroup>, String> {
        let file = self.data_dir.join("spikes.npz");
        let mut groups = Vec::new();
        for key in z.keys() {
            let Some(name) = key.strip_suffix(".step") else { continue };
            let steps = z.get(key).and_then(|a| a.as_i64());
            let indices = z.get(&format!("{name}.index")).and_then(|a| a.as_i64());
            let (Some(steps), Some(indices)) = (steps, indices) else {
                return Err(format!("`{}`: `{key}` needs an integer `{name}.index` beside it", file.display()));
            };
            if steps.len() != indices.len() {
                return Err(format!("`{}`: `{name}.step` and `{name}.index` differ in length", file.display()));
            }
            let seen = indices.iter().copied().max().map_or(0, |i| i + 1);
            let size = match self.group_size(name, model) {
                Some(size) => size.max(u32::try_from(seen).unwrap_or(u32::MAX)),
                None => {
                    report.notes.push(format!("the size of `{name}` is unknown: its highest spiking index is used"));
                    u32::try_from(seen).unwrap_or(u32::MAX).max(1)
                }
            };
            groups.push(SpikeGroup { name: name.to_string(), size, steps: steps.to_vec(), indices: indices.to_vec() });
        }
        Ok(groups)
    }

    fn traces(
        &self,
        z: &Npz,
        model: Option<&Model>,
        report: &mut Report,
    ) -> Result<Result<Vec<Trace>, String>, String> {
        let file = self.data_dir.join("state.npz");
        let time = TimeAxis::new(self.dt(Some(z))?, self.steps());
        let mut traces = Vec::new();
        let keys: Vec<&str> = z
            .keys()
            .filter(|k| *k != "dt" && z.get(&format!("{k}.step")).is_some() && z.get(&format!("{k}.index")).is_some())
            .collect();
        if keys.is_empty() {
            return Ok(Err("no state monitor (state.npz holds no variable)".into()));
        }
        if keys.len() > MAX_PANELS {
            report.notes.push(format!(
                "traces.png shows the first {MAX_PANELS} of {} sampled variables (left out: {})",
                keys.len(),
                keys[MAX_PANELS..].join(", ")
            ));
        }
        for key in keys.into_iter().take(MAX_PANELS) {
            let bad = |what: &str| format!("`{}`: `{key}` {what}", file.display());
            let values = z.get(key).map(|a| (a.shape.clone(), a.to_f64())).ok_or_else(|| bad("is missing"))?;
            let steps = z.get(&format!("{key}.step")).and_then(|a| a.as_i64()).ok_or_else(|| bad("has no steps"))?;
            let indices =
                z.get(&format!("{key}.index")).and_then(|a| a.as_i64()).ok_or_else(|| bad("has no indices"))?;
            let (shape, values) = values;
            if shape != [steps.len(), indices.len()] {
                return Err(bad("is not (samples x neurons) as its `.step` and `.index` say"));
            }
            if steps.is_empty() || indices.is_empty() {
                continue;
            }
            let n = indices.len();
            let shown = n.min(MAX_TRACES);
            let lines = (0..shown)
                .map(|k| {
                    let column = k * n / shown;
                    (indices[column], values.iter().skip(column).step_by(n).copied().collect())
                })
                .collect();
            let dim = model.map(|m| variable_dimension(m, key));
            let (label, scale) = axis_label(key, dim, &values);
            traces.push(Trace { key: key.to_string(), recorded: n, label, scale, time, steps: steps.to_vec(), lines });
        }
        if traces.is_empty() {
            return Ok(Err("the state monitors recorded no samples".into()));
        }
        Ok(Ok(traces))
    }

    /// Rates per bin: rate monitors' per-step rates averaged, and the spike-monitored groups'
    /// spikes over size x bin width.
    fn rates(&self, rates: Option<&Npz>, dt: f64, groups: &[SpikeGroup]) -> Result<Rates, String> {
        let steps = self.steps();
        let bin_steps = nice_bin(steps.div_ceil(RATE_BINS).max(1));
        let bins = usize::try_from(steps.div_ceil(bin_steps)).unwrap_or(0);
        let mut binned: Vec<(String, Vec<f64>)> = Vec::new();
        for (key, array) in rates.map(|z| z.arrays.as_slice()).unwrap_or_default() {
            if key != "dt" {
                let per_step = array.to_f64();
                let chunks = per_step.chunks(bin_steps as usize);
                binned.push((key.clone(), chunks.map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()));
            }
        }
        for g in groups {
            if binned.iter().any(|(n, _)| *n == g.name) {
                continue;
            }
            let mut counts = vec![0u64; bins];
            for &step in &g.steps {
                if let Some(c) = usize::try_from(step / bin_steps as i64).ok().and_then(|b| counts.get_mut(b)) {
                    *c += 1;
                }
            }
            let per_bin = counts.iter().enumerate().map(|(b, &c)| {
                // The last bin may be shorter.
                let width = bin_steps.min(steps - b as u64 * bin_steps) as f64 * dt;
                c as f64 / (f64::from(g.size) * width)
            });
            binned.push((g.name.clone(), per_bin.collect()));
        }
        if binned.is_empty() {
            return Err("no rate or spike monitor".into());
        }
        Ok(Rates { time: TimeAxis::new(dt, steps), bin_steps, groups: binned })
    }

    /// Cells per side: the environment's `size` setting when the model is known and was run
    /// without `--set` (settings may use constants), else `None` (from the visited cells).
    fn grid_size(&self, model: Option<&Model>) -> Option<usize> {
        let overridden = self.info.get("overrides").and_then(|o| o.as_array()).is_some_and(|o| !o.is_empty());
        let size = model?.environment.as_ref()?.setting("size")?;
        (!overridden && (1.0..=MAX_CELLS as f64).contains(&size)).then_some(size as usize)
    }

    /// The learning curve: per episode, food per 1,000 steps (or reward, for environments that
    /// count no food); across replicas for a `--replicas` run.
    fn curve(&self, baseline: Option<&RunFolder>) -> Result<Result<Curve, String>, String> {
        let Some(episodes) = self.episode_values() else {
            return Ok(Err("the run has no episodes (the model is not bound to an environment)".into()));
        };
        let metric = if episodes.iter().any(|(name, _)| name == "food_per_1000_steps") {
            "food_per_1000_steps"
        } else if episodes.iter().any(|(name, _)| name == "reward") {
            "reward"
        } else {
            return Ok(Err("the episodes record neither food nor reward".into()));
        };
        let rows: Vec<&Vec<f64>> = episodes.iter().filter(|(n, _)| n == metric).map(|(_, v)| v).collect();
        let points: Vec<Point> = rows.iter().filter_map(|values| point(values)).collect();
        if points.is_empty() {
            return Ok(Err("the episodes record no values".into()));
        }
        let replicas = rows.iter().map(|v| v.len()).max().unwrap_or(1);
        let baseline = match baseline {
            None => None,
            Some(b) => Some(b.baseline(metric)?),
        };
        let policy = self.info.get("policy").and_then(|p| p.as_str()).unwrap_or("model").to_string();
        let label = if metric == "reward" { "reward per episode" } else { "food per 1,000 steps" };
        Ok(Ok(Curve { metric: label.to_string(), replicas, points, policy, baseline }))
    }

    /// Per episode, each metric's values (one per replica): `(metric, values)` in episode order,
    /// several metrics per episode. `None` without episodes.
    fn episode_values(&self) -> Option<Vec<(String, Vec<f64>)>> {
        let mut out = Vec::new();
        if let Some(summary) = &self.summary {
            let replicas = summary.get("per_replica")?.as_array()?;
            let count = summary.get("episodes")?.as_array()?.len();
            for e in 0..count {
                for name in ["food_per_1000_steps", "reward"] {
                    let values: Vec<f64> = replicas.iter().filter_map(|r| r.get(name)?.get(e)?.as_f64()).collect();
                    if !values.is_empty() {
                        out.push((name.to_string(), values));
                    }
                }
            }
        } else {
            for episode in self.info.get("episodes")?.as_array()? {
                for name in ["food_per_1000_steps", "reward"] {
                    if let Some(v) = episode.get(name).and_then(serde_json::Value::as_f64) {
                        out.push((name.to_string(), vec![v]));
                    }
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// This run as a baseline for `metric`: the mean and range over all its episodes and replicas.
    fn baseline(&self, metric: &str) -> Result<Baseline, String> {
        let values: Vec<f64> = self
            .episode_values()
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| n == metric)
            .flat_map(|(_, v)| v)
            .collect();
        let stats = crate::replicas::Stats::of(&values)
            .ok_or_else(|| format!("`--baseline {}`: the run has no episodes with `{metric}`", self.dir.display()))?;
        let policy = self.info.get("policy").and_then(|p| p.as_str()).unwrap_or("model");
        let who = if policy == "random" { "random policy".to_string() } else { format!("baseline ({policy} policy)") };
        let label =
            format!("{who}: {:.2} (mean of {} episode{})", stats.mean, stats.n, if stats.n == 1 { "" } else { "s" });
        Ok(Baseline { label, mean: stats.mean, min: stats.min, max: stats.max })
    }
}

fn point(values: &[f64]) -> Option<Point> {
    crate::replicas::Stats::of(values).map(|s| Point { mean: s.mean, sd: s.sd, min: s.min, max: s.max })
}

/// 1, 2 or 5 times a power of ten, at least `n`.
fn nice_bin(n: u64) -> u64 {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            if base.saturating_mul(m) >= n {
                return base.saturating_mul(m);
            }
        }
        base = base.saturating_mul(10);
    }
}

/// The visits per cell and the last episode's path, from `trajectory.npz`.
fn track(z: &Npz, size: Option<usize>) -> Result<Result<Track, String>, String> {
    let (Some(x), Some(y)) = (z.get("x"), z.get("y")) else {
        return Ok(Err("trajectory.npz has no grid positions (`x`, `y`)".into()));
    };
    let (x, y) = (x.to_f64(), y.to_f64());
    if x.is_empty() || x.len() != y.len() {
        return Ok(Err("trajectory.npz holds no positions".into()));
    }
    let episodes = z.get("episode").and_then(|a| a.as_i64()).filter(|e| e.len() == x.len());
    let last = episodes.and_then(|e| e.iter().copied().max()).unwrap_or(0);
    if !x.iter().chain(&y).all(|v| (0.0..MAX_CELLS as f64).contains(v)) {
        return Err(format!("trajectory.npz: positions must be grid cells, from 0 to {}", MAX_CELLS - 1));
    }
    let seen = |v: &[f64]| v.iter().copied().fold(0.0, f64::max) as usize + 1;
    let grid = (size.unwrap_or(0).max(seen(&x)), size.unwrap_or(0).max(seen(&y)));
    let mut visits = vec![0u64; grid.0 * grid.1];
    for (&x, &y) in x.iter().zip(&y) {
        visits[y as usize * grid.0 + x as usize] += 1;
    }
    let path = x
        .iter()
        .zip(&y)
        .enumerate()
        .filter(|(k, _)| episodes.is_none_or(|e| e[*k] == last))
        .map(|(_, (&x, &y))| (x, y))
        .collect();
    Ok(Ok(Track { grid, visits, episode: last + 1, path }))
}

/// The dimension of a monitored variable `P.var` (group, pathway or `shared`); `None` if the
/// model does not have it.
fn variable_dimension(model: &Model, key: &str) -> Option<Dimension> {
    let (population, var) = key.rsplit_once('.')?;
    let dynamics = if population == "shared" {
        Some(&model.shared)
    } else if let Some(g) = model.groups.iter().position(|g| g.name == population) {
        model.group_dynamics(g)
    } else {
        model.pathways.iter().find(|p| p.name == population).map(|p| &p.dynamics)
    }?;
    dynamics.variables.iter().find(|v| v.name == var)?.ty.dim()
}

/// The y axis label of a variable and the factor from SI values to it: a named unit with the SI
/// prefix that suits the values (`v (mV)`), the dimension in base units, `1` when dimensionless,
/// or `SI units` without the model (`dim` is `None`, or `Some(None)` when the model lacks it).
fn axis_label(key: &str, dim: Option<Option<Dimension>>, values: &[f64]) -> (String, f64) {
    let name = key.rsplit_once('.').map_or(key, |(_, v)| v);
    let Some(Some(dim)) = dim else { return (format!("{name} (SI units)"), 1.0) };
    if dim.is_dimensionless() {
        return (format!("{name} (1)"), 1.0);
    }
    let Some(symbol) = snnc_compiler::units::symbol(dim) else { return (format!("{name} ({dim})"), 1.0) };
    let largest = values.iter().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs()));
    const PREFIXES: [(i32, &str); 9] =
        [(-15, "f"), (-12, "p"), (-9, "n"), (-6, "µ"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G")];
    let exponent = if largest > 0.0 { (largest.log10() / 3.0).floor() as i32 * 3 } else { 0 };
    let (exponent, prefix) = PREFIXES.iter().rev().find(|(e, _)| *e <= exponent).copied().unwrap_or(PREFIXES[0]);
    (format!("{name} ({prefix}{symbol})"), 10f64.powi(-exponent))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use std::ops::Div;

    #[test]
    fn bins_are_round_numbers() {
        assert_eq!([1, 2, 3, 6, 10, 11, 30, 251].map(nice_bin), [1, 2, 5, 10, 10, 20, 50, 500]);
    }

    #[test]
    fn labels_carry_units_with_prefixes() {
        let volt = Some(Some(Dimension::VOLT));
        let (label, scale) = axis_label("S.v", volt, &[-0.07, -0.05]);
        assert_eq!(label, "v (mV)");
        assert_eq!(-0.07 * scale, -70.0);
        assert_eq!(axis_label("S.v", volt, &[0.0]).0, "v (V)");
        assert_eq!(axis_label("shared.da", Some(Some(Dimension::ONE)), &[0.5]).0, "da (1)");
        assert_eq!(axis_label("S.v", None, &[1.0]).0, "v (SI units)");
        let per_second = Dimension::ONE.div(Dimension::TIME);
        assert_eq!(axis_label("G.r", Some(Some(per_second)), &[2e3]).0, "r (kHz)");
        let volt_per_second = Dimension::VOLT.div(Dimension::TIME);
        assert_eq!(axis_label("G.x", Some(Some(volt_per_second)), &[1.0]).0, "x (volt/second)");
    }

    #[test]
    fn time_axis_switches_to_seconds_at_one_second() {
        let short = TimeAxis::new(1e-4, 5000);
        assert_eq!((short.unit, short.end), ("ms", 500.0));
        let long = TimeAxis::new(1e-3, 6000);
        assert_eq!((long.unit, long.at(1500)), ("s", 1.5));
    }
}

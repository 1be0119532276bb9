//! Conformance with Brian2: our models of the neuron-only cases reproduce Brian2's spikes and traces.
//!
//! Each case runs `tests/conformance/<case>.snn` for the case's number of steps and
//! compares the monitors with the golden data vendored in
//! `tests/conformance/golden/<case>/` (Brian2 2.11.0, numpy target, float64; see
//! the README there). Spikes must be identical (same steps, same indices, same
//! order); every trace column must be within the case's tolerance, measured as
//! `max |ours - brian| / max |brian column|` (the tolerances of the model cards).
//!
//! Our state is in SI units; a CSV column name carries its unit (`v_mV_2` is `v` of
//! neuron 2 in mV, `w_nA_3` is `w` in nA, dimensionless variables have no unit
//! part, one-neuron models drop the index). The sample at step k is the state
//! before step k's update, which is Brian's trace row `t = k*dt`.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// One trace column of a golden CSV file and the monitored value it holds.
struct Column {
    /// The CSV column name, e.g. `v_mV_2`.
    name: String,
    /// The state monitor key, e.g. `G.v`.
    key: String,
    /// The neuron index within the monitored group.
    index: u32,
    /// Multiplies our SI value into the column's unit (1e3 for mV).
    scale: f64,
}

impl Column {
    fn new(name: impl Into<String>, key: impl Into<String>, index: u32, scale: f64) -> Column {
        Column { name: name.into(), key: key.into(), index, scale }
    }
}

/// The columns `<prefix>_0` ... `<prefix>_<n-1>` of one variable of group `G`.
fn per_neuron(prefix: &str, key: &str, n: u32, scale: f64) -> Vec<Column> {
    (0..n).map(|i| Column::new(format!("{prefix}_{i}"), key, i, scale)).collect()
}

/// One golden trace file.
struct TraceFile {
    file: &'static str,
    /// Largest allowed `max |ours - brian| / max |brian|` per column.
    tolerance: f64,
    /// Every column except `t_ms` and the `*_analytic` ones.
    columns: Vec<Column>,
}

/// One conformance case.
struct Case {
    name: &'static str,
    dt_ms: f64,
    /// The number of steps Brian ran (`n_steps` of the case's meta.json).
    steps: u64,
    /// The group whose spikes `spikes.csv` holds, if the case has spikes.
    spikes: Option<&'static str>,
    traces: Vec<TraceFile>,
}

/// mV per volt.
const MV: f64 = 1e3;
/// nA per ampere.
const NA: f64 = 1e9;

fn lif_const() -> Case {
    let mut columns = per_neuron("v_mV", "G.v", 3, MV);
    columns.extend(per_neuron("not_refractory", "G.not_refractory", 3, 1.0));
    Case {
        name: "lif_const",
        dt_ms: 0.1,
        steps: 2000,
        spikes: Some("G"),
        traces: vec![TraceFile { file: "trace.csv", tolerance: 1e-12, columns }],
    }
}

fn izhikevich() -> Case {
    let mut columns = per_neuron("v", "G.v", 5, 1.0);
    columns.extend(per_neuron("u", "G.u", 5, 1.0));
    Case {
        name: "izhikevich",
        dt_ms: 0.1,
        steps: 5000,
        spikes: Some("G"),
        traces: vec![TraceFile { file: "trace.csv", tolerance: 1e-10, columns }],
    }
}

fn hh() -> Case {
    let columns = vec![
        Column::new("v_mV", "G.v", 0, MV),
        Column::new("m", "G.m", 0, 1.0),
        Column::new("h", "G.h", 0, 1.0),
        Column::new("n", "G.n", 0, 1.0),
    ];
    Case {
        name: "hh",
        dt_ms: 0.01,
        steps: 10000,
        spikes: Some("G"),
        traces: vec![TraceFile { file: "trace.csv", tolerance: 1e-10, columns }],
    }
}

fn adex() -> Case {
    let mut columns = per_neuron("vm_mV", "G.vm", 5, MV);
    columns.extend(per_neuron("w_nA", "G.w", 5, NA));
    Case {
        name: "adex",
        dt_ms: 0.1,
        steps: 5000,
        spikes: Some("G"),
        traces: vec![TraceFile { file: "trace.csv", tolerance: 1e-10, columns }],
    }
}

fn integrators() -> Case {
    // Column `<var>_<method>` of `<system>.csv` is `<system>_<method>.<var>` (one neuron).
    let columns = |system: &str, vars: [&str; 2], methods: &[&str]| -> Vec<Column> {
        let mut columns = Vec::new();
        for method in methods {
            for var in vars {
                columns.push(Column::new(format!("{var}_{method}"), format!("{system}_{method}.{var}"), 0, 1.0));
            }
        }
        columns
    };
    Case {
        name: "integrators",
        dt_ms: 1.0,
        steps: 1000,
        spikes: None,
        traces: vec![
            TraceFile {
                file: "exp2.csv",
                tolerance: 1e-12,
                columns: columns("exp2", ["v", "I"], &["exact", "euler", "rk2", "rk4", "heun", "exponential_euler"]),
            },
            TraceFile {
                file: "rot.csv",
                tolerance: 1e-12,
                columns: columns("rot", ["x", "y"], &["euler", "rk2", "rk4", "heun", "exponential_euler"]),
            },
            TraceFile {
                file: "vdp.csv",
                tolerance: 1e-10,
                columns: columns("vdp", ["x", "y"], &["euler", "rk2", "rk4", "heun"]),
            },
        ],
    }
}

// ---------------------------------------------------------------- CSV

/// A CSV file of floats with a header row.
struct Csv {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Csv {
    fn read(case: &str, file: &str) -> Csv {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/golden").join(case).join(file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()));
        let mut lines = text.lines().filter(|line| !line.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .unwrap_or_else(|| panic!("{}: empty file", path.display()))
            .split(',')
            .map(|name| name.trim().to_string())
            .collect();
        let rows: Vec<Vec<f64>> = lines
            .enumerate()
            .map(|(r, line)| {
                let row: Vec<f64> = line
                    .split(',')
                    .map(|field| {
                        field.trim().parse().unwrap_or_else(|e| {
                            panic!("{}: data row {}: bad number {field:?}: {e}", path.display(), r + 1)
                        })
                    })
                    .collect();
                assert_eq!(
                    row.len(),
                    header.len(),
                    "{}: data row {} has {} fields, the header {}",
                    path.display(),
                    r + 1,
                    row.len(),
                    header.len()
                );
                row
            })
            .collect();
        Csv { path, header, rows }
    }

    /// The values of a column, by name.
    fn column(&self, name: &str) -> Vec<f64> {
        let k = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{}: no column {name:?} (columns: {:?})", self.path.display(), self.header));
        self.rows.iter().map(|row| row[k]).collect()
    }
}

/// Converts a time in ms on the dt grid to a step number.
fn to_step(t_ms: f64, dt_ms: f64) -> i64 {
    (t_ms / dt_ms).round() as i64
}

// ---------------------------------------------------------------- running

/// Checks and runs a case's model for its number of steps.
fn run(case: &Case) -> snnc_runtime::Monitors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance").join(format!("{}.snn", case.name));
    let name = format!("tests/conformance/{}.snn", case.name);
    let src = fs::read_to_string(&path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()));
    let (model, diags) = snnc_compiler::check(&src);
    let Some(model) = model else {
        panic!("{name} does not check:\n{}", snnc_compiler::diagnostic::render_to_string(&diags, &name, &src));
    };
    let dt_ms = model.dt * 1e3;
    assert!(
        ((dt_ms - case.dt_ms) / case.dt_ms).abs() < 1e-12,
        "{name}: dt is {dt_ms} ms, the golden data's {} ms",
        case.dt_ms
    );
    let mut sim = snnc_runtime::build(&model, 0).unwrap_or_else(|e| panic!("{name}: build failed: {e}"));
    let mut monitors =
        snnc_runtime::Monitors::new(&model, &sim, case.steps).unwrap_or_else(|e| panic!("{name}: monitors: {e}"));
    for _ in 0..case.steps {
        sim.step(&mut monitors);
    }
    monitors
}

/// The recorded samples of one monitored variable.
fn state<'a>(case: &Case, monitors: &'a snnc_runtime::Monitors, key: &str) -> (&'a [i64], &'a [u32], &'a [f64]) {
    monitors.state(key).unwrap_or_else(|| panic!("{}: no state monitor {key:?}", case.name))
}

// ---------------------------------------------------------------- checks

/// Every non-analytic column of each trace file is compared.
fn check_columns_covered(case: &Case, file: &TraceFile, csv: &Csv) {
    for name in &csv.header {
        if name == "t_ms" || name.ends_with("_analytic") {
            continue;
        }
        assert!(
            file.columns.iter().any(|c| &c.name == name),
            "{}: {} column {name:?} is not compared (the test's column list is incomplete)",
            case.name,
            file.file
        );
    }
}

/// Spikes identical to `spikes.csv`: same steps, same indices, same order.
fn check_spikes(case: &Case, monitors: &snnc_runtime::Monitors) {
    let Some(group) = case.spikes else { return };
    let csv = Csv::read(case.name, "spikes.csv");
    let brian: Vec<(i64, u32)> = csv
        .column("t_ms")
        .iter()
        .zip(csv.column("i"))
        .map(|(&t, i)| {
            assert!(i >= 0.0 && i.fract() == 0.0, "{}: spikes.csv: bad index {i}", case.name);
            (to_step(t, case.dt_ms), i as u32)
        })
        .collect();
    let (steps, indices) =
        monitors.spikes(group).unwrap_or_else(|| panic!("{}: no spike monitor for {group:?}", case.name));
    let ours: Vec<(i64, u32)> = steps.iter().copied().zip(indices.iter().copied()).collect();
    if ours == brian {
        println!("{}: {} spikes identical", case.name, ours.len());
        return;
    }
    let first = ours.iter().zip(&brian).position(|(a, b)| a != b).unwrap_or(ours.len().min(brian.len()));
    let show = |s: Option<&(i64, u32)>| match s {
        Some((step, i)) => format!("step {step} (t = {:.6} ms), neuron {i}", *step as f64 * case.dt_ms),
        None => "none".to_string(),
    };
    panic!(
        "{}: spikes differ: ours {} spikes, Brian {}; first difference at spike #{first}: ours {}, Brian {}",
        case.name,
        ours.len(),
        brian.len(),
        show(ours.get(first)),
        show(brian.get(first))
    );
}

/// Every trace column within tolerance; prints the largest relative error of each file.
fn check_traces(case: &Case, monitors: &snnc_runtime::Monitors) {
    let mut failures = String::new();
    for file in &case.traces {
        let csv = Csv::read(case.name, file.file);
        check_columns_covered(case, file, &csv);
        let rows = csv.rows.len();
        let mut largest = (0.0_f64, "");
        for column in &file.columns {
            let brian = csv.column(&column.name);
            let (steps, indices, values) = state(case, monitors, &column.key);
            assert_eq!(
                steps.len(),
                rows,
                "{}: {} has {rows} rows, {} has {} samples",
                case.name,
                file.file,
                column.key,
                steps.len()
            );
            let width = indices.len();
            let pos = indices.iter().position(|&i| i == column.index).unwrap_or_else(|| {
                panic!("{}: {} does not record neuron {} (indices {indices:?})", case.name, column.key, column.index)
            });
            let ours: Vec<f64> = (0..rows).map(|r| values[r * width + pos] * column.scale).collect();
            // Relative to the column's max |value| (absolute for an all-zero column).
            let max_abs = brian.iter().fold(0.0_f64, |m, b| m.max(b.abs()));
            let denominator = if max_abs > 0.0 { max_abs } else { 1.0 };
            // A NaN counts as an infinite error.
            let errors: Vec<f64> = ours
                .iter()
                .zip(&brian)
                .map(|(a, b)| (a - b).abs() / denominator)
                .map(|e| if e.is_nan() { f64::INFINITY } else { e })
                .collect();
            let worst = (0..rows).fold(0, |w, r| if errors[r] > errors[w] { r } else { w });
            let error = errors.get(worst).copied().unwrap_or(0.0);
            if error > largest.0 || largest.1.is_empty() {
                largest = (error, &column.name);
            }
            let Some(first_over) = errors.iter().position(|&e| e > file.tolerance) else { continue };
            let first_different = ours.iter().zip(&brian).position(|(a, b)| a.to_bits() != b.to_bits());
            let at = |r: usize| {
                format!("step {} (t = {:.6} ms): ours {:e}, Brian {:e}", steps[r], csv.rows[r][0], ours[r], brian[r])
            };
            let _ = writeln!(
                failures,
                "  {} column {}: max relative error {error:.3e} > tolerance {:e}\n    largest at {}\n    \
                 first over tolerance at {}\n    first difference at {}",
                file.file,
                column.name,
                file.tolerance,
                at(worst),
                at(first_over),
                first_different.map_or("none".into(), at),
            );
        }
        println!(
            "{} {}: largest relative error {:.3e} (column {}), tolerance {:e}",
            case.name, file.file, largest.0, largest.1, file.tolerance
        );
    }
    assert!(failures.is_empty(), "{}: traces differ from Brian2:\n{failures}", case.name);
}

/// Runs a case and compares spikes and traces with the golden data.
fn conforms(case: &Case) {
    let monitors = run(case);
    check_spikes(case, &monitors);
    check_traces(case, &monitors);
}

/// Each trace file has one row per recorded sample, at the same steps.
fn samples_match_rows(case: &Case) {
    let monitors = run(case);
    for file in &case.traces {
        let csv = Csv::read(case.name, file.file);
        assert_eq!(
            csv.rows.len() as u64,
            case.steps,
            "{}: {} has {} rows, the case {} steps",
            case.name,
            file.file,
            csv.rows.len(),
            case.steps
        );
        let brian_steps: Vec<i64> = csv.column("t_ms").iter().map(|&t| to_step(t, case.dt_ms)).collect();
        for column in &file.columns {
            let (steps, indices, values) = state(case, &monitors, &column.key);
            assert_eq!(
                steps.len(),
                csv.rows.len(),
                "{}: {} has {} rows, {} has {} samples",
                case.name,
                file.file,
                csv.rows.len(),
                column.key,
                steps.len()
            );
            assert_eq!(values.len(), steps.len() * indices.len(), "{}: {}: ragged samples", case.name, column.key);
            if let Some(r) = steps.iter().zip(&brian_steps).position(|(a, b)| a != b) {
                panic!(
                    "{}: {} row {r} is step {}, {} sample {r} step {}",
                    case.name, file.file, brian_steps[r], column.key, steps[r]
                );
            }
        }
    }
}

#[test]
fn lif_const_conforms() {
    conforms(&lif_const());
}

#[test]
fn izhikevich_conforms() {
    conforms(&izhikevich());
}

#[test]
fn hh_conforms() {
    conforms(&hh());
}

#[test]
fn adex_conforms() {
    conforms(&adex());
}

#[test]
fn integrators_conform() {
    conforms(&integrators());
}

#[test]
fn lif_const_samples_match_rows() {
    samples_match_rows(&lif_const());
}

#[test]
fn izhikevich_samples_match_rows() {
    samples_match_rows(&izhikevich());
}

#[test]
fn hh_samples_match_rows() {
    samples_match_rows(&hh());
}

#[test]
fn adex_samples_match_rows() {
    samples_match_rows(&adex());
}

#[test]
fn integrators_samples_match_rows() {
    samples_match_rows(&integrators());
}

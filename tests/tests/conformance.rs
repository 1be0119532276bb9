//! Conformance with Brian2: our models of the conformance cases reproduce Brian2's spikes and traces.
//!
//! Each case runs `tests/conformance/<case>.snn` for the case's number of steps and
//! compares the monitors with the golden data vendored in
//! `tests/conformance/golden/<case>/` (Brian2 2.11.0, numpy target, float64; see
//! the README there). Spikes must be identical (same steps, same indices, same
//! order); every trace column must be within the case's tolerance, measured as
//! `max |ours - brian| / max |brian column|` (the tolerances of the model cards),
//! or as `max |ours - brian|` where the card gives an absolute tolerance (stdp_pair).
//!
//! Our state is in SI units; a CSV column name carries its unit (`v_mV_2` is `v` of
//! neuron 2 in mV, `w_nA_3` is `w` in nA, dimensionless variables have no unit
//! part, one-neuron models and group-wide values such as shared variables drop the
//! index). The sample at step k is the state before step k's update, which is
//! Brian's trace row `t = k*dt`; a monitor with a period of n steps samples steps
//! 0, n, 2n, ...

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// One trace column of a golden CSV file and the monitored value it holds.
struct Column {
    /// The CSV column name, e.g. `v_mV_2`.
    name: String,
    /// The state monitor key, e.g. `G.v`.
    key: String,
    /// The neuron (or synapse) index within the monitored group (or pathway); 0 for
    /// a group-wide value (a shared variable records the one column 0; a
    /// subexpression of shared values and `t` one equal column per neuron).
    index: u32,
    /// Multiplies our SI value into the column's unit (1e3 for mV).
    scale: f64,
}

impl Column {
    fn new(name: impl Into<String>, key: impl Into<String>, index: u32, scale: f64) -> Column {
        Column { name: name.into(), key: key.into(), index, scale }
    }
}

/// The columns `<prefix>_0` ... `<prefix>_<n-1>` of one monitored variable.
fn per_neuron(prefix: &str, key: &str, n: u32, scale: f64) -> Vec<Column> {
    per_index(prefix, key, 0..n, scale)
}

/// The columns `<prefix>_<i>` of one monitored variable, for the given indices.
fn per_index(prefix: &str, key: &str, indices: impl IntoIterator<Item = u32>, scale: f64) -> Vec<Column> {
    indices.into_iter().map(|i| Column::new(format!("{prefix}_{i}"), key, i, scale)).collect()
}

/// How a trace file's tolerance is measured.
#[derive(Clone, Copy, PartialEq)]
enum Measure {
    /// `max |ours - brian| / max |brian column|` (absolute for an all-zero column).
    Relative,
    /// `max |ours - brian|`.
    Absolute,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::Relative => "relative",
            Measure::Absolute => "absolute",
        }
    }
}

/// One golden trace file.
struct TraceFile {
    file: &'static str,
    /// The monitor's sampling period in steps (1: every step); the file has one row
    /// per sample, i.e. `steps.div_ceil(every)` rows.
    every: u64,
    /// Largest allowed error per column, measured as `measure` says.
    tolerance: f64,
    measure: Measure,
    /// Every column except `t_ms` and the `*_analytic` ones.
    columns: Vec<Column>,
}

impl TraceFile {
    /// A file sampled every step, with a tolerance relative to each column's max |value|.
    fn every_step(file: &'static str, tolerance: f64, columns: Vec<Column>) -> TraceFile {
        TraceFile { file, every: 1, tolerance, measure: Measure::Relative, columns }
    }
}

/// One golden spike file (`t_ms,i`) and the group whose spikes it holds.
struct SpikeFile {
    file: &'static str,
    group: &'static str,
}

/// The usual spike file: `spikes.csv`, the spikes of `group`.
fn spikes_of(group: &'static str) -> Vec<SpikeFile> {
    vec![SpikeFile { file: "spikes.csv", group }]
}

/// One conformance case.
struct Case {
    name: &'static str,
    dt_ms: f64,
    /// The number of steps Brian ran (`n_steps` of the case's meta.json, or its run
    /// time over dt); also the model's own run length.
    steps: u64,
    /// The spike files of the case (none if it has no spikes).
    spikes: Vec<SpikeFile>,
    traces: Vec<TraceFile>,
}

/// mV per volt.
const MV: f64 = 1e3;
/// nA per ampere.
const NA: f64 = 1e9;
/// nS per siemens.
const NS: f64 = 1e9;
/// pA per ampere.
const PA: f64 = 1e12;

fn lif_const() -> Case {
    let mut columns = per_neuron("v_mV", "G.v", 3, MV);
    columns.extend(per_neuron("not_refractory", "G.not_refractory", 3, 1.0));
    Case {
        name: "lif_const",
        dt_ms: 0.1,
        steps: 2000,
        spikes: spikes_of("G"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-12, columns)],
    }
}

fn izhikevich() -> Case {
    let mut columns = per_neuron("v", "G.v", 5, 1.0);
    columns.extend(per_neuron("u", "G.u", 5, 1.0));
    Case {
        name: "izhikevich",
        dt_ms: 0.1,
        steps: 5000,
        spikes: spikes_of("G"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-10, columns)],
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
        spikes: spikes_of("G"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-10, columns)],
    }
}

fn adex() -> Case {
    let mut columns = per_neuron("vm_mV", "G.vm", 5, MV);
    columns.extend(per_neuron("w_nA", "G.w", 5, NA));
    Case {
        name: "adex",
        dt_ms: 0.1,
        steps: 5000,
        spikes: spikes_of("G"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-10, columns)],
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
        spikes: Vec::new(),
        traces: vec![
            TraceFile::every_step(
                "exp2.csv",
                1e-12,
                columns("exp2", ["v", "I"], &["exact", "euler", "rk2", "rk4", "heun", "exponential_euler"]),
            ),
            TraceFile::every_step(
                "rot.csv",
                1e-12,
                columns("rot", ["x", "y"], &["euler", "rk2", "rk4", "heun", "exponential_euler"]),
            ),
            TraceFile::every_step("vdp.csv", 1e-10, columns("vdp", ["x", "y"], &["euler", "rk2", "rk4", "heun"])),
        ],
    }
}

fn cuba_small() -> Case {
    // The recorded neurons (`recorded_neurons` of meta.json).
    const RECORDED: [u32; 8] = [0, 1, 2, 3, 319, 320, 398, 399];
    let mut columns = per_index("v_mV", "P.v", RECORDED, MV);
    columns.extend(per_index("ge_mV", "P.ge", RECORDED, MV));
    columns.extend(per_index("gi_mV", "P.gi", RECORDED, MV));
    Case {
        name: "cuba_small",
        dt_ms: 0.1,
        steps: 2000,
        spikes: spikes_of("P"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-9, columns)],
    }
}

fn feat_summed() -> Case {
    // The card states 1e-10 for v; Igap is held to the same.
    let mut columns = per_neuron("v", "neurons.v", 10, 1.0);
    columns.extend(per_neuron("Igap", "neurons.Igap", 10, 1.0));
    Case {
        name: "feat_summed",
        dt_ms: 0.1,
        steps: 2000,
        spikes: spikes_of("neurons"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-10, columns)],
    }
}

fn feat_subexpr() -> Case {
    let mut columns = per_neuron("v_mV", "G.v", 4, MV);
    columns.extend(per_neuron("g_nS", "G.g", 4, NS));
    columns.extend(per_neuron("I_syn_pA", "G.I_syn", 4, PA));
    columns.extend(per_neuron("I_step_pA", "G.I_step", 4, PA));
    // The same value for every neuron: the columns have no index (Brian's neuron 0).
    columns.push(Column::new("I_osc_pA", "G.I_osc", 0, PA));
    columns.push(Column::new("I_amp_pA", "G.I_amp", 0, PA));
    Case {
        name: "feat_subexpr",
        dt_ms: 0.1,
        steps: 2000,
        spikes: spikes_of("G"),
        traces: vec![TraceFile::every_step("trace.csv", 1e-10, columns)],
    }
}

fn feat_delay() -> Case {
    Case {
        name: "feat_delay",
        dt_ms: 0.1,
        steps: 1000,
        spikes: vec![
            SpikeFile { file: "spikes.csv", group: "G" },
            SpikeFile { file: "input_spikes.csv", group: "inp" },
        ],
        traces: vec![TraceFile::every_step("trace.csv", 1e-12, per_neuron("v", "G.v", 4, 1.0))],
    }
}

#[test]
fn feat_delay_conforms() {
    conforms(&feat_delay());
}

#[test]
fn feat_delay_samples_match_rows() {
    samples_match_rows(&feat_delay());
}

/// stdp_pair's pairs: synapse k has delta = t_post - t_pre = k - 50 ms.
const STDP_PAIRS: u32 = 101;

/// The `w.csv` column of stdp_pair's synapse k: `w_dm50` (delta -50 ms) ... `w_dp50`.
fn stdp_column(k: u32) -> String {
    let delta = i64::from(k) - 50;
    if delta < 0 { format!("w_dm{}", -delta) } else { format!("w_dp{delta}") }
}

fn stdp_pair() -> Case {
    // w.csv's columns are in synapse order (delta -50 ... +50), which is also ours
    // (S.connect(j="i"): synapse k is pre k -> post k); `stdp_pair_synapse_order`
    // checks both.
    let columns = (0..STDP_PAIRS).map(|k| Column::new(stdp_column(k), "S.w", k, 1.0)).collect();
    Case {
        name: "stdp_pair",
        dt_ms: 0.1,
        // run 2500.1 ms, so that the sample at t = 2500 ms is taken.
        steps: 25001,
        spikes: vec![
            SpikeFile { file: "pre_spikes.csv", group: "pre" },
            SpikeFile { file: "post_spikes.csv", group: "post" },
        ],
        traces: vec![TraceFile {
            file: "w.csv",
            // every 250 ms
            every: 2500,
            tolerance: 1e-12,
            measure: Measure::Absolute,
            columns,
        }],
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
    run_source(case, &source(case))
}

/// The case's model file.
fn source(case: &Case) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance").join(format!("{}.snn", case.name));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("can not read {}: {e}", path.display()))
}

/// Runs the case's model, given as text, for the case's steps.
fn run_source(case: &Case, src: &str) -> snnc_runtime::Monitors {
    let name = format!("tests/conformance/{}.snn", case.name);
    let (model, diags) = snnc_compiler::check(src);
    let Some(model) = model else {
        panic!("{name} does not check:\n{}", snnc_compiler::diagnostic::render_to_string(&diags, &name, src));
    };
    let dt_ms = model.dt * 1e3;
    assert!(
        ((dt_ms - case.dt_ms) / case.dt_ms).abs() < 1e-12,
        "{name}: dt is {dt_ms} ms, the golden data's {} ms",
        case.dt_ms
    );
    let model_steps = match model.run_length {
        Some(snnc_compiler::model::RunLength::Steps(n)) => Some(n),
        Some(snnc_compiler::model::RunLength::Duration(t)) => Some((t / model.dt).round() as u64),
        None => None,
    };
    assert!(
        model_steps.is_none_or(|n| n == case.steps),
        "{name}: the model runs {model_steps:?} steps, the golden data {}",
        case.steps
    );
    let mut sim = snnc_runtime::build(&model, 0).unwrap_or_else(|e| panic!("{name}: build failed: {e}"));
    let mut monitors =
        snnc_runtime::Monitors::new(&model, &sim, case.steps).unwrap_or_else(|e| panic!("{name}: monitors: {e}"));
    for _ in 0..case.steps {
        sim.step(&mut monitors);
    }
    monitors.end_episode(&sim);
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

/// Spikes identical to each spike file: same steps, same indices, same order.
fn check_spikes(case: &Case, monitors: &snnc_runtime::Monitors) {
    for spikes in &case.spikes {
        check_spike_file(case, spikes, monitors);
    }
}

fn check_spike_file(case: &Case, spikes: &SpikeFile, monitors: &snnc_runtime::Monitors) {
    let (file, group) = (spikes.file, spikes.group);
    let csv = Csv::read(case.name, file);
    let brian: Vec<(i64, u32)> = csv
        .column("t_ms")
        .iter()
        .zip(csv.column("i"))
        .map(|(&t, i)| {
            assert!(i >= 0.0 && i.fract() == 0.0, "{}: {file}: bad index {i}", case.name);
            (to_step(t, case.dt_ms), i as u32)
        })
        .collect();
    let (steps, indices) =
        monitors.spikes(group).unwrap_or_else(|| panic!("{}: no spike monitor for {group:?}", case.name));
    let ours: Vec<(i64, u32)> = steps.iter().copied().zip(indices.iter().copied()).collect();
    if ours == brian {
        println!("{} {file}: {} spikes of {group} identical", case.name, ours.len());
        return;
    }
    let first = ours.iter().zip(&brian).position(|(a, b)| a != b).unwrap_or(ours.len().min(brian.len()));
    let show = |s: Option<&(i64, u32)>| match s {
        Some((step, i)) => format!("step {step} (t = {:.6} ms), neuron {i}", *step as f64 * case.dt_ms),
        None => "none".to_string(),
    };
    panic!(
        "{} {file}: spikes of {group} differ: ours {} spikes, Brian {}; first difference at spike #{first}: \
         ours {}, Brian {}",
        case.name,
        ours.len(),
        brian.len(),
        show(ours.get(first)),
        show(brian.get(first))
    );
}

/// Every trace column within tolerance; prints the largest error of each file.
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
            let denominator = if max_abs > 0.0 && file.measure == Measure::Relative { max_abs } else { 1.0 };
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
                "  {} column {}: max {} error {error:.3e} > tolerance {:e}\n    largest at {}\n    \
                 first over tolerance at {}\n    first difference at {}",
                file.file,
                column.name,
                file.measure.name(),
                file.tolerance,
                at(worst),
                at(first_over),
                first_different.map_or("none".into(), at),
            );
        }
        println!(
            "{} {}: largest {} error {:.3e} (column {}), tolerance {:e}",
            case.name,
            file.file,
            file.measure.name(),
            largest.0,
            largest.1,
            file.tolerance
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
            case.steps.div_ceil(file.every),
            "{}: {} has {} rows, the case {} steps sampled every {} steps",
            case.name,
            file.file,
            csv.rows.len(),
            case.steps,
            file.every
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

#[test]
fn cuba_small_conforms() {
    conforms(&cuba_small());
}

#[test]
fn feat_summed_conforms() {
    conforms(&feat_summed());
}

#[test]
fn feat_subexpr_conforms() {
    conforms(&feat_subexpr());
}

#[test]
fn stdp_pair_conforms() {
    conforms(&stdp_pair());
}

/// Without monitors of `Apre` and `Apost`, the compiler keeps them once per neuron
/// (decayed every step rather than exactly between events per synapse): `w` still
/// conforms.
#[test]
fn stdp_pair_conforms_with_neuron_traces() {
    let case = stdp_pair();
    let full = source(&case);
    let src = full.replace("monitor state S.w, S.Apre, S.Apost every", "monitor state S.w every");
    assert_ne!(src, full, "the monitor line of stdp_pair.snn changed");
    let kernels = |src: &str| {
        let model = snnc_compiler::check(src).0.expect("stdp_pair checks");
        let module = snnc_compiler::ir::lower(&model).expect("stdp_pair lowers");
        module.kernels.iter().map(|k| k.name.clone()).collect::<Vec<_>>()
    };
    assert!(!kernels(&full).iter().any(|k| k.ends_with("_traces")), "monitored traces stay per synapse");
    let names = kernels(&src);
    for kernel in ["S_pre_traces", "S_post_traces", "S_Apre_decay", "S_Apost_decay"] {
        assert!(names.iter().any(|k| k == kernel), "no kernel {kernel} in {names:?}");
    }
    let monitors = run_source(&case, &src);
    check_spikes(&case, &monitors);
    check_traces(&case, &monitors);
}

#[test]
fn cuba_small_samples_match_rows() {
    samples_match_rows(&cuba_small());
}

#[test]
fn feat_summed_samples_match_rows() {
    samples_match_rows(&feat_summed());
}

#[test]
fn feat_subexpr_samples_match_rows() {
    samples_match_rows(&feat_subexpr());
}

#[test]
fn stdp_pair_samples_match_rows() {
    samples_match_rows(&stdp_pair());
}

/// feat_subexpr: `I_amp` (shared) and `I_osc` (a subexpression of `t` and `I_amp`)
/// are one value for the whole group, compared as Brian's neuron 0 (the CSV columns
/// have no index); every column we record of them holds that same value.
#[test]
fn feat_subexpr_group_wide_values_agree() {
    let case = feat_subexpr();
    let monitors = run(&case);
    for key in ["G.I_amp", "G.I_osc"] {
        let (steps, indices, values) = state(&case, &monitors, key);
        assert!(!indices.is_empty() && indices[0] == 0, "{key}: indices {indices:?}");
        assert_eq!(values.len(), steps.len() * indices.len(), "{key}: ragged samples");
        for (r, row) in values.chunks(indices.len()).enumerate() {
            assert!(
                row.iter().all(|v| v.to_bits() == row[0].to_bits()),
                "{key}: step {}: the recorded columns differ: {row:?}",
                steps[r]
            );
        }
    }
}

/// stdp_pair: the columns of `w.csv` and our synapses are both in delta order
/// (synapse k: delta = k - 50 ms), checked against the card's known values.
#[test]
fn stdp_pair_synapse_order() {
    let case = stdp_pair();
    let csv = Csv::read(case.name, "w.csv");
    let header: Vec<String> = std::iter::once("t_ms".to_string()).chain((0..STDP_PAIRS).map(stdp_column)).collect();
    assert_eq!(csv.header, header, "stdp_pair: w.csv's columns are not w_dm50 ... w_dp50 in order");
    let monitors = run(&case);
    let (steps, indices, values) = state(&case, &monitors, "S.w");
    assert_eq!(indices, (0..STDP_PAIRS).collect::<Vec<u32>>(), "stdp_pair: S.w does not record every synapse");
    let width = indices.len();
    assert!(steps.len() >= 2 && steps[..2] == [0, 2500], "stdp_pair: S.w sampled at steps {steps:?}");
    // t = 0: every weight is w0.
    assert!(values[..width].iter().all(|&w| w == 0.5), "stdp_pair: w at t = 0: {:?}", &values[..width]);
    // t = 250 ms, after pairing 0: w - w0 is the STDP window at delta (`dw_first_at`
    // of the case's meta.json; MODEL.md rounds them): dApre*exp(-delta/20) for
    // delta >= 0, dApost*exp(delta/20) below; delta = 0 potentiates.
    let window: [(i64, f64); 7] = [
        (-50, -0.008618924855509358),
        (-20, -0.03862734132300144),
        (-1, -0.09987908957257496),
        (0, 0.09999999999999998),
        (1, 0.09512294245007147),
        (20, 0.036787944117144256),
        (50, 0.008208499862389917),
    ];
    for (delta, dw) in window {
        let k = (delta + 50) as usize;
        let ours = values[width + k] - 0.5;
        assert!(
            (ours - dw).abs() <= 1e-12,
            "stdp_pair: synapse {k} (delta {delta} ms): w - w0 after pairing 0 is {ours:e}, the window {dw:e}"
        );
    }
}

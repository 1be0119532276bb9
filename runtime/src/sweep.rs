//! Parameter sweeps (`snnc sweep`): the grid of constants' values times replicas,
//! its folders and seeds, shards, and `sweep.csv` with the merging of shards.
//!
//! A sweep has points (one value of each swept constant; the first `--set`
//! varies slowest) and replicas; run `i = point * replicas + r` is replica `r` of
//! a point, with seed `seed + r` (the same seeds at every point, so points are
//! compared on the same random numbers). Its folder is
//! `p<point>-<name>=<value>-.../replica-<r>/`. Shard `K` of `N` runs the runs
//! `i` with `i % N == K - 1`. The program (`cli/sweep.rs`) runs the points; this module
//! holds what does not need a model run: parsing, naming, the CSV and merging.

use snnc_compiler::units::Dimension;
use std::path::{Path, PathBuf};

/// One value of a swept constant.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// As given (`300ms`).
    pub text: String,
    /// In SI units.
    pub si: f64,
    /// Its dimension.
    pub dim: Dimension,
}

impl Value {
    /// This value given to the constant `name`.
    pub fn override_for(&self, name: &str) -> snnc_compiler::Override {
        snnc_compiler::Override { name: name.to_string(), value: self.si, dim: self.dim, text: self.text.clone() }
    }
}

/// Parses `snnc run`'s `--set NAME=VALUE`: one value, with its unit (a list of
/// values is for `snnc sweep`).
pub fn parse_override(arg: &str) -> Result<snnc_compiler::Override, String> {
    if !arg.contains('=') {
        return Err(format!("`--set {arg}`: expected NAME=VALUE, e.g. `--set tau_m=10ms`"));
    }
    let param = parse_set(arg)?;
    match &param.values[..] {
        [value] => Ok(value.override_for(&param.name)),
        _ => Err(format!("`--set {arg}`: one value per constant (a list of values is for `snnc sweep`)")),
    }
}

/// A swept constant: `--set NAME=V1,V2,...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The constant's name.
    pub name: String,
    /// Its values, in the order given.
    pub values: Vec<Value>,
}

/// Splits a value list at the commas outside brackets (`1ms, clip(2, 0, 3)*ms`).
fn split_list(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (k, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Parses `NAME=V1,V2,...` (each value a quantity with its unit, all of one dimension).
pub fn parse_set(arg: &str) -> Result<Param, String> {
    let (name, list) = arg
        .split_once('=')
        .ok_or_else(|| format!("`--set {arg}`: expected NAME=V1,V2,..., e.g. `--set tau_e=100ms,300ms`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`--set {arg}`: the constant's name is missing"));
    }
    let mut values: Vec<Value> = Vec::new();
    for text in split_list(list) {
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("`--set {arg}`: an empty value in the list"));
        }
        let (si, dim) = snnc_compiler::eval_quantity(text).map_err(|e| format!("`--set {arg}`: {e}"))?;
        if let Some(first) = values.first()
            && first.dim != dim
        {
            return Err(format!(
                "`--set {arg}`: `{}` is in `{}` but `{text}` is in `{}`: the values of one constant have one unit",
                first.text, first.dim, dim
            ));
        }
        if values.iter().any(|v| v.text == text) {
            return Err(format!("`--set {arg}`: `{text}` is given twice"));
        }
        values.push(Value { text: text.to_string(), si, dim });
    }
    Ok(Param { name: name.to_string(), values })
}

/// Columns of `sweep.csv` that every sweep has: a swept constant may not be named like them.
const FIXED_COLUMNS: [&str; 8] = ["run", "point", "replica", "seed", "status", "dir", "steps", "error"];

/// The grid of a sweep: its constants and how many replicas each point has.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// The swept constants, in the order given (the first varies slowest).
    pub params: Vec<Param>,
    /// Replicas per point.
    pub replicas: u32,
}

impl Grid {
    /// The grid of `--set` arguments (each constant once) with `replicas` replicas
    /// per point. No `--set` gives one point: the model as written.
    pub fn parse(sets: &[String], replicas: u32) -> Result<Grid, String> {
        let mut params: Vec<Param> = Vec::new();
        for set in sets {
            let param = parse_set(set)?;
            if params.iter().any(|p| p.name == param.name) {
                return Err(format!(
                    "`--set {set}`: `{}` is swept twice: give all its values in one list, `--set {}=A,B`",
                    param.name, param.name
                ));
            }
            if FIXED_COLUMNS.contains(&param.name.as_str()) {
                return Err(format!(
                    "`--set {set}`: a constant named `{}` can not be swept (sweep.csv has a column of that name)",
                    param.name
                ));
            }
            params.push(param);
        }
        let grid = Grid { params, replicas };
        if grid.runs().is_none() {
            return Err("the sweep has too many runs".into());
        }
        Ok(grid)
    }

    /// How many points (product of the lists' lengths).
    pub fn points(&self) -> Option<u64> {
        self.params.iter().try_fold(1u64, |n, p| n.checked_mul(p.values.len() as u64))
    }

    /// How many runs (points times replicas).
    pub fn runs(&self) -> Option<u64> {
        self.points()?.checked_mul(u64::from(self.replicas))
    }

    /// The value of each constant at `point`: the index into each list.
    pub fn indices(&self, point: u64) -> Vec<usize> {
        let mut rest = point;
        let mut indices = vec![0; self.params.len()];
        for (k, param) in self.params.iter().enumerate().rev() {
            let n = param.values.len() as u64;
            indices[k] = (rest % n) as usize;
            rest /= n;
        }
        indices
    }

    /// The constants' values at `point`, with their names.
    pub fn values(&self, point: u64) -> Vec<(&str, &Value)> {
        self.params.iter().zip(self.indices(point)).map(|(p, k)| (p.name.as_str(), &p.values[k])).collect()
    }

    /// The overrides of `point`.
    pub fn overrides(&self, point: u64) -> Vec<snnc_compiler::Override> {
        self.values(point).into_iter().map(|(name, v)| v.override_for(name)).collect()
    }

    /// `NAME=VALUE` of each constant at `point`, as `snnc run --set` takes them.
    pub fn sets(&self, point: u64) -> Vec<String> {
        self.values(point).into_iter().map(|(name, v)| format!("{name}={}", v.text)).collect()
    }

    /// The folder of `point`: `p<point>-<name>=<value>-...`, the index zero-padded
    /// (at least three digits, so folders sort in point order), values as given
    /// with spaces dropped and characters other than letters, digits and `.+-`
    /// replaced by `_` (the index keeps names unique).
    pub fn point_dir(&self, point: u64) -> String {
        let width = self.points().unwrap_or(1).saturating_sub(1).max(1).ilog10() as usize + 1;
        let mut name = format!("p{point:0width$}", width = width.max(3));
        for (param, value) in self.values(point) {
            let value: String = value
                .text
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| if c.is_ascii_alphanumeric() || ".+-".contains(c) { c } else { '_' })
                .collect();
            name.push_str(&format!("-{param}={value}"));
        }
        name
    }

    /// The folder of run `run`, relative to the sweep's: `<point folder>/replica-<r>`.
    pub fn run_dir(&self, run: u64) -> String {
        let (point, replica) = self.split(run);
        format!("{}/{}", self.point_dir(point), crate::replicas::dir_name(replica, self.replicas))
    }

    /// The point and replica of run `run`.
    pub fn split(&self, run: u64) -> (u64, u32) {
        let replicas = u64::from(self.replicas.max(1));
        (run / replicas, (run % replicas) as u32)
    }

    /// What identifies the sweep (`sweep.json`): every shard of one sweep has the same.
    pub fn definition(&self) -> serde_json::Value {
        serde_json::json!({
            "parameters": self.params.iter().map(|p| serde_json::json!({
                "name": p.name,
                "values": p.values.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(),
                "si": p.values.iter().map(|v| v.si).collect::<Vec<_>>(),
                "unit": p.values.first().map(|v| v.dim.to_string()),
            })).collect::<Vec<_>>(),
            "points": self.points(),
            "replicas": self.replicas,
            "runs": self.runs(),
        })
    }
}

/// `--shard K/N`: the `K`-th (from 1) of `N` slices of a sweep's runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` with `1 <= K <= N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text.split_once('/').ok_or_else(|| format!("expected K/N, e.g. `--shard 1/4`, not `{text}`"))?;
        let number =
            |s: &str| s.trim().parse::<u32>().map_err(|e| format!("`{text}`: expected K/N with whole numbers: {e}"));
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{text}`: K counts from 1 to N (N at least 1), e.g. `1/{}`", count.max(1)));
        }
        Ok(Shard { index, count })
    }

    /// Whether run `run` is in this slice: runs are dealt out in turn (`run % N == K - 1`),
    /// so each shard gets a share of every part of the grid.
    pub fn contains(&self, run: u64) -> bool {
        run % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The file name of this shard's table or manifest: `sweep-shard-K-of-N.<extension>`.
    pub fn file_name(&self, extension: &str) -> String {
        format!("sweep-shard-{}-of-{}.{extension}", self.index, self.count)
    }

    /// The shard a file name `sweep-shard-K-of-N.<extension>` names.
    pub fn of_file_name(name: &str, extension: &str) -> Option<Shard> {
        let rest = name.strip_prefix("sweep-shard-")?.strip_suffix(&format!(".{extension}"))?;
        let (k, n) = rest.split_once("-of-")?;
        let (index, count) = (k.parse().ok()?, n.parse().ok()?);
        (index >= 1 && index <= count).then_some(Shard { index, count })
    }
}

/// A CSV field: quoted (with `"` doubled) when it holds a comma, quote, line
/// break or leading or trailing space; line breaks become spaces, so a record is one line.
pub fn csv_field(text: &str) -> String {
    let text: String = text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    if text.contains([',', '"']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A number as `sweep.csv` writes it: the shortest text that reads back to the same `f64`.
pub fn csv_number(x: f64) -> String {
    format!("{x:?}")
}

/// What one run gives `sweep.csv`, besides its place in the grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Steps of the whole run.
    pub steps: u64,
    /// Spikes of each spiking group.
    pub spikes: Vec<(String, u64)>,
    /// Mean rate of each spiking group, in Hz.
    pub rates: Vec<(String, f64)>,
    /// Per episode, named results (`food_per_1000_steps`, `reward`, counters).
    pub episodes: Vec<Vec<(String, f64)>>,
}

/// The columns of `sweep.csv`, as names of groups and of episode results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Columns {
    /// Spiking groups.
    pub groups: Vec<String>,
    /// Named episode results (empty without an environment).
    pub metrics: Vec<String>,
}

impl Columns {
    /// The header: `run, point`, each constant in SI and `<name>.given`, `replica,
    /// seed, status, dir, steps`, `spikes.<G>` and `rate_hz.<G>` per spiking group,
    /// `<metric>.mean` and `<metric>.last` over episodes, `error`.
    pub fn header(&self, grid: &Grid) -> Vec<String> {
        let mut header: Vec<String> = vec!["run".into(), "point".into()];
        header.extend(grid.params.iter().map(|p| p.name.clone()));
        header.extend(grid.params.iter().map(|p| format!("{}.given", p.name)));
        header.extend(["replica", "seed", "status", "dir", "steps"].map(String::from));
        header.extend(self.groups.iter().map(|g| format!("spikes.{g}")));
        header.extend(self.groups.iter().map(|g| format!("rate_hz.{g}")));
        for m in &self.metrics {
            header.push(format!("{m}.mean"));
            header.push(format!("{m}.last"));
        }
        header.push("error".into());
        header
    }

    /// The row of run `run` (seeded `seed`): its outcome, or the error that stopped it.
    pub fn row(&self, grid: &Grid, run: u64, seed: u64, result: Result<&Outcome, &str>) -> Vec<String> {
        let (point, replica) = grid.split(run);
        let values = grid.values(point);
        let mut row: Vec<String> = vec![run.to_string(), point.to_string()];
        row.extend(values.iter().map(|(_, v)| csv_number(v.si)));
        row.extend(values.iter().map(|(_, v)| v.text.clone()));
        row.extend([replica.to_string(), seed.to_string()]);
        let blanks = 2 * self.groups.len() + 2 * self.metrics.len();
        match result {
            Ok(outcome) => {
                row.extend(["ok".to_string(), grid.run_dir(run), outcome.steps.to_string()]);
                let find = |list: &[(String, u64)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                row.extend(
                    self.groups.iter().map(|g| find(&outcome.spikes, g).map_or(String::new(), |n| n.to_string())),
                );
                row.extend(self.groups.iter().map(|g| {
                    outcome.rates.iter().find(|(n, _)| n == g).map_or(String::new(), |(_, r)| csv_number(*r))
                }));
                for m in &self.metrics {
                    let values: Vec<f64> = outcome
                        .episodes
                        .iter()
                        .filter_map(|e| e.iter().find(|(n, _)| n == m).map(|(_, v)| *v))
                        .collect();
                    let mean = crate::replicas::Stats::of(&values).map(|s| s.mean);
                    row.push(mean.map_or(String::new(), csv_number));
                    row.push(values.last().map_or(String::new(), |v| csv_number(*v)));
                }
                row.push(String::new());
            }
            Err(e) => {
                row.extend(["failed".to_string(), String::new(), String::new()]);
                row.extend(std::iter::repeat_n(String::new(), blanks));
                row.push(e.to_string());
            }
        }
        row
    }
}

/// A CSV text of a header and rows, one line each.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let line = |fields: &[String]| fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    let mut text = line(header);
    text.push('\n');
    for row in rows {
        text.push_str(&line(row));
        text.push('\n');
    }
    text
}

/// The manifest of a shard or of a whole sweep: the definition, plus `shard` and
/// `shards` for a shard.
pub fn manifest(definition: &serde_json::Value, shard: Option<Shard>) -> serde_json::Value {
    let mut manifest = definition.clone();
    if let Some(shard) = shard {
        manifest["shard"] = serde_json::json!(shard.index);
        manifest["shards"] = serde_json::json!(shard.count);
    }
    manifest
}

/// Whether `dir` may receive a sweep with `definition`: it does not exist, is
/// empty, or holds manifests (`sweep.json`, `sweep-shard-*.json`) of this same
/// sweep. `Err` says why not.
pub fn check_out_dir(dir: &Path, definition: &serde_json::Value) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return if dir.exists() { Err(format!("`{}` is not a folder", dir.display())) } else { Ok(()) };
    };
    let mut empty = true;
    let mut manifests = 0;
    for entry in entries.flatten() {
        empty = false;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "sweep.json" || Shard::of_file_name(&name, "json").is_some() {
            manifests += 1;
            let path = entry.path();
            let other = read_manifest(&path)?;
            if strip_shard(&other) != *definition {
                return Err(format!(
                    "`{}` holds another sweep (`{}` differs: model, constants, values, replicas, seed or run \
                     length): choose another `--out`",
                    dir.display(),
                    path.display()
                ));
            }
        }
    }
    if !empty && manifests == 0 {
        return Err(format!(
            "`{}` exists and is not an snnc sweep folder (no sweep.json): choose another `--out`",
            dir.display()
        ));
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}` is not a sweep manifest: {e}", path.display()))
}

/// A manifest without its shard fields: the sweep's definition.
fn strip_shard(manifest: &serde_json::Value) -> serde_json::Value {
    let mut definition = manifest.clone();
    if let Some(object) = definition.as_object_mut() {
        object.remove("shard");
        object.remove("shards");
    }
    definition
}

/// A shard found by [`merge`]: its manifest, table, and where they are.
struct ShardFiles {
    shard: Shard,
    csv: PathBuf,
    manifest: serde_json::Value,
}

/// Joins the shards' tables found in `dirs` (`sweep-shard-K-of-N.csv` with its
/// `.json` manifest): they must be shards `1..=N` of one sweep (same manifest but
/// for the shard, same header), each once, holding between them every run once,
/// each in its own shard. Returns the sweep's manifest and `sweep.csv`'s text
/// (rows in run order: the same bytes as the sweep run in one go).
pub fn merge(dirs: &[PathBuf]) -> Result<(serde_json::Value, String), String> {
    let mut shards: Vec<ShardFiles> = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for name in names {
            let Some(shard) = Shard::of_file_name(&name, "csv") else { continue };
            let csv = dir.join(&name);
            let manifest_path = dir.join(shard.file_name("json"));
            let manifest = read_manifest(&manifest_path)?;
            if manifest["shard"] != shard.index || manifest["shards"] != shard.count {
                return Err(format!(
                    "`{}` does not describe shard {}/{}",
                    manifest_path.display(),
                    shard.index,
                    shard.count
                ));
            }
            if let Some(other) = shards.iter().find(|s| s.shard == shard) {
                return Err(format!(
                    "shard {}/{} is given twice: `{}` and `{}`",
                    shard.index,
                    shard.count,
                    other.csv.display(),
                    csv.display()
                ));
            }
            shards.push(ShardFiles { shard, csv, manifest });
        }
    }
    let where_ = dirs.iter().map(|d| format!("`{}`", d.display())).collect::<Vec<_>>().join(", ");
    let first = shards.first().ok_or_else(|| format!("no shard tables (sweep-shard-K-of-N.csv) in {where_}"))?;
    let count = first.shard.count;
    let definition = strip_shard(&first.manifest);
    for s in &shards {
        if s.shard.count != count {
            return Err(format!(
                "`{}` is a shard of {} but `{}` of {count}: shards of different splits",
                s.csv.display(),
                s.shard.count,
                first.csv.display()
            ));
        }
        if strip_shard(&s.manifest) != definition {
            return Err(format!(
                "`{}` and `{}` are shards of different sweeps (model, constants, values, replicas, seed or run length)",
                s.csv.display(),
                first.csv.display()
            ));
        }
    }
    let missing: Vec<String> =
        (1..=count).filter(|k| !shards.iter().any(|s| s.shard.index == *k)).map(|k| format!("{k}/{count}")).collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} {} {} missing in {where_}",
            if missing.len() == 1 { "shard" } else { "shards" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        ));
    }
    let runs = definition["runs"].as_u64().ok_or("the shards' manifests give no number of runs")?;
    let mut header: Option<(&str, &Path)> = None;
    let mut texts = Vec::new();
    for s in &shards {
        texts.push(std::fs::read_to_string(&s.csv).map_err(|e| format!("cannot read `{}`: {e}", s.csv.display()))?);
    }
    let mut rows: Vec<(u64, &str)> = Vec::new();
    for (s, text) in shards.iter().zip(&texts) {
        let mut lines = text.lines();
        let head = lines.next().ok_or_else(|| format!("`{}` is empty", s.csv.display()))?;
        match header {
            None => header = Some((head, &s.csv)),
            Some((h, path)) if h != head => {
                return Err(format!("`{}` and `{}` have different columns", s.csv.display(), path.display()));
            }
            Some(_) => {}
        }
        for (k, line) in lines.enumerate() {
            let at = || format!("`{}` line {}", s.csv.display(), k + 2);
            let run: u64 = line
                .split(',')
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("{}: expected a run number first", at()))?;
            if run >= runs || !s.shard.contains(run) {
                return Err(format!("{}: run {run} does not belong to shard {}/{count}", at(), s.shard.index));
            }
            rows.push((run, line));
        }
    }
    rows.sort_by_key(|(run, _)| *run);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("run {} is in the shards twice", w[0].0));
    }
    if rows.len() as u64 != runs {
        let have: std::collections::BTreeSet<u64> = rows.iter().map(|(r, _)| *r).collect();
        let lacking: Vec<String> = (0..runs).filter(|r| !have.contains(r)).take(10).map(|r| r.to_string()).collect();
        return Err(format!("the shards hold {} of {runs} runs (missing: {}...)", rows.len(), lacking.join(", ")));
    }
    let mut text = String::new();
    if let Some((head, _)) = header {
        text.push_str(head);
        text.push('\n');
    }
    for (_, line) in rows {
        text.push_str(line);
        text.push('\n');
    }
    Ok((definition, text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn run_overrides_take_one_value() {
        let o = parse_override("tau_m = 10 ms").unwrap();
        assert_eq!((o.name.as_str(), o.value, o.text.as_str()), ("tau_m", 0.01, "10 ms"));
        assert!(parse_override("tau_m").unwrap_err().contains("expected NAME=VALUE"));
        assert!(parse_override("tau_m=1ms,2ms").unwrap_err().contains("one value per constant"));
        assert!(parse_override("tau_m=2 furlongs").is_err());
    }

    fn grid(sets: &[&str], replicas: u32) -> Grid {
        Grid::parse(&sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(), replicas).unwrap()
    }

    #[test]
    fn value_lists_with_units() {
        let p = parse_set("tau_e=100ms, 300 ms,1s").unwrap();
        assert_eq!(p.name, "tau_e");
        let texts: Vec<&str> = p.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(texts, ["100ms", "300 ms", "1s"]);
        assert_eq!(p.values[1].si, 0.3);
        assert_eq!(p.values[2].dim, Dimension::TIME);
        let c = parse_set("x=clip(5, 0, 2)*mV,1mV").unwrap();
        assert_eq!(c.values.len(), 2);
        assert_eq!(c.values[0].si, 0.002);
        for (bad, why) in [
            ("tau", "expected NAME=V1,V2"),
            ("=1ms", "name is missing"),
            ("tau=1ms,", "empty value"),
            ("tau=1ms,2mV", "one unit"),
            ("tau=1ms,1ms", "given twice"),
            ("tau=fast", "not a quantity"),
        ] {
            let e = parse_set(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn grid_points_runs_and_folders() {
        let g = grid(&["tau_e=100ms,300ms,1 s", "eta=0.1,0.5"], 2);
        assert_eq!((g.points(), g.runs()), (Some(6), Some(12)));
        // The first constant varies slowest.
        assert_eq!(g.indices(0), [0, 0]);
        assert_eq!(g.indices(1), [0, 1]);
        assert_eq!(g.indices(5), [2, 1]);
        assert_eq!(g.sets(3), ["tau_e=300ms", "eta=0.5"]);
        assert_eq!(g.point_dir(5), "p005-tau_e=1s-eta=0.5");
        assert_eq!(g.run_dir(11), "p005-tau_e=1s-eta=0.5/replica-1");
        assert_eq!(g.split(7), (3, 1));
        let o = g.overrides(4);
        assert_eq!((o[0].name.as_str(), o[0].value, o[1].value), ("tau_e", 1.0, 0.1));
        let odd = grid(&["I=0.5*nA/2"], 1);
        assert_eq!(odd.point_dir(0), "p000-I=0.5_nA_2");
        let none = grid(&[], 3);
        assert_eq!((none.points(), none.runs()), (Some(1), Some(3)));
        assert_eq!(none.run_dir(2), "p000/replica-2");
        let e = Grid::parse(&["a=1,2".into(), "a=3".into()], 1).unwrap_err();
        assert!(e.contains("swept twice"), "{e}");
        let e = Grid::parse(&["seed=1,2".into()], 1).unwrap_err();
        assert!(e.contains("column"), "{e}");
    }

    #[test]
    fn shards_split_the_runs_in_turn() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/2", "3/2", "1/0", "x", "1/2/3", "a/b", "-1/2", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { index: k, count: 3 }).collect();
        for run in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.contains(run)).count(), 1);
        }
        assert!(shards[1].contains(4));
        let s = Shard { index: 2, count: 12 };
        assert_eq!(s.file_name("csv"), "sweep-shard-2-of-12.csv");
        assert_eq!(Shard::of_file_name("sweep-shard-2-of-12.csv", "csv"), Some(s));
        assert_eq!(Shard::of_file_name("sweep-shard-3-of-2.csv", "csv"), None);
        assert_eq!(Shard::of_file_name("sweep.csv", "csv"), None);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "two lines");
        assert_eq!(csv_field(" 1 s"), "\" 1 s\"");
        assert_eq!(csv_number(0.1), "0.1");
        assert_eq!(csv_number(100.0), "100.0");
        assert_eq!(csv_number(1e-20), "1e-20");
    }

    #[test]
    fn rows_of_runs_and_failures() {
        let g = grid(&["tau=1 ms,2ms"], 2);
        let columns = Columns { groups: vec!["S".into()], metrics: vec!["reward".into()] };
        let header = columns.header(&g);
        assert_eq!(
            header.join(","),
            "run,point,tau,tau.given,replica,seed,status,dir,steps,spikes.S,rate_hz.S,reward.mean,reward.last,error"
        );
        let outcome = Outcome {
            steps: 100,
            spikes: vec![("S".into(), 7)],
            rates: vec![("S".into(), 3.5)],
            episodes: vec![vec![("reward".into(), 1.0)], vec![("reward".into(), 2.0)]],
        };
        let row = columns.row(&g, 3, 11, Ok(&outcome));
        assert_eq!(row.join(","), "3,1,0.002,2ms,1,11,ok,p001-tau=2ms/replica-1,100,7,3.5,1.5,2.0,");
        let failed = columns.row(&g, 0, 10, Err("it broke, badly"));
        assert_eq!(failed.len(), header.len());
        let text = csv(&header, &[failed]);
        assert!(text.ends_with("0,0,0.001,1 ms,0,10,failed,,,,,,,\"it broke, badly\"\n"), "{text}");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("snnc-sweep-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_shard(dir: &Path, g: &Grid, shard: Shard, skip: Option<u64>) {
        let columns = Columns::default();
        let rows: Vec<Vec<String>> = (0..g.runs().unwrap())
            .filter(|r| shard.contains(*r) && Some(*r) != skip)
            .map(|r| columns.row(g, r, 1, Err("x")))
            .collect();
        std::fs::write(dir.join(shard.file_name("csv")), csv(&columns.header(g), &rows)).unwrap();
        let manifest = manifest(&g.definition(), Some(shard));
        std::fs::write(dir.join(shard.file_name("json")), manifest.to_string()).unwrap();
    }

    #[test]
    fn merging_checks_the_shards() {
        let g = grid(&["a=1,2,3"], 2);
        let whole: Vec<Vec<String>> = (0..6).map(|r| Columns::default().row(&g, r, 1, Err("x"))).collect();
        let expected = csv(&Columns::default().header(&g), &whole);
        let (one, two) = (scratch("one"), scratch("two"));
        write_shard(&one, &g, Shard { index: 1, count: 2 }, None);
        let e = merge(std::slice::from_ref(&one)).unwrap_err();
        assert!(e.contains("shard 2/2 is missing"), "{e}");
        write_shard(&two, &g, Shard { index: 2, count: 2 }, None);
        let (definition, text) = merge(&[one.clone(), two.clone()]).unwrap();
        assert_eq!(text, expected);
        assert_eq!(definition, g.definition());
        let e = merge(&[one.clone(), two.clone(), two.clone()]).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        write_shard(&two, &g, Shard { index: 2, count: 2 }, Some(3));
        let e = merge(&[one.clone(), two.clone()]).unwrap_err();
        assert!(e.contains("5 of 6 runs") && e.contains("missing: 3"), "{e}");
        let other = grid(&["a=1,2,4"], 2);
        write_shard(&two, &other, Shard { index: 2, count: 2 }, None);
        let e = merge(&[one.clone(), two.clone()]).unwrap_err();
        assert!(e.contains("different sweeps"), "{e}");
        let e = merge(&[scratch("empty")]).unwrap_err();
        assert!(e.contains("no shard tables"), "{e}");
        assert!(check_out_dir(&one, &g.definition()).is_ok());
        let e = check_out_dir(&one, &other.definition()).unwrap_err();
        assert!(e.contains("another sweep"), "{e}");
        std::fs::write(scratch("foreign").join("notes.txt"), "x").unwrap();
        assert!(
            check_out_dir(
                &std::env::temp_dir().join(format!("snnc-sweep-unit-{}-foreign", std::process::id())),
                &g.definition()
            )
            .is_err()
        );
    }
}

//! Replicas: one compiled model run several times in parallel with different
//! seeds (`snnc run --replicas K`), and statistics across the runs.
//!
//! Replica `r` of a run seeded `s` uses seed `s + r` ([`seeds`]), so its results
//! are those of a single run with that seed, bit for bit. The model is compiled
//! once; every replica runs the same machine code ([`run`]) on rayon's current
//! thread pool (all cores unless the caller installs a smaller pool).

use crate::sim::Kernels;
use rayon::prelude::*;
use snnc_compiler::abi::KernelFn;

/// Kernels whose code belongs to another value: a copy of its function pointers.
///
/// Made only by [`run`], which keeps the owner borrowed until every replica has
/// finished with them.
struct SharedKernels(Vec<KernelFn>);

impl Kernels for SharedKernels {
    fn functions(&self) -> &[KernelFn] {
        &self.0
    }
}

/// Runs `job(r, kernels)` for every replica `r` in `0..count` on rayon's current
/// thread pool, all on the compiled code of `functions` (from [`Kernels::functions`]),
/// and returns the results in replica order.
///
/// The kernels are compiled once. The JIT module that owns their code is not
/// `Sync`, but the functions are plain `extern "C"` function pointers (`Send +
/// Sync`): each job gets its own table of them. `functions` is borrowed from the
/// owner of the code until every job has returned, so the code outlives every
/// simulation built on it: a job can not keep its `Box<dyn Kernels>` (or a
/// `Simulation` holding it) past its return, since neither is `Send` and `T` must be.
pub fn run<T: Send>(functions: &[KernelFn], count: u32, job: impl Fn(u32, Box<dyn Kernels>) -> T + Sync) -> Vec<T> {
    run_each(count as usize, |_| functions, |r, kernels| job(r as u32, kernels))
}

/// Like [`run`], with job `k` on the code of `functions(k)` (a sweep compiles once
/// per distinct structure of its points): runs `job(k, kernels)` for every `k` in
/// `0..count` and returns the results in order. Every table `functions` returns is
/// borrowed for `'a`, past the return of every job.
pub fn run_each<'a, T: Send>(
    count: usize,
    functions: impl Fn(usize) -> &'a [KernelFn] + Sync,
    job: impl Fn(usize, Box<dyn Kernels>) -> T + Sync,
) -> Vec<T> {
    (0..count).into_par_iter().map(|k| job(k, Box::new(SharedKernels(functions(k).to_vec())))).collect()
}

/// The seeds of `count` replicas of a run seeded `seed`: `seed + r` for replica `r`;
/// `None` if the last one overflows.
pub fn seeds(seed: u64, count: u32) -> Option<Vec<u64>> {
    (0..count).map(|r| seed.checked_add(u64::from(r))).collect()
}

/// The folder of replica `r` of `count`: `replica-<r>`, `r` zero-padded to the
/// width of the largest index (`replica-0`..`replica-9`, `replica-00`..`replica-15`),
/// so the folders sort in replica order.
pub fn dir_name(r: u32, count: u32) -> String {
    let width = count.saturating_sub(1).max(1).ilog10() as usize + 1;
    format!("replica-{r:0width$}")
}

/// Statistics of one quantity across replicas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// How many values.
    pub n: usize,
    /// The mean (the sum in replica order, divided by `n`).
    pub mean: f64,
    /// The sample standard deviation (denominator `n - 1`; 0 for one value).
    pub sd: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    /// The statistics of some values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        // Two passes: no cancellation when the spread is small beside the mean.
        let squares: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
        let sd = if n > 1 { (squares / (n - 1) as f64).sqrt() } else { 0.0 };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Stats { n, mean, sd, min, max })
    }

    /// `{"mean": .., "sd": .., "min": .., "max": ..}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "mean": self.mean, "sd": self.sd, "min": self.min, "max": self.max })
    }

    /// `mean ± sd [min, max]` with `digits` decimals.
    pub fn text(&self, digits: usize) -> String {
        format!("{:.digits$} ± {:.digits$} [{:.digits$}, {:.digits$}]", self.mean, self.sd, self.min, self.max)
    }
}

/// Statistics per name of rows of named values (one row per replica): the names in
/// the order of the first row that has them, each over the rows that have it.
pub fn summarize(rows: &[&[(String, f64)]]) -> Vec<(String, Stats)> {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        for (name, _) in row.iter() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<f64> =
                rows.iter().filter_map(|row| row.iter().find(|(n, _)| n == name).map(|(_, v)| *v)).collect();
            Stats::of(&values).map(|s| (name.to_string(), s))
        })
        .collect()
}

/// What one replica did, for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replica {
    /// Its seed.
    pub seed: u64,
    /// Its folder, relative to the run's.
    pub dir: String,
    /// Per episode, named results (`food_per_1000_steps`, `reward`, the environment's counters).
    pub episodes: Vec<Vec<(String, f64)>>,
    /// Mean rate of each spiking group, in Hz.
    pub rates: Vec<(String, f64)>,
}

/// The statistics of each episode's results across replicas (episode `e` over the replicas that ran it).
fn episode_stats(replicas: &[Replica]) -> Vec<Vec<(String, Stats)>> {
    let episodes = replicas.iter().map(|r| r.episodes.len()).max().unwrap_or(0);
    (0..episodes)
        .map(|e| {
            let rows: Vec<&[(String, f64)]> =
                replicas.iter().filter_map(|r| r.episodes.get(e)).map(Vec::as_slice).collect();
            summarize(&rows)
        })
        .collect()
}

fn rate_stats(replicas: &[Replica]) -> Vec<(String, Stats)> {
    let rows: Vec<&[(String, f64)]> = replicas.iter().map(|r| r.rates.as_slice()).collect();
    summarize(&rows)
}

fn stats_map(stats: &[(String, Stats)]) -> serde_json::Map<String, serde_json::Value> {
    stats.iter().map(|(name, s)| (name.clone(), s.json())).collect()
}

/// `summary.json` of a run of replicas: per episode (models bound to an environment)
/// and per spiking group's mean rate, the mean, sample standard deviation, min and
/// max across replicas; and each replica's seed, folder and results.
pub fn summary(replicas: &[Replica]) -> serde_json::Value {
    let per_replica: Vec<serde_json::Value> = replicas
        .iter()
        .enumerate()
        .map(|(r, replica)| {
            let mut value = serde_json::json!({ "replica": r, "seed": replica.seed, "dir": replica.dir });
            if !replica.episodes.is_empty() {
                let mut names: Vec<&str> = Vec::new();
                for (name, _) in replica.episodes.iter().flatten() {
                    if !names.contains(&name.as_str()) {
                        names.push(name);
                    }
                }
                for name in names {
                    let values: Vec<Option<f64>> =
                        replica.episodes.iter().map(|e| e.iter().find(|(n, _)| n == name).map(|(_, v)| *v)).collect();
                    value[name] = serde_json::json!(values);
                }
            }
            value["mean_rate_hz"] = serde_json::Value::Object(
                replica.rates.iter().map(|(n, r)| (n.clone(), serde_json::json!(r))).collect(),
            );
            value
        })
        .collect();
    let mut value = serde_json::json!({
        "replicas": replicas.len(),
        "statistics": "across replicas: mean, sd (sample standard deviation, n - 1; 0 for one replica), min, max",
        "seeds": replicas.iter().map(|r| r.seed).collect::<Vec<_>>(),
    });
    if replicas.iter().any(|r| !r.episodes.is_empty()) {
        value["episodes"] = serde_json::json!(
            episode_stats(replicas).iter().map(|e| serde_json::Value::Object(stats_map(e))).collect::<Vec<_>>()
        );
    }
    value["mean_rate_hz"] = serde_json::Value::Object(stats_map(&rate_stats(replicas)));
    value["per_replica"] = serde_json::json!(per_replica);
    value
}

/// The terminal's table: per episode, food per 1,000 steps and reward (mean ± sd
/// [min, max]); for a model without episodes, the mean rate of each spiking group.
pub fn table(replicas: &[Replica]) -> String {
    let mut lines = Vec::new();
    let seeds = match (replicas.first(), replicas.last()) {
        (Some(first), Some(last)) if replicas.len() > 1 => format!("seeds {}..={}", first.seed, last.seed),
        (Some(first), _) => format!("seed {}", first.seed),
        _ => "no seeds".to_string(),
    };
    lines.push(format!("{} replicas ({seeds}), mean ± sd [min, max] across replicas:", replicas.len()));
    let episodes = episode_stats(replicas);
    if episodes.is_empty() {
        let rates = rate_stats(replicas);
        if rates.is_empty() {
            lines.push("no spiking groups".to_string());
        } else {
            let width = rates.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0).max("group".len());
            lines.push(format!("{:<width$}  mean rate (Hz)", "group"));
            for (name, stats) in &rates {
                lines.push(format!("{name:<width$}  {}", stats.text(2)));
            }
        }
        return lines.join("\n");
    }
    let find = |e: &[(String, Stats)], name: &str| e.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    let food: Vec<String> =
        episodes.iter().map(|e| find(e, "food_per_1000_steps").map_or("-".into(), |s| s.text(2))).collect();
    let reward: Vec<String> = episodes.iter().map(|e| find(e, "reward").map_or("-".into(), |s| s.text(2))).collect();
    let food_header = "food per 1000 steps";
    let food_width = food.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(food_header.len());
    lines.push(format!("episode  {food_header:<food_width$}  reward"));
    for (e, (food, reward)) in food.iter().zip(&reward).enumerate() {
        // Widths count characters (`±` is one).
        lines.push(format!("{:>7}  {food:<food_width$}  {reward}", e + 1));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn stats_of_values() {
        let s = Stats::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.mean, 5.0);
        // Sample variance: 32 / 7.
        assert_eq!(s.sd, (32.0f64 / 7.0).sqrt());
        assert_eq!((s.min, s.max), (2.0, 9.0));
        let one = Stats::of(&[1.5]).unwrap();
        assert_eq!((one.n, one.mean, one.sd, one.min, one.max), (1, 1.5, 0.0, 1.5, 1.5));
        assert_eq!(Stats::of(&[]), None);
        // Equal values have no spread, however large.
        let same = Stats::of(&[1e12 + 0.1; 5]).unwrap();
        assert_eq!(same.sd, 0.0);
        assert_eq!(same.mean, 1e12 + 0.1);
        let negative = Stats::of(&[-1.0, -3.0]).unwrap();
        assert_eq!((negative.mean, negative.min, negative.max), (-2.0, -3.0, -1.0));
        assert_eq!(negative.sd, 2.0f64.sqrt());
    }

    #[test]
    fn stats_text_and_json() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.text(2), "2.00 ± 1.00 [1.00, 3.00]");
        assert_eq!(s.json(), serde_json::json!({"mean": 2.0, "sd": 1.0, "min": 1.0, "max": 3.0}));
    }

    fn named(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn summarize_by_name_in_first_seen_order() {
        let a = named(&[("food", 1.0), ("reward", 0.5)]);
        let b = named(&[("food", 3.0), ("reward", -0.5), ("extra", 7.0)]);
        let stats = summarize(&[&a, &b]);
        let names: Vec<&str> = stats.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["food", "reward", "extra"]);
        assert_eq!(stats[0].1, Stats::of(&[1.0, 3.0]).unwrap());
        assert_eq!(stats[1].1.mean, 0.0);
        assert_eq!(stats[2].1.n, 1);
        assert!(summarize(&[]).is_empty());
    }

    #[test]
    fn seeds_and_folders() {
        assert_eq!(seeds(5, 3), Some(vec![5, 6, 7]));
        assert_eq!(seeds(u64::MAX, 1), Some(vec![u64::MAX]));
        assert_eq!(seeds(u64::MAX, 2), None);
        assert_eq!(seeds(0, 0), Some(vec![]));
        assert_eq!(dir_name(0, 1), "replica-0");
        assert_eq!(dir_name(3, 10), "replica-3");
        assert_eq!(dir_name(3, 11), "replica-03");
        assert_eq!(dir_name(10, 11), "replica-10");
        assert_eq!(dir_name(7, 1000), "replica-007");
        assert_eq!(dir_name(0, 0), "replica-0");
    }

    fn replica(seed: u64, food: &[f64], reward: &[f64]) -> Replica {
        Replica {
            seed,
            dir: format!("replica-{seed}"),
            episodes: food
                .iter()
                .zip(reward)
                .map(|(&f, &r)| named(&[("food_per_1000_steps", f), ("reward", r), ("food", f * 2.0)]))
                .collect(),
            rates: named(&[("S", 10.0 + seed as f64)]),
        }
    }

    #[test]
    fn summary_per_episode_across_replicas() {
        let replicas = [replica(1, &[1.0, 2.0], &[0.5, 1.0]), replica(2, &[3.0, 2.0], &[1.5, -1.0])];
        let summary = summary(&replicas);
        assert_eq!(summary["replicas"], 2);
        assert_eq!(summary["seeds"], serde_json::json!([1, 2]));
        let episodes = summary["episodes"].as_array().unwrap();
        assert_eq!(episodes.len(), 2);
        assert_eq!(episodes[0]["food_per_1000_steps"], Stats::of(&[1.0, 3.0]).unwrap().json());
        assert_eq!(episodes[1]["food_per_1000_steps"]["sd"], 0.0);
        assert_eq!(episodes[1]["reward"], Stats::of(&[1.0, -1.0]).unwrap().json());
        assert_eq!(episodes[0]["food"]["max"], 6.0);
        assert_eq!(summary["mean_rate_hz"]["S"], Stats::of(&[11.0, 12.0]).unwrap().json());
        assert_eq!(summary["per_replica"][1]["seed"], 2);
        assert_eq!(summary["per_replica"][1]["dir"], "replica-2");
        assert_eq!(summary["per_replica"][1]["food_per_1000_steps"], serde_json::json!([3.0, 2.0]));
        assert_eq!(summary["per_replica"][0]["reward"], serde_json::json!([0.5, 1.0]));

        let table = table(&replicas);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "2 replicas (seeds 1..=2), mean ± sd [min, max] across replicas:");
        assert!(lines[1].starts_with("episode  food per 1000 steps"), "{table}");
        assert_eq!(lines[2], "      1  2.00 ± 1.41 [1.00, 3.00]  1.00 ± 0.71 [0.50, 1.50]", "{table}");
        assert_eq!(lines[3], "      2  2.00 ± 0.00 [2.00, 2.00]  0.00 ± 1.41 [-1.00, 1.00]", "{table}");
        assert_eq!(lines.len(), 4, "{table}");
    }

    #[test]
    fn summary_without_an_environment_has_rates_only() {
        let replicas = [replica(4, &[], &[]), replica(5, &[], &[])];
        let summary = summary(&replicas);
        assert!(summary.get("episodes").is_none());
        assert_eq!(summary["mean_rate_hz"]["S"]["min"], 14.0);
        assert!(summary["per_replica"][0].get("food_per_1000_steps").is_none());
        let table = table(&replicas);
        assert!(table.contains("group  mean rate (Hz)"), "{table}");
        assert!(table.contains("S      14.50 ± 0.71 [14.00, 15.00]"), "{table}");
    }

    #[test]
    fn every_replica_runs_once_on_the_same_code() {
        unsafe extern "C" fn nothing(_: *const snnc_compiler::abi::KernelArgs) {}
        struct Two([KernelFn; 2]);
        impl Kernels for Two {
            fn functions(&self) -> &[KernelFn] {
                &self.0
            }
        }
        let owner = Two([nothing, nothing]);
        let seen = run(owner.functions(), 5, |r, kernels| {
            let same = kernels.functions().iter().zip(owner.functions()).all(|(a, b)| std::ptr::fn_addr_eq(*a, *b));
            (r, kernels.functions().len(), same)
        });
        assert_eq!(seen, (0..5).map(|r| (r, 2, true)).collect::<Vec<_>>());
    }
}

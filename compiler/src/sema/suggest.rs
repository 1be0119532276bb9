//! "Did you mean ...?" suggestions by edit distance.

/// The edit distance between two strings by characters: insertions, deletions,
/// substitutions and swaps of two neighbours (`Ihn` -> `Inh` is one edit).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best =
                    (d[(i - 1) * width + j] + 1).min(d[i * width + j - 1] + 1).min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// Positions where two strings of equal length differ (`mv`/`mV` 1, `mv`/`MV` 2).
fn case_differences(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).filter(|(x, y)| x != y).count()
}

/// The closest candidate, as a note: within a third of the name's length in edits, the
/// same name in other case, or a longer name it begins (`exponential` -> `exponential_euler`).
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The closest candidate (see `did_you_mean`).
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    // (edits, case differences, candidate): smaller is better.
    let mut best: Option<(usize, usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let score = if candidate.eq_ignore_ascii_case(name) {
            (0, case_differences(name, candidate))
        } else if name.chars().count() >= 4 && candidate.starts_with(name) {
            (limit, 0)
        } else {
            (distance(name, candidate), 0)
        };
        if score.0 <= limit && best.is_none_or(|(e, c, b)| (score.0, score.1, candidate) < (e, c, b)) {
            best = Some((score.0, score.1, candidate));
        }
    }
    best.map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("tau_m", "tau_m"), 0);
        assert_eq!(distance("tau_n", "tau_m"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("v_rest", "v_reset"), 1);
        assert_eq!(distance("Ihn", "Inh"), 1);
        assert_eq!(distance("ab", "ba"), 1);
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("tau_mm", ["tau_m", "tau_e"]).as_deref(), Some("did you mean `tau_m`?"));
        assert_eq!(did_you_mean("Vt", ["vt", "x"]).as_deref(), Some("did you mean `vt`?"));
        assert_eq!(did_you_mean("zzz", ["tau_m"]), None);
        assert_eq!(did_you_mean("mv", ["MV", "mV"]).as_deref(), Some("did you mean `mV`?"));
        assert_eq!(did_you_mean("LFI", ["LIF"]).as_deref(), Some("did you mean `LIF`?"));
        assert_eq!(
            did_you_mean("exponential", ["euler", "exponential_euler"]).as_deref(),
            Some("did you mean `exponential_euler`?")
        );
    }
}

//! "Did you mean ...?" suggestions by edit distance.

/// The Levenshtein distance between two strings (by characters).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The closest candidate within a third of the name's length, as a note.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let d = if candidate.eq_ignore_ascii_case(name) { 0 } else { distance(name, candidate) };
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && candidate < bc)) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
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
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("tau_mm", ["tau_m", "tau_e"]).as_deref(), Some("did you mean `tau_m`?"));
        assert_eq!(did_you_mean("Vt", ["vt", "x"]).as_deref(), Some("did you mean `vt`?"));
        assert_eq!(did_you_mean("zzz", ["tau_m"]), None);
    }
}

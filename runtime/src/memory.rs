//! How much memory a run may take, and refusing one that needs more before
//! allocating it (a model with too many neurons or synapses, or monitors that
//! would record more than fits).

/// What a run would allocate: named parts and their sizes in bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    parts: Vec<(String, u128)>,
}

impl Estimate {
    /// Adds a part (`what` names it for the message).
    pub fn add(&mut self, what: impl Into<String>, bytes: u128) {
        self.parts.push((what.into(), bytes));
    }

    /// All the parts together.
    pub fn total(&self) -> u128 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    /// Fails, naming the largest parts, when the estimate exceeds `available` bytes.
    pub fn check_against(&self, available: Option<u64>) -> Result<(), String> {
        let Some(available) = available else { return Ok(()) };
        let total = self.total();
        if total <= u128::from(available) {
            return Ok(());
        }
        let mut parts = self.parts.clone();
        parts.sort_by_key(|part| std::cmp::Reverse(part.1));
        let listed: Vec<String> = parts.iter().take(4).map(|(what, b)| format!("{what}: {}", bytes_text(*b))).collect();
        Err(format!(
            "the run would need about {} of memory ({}), but {} {} available; refused before allocating \
             (make the model smaller, record less, or set SNNC_MEMORY_LIMIT to allow more)",
            bytes_text(total),
            listed.join("; "),
            bytes_text(u128::from(available)),
            if available == 1 { "is" } else { "are" },
        ))
    }

    /// Checks the estimate against the memory this process may still use
    /// ([`available`]).
    pub fn check(&self) -> Result<(), String> {
        self.check_against(available())
    }
}

/// `1.5 GiB`, `320 MiB`, `12 KiB`, `100 B`.
pub fn bytes_text(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// The bytes a run may still allocate, if known: the smaller of the machine's
/// available memory (`MemAvailable` in `/proc/meminfo`) and what the control
/// group allows (`memory.max` less `memory.current`, as under Slurm or a
/// container). `SNNC_MEMORY_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix)
/// replaces both. `None` where none of these is known (then nothing is refused).
pub fn available() -> Option<u64> {
    if let Ok(text) = std::env::var("SNNC_MEMORY_LIMIT") {
        return parse_limit(&text);
    }
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| meminfo_available(&t));
    let read = |name: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{name}")).ok();
    let group = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => {
            let (max, current) = (max.trim().parse::<u64>().ok(), current.trim().parse::<u64>().ok());
            max.zip(current).map(|(m, c)| m.saturating_sub(c))
        }
        _ => None,
    };
    match (machine, group) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable:  123456 kB` in `/proc/meminfo`, in bytes.
fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `SNNC_MEMORY_LIMIT`: `1000000`, `512M`, `2G`, `1.5T` (powers of 1024).
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last()? {
        (k, c) if c.is_ascii_alphabetic() => {
            let power = match c.to_ascii_uppercase() {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                _ => return None,
            };
            (&text[..k], 1024f64.powi(power))
        }
        _ => (text, 1.0),
    };
    let value: f64 = number.trim().parse().ok()?;
    (value >= 0.0 && value.is_finite()).then_some((value * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_meminfo_parse() {
        assert_eq!(parse_limit("2G"), Some(2 << 30));
        assert_eq!(parse_limit("512m"), Some(512 << 20));
        assert_eq!(parse_limit(" 1000 "), Some(1000));
        assert_eq!(parse_limit("1.5K"), Some(1536));
        assert_eq!(parse_limit("lots"), None);
        assert_eq!(parse_limit("5Q"), None);
        assert_eq!(parse_limit("-1G"), None);
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_available(meminfo), Some(20_000_000 * 1024));
        assert_eq!(meminfo_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn estimates_over_the_limit_are_refused_naming_their_parts() {
        let mut estimate = Estimate::default();
        estimate.add("state of group `E`", 3 << 30);
        estimate.add("synapses of `S` (about 1.0e9)", 40 << 30);
        assert_eq!(estimate.total(), 43 << 30);
        assert_eq!(estimate.check_against(None), Ok(()));
        assert_eq!(estimate.check_against(Some(50 << 30)), Ok(()));
        let message = estimate.check_against(Some(20 << 30)).expect_err("too big");
        assert!(message.contains("about 43.0 GiB"), "{message}");
        assert!(message.find("`S`").expect("S") < message.find("`E`").expect("E"), "largest first: {message}");
        assert!(message.contains("20.0 GiB are available"), "{message}");
        assert_eq!(bytes_text(100), "100 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
    }
}

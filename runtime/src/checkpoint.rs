//! Checkpoints: the whole state of a running simulation in one file, so that a run
//! can stop and later continue with bitwise the same results.
//!
//! A checkpoint holds what a fresh [`Simulation`](crate::Simulation) built from
//! the same model, constants and seed does not already know: the state arrays,
//! the step, this step's spike lists, the queued delayed events, the prescribed
//! spikes' positions, the closed loop (environment, its random counters, votes,
//! episode counters) and the monitors' records. Connectivity, parameters and
//! tables are rebuilt from the model and checked against the checkpoint's counts
//! and bits, so a checkpoint taken with another model or other constants is
//! refused rather than continued wrongly.
//!
//! The format is little-endian and versioned: a magic line, then the sections
//! written by [`Writer`] calls and read back by the same sequence of
//! [`Reader`] calls. Every variable-length item carries its length.

/// The first bytes of every checkpoint file (with the format's version).
const MAGIC: &[u8; 16] = b"snnc-checkpoint1";

/// Collects a checkpoint's bytes.
#[derive(Debug)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Default for Writer {
    fn default() -> Writer {
        Writer::new()
    }
}

impl Writer {
    /// An empty checkpoint (its magic line only).
    pub fn new() -> Writer {
        Writer { bytes: MAGIC.to_vec() }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A section tag, checked when read back: a misordered reader fails at once.
    pub fn tag(&mut self, name: &str) {
        self.str(name);
    }

    /// A whole number.
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A signed whole number.
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A number, bit for bit (NaN payloads and signed zeros included).
    pub fn f64(&mut self, value: f64) {
        self.u64(value.to_bits());
    }

    /// A flag.
    pub fn bool(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }

    /// Text.
    pub fn str(&mut self, value: &str) {
        self.u64(value.len() as u64);
        self.bytes.extend_from_slice(value.as_bytes());
    }

    /// Numbers, with their count.
    pub fn f64s(&mut self, values: &[f64]) {
        self.u64(values.len() as u64);
        self.bytes.reserve(values.len() * 8);
        for v in values {
            self.bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }

    /// Whole numbers, with their count.
    pub fn u32s(&mut self, values: &[u32]) {
        self.u64(values.len() as u64);
        self.bytes.reserve(values.len() * 4);
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Whole numbers, with their count.
    pub fn u64s(&mut self, values: &[u64]) {
        self.u64(values.len() as u64);
        self.bytes.reserve(values.len() * 8);
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Signed whole numbers, with their count.
    pub fn i64s(&mut self, values: &[i64]) {
        self.u64(values.len() as u64);
        self.bytes.reserve(values.len() * 8);
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Reads a checkpoint back, in the order it was written. Every read fails with a
/// message (never panics) on a short, corrupt or misordered file.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`, which must begin with the magic line.
    pub fn new(bytes: &'a [u8]) -> Result<Reader<'a>, String> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not an snnc checkpoint (or one of another format version)".into());
        }
        Ok(Reader { bytes, at: MAGIC.len() })
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!("{} bytes left over at the end of the checkpoint", self.bytes.len() - self.at))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("the checkpoint ends early (at byte {})", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Expects the section tag `name`.
    pub fn tag(&mut self, name: &str) -> Result<(), String> {
        let at = self.at;
        let found = self.str()?;
        if found == name {
            Ok(())
        } else {
            Err(format!("the checkpoint is corrupt: expected section `{name}` at byte {at}, found `{found}`"))
        }
    }

    /// A whole number.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A signed whole number.
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A number.
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A flag.
    pub fn bool(&mut self) -> Result<bool, String> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("the checkpoint is corrupt: flag {other} at byte {}", self.at - 1)),
        }
    }

    /// A count of items of `width` bytes each, checked against what is left.
    fn count(&mut self, width: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) / width;
        usize::try_from(n).ok().filter(|&n| n <= left).ok_or_else(|| {
            format!("the checkpoint is corrupt: {n} items of {width} bytes at byte {}, {left} fit", self.at)
        })
    }

    /// Text.
    pub fn str(&mut self) -> Result<String, String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "the checkpoint is corrupt: text is not UTF-8".into())
    }

    /// Numbers.
    pub fn f64s(&mut self) -> Result<Vec<f64>, String> {
        let n = self.count(8)?;
        Ok(self.take(n * 8)?.chunks_exact(8).map(|c| f64::from_bits(u64::from_le_bytes(word(c)))).collect())
    }

    /// Whole numbers.
    pub fn u32s(&mut self) -> Result<Vec<u32>, String> {
        let n = self.count(4)?;
        Ok(self.take(n * 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(word(c))).collect())
    }

    /// Whole numbers.
    pub fn u64s(&mut self) -> Result<Vec<u64>, String> {
        let n = self.count(8)?;
        Ok(self.take(n * 8)?.chunks_exact(8).map(|c| u64::from_le_bytes(word(c))).collect())
    }

    /// Signed whole numbers.
    pub fn i64s(&mut self) -> Result<Vec<i64>, String> {
        let n = self.count(8)?;
        Ok(self.take(n * 8)?.chunks_exact(8).map(|c| i64::from_le_bytes(word(c))).collect())
    }

    /// Numbers that must fill `out` exactly (`what` names them in the error).
    pub fn f64s_into(&mut self, out: &mut [f64], what: &str) -> Result<(), String> {
        let values = self.f64s()?;
        if values.len() != out.len() {
            return Err(format!("{what}: the checkpoint has {} values, the model {}", values.len(), out.len()));
        }
        out.copy_from_slice(&values);
        Ok(())
    }
}

/// A chunk of exactly `N` bytes as an array (`chunks_exact` guarantees the length).
fn word<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(chunk);
    out
}

/// Fails with a message naming `what` unless the checkpoint's value equals the model's.
pub fn expect_equal<T: PartialEq + std::fmt::Debug>(what: &str, saved: T, now: T) -> Result<(), String> {
    if saved == now {
        Ok(())
    } else {
        Err(format!("the checkpoint does not match this model: {what} is {saved:?} in the checkpoint, {now:?} now"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_bit_for_bit() {
        let mut w = Writer::new();
        w.tag("head");
        w.u64(u64::MAX);
        w.i64(-5);
        w.f64(-0.0);
        w.f64(f64::from_bits(0x7ff8_0000_dead_beef));
        w.bool(true);
        w.str("Δv");
        w.f64s(&[1.5, f64::INFINITY]);
        w.u32s(&[7, 8, 9]);
        w.u64s(&[]);
        w.i64s(&[-1, 2]);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes).expect("magic");
        r.tag("head").expect("tag");
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.f64().map(f64::to_bits), Ok((-0.0f64).to_bits()));
        assert_eq!(r.f64().map(f64::to_bits), Ok(0x7ff8_0000_dead_beef));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.str().as_deref(), Ok("Δv"));
        assert_eq!(r.f64s(), Ok(vec![1.5, f64::INFINITY]));
        assert_eq!(r.u32s(), Ok(vec![7, 8, 9]));
        assert_eq!(r.u64s(), Ok(vec![]));
        assert_eq!(r.i64s(), Ok(vec![-1, 2]));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn damaged_files_give_errors() {
        assert!(Reader::new(b"hello").is_err());
        let mut w = Writer::new();
        w.tag("a");
        w.f64s(&[1.0, 2.0, 3.0]);
        let bytes = w.into_bytes();
        // Every truncation fails cleanly.
        for end in MAGIC.len()..bytes.len() {
            let mut r = Reader::new(&bytes[..end]).expect("magic");
            let result = r.tag("a").and_then(|()| r.f64s());
            assert!(result.is_err(), "truncated at {end}");
        }
        let mut r = Reader::new(&bytes).expect("magic");
        assert!(r.tag("b").is_err_and(|e| e.contains("expected section `b`")));
        // A huge count does not allocate: it is checked against the bytes left.
        let mut w = Writer::new();
        w.u64(u64::MAX / 2);
        let bytes = w.into_bytes();
        assert!(Reader::new(&bytes).expect("magic").f64s().is_err_and(|e| e.contains("corrupt")));
        let mut r = Reader::new(&bytes).expect("magic");
        assert!(r.u32s().is_err());
        let mut r = Reader::new(&bytes).expect("magic");
        r.u64().expect("u64");
        assert_eq!(r.finish(), Ok(()));
    }
}

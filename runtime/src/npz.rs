//! Reading NumPy `.npy` and `.npz` files: what `output` writes, and what `numpy.save`/`numpy.savez` write.
//!
//! An `.npy` file is a preamble (`\x93NUMPY`, version, header length), a Python dict literal
//! giving `descr` (byte order, kind and size: `<f8`, `|u1`, `>i4`), `fortran_order` and `shape`,
//! then the elements. An `.npz` file is a zip archive of `<key>.npy` members. Floating-point
//! arrays are read as `f64`, integer and boolean arrays as `i64`; the archive's members must be
//! stored uncompressed (as `numpy.savez` and `output` write them; `numpy.savez_compressed` is
//! refused with a message).

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The elements of an array, in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// A floating-point array (`f2` is not supported; `f4` and `f8` are).
    Float(Vec<f64>),
    /// An integer or boolean array (unsigned values above `i64::MAX` are refused).
    Int(Vec<i64>),
}

/// An array read from an `.npy` file or `.npz` member.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The length of each axis (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// The elements, in C order (a Fortran-order file is reordered).
    pub values: Values,
}

impl NpyArray {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Float(v) => v.len(),
            Values::Int(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `f64` (integers converted).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.values {
            Values::Float(v) => v.clone(),
            Values::Int(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The elements as `i64`, if the array holds integers.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.values {
            Values::Int(v) => Some(v),
            Values::Float(_) => None,
        }
    }
}

/// The arrays of an `.npz` file, in the archive's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Npz {
    /// `(key, array)`: the member's name without `.npy`.
    pub arrays: Vec<(String, NpyArray)>,
}

impl Npz {
    /// The array named `key`.
    pub fn get(&self, key: &str) -> Option<&NpyArray> {
        self.arrays.iter().find(|(k, _)| k == key).map(|(_, a)| a)
    }

    /// The keys, in the archive's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.arrays.iter().map(|(k, _)| k.as_str())
    }
}

/// Reads an `.npz` file.
///
/// # Errors
///
/// A message naming the file (and the member) when it cannot be read, is not a zip archive,
/// has a compressed member, or a member is not a valid `.npy` encoding.
pub fn read_npz(path: &Path) -> Result<Npz, String> {
    let context = |e: &dyn std::fmt::Display| format!("cannot read `{}`: {e}", path.display());
    let file = File::open(path).map_err(|e| context(&e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| context(&e))?;
    let mut arrays = Vec::with_capacity(archive.len());
    for k in 0..archive.len() {
        let mut member = archive.by_index(k).map_err(|e| match e {
            zip::result::ZipError::UnsupportedArchive(_) => {
                context(&format!("{e} (members must be stored: `numpy.savez`, not `savez_compressed`)"))
            }
            e => context(&e),
        })?;
        let name = member.name().to_string();
        let Some(key) = name.strip_suffix(".npy") else { continue };
        let mut bytes = Vec::with_capacity(usize::try_from(member.size()).unwrap_or(0));
        member.read_to_end(&mut bytes).map_err(|e| context(&format!("member `{name}`: {e}")))?;
        let array = parse_npy(&bytes).map_err(|e| context(&format!("member `{name}`: {e}")))?;
        arrays.push((key.to_string(), array));
    }
    Ok(Npz { arrays })
}

/// Decodes one `.npy` encoding (format versions 1.0, 2.0 and 3.0).
///
/// # Errors
///
/// A message when the preamble, the header or the data length is wrong, or the type is not a
/// number type this reader knows (booleans, integers of 1-8 bytes, floats of 4 or 8 bytes).
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    let rest = bytes.strip_prefix(b"\x93NUMPY").ok_or("not an .npy encoding (no `\\x93NUMPY` preamble)")?;
    let (header_len, rest) = match rest {
        [1, 0, a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        [2 | 3, 0, a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest),
        [major, minor, ..] => return Err(format!("unsupported .npy format version {major}.{minor}")),
        _ => return Err("truncated .npy preamble".into()),
    };
    if rest.len() < header_len {
        return Err("truncated .npy header".into());
    }
    let (header, data) = rest.split_at(header_len);
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let descr = dict_value(header, "descr").ok_or("the .npy header has no `descr`")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = match dict_value(header, "fortran_order") {
        Some("True") => true,
        Some("False") | None => false,
        Some(other) => return Err(format!("bad `fortran_order` in the .npy header: {other}")),
    };
    let shape_text = dict_value(header, "shape").ok_or("the .npy header has no `shape`")?;
    let shape = parse_shape(shape_text)?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {shape_text} has too many elements"))?;
    let dtype = Dtype::parse(descr)?;
    let expected = count.checked_mul(dtype.size).ok_or_else(|| format!("shape {shape_text} is too large"))?;
    if data.len() != expected {
        return Err(format!(
            "shape {shape_text} of `{descr}` needs {expected} bytes of data, the file has {}",
            data.len()
        ));
    }
    let mut values = dtype.decode(data)?;
    if fortran && shape.len() > 1 {
        values = match values {
            Values::Float(v) => Values::Float(fortran_to_c(&v, &shape)),
            Values::Int(v) => Values::Int(fortran_to_c(&v, &shape)),
        };
    }
    Ok(NpyArray { shape, values })
}

/// The text of `key`'s value in a Python dict literal of the header: a quoted string, a
/// parenthesized tuple or a bare word.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let start = ["'", "\""].iter().find_map(|q| {
        let pattern = format!("{q}{key}{q}");
        header.find(&pattern).map(|at| at + pattern.len())
    })?;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = match rest.chars().next()? {
        '(' => rest.find(')')? + 1,
        q @ ('\'' | '"') => rest[1..].find(q)? + 2,
        _ => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

/// `()`, `(5,)`, `(3, 2)`.
fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape in the .npy header: {text}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad shape in the .npy header: {text}"))
        })
        .collect()
}

/// An element type: kind (`f`, `i`, `u`, `b`), size in bytes, byte order.
struct Dtype {
    kind: char,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn parse(descr: &str) -> Result<Dtype, String> {
        let unsupported = || format!("unsupported .npy element type `{descr}` (numbers and booleans are)");
        let mut chars = descr.chars();
        let order = chars.next().ok_or_else(unsupported)?;
        let big_endian = match order {
            '<' | '|' => false,
            '>' => true,
            '=' => cfg!(target_endian = "big"),
            _ => return Err(unsupported()),
        };
        let kind = chars.next().ok_or_else(unsupported)?;
        let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
        let known = match kind {
            'f' => matches!(size, 4 | 8),
            'i' | 'u' => matches!(size, 1 | 2 | 4 | 8),
            'b' => size == 1,
            _ => false,
        };
        if known { Ok(Dtype { kind, size, big_endian }) } else { Err(unsupported()) }
    }

    fn decode(&self, data: &[u8]) -> Result<Values, String> {
        let chunks = data.chunks_exact(self.size).map(|chunk| {
            // Little-endian in the first `size` bytes, whatever the file's order.
            let mut bytes = [0u8; 8];
            bytes[..self.size].copy_from_slice(chunk);
            if self.big_endian {
                bytes[..self.size].reverse();
            }
            bytes
        });
        let sign_extend = |b: [u8; 8], size: usize| {
            let shift = 64 - 8 * size as u32;
            (i64::from_le_bytes(b) << shift) >> shift
        };
        Ok(match self.kind {
            'f' if self.size == 8 => Values::Float(chunks.map(f64::from_le_bytes).collect()),
            'f' => Values::Float(chunks.map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()),
            'i' => Values::Int(chunks.map(|b| sign_extend(b, self.size)).collect()),
            'b' => Values::Int(chunks.map(|b| i64::from(b[0] != 0)).collect()),
            _ => {
                let values: Option<Vec<i64>> = chunks.map(|b| i64::try_from(u64::from_le_bytes(b)).ok()).collect();
                Values::Int(values.ok_or("an unsigned value does not fit in a signed 64-bit integer")?)
            }
        })
    }
}

/// Reorders a Fortran-order (column-major) array to C order.
fn fortran_to_c<T: Copy>(values: &[T], shape: &[usize]) -> Vec<T> {
    let n = values.len();
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..n {
        // The Fortran offset of the C-order multi-index `index`.
        let mut offset = 0;
        let mut stride = 1;
        for (i, &d) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= d;
        }
        out.push(values[offset]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::output::{Array, RunDir, npy_bytes};

    /// A hand-made `.npy` encoding (version 1.0) of a header dict and data.
    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let floats = [1.5, -2.0, 3.25, f64::INFINITY, 0.0, -0.5];
        let bytes = npy_bytes(&Array::F64 { shape: vec![3, 2], data: &floats }).unwrap();
        assert_eq!(parse_npy(&bytes).unwrap(), NpyArray { shape: vec![3, 2], values: Values::Float(floats.to_vec()) });
        let ints = [i64::MIN, -1, 0, i64::MAX];
        let bytes = npy_bytes(&Array::I64 { shape: vec![4], data: &ints }).unwrap();
        assert_eq!(parse_npy(&bytes).unwrap().as_i64().unwrap(), ints);
        let bytes = npy_bytes(&Array::U32 { shape: vec![], data: &[u32::MAX] }).unwrap();
        let array = parse_npy(&bytes).unwrap();
        assert_eq!((array.shape.as_slice(), array.as_i64().unwrap()), (&[][..], &[i64::from(u32::MAX)][..]));
        let bytes = npy_bytes(&Array::U8 { shape: vec![2, 0], data: &[] }).unwrap();
        let array = parse_npy(&bytes).unwrap();
        assert!(array.is_empty());
        assert_eq!(array.shape, [2, 0]);
    }

    #[test]
    fn reads_other_types_orders_and_layouts() {
        let data: Vec<u8> = [1.0f32, -2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let array = parse_npy(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &data)).unwrap();
        assert_eq!(array.to_f64(), [1.0, -2.5]);
        let data: Vec<u8> = [-3i16, 7].iter().flat_map(|x| x.to_be_bytes()).collect();
        let array = parse_npy(&npy("{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", &data)).unwrap();
        assert_eq!(array.as_i64().unwrap(), [-3, 7]);
        let array = parse_npy(&npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", &[0, 1, 2])).unwrap();
        assert_eq!(array.as_i64().unwrap(), [0, 1, 1]);
        // Column-major [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
        let data: Vec<u8> = [1i64, 4, 2, 5, 3, 6].iter().flat_map(|x| x.to_le_bytes()).collect();
        let array = parse_npy(&npy("{'descr': '<i8', 'fortran_order': True, 'shape': (2, 3), }", &data)).unwrap();
        assert_eq!(array.as_i64().unwrap(), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_encodings_are_errors() {
        let ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
        let cases: [(Vec<u8>, &str); 7] = [
            (b"PK\x03\x04".to_vec(), "preamble"),
            (b"\x93NUMPY\x09\x00\x00\x00".to_vec(), "version 9.0"),
            (npy(ok, &[0; 15]), "needs 16 bytes"),
            (npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", &[0; 16]), "unsupported"),
            (npy("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", &[0xff; 8]), "does not fit"),
            (npy("{'descr': '<f8', 'shape': [2], }", &[0; 16]), "bad shape"),
            (npy("{'fortran_order': False, 'shape': (2,), }", &[0; 16]), "no `descr`"),
        ];
        for (bytes, expected) in cases {
            let err = parse_npy(&bytes).unwrap_err();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
        let mut truncated = npy(ok, &[0; 16]);
        truncated.truncate(20);
        assert!(parse_npy(&truncated).unwrap_err().contains("truncated"));
    }

    #[test]
    fn reads_an_npz_written_by_run_dir() {
        let final_dir = std::env::temp_dir().join(format!("snnc-npz-read-{}", std::process::id()));
        let run = RunDir::create(&final_dir).unwrap();
        run.write_npz(
            "data.npz",
            &[
                ("dt", Array::F64 { shape: vec![], data: &[1e-4] }),
                ("G.step", Array::I64 { shape: vec![3], data: &[0, 5, 9] }),
                ("G.index", Array::U32 { shape: vec![3], data: &[2, 0, 1] }),
            ],
        )
        .unwrap();
        let dir = run.commit().unwrap();
        let npz = read_npz(&dir.join("data.npz")).unwrap();
        assert_eq!(npz.keys().collect::<Vec<_>>(), ["dt", "G.step", "G.index"]);
        assert_eq!(npz.get("dt").unwrap().to_f64(), [1e-4]);
        assert_eq!(npz.get("G.index").unwrap().as_i64().unwrap(), [2, 0, 1]);
        assert!(npz.get("nothing").is_none());
        std::fs::write(dir.join("bad.npz"), b"not a zip").unwrap();
        let err = read_npz(&dir.join("bad.npz")).unwrap_err();
        assert!(err.starts_with(&format!("cannot read `{}`: ", dir.join("bad.npz").display())), "{err}");
        let err = read_npz(&dir.join("missing.npz")).unwrap_err();
        assert!(err.contains("missing.npz"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

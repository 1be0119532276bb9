//! The run-output layer: NumPy `.npy`/`.npz` encoding and an atomically committed output folder.
//!
//! A run writes its results into a [`RunDir`]: a staging folder next to the final one
//! (`<final>.partial-<pid>`). Every file in it is written under a temporary name, fsync'd and
//! renamed, so a file is either absent or complete. [`RunDir::commit`] then moves the whole
//! folder into place; a run that fails or is interrupted before that leaves the previous output
//! (if any) untouched, and dropping an uncommitted [`RunDir`] removes the staging folder.
//!
//! Arrays are stored in NumPy's `.npy` format, version 1.0, little-endian whatever the host
//! ([`npy_bytes`]); an `.npz` file is a zip archive (stored, uncompressed) of `<key>.npy`
//! members, which `numpy.load` reads as a mapping from key to array.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use zip::CompressionMethod;
use zip::result::ZipError;
use zip::write::{SimpleFileOptions, ZipWriter};

/// A numeric array to store in an .npy/.npz file: C-order data with a shape.
///
/// The shape lists the length of each axis (an empty shape is a 0-d array holding one value);
/// the data holds the elements in row-major (C) order, and its length must be the product of
/// the shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Array<'a> {
    /// 64-bit floats, stored as `<f8` (NumPy `float64`).
    F64 {
        /// The length of each axis.
        shape: Vec<usize>,
        /// The elements in C order.
        data: &'a [f64],
    },
    /// 64-bit signed integers, stored as `<i8` (NumPy `int64`).
    I64 {
        /// The length of each axis.
        shape: Vec<usize>,
        /// The elements in C order.
        data: &'a [i64],
    },
    /// 32-bit unsigned integers, stored as `<u4` (NumPy `uint32`).
    U32 {
        /// The length of each axis.
        shape: Vec<usize>,
        /// The elements in C order.
        data: &'a [u32],
    },
    /// Bytes, stored as `|u1` (NumPy `uint8`).
    U8 {
        /// The length of each axis.
        shape: Vec<usize>,
        /// The elements in C order.
        data: &'a [u8],
    },
}

impl Array<'_> {
    fn shape(&self) -> &[usize] {
        match self {
            Array::F64 { shape, .. }
            | Array::I64 { shape, .. }
            | Array::U32 { shape, .. }
            | Array::U8 { shape, .. } => shape,
        }
    }

    fn len(&self) -> usize {
        match self {
            Array::F64 { data, .. } => data.len(),
            Array::I64 { data, .. } => data.len(),
            Array::U32 { data, .. } => data.len(),
            Array::U8 { data, .. } => data.len(),
        }
    }

    /// The NumPy type string and the size of one element in bytes.
    fn dtype(&self) -> (&'static str, usize) {
        match self {
            Array::F64 { .. } => ("<f8", 8),
            Array::I64 { .. } => ("<i8", 8),
            Array::U32 { .. } => ("<u4", 4),
            Array::U8 { .. } => ("|u1", 1),
        }
    }

    /// Writes the elements as little-endian bytes.
    fn write_data(&self, out: &mut impl Write) -> io::Result<()> {
        /// Elements converted per chunk, so big arrays need no big buffer.
        const CHUNK: usize = 4096;
        fn chunked<T: Copy, const N: usize>(
            data: &[T],
            to_le: impl Fn(T) -> [u8; N],
            out: &mut impl Write,
        ) -> io::Result<()> {
            let mut buf = Vec::with_capacity(CHUNK.min(data.len()) * N);
            for chunk in data.chunks(CHUNK) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|&x| to_le(x)));
                out.write_all(&buf)?;
            }
            Ok(())
        }
        match self {
            Array::F64 { data, .. } => chunked(data, f64::to_le_bytes, out),
            Array::I64 { data, .. } => chunked(data, i64::to_le_bytes, out),
            Array::U32 { data, .. } => chunked(data, u32::to_le_bytes, out),
            Array::U8 { data, .. } => out.write_all(data),
        }
    }
}

/// An array checked against its shape, with its `.npy` header ready.
struct Encoded<'r, 'a> {
    array: &'r Array<'a>,
    header: Vec<u8>,
    /// The size of the whole `.npy` encoding (header and data) in bytes.
    size: u64,
}

impl<'r, 'a> Encoded<'r, 'a> {
    fn new(array: &'r Array<'a>) -> Result<Self, Cause> {
        let shape = array.shape();
        let expected = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
        if expected != Some(array.len()) {
            return Err(Cause::Shape { shape: shape_text(shape), elements: expected, data_len: array.len() });
        }
        let (descr, item_size) = array.dtype();
        let header = npy_header(descr, shape)?;
        let size = (array.len() as u64).saturating_mul(item_size as u64).saturating_add(header.len() as u64);
        Ok(Encoded { array, header, size })
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.header)?;
        self.array.write_data(out)
    }
}

/// The shape as a Python tuple: `()`, `(5,)`, `(3, 2)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// The `.npy` version 1.0 preamble and header, padded with spaces and a final `\n` so the data
/// starts at a multiple of 64 bytes.
fn npy_header(descr: &str, shape: &[usize]) -> Result<Vec<u8>, Cause> {
    const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
    const ALIGN: usize = 64;
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}", shape_text(shape));
    // magic and version, the u16 header length, the dictionary, at least the final '\n'
    let unpadded = MAGIC.len() + 2 + dict.len() + 1;
    let total = unpadded.div_ceil(ALIGN) * ALIGN;
    let header_len = total - MAGIC.len() - 2;
    let Ok(header_len_field) = u16::try_from(header_len) else {
        return Err(Cause::Message(format!(
            "the .npy header for shape {} is too long for format version 1.0",
            shape_text(shape)
        )));
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header_len_field.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

/// Encodes one array in NumPy's .npy format (version 1.0, little-endian '<f8', '<i8', '<u4', '|u1', fortran_order False, header padded so the data starts at a multiple of 64 bytes, header ending in '\n').
///
/// # Errors
///
/// Fails if the product of the shape differs from the number of elements in the data.
pub fn npy_bytes(array: &Array<'_>) -> Result<Vec<u8>, OutputError> {
    let encoded = Encoded::new(array).map_err(|cause| OutputError::new(Op::Encode, None, cause))?;
    let mut out = Vec::with_capacity(usize::try_from(encoded.size).unwrap_or(0));
    encoded.write(&mut out).map_err(|e| OutputError::new(Op::Encode, None, Cause::Io(e)))?;
    Ok(out)
}

/// The output folder of a run, written atomically: everything goes to a staging folder next to the final one (`<final>.partial-<pid>`), and `commit` moves it into place.
///
/// If that staging name is taken (say, by a leftover of a killed run that had the same process
/// id, or by another [`RunDir`] of this process with the same final folder), a suffix is added:
/// `<final>.partial-<pid>-1`, and so on. Nothing existing is ever overwritten except the final
/// folder, and only by [`commit`](RunDir::commit).
#[derive(Debug)]
pub struct RunDir {
    final_dir: PathBuf,
    staging: PathBuf,
    /// `<pid>` or `<pid>-<n>`: the suffix of the staging folder, reused for the old folder.
    tag: String,
    /// Set once `commit` starts: from then on the staging folder holds finished output and is
    /// either moved into place or kept, never removed by `drop`.
    keep_staging: bool,
}

/// How many suffixed names to try before giving up on finding a free one.
const MAX_NAME_TRIES: u32 = 1000;

impl RunDir {
    /// Creates the staging folder now (so an unwritable destination fails before a long run). The final folder may exist: `commit` replaces it.
    ///
    /// Missing parent folders of the final folder are created.
    ///
    /// # Errors
    ///
    /// Fails if the final path has no folder name (such as `..` or `/`), exists and is not a
    /// folder, or if the parent or the staging folder cannot be created.
    pub fn create(final_dir: &Path) -> Result<RunDir, OutputError> {
        let create_error = |path: &Path, cause| OutputError::new(Op::Create, Some(path.to_path_buf()), cause);
        let Some(name) = final_dir.file_name() else {
            return Err(create_error(final_dir, Cause::Message("not a folder name".into())));
        };
        if let Ok(meta) = fs::metadata(final_dir)
            && !meta.is_dir()
        {
            return Err(create_error(final_dir, Cause::Message("it exists and is not a folder".into())));
        }
        let parent = final_dir.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            fs::create_dir_all(parent).map_err(|e| create_error(parent, Cause::Io(e)))?;
        }
        let pid = std::process::id();
        let mut attempt = 0;
        loop {
            let tag = if attempt == 0 { pid.to_string() } else { format!("{pid}-{attempt}") };
            let mut staging_name = name.to_os_string();
            staging_name.push(format!(".partial-{tag}"));
            let staging = final_dir.with_file_name(staging_name);
            match fs::create_dir(&staging) {
                Ok(()) => {
                    return Ok(RunDir { final_dir: final_dir.to_path_buf(), staging, tag, keep_staging: false });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < MAX_NAME_TRIES => attempt += 1,
                Err(e) => return Err(create_error(&staging, Cause::Io(e))),
            }
        }
    }

    /// Writes `<name>` (e.g. "spikes.npz") into the staging folder: an .npz (a zip of `<key>.npy` members, key = array name; keys may contain dots) with the arrays in the given order.
    ///
    /// The members are stored uncompressed, dated 1980-01-01 (so equal arrays give equal files),
    /// and in ZIP64 form when one exceeds 4 GiB. Zero arrays give a valid empty archive.
    ///
    /// # Errors
    ///
    /// Fails, before anything is written, if `name` is not a plain file name, a key is empty or
    /// repeated, or an array's shape does not match its data; and if the file cannot be written.
    pub fn write_npz(&self, name: &str, arrays: &[(&str, Array<'_>)]) -> Result<(), OutputError> {
        let path = self.file_path(name)?;
        let write_error = |cause| OutputError::new(Op::Write, Some(path.clone()), cause);
        let mut seen = BTreeSet::new();
        let mut members = Vec::with_capacity(arrays.len());
        for (key, array) in arrays {
            if key.is_empty() {
                return Err(write_error(Cause::Message("an array has an empty name".into())));
            }
            if !seen.insert(*key) {
                return Err(write_error(Cause::Message(format!("two arrays are named `{key}`"))));
            }
            let encoded = Encoded::new(array)
                .map_err(|cause| write_error(Cause::Array { key: (*key).to_string(), cause: Box::new(cause) }))?;
            members.push((*key, encoded));
        }
        write_atomically(&path, |file| {
            let mut zip = ZipWriter::new(file);
            for (key, encoded) in &members {
                let options = SimpleFileOptions::default()
                    .compression_method(CompressionMethod::Stored)
                    .large_file(encoded.size >= zip::ZIP64_BYTES_THR);
                zip.start_file(format!("{key}.npy"), options).map_err(Cause::from)?;
                encoded.write(&mut zip)?;
            }
            zip.finish().map_err(Cause::from)?;
            Ok(())
        })
        .map_err(write_error)
    }

    /// Writes pretty-printed JSON (with a trailing newline).
    ///
    /// # Errors
    ///
    /// Fails if `name` is not a plain file name or the file cannot be written.
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> Result<(), OutputError> {
        let path = self.file_path(name)?;
        write_atomically(&path, |file| {
            serde_json::to_writer_pretty(&mut *file, value).map_err(|e| Cause::Io(e.into()))?;
            file.write_all(b"\n")?;
            Ok(())
        })
        .map_err(|cause| OutputError::new(Op::Write, Some(path.clone()), cause))
    }

    /// Writes a file of raw bytes (such as a checkpoint) into the staging folder.
    ///
    /// # Errors
    ///
    /// Fails if `name` is not a plain file name or the file cannot be written.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        write_file(&self.file_path(name)?, bytes)
    }

    /// The staging folder (for callers that write other files).
    ///
    /// Files written there directly are not fsync'd by [`commit`](RunDir::commit) (only the
    /// folder's entries are): call [`File::sync_all`] on them if they must survive a crash.
    pub fn staging_path(&self) -> &Path {
        &self.staging
    }

    /// Moves the staging folder into place: if the final folder exists it is first renamed aside (`<final>.old-<pid>`), the staging folder renamed to the final name, then the old one removed; on failure the old folder is restored. Returns the final path.
    ///
    /// The staging folder is fsync'd first, and the parent folder after the renames. If the old
    /// folder cannot be removed at the end, it stays (the commit has succeeded all the same).
    ///
    /// # Errors
    ///
    /// Fails if the final path exists and is not a folder, or if syncing or a rename fails. The
    /// previous final folder, if any, is then back in place, and the finished output stays in the
    /// staging folder (which the error names): a failed commit removes nothing.
    pub fn commit(mut self) -> Result<PathBuf, OutputError> {
        self.keep_staging = true;
        let staging = self.staging.clone();
        let commit_error =
            |path: &Path, cause| OutputError::new(Op::Commit { staging: staging.clone() }, Some(path.into()), cause);
        sync_dir(&self.staging).map_err(|e| commit_error(&self.staging, Cause::Io(e)))?;
        let old = match fs::symlink_metadata(&self.final_dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(commit_error(&self.final_dir, Cause::Io(e))),
            Ok(_) if !self.final_dir.is_dir() => {
                return Err(commit_error(&self.final_dir, Cause::Message("it exists and is not a folder".into())));
            }
            Ok(_) => {
                let old = self.free_old_name().map_err(|cause| commit_error(&self.final_dir, cause))?;
                fs::rename(&self.final_dir, &old).map_err(|e| commit_error(&self.final_dir, Cause::Io(e)))?;
                Some(old)
            }
        };
        if let Err(e) = fs::rename(&self.staging, &self.final_dir) {
            let mut cause = Cause::Io(e);
            if let Some(old) = &old
                && let Err(restore) = fs::rename(old, &self.final_dir)
            {
                cause = Cause::Message(format!(
                    "{cause}; and the previous folder could not be put back from `{}`: {restore}",
                    old.display()
                ));
            }
            return Err(commit_error(&self.final_dir, cause));
        }
        if let Some(parent) = self.final_dir.parent() {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            // Best effort: the renames are done; a failed sync only weakens durability.
            let _ = sync_dir(parent);
        }
        if let Some(old) = old {
            let _ = fs::remove_dir_all(old);
        }
        Ok(self.final_dir.clone())
    }

    /// `<final>.old-<tag>`, or with a further `-<n>` suffix if that name is taken.
    fn free_old_name(&self) -> Result<PathBuf, Cause> {
        let name = self.final_dir.file_name().unwrap_or_default();
        for attempt in 0..=MAX_NAME_TRIES {
            let mut old_name = name.to_os_string();
            old_name.push(format!(".old-{}", self.tag));
            if attempt > 0 {
                old_name.push(format!("-{attempt}"));
            }
            let old = self.final_dir.with_file_name(old_name);
            if fs::symlink_metadata(&old).is_err() {
                return Ok(old);
            }
        }
        Err(Cause::Message("no free name to move the previous folder aside".into()))
    }

    /// The path of a file in the staging folder; `name` must be a plain file name.
    fn file_path(&self, name: &str) -> Result<PathBuf, OutputError> {
        let path = self.staging.join(name);
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']);
        if plain {
            Ok(path)
        } else {
            Err(OutputError::new(Op::Write, Some(path), Cause::Message("not a plain file name".into())))
        }
    }
}

impl Drop for RunDir {
    /// If not committed, removes the staging folder (best effort), so nothing half-written remains.
    fn drop(&mut self) {
        if !self.keep_staging {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes `bytes` to `path` atomically (for files outside a [`RunDir`], such as figures): through a
/// temporary file in the same folder (`.<name>.tmp`), fsync'd and renamed, so `path` is either the
/// previous file or the complete new one.
///
/// # Errors
///
/// Fails, naming the file, if it cannot be written or renamed.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomically(path, |file| Ok(file.write_all(bytes)?))
        .map_err(|cause| OutputError::new(Op::Write, Some(path.to_path_buf()), cause))
}

/// Writes `path` through a temporary file next to it: `write` fills the (buffered) file, which is
/// then flushed, fsync'd and renamed to `path`. On failure the temporary file is removed.
fn write_atomically(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<(), Cause>) -> Result<(), Cause> {
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> Result<(), Cause> {
        let mut file = BufWriter::new(File::create(&tmp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes a folder's entries (new files, renames) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What went wrong, with the path: implements std::error::Error + Display ("cannot write `out/run1/spikes.npz`: Permission denied (os error 13)").
///
/// The message is complete on its own (it includes the operating system's error), so
/// [`source`](std::error::Error::source) returns `None`; [`io_error`](OutputError::io_error)
/// gives the underlying I/O error, if any.
#[derive(Debug)]
pub struct OutputError {
    op: Op,
    path: Option<PathBuf>,
    cause: Cause,
}

/// What was being done.
#[derive(Debug)]
enum Op {
    /// Encoding an array in memory ([`npy_bytes`]).
    Encode,
    /// Creating the staging folder or its parents.
    Create,
    /// Writing a file.
    Write,
    /// Moving folders in [`RunDir::commit`]; the finished output is in `staging`.
    Commit { staging: PathBuf },
}

/// Why it went wrong.
#[derive(Debug)]
enum Cause {
    Io(io::Error),
    Shape { shape: String, elements: Option<usize>, data_len: usize },
    Array { key: String, cause: Box<Cause> },
    Message(String),
}

impl From<io::Error> for Cause {
    fn from(e: io::Error) -> Self {
        Cause::Io(e)
    }
}

impl From<ZipError> for Cause {
    fn from(e: ZipError) -> Self {
        match e {
            ZipError::Io(e) => Cause::Io(e),
            other => Cause::Message(other.to_string()),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Io(e) => write!(f, "{e}"),
            Cause::Shape { shape, elements: Some(n), data_len } => {
                write!(f, "shape {shape} has {n} elements but the data has {data_len}")
            }
            Cause::Shape { shape, elements: None, .. } => write!(f, "shape {shape} has too many elements"),
            Cause::Array { key, cause } => write!(f, "array `{key}`: {cause}"),
            Cause::Message(m) => f.write_str(m),
        }
    }
}

impl OutputError {
    fn new(op: Op, path: Option<PathBuf>, cause: Cause) -> Self {
        OutputError { op, path, cause }
    }

    /// The file or folder involved (`None` only for [`npy_bytes`], which touches no file).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The underlying I/O error, if an I/O operation failed.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.cause {
            Cause::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.op {
            Op::Encode => "cannot encode array",
            Op::Create => "cannot create",
            Op::Write => "cannot write",
            Op::Commit { .. } => "cannot replace",
        };
        f.write_str(verb)?;
        if let Some(path) = &self.path {
            write!(f, " `{}`", path.display())?;
        }
        write!(f, ": {}", self.cause)?;
        if let Op::Commit { staging } = &self.op {
            write!(f, " (the finished output is in `{}`)", staging.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for OutputError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty scratch folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("snnc-output-{}-{n}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// Splits an .npy encoding into its header text and data, checking the preamble.
    fn split_npy(bytes: &[u8]) -> (&str, &[u8]) {
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        assert_eq!(&bytes[6..8], &[1, 0]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let data_start = 10 + header_len;
        assert_eq!(data_start % 64, 0, "data must start at a multiple of 64");
        let header = std::str::from_utf8(&bytes[10..data_start]).unwrap();
        assert!(header.ends_with('\n'));
        assert!(!header[..header.len() - 1].contains('\n'));
        (header, &bytes[data_start..])
    }

    #[test]
    fn npy_header_layout_2d_f64() {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, -0.5];
        let bytes = npy_bytes(&Array::F64 { shape: vec![3, 2], data: &data }).unwrap();
        // Byte for byte what `numpy.save` writes: the header length is 118 = 128 - 10.
        assert_eq!(bytes.len(), 128 + 6 * 8);
        assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00\x76\x00");
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
        assert_eq!(&bytes[10..128], format!("{dict}{}\n", " ".repeat(118 - dict.len() - 1)).as_bytes());
        let (header, payload) = split_npy(&bytes);
        assert_eq!(header.trim_end(), "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }");
        assert!(header.trim_end_matches('\n').trim_end_matches(' ').ends_with('}'));
        let expected: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(payload, expected.as_slice());
    }

    #[test]
    fn npy_shapes_and_dtypes() {
        let (header, payload) = {
            let bytes = npy_bytes(&Array::I64 { shape: vec![5], data: &[1, -2, 3, 4, i64::MIN] }).unwrap();
            let (h, p) = split_npy(&bytes);
            (h.to_string(), p.to_vec())
        };
        assert_eq!(header.trim_end(), "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }");
        assert_eq!(&payload[8..16], &(-2i64).to_le_bytes());

        let bytes = npy_bytes(&Array::U32 { shape: vec![], data: &[0xDEAD_BEEF] }).unwrap();
        let (header, payload) = split_npy(&bytes);
        assert_eq!(header.trim_end(), "{'descr': '<u4', 'fortran_order': False, 'shape': (), }");
        assert_eq!(payload, &[0xEF, 0xBE, 0xAD, 0xDE]);

        let bytes = npy_bytes(&Array::U8 { shape: vec![2, 0, 3], data: &[] }).unwrap();
        let (header, payload) = split_npy(&bytes);
        assert_eq!(header.trim_end(), "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 0, 3), }");
        assert!(payload.is_empty());

        // A header that needs more than one 64-byte block stays aligned.
        let shape = vec![1; 20];
        let bytes = npy_bytes(&Array::U8 { shape, data: &[7] }).unwrap();
        let (header, payload) = split_npy(&bytes);
        assert!(header.len() + 10 > 64);
        assert_eq!(payload, &[7]);
    }

    #[test]
    fn npy_shape_mismatch_is_an_error() {
        let err = npy_bytes(&Array::F64 { shape: vec![3, 2], data: &[1.0; 5] }).unwrap_err();
        assert_eq!(err.to_string(), "cannot encode array: shape (3, 2) has 6 elements but the data has 5");
        assert!(err.path().is_none());
        let err = npy_bytes(&Array::U8 { shape: vec![], data: &[] }).unwrap_err();
        assert!(err.to_string().contains("shape () has 1 elements but the data has 0"), "{err}");
        let err = npy_bytes(&Array::U8 { shape: vec![usize::MAX, 3], data: &[] }).unwrap_err();
        assert!(err.to_string().contains("too many elements"), "{err}");
        // A header too long for version 1.0 is an error, not a panic.
        let err = npy_bytes(&Array::U8 { shape: vec![1; 30_000], data: &[0] })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("too long for format version 1.0"), "{err}");
    }

    #[test]
    fn run_dir_writes_and_commit_replaces_existing_folder() {
        let scratch = Scratch::new("commit");
        let final_dir = scratch.0.join("out").join("run1");
        fs::create_dir_all(&final_dir).unwrap();
        fs::write(final_dir.join("stale.txt"), "old run").unwrap();

        let run = RunDir::create(&final_dir).unwrap();
        let staging = run.staging_path().to_path_buf();
        assert_eq!(staging.file_name().unwrap().to_str().unwrap(), format!("run1.partial-{}", std::process::id()));
        assert!(staging.is_dir());
        let spikes = [0u8, 1, 1, 0];
        run.write_npz(
            "spikes.npz",
            &[
                ("S.step", Array::U8 { shape: vec![2, 2], data: &spikes }),
                ("t", Array::F64 { shape: vec![1], data: &[0.5] }),
            ],
        )
        .unwrap();
        run.write_json("meta.json", &serde_json::json!({"steps": 2, "dt": 0.1})).unwrap();
        fs::write(run.staging_path().join("extra.txt"), "hi").unwrap();
        assert_eq!(entries(&staging), ["extra.txt", "meta.json", "spikes.npz"]);

        let done = run.commit().unwrap();
        assert_eq!(done, final_dir);
        assert!(!staging.exists());
        assert_eq!(entries(&final_dir), ["extra.txt", "meta.json", "spikes.npz"]);
        assert_eq!(entries(&scratch.0.join("out")), ["run1"], "no staging or old folder left");

        let json = fs::read_to_string(final_dir.join("meta.json")).unwrap();
        assert!(json.ends_with("}\n"));
        assert!(json.contains("\n  \"dt\": 0.1"), "pretty-printed: {json}");
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["steps"], 2);

        let mut zip = zip::ZipArchive::new(File::open(final_dir.join("spikes.npz")).unwrap()).unwrap();
        let names: Vec<&str> = zip.file_names().collect();
        assert_eq!(names.len(), 2);
        assert_eq!(zip.by_index(0).unwrap().name(), "S.step.npy");
        assert_eq!(zip.by_index(1).unwrap().name(), "t.npy");
        let mut member = Vec::new();
        zip.by_name("S.step.npy").unwrap().read_to_end(&mut member).unwrap();
        assert_eq!(member, npy_bytes(&Array::U8 { shape: vec![2, 2], data: &spikes }).unwrap());
    }

    #[test]
    fn commit_creates_missing_final_folder() {
        let scratch = Scratch::new("fresh");
        let final_dir = scratch.0.join("a").join("b").join("run");
        let run = RunDir::create(&final_dir).unwrap();
        run.write_npz("empty.npz", &[]).unwrap();
        assert_eq!(run.commit().unwrap(), final_dir);
        let zip = zip::ZipArchive::new(File::open(final_dir.join("empty.npz")).unwrap()).unwrap();
        assert_eq!(zip.len(), 0);
        assert_eq!(entries(&scratch.0.join("a").join("b")), ["run"]);
    }

    #[test]
    fn failed_commit_restores_the_old_folder_and_keeps_the_output() {
        let scratch = Scratch::new("failcommit");
        let final_dir = scratch.0.join("run");
        fs::create_dir(&final_dir).unwrap();
        fs::write(final_dir.join("keep.txt"), "previous").unwrap();

        // The staging folder vanished: the commit fails and leaves the previous output alone.
        let run = RunDir::create(&final_dir).unwrap();
        let staging = run.staging_path().to_path_buf();
        fs::remove_dir_all(&staging).unwrap();
        let err = run.commit().unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot replace `{}`: ", staging.display())), "{err}");
        assert_eq!(err.io_error().map(io::Error::kind), Some(io::ErrorKind::NotFound));
        assert_eq!(fs::read_to_string(final_dir.join("keep.txt")).unwrap(), "previous");
        assert_eq!(entries(&scratch.0), ["run"], "old folder put back, nothing left over");

        // The final path became a file: the finished output is kept, and the error says where.
        let other = scratch.0.join("other");
        let run = RunDir::create(&other).unwrap();
        run.write_json("meta.json", &serde_json::json!(1)).unwrap();
        let staging = run.staging_path().to_path_buf();
        fs::write(&other, "a file").unwrap();
        let err = run.commit().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not a folder"), "{msg}");
        assert!(msg.contains(&format!("the finished output is in `{}`", staging.display())), "{msg}");
        assert!(staging.join("meta.json").is_file());
        assert_eq!(fs::read_to_string(&other).unwrap(), "a file");
    }

    #[test]
    fn drop_without_commit_removes_staging() {
        let scratch = Scratch::new("drop");
        let final_dir = scratch.0.join("run");
        fs::create_dir(&final_dir).unwrap();
        fs::write(final_dir.join("keep.txt"), "previous").unwrap();
        {
            let run = RunDir::create(&final_dir).unwrap();
            run.write_json("meta.json", &serde_json::json!(null)).unwrap();
            assert!(run.staging_path().join("meta.json").exists());
        }
        assert_eq!(entries(&scratch.0), ["run"]);
        assert_eq!(fs::read_to_string(final_dir.join("keep.txt")).unwrap(), "previous");
    }

    #[test]
    fn two_run_dirs_for_one_folder_get_distinct_staging() {
        let scratch = Scratch::new("twice");
        let final_dir = scratch.0.join("run");
        let first = RunDir::create(&final_dir).unwrap();
        let second = RunDir::create(&final_dir).unwrap();
        assert_ne!(first.staging_path(), second.staging_path());
        let pid = std::process::id();
        assert!(second.staging_path().ends_with(format!("run.partial-{pid}-1")));
        second.write_json("n.json", &serde_json::json!(2)).unwrap();
        drop(first);
        second.commit().unwrap();
        assert_eq!(fs::read_to_string(final_dir.join("n.json")).unwrap(), "2\n");
        assert_eq!(entries(&scratch.0), ["run"]);
    }

    #[test]
    fn unwritable_destination_names_the_path() {
        let scratch = Scratch::new("unwritable");
        let file = scratch.0.join("a-file");
        fs::write(&file, "not a folder").unwrap();
        let err = RunDir::create(&file.join("run1")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("cannot create `{}`: ", file.display())), "{msg}");
        assert!(err.io_error().is_some());
        assert_eq!(err.path(), Some(file.as_path()));

        // The final path itself is a file.
        let err = RunDir::create(&file).unwrap_err();
        assert!(err.to_string().contains(&format!("`{}`", file.display())), "{err}");
        assert!(err.to_string().contains("not a folder"), "{err}");

        let err = RunDir::create(Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("not a folder name"), "{err}");
    }

    #[test]
    fn bad_names_and_arrays_write_nothing() {
        let scratch = Scratch::new("bad");
        let run = RunDir::create(&scratch.0.join("run")).unwrap();
        for name in ["", "..", "a/b.npz", "."] {
            let err = run.write_npz(name, &[]).unwrap_err();
            assert!(err.to_string().contains("not a plain file name"), "{err}");
        }
        let err = run.write_npz("x.npz", &[("v", Array::I64 { shape: vec![2, 2], data: &[1, 2, 3] })]).unwrap_err();
        let expected = format!(
            "cannot write `{}`: array `v`: shape (2, 2) has 4 elements but the data has 3",
            run.staging_path().join("x.npz").display()
        );
        assert_eq!(err.to_string(), expected);
        let err = run
            .write_npz(
                "x.npz",
                &[("v", Array::U8 { shape: vec![], data: &[1] }), ("v", Array::U8 { shape: vec![], data: &[2] })],
            )
            .unwrap_err();
        assert!(err.to_string().contains("two arrays are named `v`"), "{err}");
        let err = run.write_npz("x.npz", &[("", Array::U8 { shape: vec![], data: &[1] })]).unwrap_err();
        assert!(err.to_string().contains("empty name"), "{err}");
        assert!(entries(run.staging_path()).is_empty());
    }

    #[test]
    fn write_file_replaces_atomically_and_names_the_file_on_error() {
        let scratch = Scratch::new("writefile");
        let path = scratch.0.join("figure.png");
        write_file(&path, b"first").unwrap();
        write_file(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(&scratch.0), ["figure.png"], "no temporary file left");
        let err = write_file(&scratch.0.join("missing").join("x.png"), b"x").unwrap_err();
        assert!(err.to_string().starts_with("cannot write `"), "{err}");
        assert!(err.to_string().contains("x.png"), "{err}");
    }

    #[test]
    fn write_error_names_the_file() {
        let scratch = Scratch::new("writeerr");
        let run = RunDir::create(&scratch.0.join("run")).unwrap();
        // A folder where the temporary file would go makes the write fail.
        fs::create_dir(run.staging_path().join(".meta.json.tmp")).unwrap();
        let err = run.write_json("meta.json", &serde_json::json!(1)).unwrap_err();
        let path = run.staging_path().join("meta.json");
        assert!(err.to_string().starts_with(&format!("cannot write `{}`: ", path.display())), "{err}");
        assert_eq!(err.path(), Some(path.as_path()));
    }
}

//! Checks with NumPy that the `.npz`/`.npy` files written by `snnc_runtime::output` load with the right dtypes,
//! shapes and values.
//!
//! The test needs a Python with NumPy: `$SNNC_PYTHON` if set (then a missing NumPy is a failure), otherwise `python3`
//! on `PATH` (then a missing NumPy skips the test with a message on stderr).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use snnc_runtime::output::{Array, RunDir, npy_bytes};

/// Checks the files written by the test; gets the run folder as its argument.
const CHECK: &str = r#"
import json, os, sys
import numpy as np

run = sys.argv[1]
with np.load(os.path.join(run, "data.npz")) as z:
    assert list(z.keys()) == ["rates", "S.step", "counts", "spikes", "scalar", "empty"], list(z.keys())

    a = z["rates"]
    assert a.dtype == np.float64 and a.shape == (2, 3), (a.dtype, a.shape)
    assert a[0, 0] == 0.5 and a[0, 2] == -1e300 and np.isinf(a[1, 0]) and a[1, 0] < 0, a
    assert np.isnan(a[1, 1]) and a[1, 2] == 5e-324, a

    s = z["S.step"]
    assert s.dtype == np.int64 and s.shape == (4,), (s.dtype, s.shape)
    assert s.tolist() == [0, -1, 2**63 - 1, -2**63], s

    c = z["counts"]
    assert c.dtype == np.uint32 and c.shape == (3, 1, 2), (c.dtype, c.shape)
    assert c.tolist() == [[[0, 1]], [[2, 3]], [[4, 2**32 - 1]]], c

    b = z["spikes"]
    assert b.dtype == np.uint8 and b.shape == (2, 4), (b.dtype, b.shape)
    assert b.tolist() == [[0, 1, 0, 0], [1, 1, 0, 255]], b

    x = z["scalar"]
    assert x.dtype == np.float64 and x.shape == () and x == 2.5, (x.dtype, x.shape, x)

    e = z["empty"]
    assert e.dtype == np.uint8 and e.shape == (0, 3), (e.dtype, e.shape)

with np.load(os.path.join(run, "none.npz")) as z:
    assert list(z.keys()) == [], list(z.keys())

v = np.load(os.path.join(run, "v.npy"))
assert v.dtype == np.float64 and v.shape == (5,) and v.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0], v

with open(os.path.join(run, "meta.json")) as f:
    meta = json.load(f)
assert meta == {"dt": 0.1, "steps": 4}, meta
print("numpy", np.__version__, "ok")
"#;

/// The interpreter to use, or `None` (after saying so on stderr) to skip.
fn python_with_numpy() -> Option<PathBuf> {
    let has_numpy = |python: &Path| {
        Command::new(python).args(["-c", "import numpy"]).output().map(|out| out.status.success()).unwrap_or(false)
    };
    if let Some(python) = std::env::var_os("SNNC_PYTHON") {
        let python = PathBuf::from(python);
        assert!(has_numpy(&python), "SNNC_PYTHON=`{}` cannot import numpy", python.display());
        return Some(python);
    }
    let python = PathBuf::from("python3");
    if has_numpy(&python) {
        Some(python)
    } else {
        // Straight to stderr, not `eprintln!`, so the test harness does not capture it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: numpy not available (install it to run this test, or set SNNC_PYTHON to a Python with numpy)"
        );
        None
    }
}

#[test]
fn numpy_loads_npz_npy_and_json() {
    let Some(python) = python_with_numpy() else { return };

    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("output-numpy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let final_dir = base.join("run1");

    let rates = [0.5, 1.0, -1e300, f64::NEG_INFINITY, f64::NAN, 5e-324];
    let steps = [0, -1, i64::MAX, i64::MIN];
    let counts = [0, 1, 2, 3, 4, u32::MAX];
    let spikes = [0, 1, 0, 0, 1, 1, 0, 255];
    let v = [0.0, 0.25, 0.5, 0.75, 1.0];

    let run = RunDir::create(&final_dir).unwrap();
    run.write_npz(
        "data.npz",
        &[
            ("rates", Array::F64 { shape: vec![2, 3], data: &rates }),
            ("S.step", Array::I64 { shape: vec![4], data: &steps }),
            ("counts", Array::U32 { shape: vec![3, 1, 2], data: &counts }),
            ("spikes", Array::U8 { shape: vec![2, 4], data: &spikes }),
            ("scalar", Array::F64 { shape: vec![], data: &[2.5] }),
            ("empty", Array::U8 { shape: vec![0, 3], data: &[] }),
        ],
    )
    .unwrap();
    run.write_npz("none.npz", &[]).unwrap();
    run.write_json("meta.json", &serde_json::json!({"steps": 4, "dt": 0.1})).unwrap();
    let npy = npy_bytes(&Array::F64 { shape: vec![5], data: &v }).unwrap();
    std::fs::write(run.staging_path().join("v.npy"), npy).unwrap();
    let final_dir = run.commit().unwrap();

    let out = Command::new(&python).arg("-c").arg(CHECK).arg(&final_dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "numpy check failed:\n{stdout}{stderr}");
    eprintln!("{} ({}): {}", python.display(), final_dir.display(), stdout.trim());
    std::fs::remove_dir_all(&base).unwrap();
}

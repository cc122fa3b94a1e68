//! The numpy reader reads what the Rust writer wrote, value for value, over many random files
//! (every dtype, 0 rows, unicode symbols, empty ranges), in one Python process.

use serde_json::Value;
use spill::WriteOptions;

use crate::common::{python, random_case, run_python, Rng};

const DUMP: &str = r#"
import sys, json, spillfile, numpy as np
out = []
for p in sys.argv[1:]:
    f = spillfile.open(p)
    f.verify()
    cols = []
    for name in f.columns:
        a = f.column(name)
        assert not a.flags.writeable and not a.flags.owndata, name
        assert a.__array_interface__["data"][0] % 4096 == 0 or f.nrows == 0, name
        info = f.column_info(name)
        cols.append({"name": name, "dtype": info.dtype_name, "role": info.role, "hex": a.tobytes().hex()})
    feats = f.columns_with_role("feature")
    try:
        X = f.features()
        shape = list(X.shape)
        same = all(np.array_equal(X[:, j], f.column(n), equal_nan=True) for j, n in enumerate(feats))
        shares = len(feats) == 0 or f.nrows == 0 or np.shares_memory(X, np.frombuffer(f._mmap, dtype=np.uint8))
        feat = {"shape": shape, "same": bool(same), "zero_copy": bool(shares), "writeable": bool(X.flags.writeable)}
    except spillfile.SpillError:
        feat = None
    out.append({"nrows": f.nrows, "columns": cols, "symbols": f.symbols,
                "ranges": [list(f.symbol_ranges[s]) for s in f.symbols], "build": f.metadata, "features": feat})
print(json.dumps(out))
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn numpy_reader_reads_rust_files_value_for_value() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x5151);
    let cases: Vec<_> = (0..40).map(|_| random_case(&mut rng, 3000)).collect();
    let paths: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.write(
                &dir.path().join(format!("{i}.spill")),
                &[7, 1000],
                WriteOptions::default(),
            )
        })
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let got: Vec<Value> = serde_json::from_str(&run_python(&py, DUMP, &refs)).expect("json");
    assert_eq!(got.len(), cases.len());
    for (case, g) in cases.iter().zip(&got) {
        assert_eq!(g["nrows"], case.nrows);
        assert_eq!(g["build"], Value::Object(case.build.clone()));
        let names: Vec<&str> = case.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(g["symbols"], serde_json::json!(names));
        let ranges: Vec<[u64; 2]> = case.symbols.iter().map(|s| [s.start, s.stop]).collect();
        assert_eq!(g["ranges"], serde_json::json!(ranges));
        let cols = g["columns"].as_array().expect("columns");
        assert_eq!(cols.len(), case.columns.len());
        for ((name, role, data), c) in case.columns.iter().zip(cols) {
            assert_eq!(c["name"], name.as_str());
            assert_eq!(c["dtype"], data.dtype().name());
            assert_eq!(c["role"], role.name());
            assert_eq!(c["hex"], hex(data.bytes()), "column {name}");
        }
        let rust =
            spill::open(&paths[got.iter().position(|x| x == g).expect("found")]).expect("open");
        match (&g["features"], rust.features::<f32>()) {
            (Value::Null, Err(_)) => {}
            (feat, Ok(m)) => {
                assert_eq!(feat["shape"], serde_json::json!([m.nrows(), m.ncols()]));
                assert_eq!(feat["same"], true);
                assert_eq!(feat["zero_copy"], true);
                assert_eq!(feat["writeable"], false);
            }
            (feat, Err(e)) => panic!("python gave a feature view {feat} where rust said {e}"),
        }
    }
}

//! Test helpers: typed column data, writing a case, rewriting metadata, finding numpy.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::skip::skipped;
use serde_json::{Map, Value};
use spill::{ColumnSpec, DType, Layout, Role, SpillWriter, Symbol, WriteOptions};

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    U8(Vec<u8>),
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
            Data::I32(_) => DType::I32,
            Data::U32(_) => DType::U32,
            Data::U8(_) => DType::U8,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::F32(v) => bytemuck::cast_slice(v),
            Data::F64(v) => bytemuck::cast_slice(v),
            Data::I64(v) => bytemuck::cast_slice(v),
            Data::I32(v) => bytemuck::cast_slice(v),
            Data::U32(v) => bytemuck::cast_slice(v),
            Data::U8(v) => v,
        }
    }

    /// Writes rows `[start, end)` of this column through the writer.
    pub fn write(
        &self,
        w: &mut SpillWriter,
        col: usize,
        start: usize,
        end: usize,
    ) -> spill::Result<()> {
        let row = start as u64;
        match self {
            Data::F32(v) => w.write(col, row, &v[start..end]),
            Data::F64(v) => w.write(col, row, &v[start..end]),
            Data::I64(v) => w.write(col, row, &v[start..end]),
            Data::I32(v) => w.write(col, row, &v[start..end]),
            Data::U32(v) => w.write(col, row, &v[start..end]),
            Data::U8(v) => w.write(col, row, &v[start..end]),
        }
    }

    /// Random values of `dtype` (floats include NaN, infinities and -0.0).
    pub fn random(dtype: DType, n: usize, rng: &mut Rng) -> Data {
        let special = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0];
        let float = |rng: &mut Rng| {
            if rng.below(8) == 0 {
                special[rng.below(special.len() as u64) as usize]
            } else {
                (rng.next() as i64 as f64) / 1e15
            }
        };
        match dtype {
            DType::F32 => Data::F32((0..n).map(|_| float(rng) as f32).collect()),
            DType::F64 => Data::F64((0..n).map(|_| float(rng)).collect()),
            DType::I64 => Data::I64((0..n).map(|_| rng.next() as i64).collect()),
            DType::I32 => Data::I32((0..n).map(|_| rng.next() as i32).collect()),
            DType::U32 => Data::U32((0..n).map(|_| rng.next() as u32).collect()),
            DType::U8 => Data::U8((0..n).map(|_| rng.next() as u8).collect()),
            other => panic!("no test data for {other}"),
        }
    }
}

/// A whole file's content.
#[derive(Debug, Clone)]
pub struct Case {
    pub nrows: usize,
    pub columns: Vec<(String, Role, Data)>,
    pub symbols: Vec<Symbol>,
    pub build: Map<String, Value>,
}

impl Case {
    pub fn layout(&self) -> Layout {
        self.layout_with_timezone(None)
    }

    /// The layout, with `timezone` on the time columns.
    pub fn layout_with_timezone(&self, timezone: Option<&str>) -> Layout {
        let specs = self
            .columns
            .iter()
            .map(|(n, r, d)| {
                let tz = (*r == Role::Time).then_some(timezone).flatten();
                ColumnSpec::new(n.clone(), d.dtype(), *r).with_timezone(tz.map(String::from))
            })
            .collect();
        Layout::new(self.nrows as u64, specs, self.symbols.clone()).expect("test layout is valid")
    }

    /// Writes the case in batches cut at `cuts` (row positions), interleaving columns per batch
    /// as the build pipeline does. Returns the final path.
    pub fn write(&self, path: &Path, cuts: &[usize], opts: WriteOptions) -> PathBuf {
        self.write_layout(path, self.layout(), cuts, opts)
    }

    /// [`Case::write`] with a layout of this case's columns (with a chunk size or time zone set).
    pub fn write_layout(
        &self,
        path: &Path,
        layout: Layout,
        cuts: &[usize],
        opts: WriteOptions,
    ) -> PathBuf {
        let mut w = SpillWriter::create(path, layout, opts).expect("create");
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(self.nrows)).collect();
        bounds.push(self.nrows);
        bounds.sort_unstable();
        let mut start = 0;
        for end in bounds {
            for (i, (_, _, d)) in self.columns.iter().enumerate() {
                d.write(&mut w, i, start, end).expect("write");
            }
            start = end;
        }
        w.finish(self.build.clone()).expect("commit").path
    }
}

/// SplitMix64: a tiny deterministic generator for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Symbols that tile `nrows`, with unicode names and some empty ranges.
pub fn random_symbols(nrows: usize, rng: &mut Rng) -> Vec<Symbol> {
    const NAMES: [&str; 8] = [
        "AAPL",
        "ÄPF",
        "BRK.B",
        "日本株",
        "Z",
        "emoji🙂",
        "a b",
        "x/y",
    ];
    let nsym = rng.below(6) as usize + usize::from(nrows > 0);
    let mut cuts: Vec<u64> = (1..nsym).map(|_| rng.below(nrows as u64 + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0u64;
    for (i, stop) in cuts
        .into_iter()
        .chain(std::iter::once(nrows as u64))
        .enumerate()
    {
        if nsym == 0 {
            break;
        }
        out.push(Symbol {
            name: format!("{}{i}", NAMES[i % NAMES.len()]),
            start,
            stop,
        });
        start = stop;
    }
    out
}

/// A random case: 0..=6 columns of random dtypes (features are runs of f32).
pub fn random_case(rng: &mut Rng, max_rows: u64) -> Case {
    let nrows = match rng.below(4) {
        0 => 0,
        1 => rng.below(10) as usize,
        _ => rng.below(max_rows) as usize,
    };
    let mut columns = Vec::new();
    for i in 0..rng.below(7) {
        let dtype = DType::ALL[rng.below(DType::ALL.len() as u64) as usize];
        let role = if dtype == DType::F32 {
            Role::Feature
        } else {
            Role::Other
        };
        columns.push((
            format!("c{i}_{}", dtype.name()),
            role,
            Data::random(dtype, nrows, rng),
        ));
    }
    let mut build = Map::new();
    build.insert("seed".into(), Value::from(rng.next() % 1000));
    Case {
        nrows,
        symbols: random_symbols(nrows, rng),
        columns,
        build,
    }
}

/// Rewrites the metadata JSON of a valid spill file and fixes up its checksum and trailer, so that
/// a test reaches the semantic check it targets rather than the checksum.
pub fn rewrite_metadata(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (trailer, meta) = split(bytes);
    let mut v: Value = serde_json::from_slice(meta).expect("valid metadata");
    f(&mut v);
    let json = serde_json::to_vec(&v).expect("serializable");
    reassemble(bytes, &trailer, &json)
}

/// Replaces the metadata bytes verbatim (fixing checksum and trailer).
pub fn replace_metadata_bytes(bytes: &[u8], json: &[u8]) -> Vec<u8> {
    let (trailer, _) = split(bytes);
    reassemble(bytes, &trailer, json)
}

fn split(bytes: &[u8]) -> (spill::Trailer, &[u8]) {
    let mut t = [0u8; 64];
    t.copy_from_slice(&bytes[bytes.len() - 64..]);
    let trailer = spill::Trailer::decode(&t).expect("valid trailer");
    let start = trailer.metadata_offset as usize;
    (
        trailer,
        &bytes[start..start + trailer.metadata_len as usize],
    )
}

fn reassemble(bytes: &[u8], trailer: &spill::Trailer, json: &[u8]) -> Vec<u8> {
    let mut out = bytes[..trailer.metadata_offset as usize].to_vec();
    out.extend_from_slice(json);
    let t = spill::Trailer {
        metadata_len: json.len() as u64,
        file_len: (out.len() + 64) as u64,
        metadata_checksum: crc32fast::hash(json),
        ..*trailer
    };
    out.extend_from_slice(&t.encode());
    out
}

/// Re-encodes the trailer of `bytes` after `f` changes it (fixing the trailer checksum).
pub fn rewrite_trailer(bytes: &[u8], f: impl FnOnce(&mut spill::Trailer)) -> Vec<u8> {
    let (mut trailer, _) = split(bytes);
    f(&mut trailer);
    let mut out = bytes.to_vec();
    let n = out.len();
    out[n - 64..].copy_from_slice(&trailer.encode());
    out
}

/// A Python interpreter with numpy: `SPILLWAY_PYTHON`, else `python3`. None (with a note) when
/// numpy is missing, unless `SPILLWAY_REQUIRE_PYTHON` is set (CI), where that is a failure.
pub fn python() -> Option<PathBuf> {
    let py =
        std::env::var_os("SPILLWAY_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let ok = Command::new(&py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    if std::env::var_os("SPILLWAY_REQUIRE_PYTHON").is_some() {
        panic!(
            "SPILLWAY_REQUIRE_PYTHON is set but {} cannot import numpy",
            py.display()
        );
    }
    skipped(&format!(
        "the numpy-reader check needs numpy: {} has none (set SPILLWAY_PYTHON)",
        py.display()
    ));
    None
}

/// Directory of `spillfile.py`.
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// Runs `script` with the numpy reader importable; returns stdout, panicking on failure.
pub fn run_python(py: &Path, script: &str, args: &[&Path]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", python_dir())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 output")
}

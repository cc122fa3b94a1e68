//! Time-major files (format 1.2) written through the writer API on random universes (ragged
//! symbols, missing timestamps, duplicate timestamps within a symbol, one symbol, no rows): they
//! read back exactly, the index tiles the rows and matches the time column, `time_range`,
//! `group_sizes` and whole-cross-section batches match naive oracles, and the numpy reader agrees.

use std::ops::Range;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};
use spill::{Batch, BatchOptions, Error, Order, Role, SpillFile, Symbol, WriteOptions};

use crate::common::{python, run_python, Case, Data, Rng};
use crate::golden::time_layout;

/// One universe, symbol-major and time-major.
pub struct Universe {
    /// Symbol-major rows: each symbol's times sorted, some repeated.
    pub sym: Case,
    /// The same rows sorted by (time, code), stably; `symbols` keep the symbol-major ranges.
    pub time: Case,
    /// `(time, rows)` of each distinct timestamp.
    pub counts: Vec<(i64, u64)>,
    /// The time column of `time`.
    pub ts: Vec<i64>,
}

const T0: i64 = 1_700_000_000_000_000_000;
const GRID: i64 = 300_000_000_000;

/// A random universe: 1 to 5 symbols (one only, often), each keeping a random part of a grid of
/// up to `grid` 5-minute steps (none at all, sometimes), a few rows repeated. Columns: `ts`,
/// `symbol`, `target`, `f0` (the row's symbol-major position), `pos` (its time-major position).
pub fn universe(rng: &mut Rng, grid: u64) -> Universe {
    let nsym = if rng.below(4) == 0 {
        1
    } else {
        1 + rng.below(5)
    };
    let keep = rng.below(101);
    let mut rows: Vec<(i64, u32)> = Vec::new(); // symbol-major (time, code)
    let mut symbols = Vec::new();
    for code in 0..nsym as u32 {
        let start = rows.len() as u64;
        let steps = rng.below(grid + 1) as i64;
        for g in 0..steps {
            if rng.below(100) < keep {
                let copies = if rng.below(10) == 0 { 2 } else { 1 };
                for _ in 0..copies {
                    rows.push((T0 + g * GRID, code));
                }
            }
        }
        symbols.push(Symbol {
            name: format!("S{code}"),
            start,
            stop: rows.len() as u64,
        });
    }
    let n = rows.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&r| rows[r]); // stable: a symbol's rows at one time keep their order
    let mut pos = vec![0f32; n];
    for (p, &r) in order.iter().enumerate() {
        pos[r] = p as f32;
    }
    let columns = |perm: &dyn Fn(usize) -> usize| {
        let col = |f: &dyn Fn(usize) -> f32| Data::F32((0..n).map(|i| f(perm(i))).collect());
        vec![
            (
                "ts".to_string(),
                Role::Time,
                Data::I64((0..n).map(|i| rows[perm(i)].0).collect()),
            ),
            (
                "symbol".to_string(),
                Role::Symbol,
                Data::U32((0..n).map(|i| rows[perm(i)].1).collect()),
            ),
            ("target".to_string(), Role::Target, col(&|r| -(r as f32))),
            ("f0".to_string(), Role::Feature, col(&|r| r as f32)),
            ("pos".to_string(), Role::Feature, col(&|r| pos[r])),
        ]
    };
    let sym = Case {
        nrows: n,
        columns: columns(&|i| i),
        symbols: symbols.clone(),
        build: Default::default(),
    };
    let time = Case {
        nrows: n,
        columns: columns(&|i| order[i]),
        symbols,
        build: Default::default(),
    };
    let ts: Vec<i64> = order.iter().map(|&r| rows[r].0).collect();
    let mut counts: Vec<(i64, u64)> = Vec::new();
    for &t in &ts {
        match counts.last_mut() {
            Some((last, c)) if *last == t => *c += 1,
            _ => counts.push((t, 1)),
        }
    }
    Universe {
        sym,
        time,
        counts,
        ts,
    }
}

/// Writes the time-major file of `u` at `path`, in batches cut at `cuts`.
pub fn write_time(u: &Universe, path: &Path, cuts: &[usize]) -> PathBuf {
    let layout = time_layout(&u.time, &u.counts, None);
    u.time
        .write_layout(path, layout, cuts, WriteOptions::default())
}

/// The rows `[start, stop)` of each timestamp, from the time column (a naive scan).
pub fn naive_index(ts: &[i64]) -> Vec<(i64, Range<u64>)> {
    let mut out: Vec<(i64, Range<u64>)> = Vec::new();
    for (r, &t) in ts.iter().enumerate() {
        match out.last_mut() {
            Some((last, range)) if *last == t => range.end += 1,
            _ => out.push((t, r as u64..r as u64 + 1)),
        }
    }
    out
}

#[test]
fn time_major_files_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x7117);
    let (mut empty, mut one) = (0, 0);
    for i in 0..40 {
        let u = universe(&mut rng, 60);
        empty += usize::from(u.time.nrows == 0);
        one += usize::from(u.time.symbols.len() == 1);
        let cuts = [rng.below(50) as usize, rng.below(200) as usize];
        let p = write_time(&u, &dir.path().join(format!("{i}.spill")), &cuts);
        let bytes = std::fs::read(&p).expect("read");
        let f = SpillFile::from_bytes(&bytes[..]).expect("opens");
        assert_eq!((f.version(), f.order()), ((1, 2), Order::Time));
        let mut t = [0u8; 64];
        t.copy_from_slice(&bytes[bytes.len() - 64..]);
        assert_eq!(
            spill::Trailer::decode(&t)
                .expect("trailer")
                .required_features,
            spill::FEATURE_TIME_ORDER
        );
        assert_eq!(f.nrows(), u.time.nrows as u64);
        let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
        let want: Vec<&str> = u.time.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, want);
        assert!(f.symbols().iter().all(|s| (s.start, s.stop) == (0, 0)));
        for (k, (name, _, data)) in u.time.columns.iter().enumerate() {
            assert_eq!(f.column_bytes(k), data.bytes(), "{name}");
        }
        let ts = f.timestamps().expect("an index");
        let got: Vec<(i64, Range<u64>)> = ts.iter().collect();
        assert_eq!(got, naive_index(&u.ts), "case {i}");
        // The ranges tile the rows, and the times increase.
        let mut next = 0;
        for (k, (t, r)) in got.iter().enumerate() {
            assert_eq!(r.start, next);
            assert!(r.end > r.start);
            assert!(k == 0 || *t > got[k - 1].0);
            assert_eq!(ts.find(*t), Some(k));
            next = r.end;
        }
        assert_eq!(next, f.nrows());
        assert!(f.verify().is_ok());
        f.verify_time_index()
            .expect("the time column matches the index");
    }
    assert!(
        empty > 0 && one > 0,
        "the generator covers {empty} empty, {one} one-symbol"
    );
}

#[test]
fn time_range_matches_a_naive_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x7118);
    for i in 0..20 {
        let u = universe(&mut rng, 80);
        let f =
            spill::open(write_time(&u, &dir.path().join(format!("{i}.spill")), &[])).expect("open");
        let mut bounds: Vec<i64> = vec![i64::MIN, i64::MAX, T0, T0 - 1, T0 + 7 * GRID + 1];
        bounds.extend((0..8).map(|_| T0 + (rng.below(90) as i64 - 5) * GRID));
        for &a in &bounds {
            for &b in &bounds {
                let r = f.time_range(a, b).expect("time-major");
                let lo = u.ts.partition_point(|&t| t < a) as u64;
                let want: Vec<u64> = (0..u.ts.len() as u64)
                    .filter(|&k| (a..b).contains(&u.ts[k as usize]))
                    .collect();
                assert_eq!(r.clone().collect::<Vec<_>>(), want, "[{a}, {b})");
                assert_eq!(r.start, lo, "[{a}, {b})");
                assert_eq!(f.time_ranges(a, b).expect("ok"), vec![r]);
            }
        }
    }
    // A symbol-major file has no one range.
    let u = universe(&mut Rng::new(3), 20);
    let p = u
        .sym
        .write(&dir.path().join("s.spill"), &[], WriteOptions::default());
    let f = spill::open(p).expect("open");
    assert_eq!(
        (f.order(), f.time_range(0, i64::MAX)),
        (Order::Symbol, None)
    );
    assert!(f.timestamps().is_none());
}

#[test]
fn group_sizes_count_each_timestamps_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x7119);
    for i in 0..20 {
        let u = universe(&mut rng, 50);
        let f =
            spill::open(write_time(&u, &dir.path().join(format!("{i}.spill")), &[])).expect("open");
        let index = naive_index(&u.ts);
        let n = index.len();
        let (a, b) = (
            rng.below(n as u64 + 1) as usize,
            rng.below(n as u64 + 1) as usize,
        );
        let (a, b) = (a.min(b), a.max(b));
        let start = |k: usize| index.get(k).map_or(f.nrows(), |x| x.1.start);
        let ranges = vec![start(a)..start(b), 0..f.nrows(), start(b)..start(b)];
        let mut want: Vec<u64> = index[a..b].iter().map(|x| x.1.end - x.1.start).collect();
        want.extend(index.iter().map(|x| x.1.end - x.1.start));
        assert_eq!(f.group_sizes(ranges).expect("sizes"), want);
        // A range cutting a cross-section is refused, as is one past the end.
        if let Some((_, r)) = index.iter().find(|x| x.1.end - x.1.start > 1) {
            let cut = r.start + 1;
            assert!(matches!(
                f.group_sizes(std::iter::once(0..cut)),
                Err(Error::NotOnTimestampBoundary { row }) if row == cut
            ));
        }
        assert!(matches!(
            f.group_sizes(std::iter::once(0..f.nrows() + 1)),
            Err(Error::BadRowRange { .. })
        ));
    }
}

/// The documented semantics of whole-timestamp batches, plainly: units as lists of rows, each
/// group the longest run of units within the limit (or one unit), blocks permuted.
pub fn naive_whole(
    index: &[(i64, Range<u64>)],
    ranges: &[Range<u64>],
    shuffle: Option<(u64, u64)>,
    batch_rows: u64,
) -> Vec<Vec<u64>> {
    let mut units: Vec<Vec<u64>> = Vec::new();
    for r in ranges {
        for (_, t) in index {
            if r.start <= t.start && t.end <= r.end {
                units.push(t.clone().collect());
            }
        }
    }
    fn groups(units: Vec<Vec<u64>>, limit: u64) -> Vec<Vec<Vec<u64>>> {
        let mut out = Vec::new();
        let mut rest = units.as_slice();
        while !rest.is_empty() {
            let mut k = 1;
            while k < rest.len() && rest[..=k].iter().map(|u| u.len() as u64).sum::<u64>() <= limit
            {
                k += 1;
            }
            out.push(rest[..k].to_vec());
            rest = &rest[k..];
        }
        out
    }
    if let Some((block_rows, seed)) = shuffle {
        let blocks = groups(units, block_rows);
        units = spill::block_order(blocks.len() as u64, seed)
            .into_iter()
            .flat_map(|b| blocks[b as usize].clone())
            .collect();
    }
    groups(units, batch_rows)
        .into_iter()
        .map(|g| g.concat())
        .collect()
}

/// Random ranges on timestamp boundaries (empty ones and repeats included).
fn boundary_ranges(
    index: &[(i64, Range<u64>)],
    nrows: u64,
    picks: &[(usize, usize)],
) -> Vec<Range<u64>> {
    let start = |k: usize| index.get(k).map_or(nrows, |x| x.1.start);
    picks
        .iter()
        .map(|&(a, len)| {
            let a = a % (index.len() + 1);
            let b = (a + len).min(index.len());
            start(a)..start(b)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn whole_timestamp_batches_match_the_naive_semantics(
        seed in any::<u64>(),
        picks in prop::collection::vec((0usize..200, 0usize..60), 0..4),
        default_ranges in any::<bool>(),
        shuffle in prop::option::of((1u64..40, any::<u64>())),
        batch_rows in 1u64..40,
        drop_behind in any::<bool>(),
    ) {
        let u = universe(&mut Rng::new(seed), 40);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = spill::open(write_time(&u, &dir.path().join("w.spill"), &[])).expect("open");
        let index = naive_index(&u.ts);
        let ranges = if default_ranges {
            std::iter::once(0..f.nrows()).collect()
        } else {
            boundary_ranges(&index, f.nrows(), &picks)
        };
        let mut opts = BatchOptions::new(batch_rows as usize)
            .whole_timestamps()
            .with_time()
            .with_symbols()
            .drop_behind(drop_behind);
        if !default_ranges {
            opts = opts.ranges(ranges.clone());
        }
        if let Some((b, s)) = shuffle {
            opts = opts.shuffle_blocks(b, s);
        }
        let it = f.batches::<f32>(opts).expect("batches");
        let want = naive_whole(&index, &ranges, shuffle, batch_rows);
        prop_assert_eq!(it.len(), want.len());
        let got: Vec<Batch<f32>> = it.collect();
        prop_assert_eq!(got.len(), want.len());
        let Data::U32(codes) = &u.time.columns[1].2 else { unreachable!() };
        for (b, w) in got.iter().zip(&want) {
            let rows: Vec<u64> = b.positions().collect();
            prop_assert_eq!(&rows, w);
            for (i, &r) in rows.iter().enumerate() {
                prop_assert_eq!(b.row(i)[1], r as f32); // pos
            }
            let times: Vec<i64> = rows.iter().map(|&r| u.ts[r as usize]).collect();
            prop_assert_eq!(b.time.as_deref(), Some(&times[..]));
            let syms: Vec<u32> = rows.iter().map(|&r| codes[r as usize]).collect();
            prop_assert_eq!(b.symbols.as_deref(), Some(&syms[..]));
            // Whole cross-sections: a batch ends where a timestamp's rows end.
            if let Some(&last) = rows.last() {
                prop_assert!(f.timestamps().expect("index").boundary(last + 1).is_some());
            }
        }
    }
}

#[test]
fn whole_timestamps_refuse_what_they_cannot_honour() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A universe with a cross-section of several rows.
    let u = (0..)
        .map(|seed| universe(&mut Rng::new(seed), 30))
        .find(|u| u.counts.iter().any(|c| c.1 > 1))
        .expect("one");
    let f = spill::open(write_time(&u, &dir.path().join("t.spill"), &[])).expect("open");
    let ts = f.timestamps().expect("index");
    let inside = (0..ts.len())
        .map(|i| ts.range(i))
        .find(|r| r.end - r.start > 1)
        .expect("one")
        .start
        + 1;
    let err = |o: BatchOptions| f.batches::<f32>(o).expect_err("refused");
    assert!(matches!(
        err(BatchOptions::new(8).whole_timestamps().ranges(std::iter::once(inside..f.nrows()))),
        Error::NotOnTimestampBoundary { row } if row == inside
    ));
    assert!(matches!(
        err(BatchOptions::new(8).whole_timestamps().shuffle_blocks(0, 1)),
        Error::BadBatchOptions(_)
    ));
    // No symbol column: with_symbols cannot give the codes of a time-major file.
    let mut no_sym = u.time.clone();
    no_sym.columns.remove(1);
    let p = no_sym.write_layout(
        &dir.path().join("n.spill"),
        time_layout(&no_sym, &u.counts, None),
        &[],
        WriteOptions::default(),
    );
    let g = spill::open(p).expect("open");
    assert!(matches!(
        g.batches::<f32>(BatchOptions::new(8).with_symbols()),
        Err(Error::NoSymbolColumn)
    ));
    // A symbol-major file has no cross-sections.
    let s = spill::open(
        u.sym
            .write(&dir.path().join("s.spill"), &[], WriteOptions::default()),
    )
    .expect("open");
    assert!(matches!(
        s.batches::<f32>(BatchOptions::new(8).whole_timestamps()),
        Err(Error::NotTimeMajor { .. })
    ));
    assert!(matches!(
        s.group_sizes(std::iter::once(0..0)),
        Err(Error::NotTimeMajor { .. })
    ));
    s.verify_time_index()
        .expect("nothing to check in a symbol-major file");
}

#[test]
fn verify_time_index_names_the_first_row_that_disagrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let u = (12..)
        .map(|seed| universe(&mut Rng::new(seed), 30))
        .find(|u| !u.counts.is_empty())
        .expect("one");
    let mut counts = u.counts.clone();
    let last = counts.len() - 1;
    counts[last].0 += 1; // the index says one ns later than the column
    let p = u.time.write_layout(
        &dir.path().join("m.spill"),
        time_layout(&u.time, &counts, None),
        &[],
        WriteOptions::default(),
    );
    let f = spill::open(&p).expect("opens: the column is not read at open");
    assert!(f.verify().is_ok());
    let row = f.timestamps().expect("index").range(last).start;
    assert!(matches!(
        f.verify_time_index(),
        Err(Error::TimeIndexMismatch { row: r, found, expected })
            if r == row && expected == found + 1
    ));
    let Some(py) = python() else { return };
    let out = run_python(
        &py,
        "import sys, spillfile\ntry:\n    spillfile.open(sys.argv[1]).verify_time_index()\nexcept spillfile.SpillError as e:\n    print(e)\n",
        &[&p],
    );
    assert!(out.starts_with(&format!("row {row} holds time")), "{out}");
}

/// What the numpy reader says about a file, for the arguments in `args`.
const AGREE: &str = r#"
import sys, json, spillfile, numpy as np
out = []
for path, args in zip(sys.argv[1::2], sys.argv[2::2]):
    a = json.loads(args)
    f = spillfile.open(path)
    ts = f.timestamps
    res = {"order": f.order, "times": ts.times.tolist(), "starts": ts.starts.tolist(),
           "counts": ts.counts.tolist(),
           "windows": [list(f.time_range(x, y)) for x, y in a["windows"]],
           "groups": f.group_sizes(a["ranges"]).tolist(), "qid": f.qid(a["ranges"]).tolist(),
           "lookup": [f.timestamp_ranges.get(t) for t in a["probe"]]}
    shuffle = a["shuffle"]
    batches = f.batches(a["batch_rows"], columns=["pos"], ranges=a["ranges"],
                        shuffle="blocks" if shuffle else None,
                        block_rows=shuffle[0] if shuffle else None,
                        seed=shuffle[1] if shuffle else 0, whole_timestamps=True)
    res["batches"] = [[int(v) for v in X[:, 0]] for X, y in batches]
    out.append(res)
print(json.dumps(out))
"#;

#[test]
fn numpy_reader_agrees_with_rust_on_time_major_files() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x711a);
    let mut args: Vec<PathBuf> = Vec::new();
    let mut expected = Vec::new();
    for i in 0..16 {
        let u = universe(&mut rng, 50);
        let p = write_time(&u, &dir.path().join(format!("{i}.spill")), &[]);
        let f = spill::open(&p).expect("open");
        let ts = f.timestamps().expect("index");
        let index = naive_index(&u.ts);
        let picks: Vec<(usize, usize)> = (0..rng.below(3) + 1)
            .map(|_| (rng.below(60) as usize, rng.below(30) as usize))
            .collect();
        let ranges = boundary_ranges(&index, f.nrows(), &picks);
        let windows: Vec<(i64, i64)> = (0..4)
            .map(|_| {
                let g = |rng: &mut Rng| T0 + (rng.below(60) as i64 - 5) * GRID;
                (g(&mut rng), g(&mut rng))
            })
            .collect();
        let shuffle = (rng.below(2) == 0).then(|| (1 + rng.below(30), rng.next()));
        let batch_rows = 1 + rng.below(25);
        let probe: Vec<i64> = vec![T0, T0 + 1, T0 + 3 * GRID];
        let mut opts = BatchOptions::new(batch_rows as usize)
            .whole_timestamps()
            .ranges(ranges.clone())
            .columns(["pos"]);
        if let Some((b, s)) = shuffle {
            opts = opts.shuffle_blocks(b, s);
        }
        let batches: Vec<Vec<u64>> = f
            .batches::<f32>(opts)
            .expect("batches")
            .map(|b| b.positions().collect())
            .collect();
        let groups = f.group_sizes(ranges.clone()).expect("groups");
        let qid: Vec<u64> = ranges
            .iter()
            .flat_map(|r| {
                r.clone()
                    .map(|row| ts.index_of_row(row).expect("row") as u64)
            })
            .collect();
        let times: Vec<i64> = ts.iter().map(|x| x.0).collect();
        let starts: Vec<u64> = ts.iter().map(|x| x.1.start).collect();
        let counts: Vec<u64> = ts.iter().map(|x| x.1.end - x.1.start).collect();
        let lookup: Vec<Value> = probe
            .iter()
            .map(|&t| {
                ts.find(t)
                    .map_or(Value::Null, |k| json!([ts.range(k).start, ts.range(k).end]))
            })
            .collect();
        let wins: Vec<[u64; 2]> = windows
            .iter()
            .map(|&(a, b)| {
                let r = f.time_range(a, b).expect("time-major");
                [r.start, r.end]
            })
            .collect();
        expected.push(
            json!({"order": "time", "times": times, "starts": starts, "counts": counts,
            "windows": wins, "groups": groups, "qid": qid, "lookup": lookup, "batches": batches}),
        );
        let a = json!({"windows": windows, "probe": probe, "batch_rows": batch_rows,
            "shuffle": shuffle.map(|(b, s)| json!([b, s])),
            "ranges": ranges.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>()});
        let arg = dir.path().join(format!("{i}.json"));
        std::fs::write(&arg, a.to_string()).expect("write");
        args.push(p);
        args.push(arg);
    }
    // The script takes each argument file's content as the JSON of arguments.
    let script = AGREE.replace("json.loads(args)", "json.load(open(args))");
    let refs: Vec<&Path> = args.iter().map(|p| p.as_path()).collect();
    let got: Vec<Value> = serde_json::from_str(&run_python(&py, &script, &refs)).expect("json");
    assert_eq!(got.len(), expected.len());
    for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, w, "file {i}");
    }
}

//! Training batches (`SpillFile::batches`) against a naive implementation of the documented
//! semantics, `time_ranges`, and the resident memory of an epoch with `drop_behind`.

use std::ops::Range;

use proptest::prelude::*;
use spill::{Batch, BatchOptions, Error, Role, SpillFile, Symbol, WriteOptions};

use crate::common::{Case, Data, Rng};

/// A file of `nrows` rows: time sorted within each symbol, symbol codes, a target and `nfeat`
/// f32 features whose values encode (row, column), so every copy can be checked.
pub fn case(nrows: usize, nfeat: usize, rng: &mut Rng) -> Case {
    let symbols = crate::common::random_symbols(nrows, rng);
    let mut time = vec![0i64; nrows];
    let mut codes = vec![0u32; nrows];
    for (code, s) in symbols.iter().enumerate() {
        let mut t = 1_600_000_000_000_000_000i64;
        for r in s.start..s.stop {
            t += 1 + rng.below(3) as i64; // repeated times are allowed; strictly increasing is not needed
            time[r as usize] = t - 1;
            codes[r as usize] = code as u32;
        }
    }
    let mut columns = vec![
        ("ts".into(), Role::Time, Data::I64(time)),
        ("symbol".into(), Role::Symbol, Data::U32(codes)),
        (
            "target".into(),
            Role::Target,
            Data::F32((0..nrows).map(|r| -(r as f32)).collect()),
        ),
    ];
    for j in 0..nfeat {
        columns.push((
            format!("f{j}"),
            Role::Feature,
            Data::F32((0..nrows).map(|r| (r * 100 + j) as f32).collect()),
        ));
    }
    Case {
        nrows,
        columns,
        symbols,
        build: Default::default(),
    }
}

pub fn written(case: &Case) -> (tempfile::TempDir, SpillFile<memmap2::Mmap>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = case.write(&dir.path().join("b.spill"), &[], WriteOptions::default());
    let f = spill::open(p).expect("open");
    (dir, f)
}

/// The documented semantics, written as plainly as possible: the row sequence of `ranges`, its
/// blocks permuted by Fisher-Yates over SplitMix64, cut into batches.
pub fn naive_batches(
    ranges: &[Range<u64>],
    shuffle: Option<(u64, u64)>,
    batch_rows: usize,
) -> Vec<Vec<u64>> {
    let seq: Vec<u64> = ranges.iter().flat_map(|r| r.clone()).collect();
    let seq = match shuffle {
        None => seq,
        Some((block_rows, seed)) => {
            let blocks: Vec<&[u64]> = seq.chunks(block_rows as usize).collect();
            let mut order: Vec<usize> = (0..blocks.len()).collect();
            let mut state = seed;
            for i in (1..order.len()).rev() {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                order.swap(i, (z % (i as u64 + 1)) as usize);
            }
            order
                .iter()
                .flat_map(|&b| blocks[b].iter().copied())
                .collect()
        }
    };
    seq.chunks(batch_rows).map(<[u64]>::to_vec).collect()
}

/// Checks a batch's every value against the file's columns at its positions.
fn check_batch(case: &Case, b: &Batch<f32>, want_rows: &[u64], ncols: usize) {
    let rows: Vec<u64> = b.positions().collect();
    assert_eq!(rows, want_rows);
    assert_eq!(
        (b.nrows(), b.ncols, b.x.len()),
        (rows.len(), ncols, rows.len() * ncols)
    );
    for (i, &r) in rows.iter().enumerate() {
        for j in 0..ncols {
            assert_eq!(b.row(i)[j], (r as usize * 100 + j) as f32);
        }
    }
    let y: Vec<f32> = rows.iter().map(|&r| -(r as f32)).collect();
    assert_eq!(b.y.as_deref(), Some(&y[..]));
    let Data::I64(time) = &case.columns[0].2 else {
        unreachable!()
    };
    if let Some(t) = &b.time {
        assert_eq!(
            t,
            &rows.iter().map(|&r| time[r as usize]).collect::<Vec<_>>()
        );
    }
    let Data::U32(codes) = &case.columns[1].2 else {
        unreachable!()
    };
    if let Some(s) = &b.symbols {
        assert_eq!(
            s,
            &rows.iter().map(|&r| codes[r as usize]).collect::<Vec<_>>()
        );
    }
}

#[test]
fn default_batches_cover_every_row_once_in_file_order() {
    let c = case(1000, 3, &mut Rng::new(1));
    let (_d, f) = written(&c);
    let batches: Vec<Batch<f32>> = f.batches(BatchOptions::new(64)).expect("batches").collect();
    assert_eq!(batches.len(), 16);
    assert!(batches[..15].iter().all(|b| b.nrows() == 64));
    assert_eq!(batches[15].nrows(), 1000 - 15 * 64);
    let all: Vec<u64> = batches.iter().flat_map(|b| b.positions()).collect();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    assert!(batches
        .iter()
        .all(|b| b.time.is_none() && b.symbols.is_none()));
}

#[test]
fn the_shuffle_is_a_block_permutation_independent_of_batch_rows() {
    let c = case(5000, 2, &mut Rng::new(2));
    let (_d, f) = written(&c);
    let order = |batch_rows| -> Vec<u64> {
        let opts = BatchOptions::new(batch_rows).shuffle_blocks(100, 7);
        f.batches::<f32>(opts)
            .expect("batches")
            .flat_map(|b| b.positions().collect::<Vec<_>>())
            .collect()
    };
    let a = order(1);
    assert_eq!(a, order(37));
    assert_eq!(a, order(100_000));
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..5000).collect::<Vec<_>>());
    assert_ne!(a, sorted, "a shuffle that leaves the order as it is");
    // Rows inside a block keep their order: every block is 100 consecutive rows.
    for block in a.chunks(100) {
        assert!(block.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(block[0] % 100, 0);
    }
}

#[test]
fn block_order_test_vector() {
    // Shared with the numpy reader's tests (SPEC.md, "Batches").
    assert_eq!(spill::block_order(10, 42), BLOCK_ORDER_10_42);
    assert_eq!(spill::block_order(1, 5), [0]);
    assert!(spill::block_order(0, 5).is_empty());
}

const BLOCK_ORDER_10_42: [u64; 10] = [0, 9, 5, 8, 6, 4, 7, 2, 1, 3];

#[test]
fn options_are_checked_up_front() {
    let c = case(10, 1, &mut Rng::new(3));
    let (_d, f) = written(&c);
    let err = |o: BatchOptions| f.batches::<f32>(o).expect_err("refused");
    assert!(matches!(
        err(BatchOptions::new(0)),
        Error::BadBatchOptions(_)
    ));
    assert!(matches!(
        err(BatchOptions::new(4).shuffle_blocks(0, 1)),
        Error::BadBatchOptions(_)
    ));
    assert!(matches!(
        err(BatchOptions::new(4).ranges(std::iter::once(0..11))),
        Error::BadRowRange { stop: 11, .. }
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = std::iter::once(5..4);
    assert!(matches!(
        err(BatchOptions::new(4).ranges(backwards)),
        Error::BadRowRange { .. }
    ));
    assert!(matches!(
        err(BatchOptions::new(4).columns(["nope"])),
        Error::NoSuchColumn { .. }
    ));
    assert!(matches!(
        err(BatchOptions::new(4).columns(["ts"])),
        Error::DTypeMismatch { .. }
    ));
    assert!(matches!(
        f.batches::<f64>(BatchOptions::new(4))
            .expect_err("f32 file"),
        Error::DTypeMismatch { .. }
    ));
    // No time column: with_time and time_ranges are refused, the rest works.
    let mut no_time = c.clone();
    no_time.columns.remove(0);
    let (_d2, g) = written(&no_time);
    assert!(matches!(
        g.batches::<f32>(BatchOptions::new(4).with_time()),
        Err(Error::NoTimeColumn)
    ));
    assert!(matches!(g.time_ranges(0, 1), Err(Error::NoTimeColumn)));
    assert_eq!(g.batches::<f32>(BatchOptions::new(4)).expect("ok").len(), 3);
}

#[test]
fn time_ranges_find_each_symbols_window() {
    let c = case(3000, 1, &mut Rng::new(4));
    let (_d, f) = written(&c);
    let Data::I64(time) = &c.columns[0].2 else {
        unreachable!()
    };
    let t0 = time.iter().copied().min().unwrap_or(0);
    for (a, b) in [
        (t0, t0 + 50),
        (t0 + 100, t0 + 4000),
        (t0 + 10, t0 + 10),
        (t0 + 9, t0 + 3),
        (i64::MIN, i64::MAX),
    ] {
        let got = f.time_ranges(a, b).expect("time column");
        assert_eq!(got.len(), c.symbols.len());
        for (s, r) in c.symbols.iter().zip(&got) {
            let want: Vec<u64> = (s.start..s.stop)
                .filter(|&i| (a..b).contains(&time[i as usize]))
                .collect();
            assert_eq!(
                r.clone().collect::<Vec<_>>(),
                want,
                "[{a}, {b}) in {}",
                s.name
            );
        }
    }
    // Unsorted times: some sub-range of each symbol, never a panic.
    let mut shuffled = c.clone();
    if let Data::I64(t) = &mut shuffled.columns[0].2 {
        t.reverse();
    }
    let (_d2, g) = written(&shuffled);
    for (s, r) in c
        .symbols
        .iter()
        .zip(g.time_ranges(t0 + 5, t0 + 900).expect("ok"))
    {
        assert!(s.start <= r.start && r.start <= r.end && r.end <= s.stop);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn batches_match_the_naive_semantics(
        seed in any::<u64>(),
        nrows in 0usize..2000,
        raw_ranges in prop::collection::vec((0u64..2100, 0u64..300), 0..5),
        default_ranges in any::<bool>(),
        shuffle in prop::option::of((1u64..300, any::<u64>())),
        batch_rows in 1usize..700,
        time in any::<bool>(),
        symbols in any::<bool>(),
        drop_behind in any::<bool>(),
    ) {
        let c = case(nrows, 3, &mut Rng::new(seed));
        let (_d, f) = written(&c);
        let ranges: Vec<Range<u64>> = if default_ranges {
            std::iter::once(0..nrows as u64).collect()
        } else {
            raw_ranges
                .iter()
                .map(|&(s, len)| {
                    let s = s.min(nrows as u64);
                    s..(s + len).min(nrows as u64)
                })
                .collect()
        };
        let mut opts = BatchOptions::new(batch_rows).drop_behind(drop_behind);
        if !default_ranges {
            opts = opts.ranges(ranges.clone());
        }
        if let Some((b, s)) = shuffle {
            opts = opts.shuffle_blocks(b, s);
        }
        if time {
            opts = opts.with_time();
        }
        if symbols {
            opts = opts.with_symbols();
        }
        let it = f.batches::<f32>(opts).expect("batches");
        let want = naive_batches(&ranges, shuffle, batch_rows);
        prop_assert_eq!(it.len(), want.len());
        let got: Vec<Batch<f32>> = it.collect();
        prop_assert_eq!(got.len(), want.len());
        for (b, w) in got.iter().zip(&want) {
            check_batch(&c, b, w, 3);
            prop_assert_eq!(b.time.is_some(), time);
            prop_assert_eq!(b.symbols.is_some(), symbols);
        }
        // Chosen columns, in the chosen order.
        let opts = BatchOptions::new(batch_rows).columns(["f2", "target"]);
        let mut it = f.batches::<f32>(opts).expect("batches");
        let mut b = Batch::default();
        let mut row = 0u64;
        while it.next_into(&mut b) {
            for i in 0..b.nrows() {
                let r = row + i as u64;
                prop_assert_eq!(b.row(i), &[(r * 100 + 2) as f32, -(r as f32)][..]);
            }
            row += b.nrows() as u64;
        }
        prop_assert_eq!(row, nrows as u64);
        prop_assert!(b.x.is_empty() && b.rows.is_empty());
    }
}

/// Resident bytes of the mapping holding `addr` (from /proc/self/smaps), unaffected by what other
/// test threads allocate.
fn mapping_rss_kib(addr: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&addr);
                    continue;
                }
            }
        }
        if inside {
            if let Some(v) = line.strip_prefix("Rss:") {
                return v.trim().trim_end_matches("kB").trim().parse().expect("kB");
            }
        }
    }
    panic!("no mapping holds {addr:#x}");
}

/// Iterates a shuffled epoch over a file of `nrows` x (`nfeat` + 1) f32 values and returns the
/// largest resident size of the file's mapping seen after a batch, and the size at the end.
fn epoch_rss(dir: &std::path::Path, nrows: u64, nfeat: usize, drop_behind: bool) -> (u64, u64) {
    let path = dir.join(format!("mem-{drop_behind}.spill"));
    if !path.exists() {
        let mut cols = vec![spill::ColumnSpec::new(
            "target",
            spill::DType::F32,
            Role::Target,
        )];
        cols.extend(
            (0..nfeat)
                .map(|j| spill::ColumnSpec::new(format!("f{j}"), spill::DType::F32, Role::Feature)),
        );
        let sym = vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: nrows,
        }];
        let layout = spill::Layout::new(nrows, cols, sym).expect("layout");
        let mut w =
            spill::SpillWriter::create(&path, layout, WriteOptions::default()).expect("create");
        let chunk: Vec<f32> = (0..65536).map(|i| i as f32).collect();
        let mut row = 0;
        while row < nrows {
            let n = (nrows - row).min(chunk.len() as u64) as usize;
            for c in 0..=nfeat {
                w.write(c, row, &chunk[..n]).expect("write");
            }
            row += n as u64;
        }
        w.finish(Default::default()).expect("commit");
    }
    let f = spill::open(&path).expect("open");
    let addr = f.column_bytes(0).as_ptr() as usize;
    let opts = BatchOptions::new(8192)
        .shuffle_blocks(4096, 1)
        .drop_behind(drop_behind);
    let mut it = f.batches::<f32>(opts).expect("batches");
    let mut b = Batch::default();
    let (mut peak, mut rows, mut sum) = (0, 0u64, 0f64);
    while it.next_into(&mut b) {
        rows += b.nrows() as u64;
        sum += f64::from(b.x[0]);
        peak = peak.max(mapping_rss_kib(addr));
    }
    assert_eq!(rows, nrows);
    assert!(sum >= 0.0);
    drop(it); // releases what is still queued
    (peak, mapping_rss_kib(addr))
}

#[test]
fn drop_behind_keeps_the_mapping_small_over_an_epoch() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // 13 columns x 1 Mi rows x 4 bytes = 52 MiB of data.
    let (peak, after) = epoch_rss(dir.path(), 1 << 20, 12, true);
    // Up to 8 MiB queued for release, plus the 64 KiB windows one batch touches.
    assert!(
        peak < 16 << 10,
        "mapping peaked at {peak} KiB with drop_behind"
    );
    assert!(
        after < 1 << 10,
        "mapping holds {after} KiB once the iterator is gone"
    );
    // The measurement measures something: without it the mapping holds the file at the end.
    let (_, end) = epoch_rss(dir.path(), 1 << 20, 12, false);
    eprintln!(
        "52 MiB epoch: mapping peak {peak} KiB with drop_behind ({after} KiB after), \
         {end} KiB at the end without"
    );
    assert!(
        end > 40 << 10,
        "mapping holds only {end} KiB after a full epoch"
    );
}

#[test]
#[ignore = "heavy: writes and reads a 4 GiB file; run by scripts/test-heavy.sh"]
fn drop_behind_keeps_rss_bounded_on_a_4_gib_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let nfeat = 99;
    let nrows = (4u64 << 30) / (4 * (nfeat as u64 + 1));
    let (peak, end) = epoch_rss(dir.path(), nrows, nfeat, true);
    eprintln!("4 GiB epoch with drop_behind: mapping peak {peak} KiB, at the end {end} KiB");
    assert!(peak < 64 << 10, "mapping peaked at {peak} KiB");
}

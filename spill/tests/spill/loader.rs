//! Batches over epochs, ranks and workers (SPEC.md "Batches", "Epochs, ranks and workers"): the
//! dealing against a naive transcription of the spec, the evenness of every (rank, worker), the
//! coverage of an epoch, and resuming from a saved state at the same or another world size
//! (`batch_state.rs`: the state's refusals, JSON and fingerprint).
#![allow(clippy::single_range_in_vec_init)] // lists of one row range are meant

use std::collections::BTreeMap;
use std::ops::Range;

use proptest::prelude::*;
use spill::{Batch, BatchOptions, BatchState, SpillFile};

use crate::batches::{case, naive_batches, written};
use crate::common::Rng;
use crate::time::{naive_index, naive_whole, universe, write_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Even {
    Neither,
    DropLast,
    Pad,
}

/// An evenness for `units` ranks x workers: neither is allowed only for one.
fn even_for(choice: u8, units: u64) -> Even {
    match (choice % 3, units) {
        (0, 1) => Even::Neither,
        (0 | 1, _) => Even::DropLast,
        _ => Even::Pad,
    }
}

/// `base` as rank `r` of `ws`, worker `w` of `nw`, evened out by `even`.
fn with(base: &BatchOptions, (r, ws): (u64, u64), (w, nw): (u64, u64), even: Even) -> BatchOptions {
    let o = base.clone().rank(r, ws).worker(w, nw);
    match even {
        Even::Neither => o,
        Even::DropLast => o.drop_last(),
        Even::Pad => o.pad(),
    }
}

/// The spec's dealing, transcribed plainly: the global batches rank `r`'s worker `w` reads, in
/// order, and the dropped and padded global batches (padded ones as the batches they read).
fn naive_deal(
    n: u64,
    partial: bool,
    c: u64,
    (r, ws): (u64, u64),
    (w, nw): (u64, u64),
    even: Even,
) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let u = ws * nw;
    let usable = if even == Even::DropLast && partial {
        n - 1
    } else {
        n
    };
    let rest = match even {
        Even::DropLast => usable.saturating_sub(c),
        _ => n.saturating_sub(c),
    };
    let k = match even {
        Even::DropLast => rest / u * nw,
        Even::Pad => rest.div_ceil(u) * nw,
        Even::Neither => rest,
    };
    let wrap = |idx: u64| if idx < n { idx } else { (idx - n) % n };
    let mine = (0..k)
        .filter(|j| j % nw == w)
        .map(|j| wrap(c + j * ws + r))
        .collect();
    let end = c + k * ws;
    let dropped = match even {
        Even::DropLast => (end..n).collect(),
        _ => vec![],
    };
    let padded = match even {
        Even::Pad => (n..end).map(wrap).collect(),
        _ => vec![],
    };
    (mine, dropped, padded)
}

/// Source rows as runs, adjacent ones merged.
fn runs(rows: impl IntoIterator<Item = u64>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(last) if last.end == r => last.end += 1,
            _ => out.push(r..r + 1),
        }
    }
    out
}

/// How often each item occurs.
fn counted<K: Ord>(items: impl IntoIterator<Item = K>) -> BTreeMap<K, i64> {
    let mut m = BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// `a - b + c` as multisets (keys at zero removed).
fn minus_plus<K: Ord + Clone>(
    a: BTreeMap<K, i64>,
    b: &BTreeMap<K, i64>,
    c: &BTreeMap<K, i64>,
) -> BTreeMap<K, i64> {
    let mut m = a;
    for (k, v) in b {
        *m.entry(k.clone()).or_insert(0) -= v;
    }
    for (k, v) in c {
        *m.entry(k.clone()).or_insert(0) += v;
    }
    m.retain(|_, v| *v != 0);
    m
}

fn positions(b: &Batch<f32>) -> Vec<u64> {
    b.positions().collect()
}

/// What every (rank, worker) of one epoch yields from cursor `c`.
struct Epoch {
    /// The batches of every (rank, worker), one after another.
    batches: Vec<Vec<u64>>,
    /// The dropped and padded global batches' rows (the same on every rank and worker).
    dropped: Vec<Range<u64>>,
    padded: Vec<Range<u64>>,
}

/// Runs every (rank, worker) of `ws` x `nw` with `base` (which may resume from cursor `c`), each
/// checked against the naive dealing of `globals`; every one yields the same count.
fn deal_all(
    f: &SpillFile<memmap2::Mmap>,
    base: &BatchOptions,
    globals: &[Vec<u64>],
    partial: bool,
    c: u64,
    (ws, nw): (u64, u64),
    even: Even,
) -> Epoch {
    let n = globals.len() as u64;
    let rows_of = |gs: &[u64]| runs(gs.iter().flat_map(|&g| globals[g as usize].clone()));
    let mut out = Epoch {
        batches: Vec::new(),
        dropped: Vec::new(),
        padded: Vec::new(),
    };
    let mut counts = Vec::new();
    for r in 0..ws {
        for w in 0..nw {
            let it = f
                .batches::<f32>(with(base, (r, ws), (w, nw), even))
                .expect("batches");
            let (mine, dropped, padded) = naive_deal(n, partial, c, (r, ws), (w, nw), even);
            let want: Vec<Vec<u64>> = mine.iter().map(|&g| globals[g as usize].clone()).collect();
            assert_eq!(it.len(), want.len(), "rank {r} worker {w}");
            let rows: usize = want.iter().map(Vec::len).sum();
            assert_eq!(it.remaining_rows(), rows as u64);
            assert_eq!(it.dropped_rows(), rows_of(&dropped));
            assert_eq!(it.padded_rows(), rows_of(&padded));
            out.dropped = it.dropped_rows();
            out.padded = it.padded_rows();
            let got: Vec<Vec<u64>> = it.map(|b| positions(&b)).collect();
            assert_eq!(got, want, "rank {r} worker {w}");
            counts.push(got.len());
            out.batches.extend(got);
        }
    }
    assert!(
        counts.windows(2).all(|p| p[0] == p[1]),
        "uneven: {counts:?}"
    );
    out
}

/// Random ranges within `nrows` (overlaps, empty ones), or the default.
fn pick_ranges(nrows: u64, raw: &[(u64, u64)], default: bool) -> Option<Vec<Range<u64>>> {
    (!default).then(|| {
        raw.iter()
            .map(|&(s, len)| s.min(nrows)..(s.min(nrows) + len).min(nrows))
            .collect()
    })
}

/// A file, its options and the naive global batches of the options' epoch.
fn fixed_setup(
    seed: u64,
    nrows: usize,
    ranges: Option<Vec<Range<u64>>>,
    shuffle: Option<(u64, u64)>,
    batch_rows: usize,
    epoch: u64,
) -> (
    tempfile::TempDir,
    SpillFile<memmap2::Mmap>,
    BatchOptions,
    Vec<Vec<u64>>,
) {
    let (dir, f) = written(&case(nrows, 2, &mut Rng::new(seed)));
    let mut base = BatchOptions::new(batch_rows).epoch(epoch);
    if let Some(r) = &ranges {
        base = base.ranges(r.clone());
    }
    if let Some((b, s)) = shuffle {
        base = base.shuffle_blocks(b, s);
    }
    let sel = ranges.unwrap_or_else(|| vec![0..nrows as u64]);
    let seeded = shuffle.map(|(b, s)| (b, s.wrapping_add(epoch)));
    let globals = naive_batches(&sel, seeded, batch_rows);
    (dir, f, base, globals)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn one_epoch_over_ranks_and_workers_yields_every_row_once_but_dropped_and_padded(
        seed in any::<u64>(),
        nrows in 0usize..400,
        raw in prop::collection::vec((0u64..450, 0u64..150), 0..4),
        default_ranges in any::<bool>(),
        shuffle in prop::option::of((1u64..60, any::<u64>())),
        batch_rows in 1usize..40,
        (ws, nw) in (1u64..5, 1u64..4),
        choice in any::<u8>(),
        epoch in 0u64..3,
    ) {
        let ranges = pick_ranges(nrows as u64, &raw, default_ranges);
        let sel = ranges.clone().unwrap_or_else(|| vec![0..nrows as u64]);
        let (_d, f, base, globals) =
            fixed_setup(seed, nrows, ranges, shuffle, batch_rows, epoch);
        let total: usize = globals.iter().map(Vec::len).sum();
        let partial = !total.is_multiple_of(batch_rows);
        let even = even_for(choice, ws * nw);
        let e = deal_all(&f, &base, &globals, partial, 0, (ws, nw), even);
        let got = counted(e.batches.iter().flatten().copied());
        let want = minus_plus(
            counted(sel.iter().flat_map(|r| r.clone())),
            &counted(e.dropped.iter().flat_map(|r| r.clone())),
            &counted(e.padded.iter().flat_map(|r| r.clone())),
        );
        prop_assert_eq!(got, want);
    }

    #[test]
    fn whole_timestamp_epochs_are_dealt_the_same_way(
        seed in any::<u64>(),
        shuffle in prop::option::of((1u64..30, any::<u64>())),
        batch_rows in 1u64..30,
        (ws, nw) in (1u64..4, 1u64..3),
        choice in any::<u8>(),
        epoch in 0u64..3,
    ) {
        let u = universe(&mut Rng::new(seed), 30);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = spill::open(write_time(&u, &dir.path().join("w.spill"), &[])).expect("open");
        let mut base = BatchOptions::new(batch_rows as usize).whole_timestamps().epoch(epoch);
        if let Some((b, s)) = shuffle {
            base = base.shuffle_blocks(b, s);
        }
        let seeded = shuffle.map(|(b, s)| (b, s.wrapping_add(epoch)));
        let globals = naive_whole(&naive_index(&u.ts), &[0..f.nrows()], seeded, batch_rows);
        let even = even_for(choice, ws * nw);
        // Whole cross-sections are never partial: drop_last drops only uneven rounds.
        let e = deal_all(&f, &base, &globals, false, 0, (ws, nw), even);
        let want = minus_plus(
            counted(0..f.nrows()),
            &counted(e.dropped.iter().flat_map(|r| r.clone())),
            &counted(e.padded.iter().flat_map(|r| r.clone())),
        );
        prop_assert_eq!(counted(e.batches.iter().flatten().copied()), want);
    }

    #[test]
    fn resuming_at_the_same_world_size_yields_the_uninterrupted_tail(
        seed in any::<u64>(),
        nrows in 0usize..300,
        shuffle in prop::option::of((1u64..50, any::<u64>())),
        batch_rows in 1usize..30,
        (ws, nw) in (1u64..4, 1u64..4),
        (r, w) in (0u64..4, 0u64..4),
        choice in any::<u8>(),
        (k1, k2) in (0usize..12, 0usize..12),
        epoch in 0u64..3,
    ) {
        let (_d, f, base, _) = fixed_setup(seed, nrows, None, shuffle, batch_rows, epoch);
        let opts = with(&base, (r % ws, ws), (w % nw, nw), even_for(choice, ws * nw));
        let full: Vec<Batch<f32>> = f.batches(opts.clone()).expect("batches").collect();
        // Two interruptions: the second resumes an iterator that itself resumed.
        let mut it = f.batches::<f32>(opts.clone()).expect("batches");
        let k1 = k1.min(full.len());
        for _ in 0..k1 {
            prop_assert!(it.next().is_some());
        }
        let saved = BatchState::from_json(&it.state().to_json()).expect("state json");
        prop_assert_eq!(&saved, &it.state());
        let mut again = f.batches::<f32>(opts.clone().resume(saved.clone())).expect("resume");
        prop_assert_eq!(again.state(), saved);
        prop_assert_eq!(again.len(), full.len() - k1);
        let k2 = k2.min(full.len() - k1);
        for want in &full[k1..k1 + k2] {
            let next = again.next();
            prop_assert_eq!(next.as_ref(), Some(want));
        }
        let resumed = f.batches::<f32>(opts.resume(again.state())).expect("resume");
        prop_assert_eq!(resumed.len(), full.len() - k1 - k2);
        let tail: Vec<Batch<f32>> = resumed.collect();
        prop_assert_eq!(&tail[..], &full[k1 + k2..]);
    }

    #[test]
    fn resuming_at_another_world_size_yields_the_undelivered_batches_once(
        seed in any::<u64>(),
        nrows in 0usize..300,
        shuffle in prop::option::of((1u64..50, any::<u64>())),
        batch_rows in 1usize..30,
        ws in 1u64..5,
        (ws2, nw2) in (1u64..5, 1u64..4),
        (choice, choice2) in (any::<u8>(), any::<u8>()),
        k in 0usize..15,
        epoch in 0u64..3,
    ) {
        let (_d, f, base, globals) = fixed_setup(seed, nrows, None, shuffle, batch_rows, epoch);
        let partial = !nrows.is_multiple_of(batch_rows);
        let even = even_for(choice, ws);
        // Every rank takes k steps (a synchronous job), then the job stops.
        let (mut states, mut delivered) = (Vec::new(), Vec::new());
        for r in 0..ws {
            let mut it = f
                .batches::<f32>(with(&base, (r, ws), (0, 1), even))
                .expect("batches");
            delivered.extend(it.by_ref().take(k).map(|b| positions(&b)));
            states.push(it.state());
        }
        for (r, s) in states.iter().enumerate() {
            prop_assert_eq!(s.rank, r as u64);
            prop_assert_eq!((s.cursor, s.worker_batches), (states[0].cursor, 0));
        }
        let c = states[0].cursor;
        let n = globals.len() as u64;
        if c < n {
            prop_assert_eq!(c, k as u64 * ws);
            prop_assert_eq!(counted(delivered), counted(globals[..c as usize].to_vec()));
        } else {
            prop_assert_eq!(c, n);
        }
        // Any rank's state resumes the job at another size.
        let resume = base.clone().resume(states[0].clone());
        let even2 = even_for(choice2, ws2 * nw2);
        let e = deal_all(&f, &resume, &globals, partial, c, (ws2, nw2), even2);
        let (_, dropped, padded) = naive_deal(n, partial, c, (0, ws2), (0, nw2), even2);
        let batch = |g: &u64| globals[*g as usize].clone();
        let want = minus_plus(
            counted(globals[c as usize..].to_vec()),
            &counted(dropped.iter().map(batch)),
            &counted(padded.iter().map(batch)),
        );
        prop_assert_eq!(counted(e.batches), want);
    }
}

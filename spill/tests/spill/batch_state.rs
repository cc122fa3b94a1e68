//! The batch state (SPEC.md "Batches", "Epochs, ranks and workers"): a state that belongs to
//! another file, selection or options is refused with an error naming the field, bad ranks,
//! workers and evenness are refused up front, the epoch adds to the seed, the JSON has the spec's
//! keys in order, and the fingerprint's test vector shared with the numpy reader.
#![allow(clippy::single_range_in_vec_init)] // lists of one row range are meant

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use spill::{BatchOptions, BatchState, Error, SpillFile};

use crate::batches::{case, written};
use crate::common::Rng;

/// A saved state of `f`: rank 0 of 2 (drop_last), batches of 4, blocks of 10 with seed 3, epoch
/// 2, after one batch.
fn saved(f: &SpillFile<memmap2::Mmap>, nw: u64) -> (BatchOptions, BatchState) {
    let opts = BatchOptions::new(4)
        .shuffle_blocks(10, 3)
        .epoch(2)
        .rank(0, 2)
        .worker(0, nw)
        .drop_last();
    let mut it = f.batches::<f32>(opts.clone()).expect("batches");
    assert!(it.next().is_some());
    (opts, it.state())
}

#[test]
fn states_of_another_file_selection_or_options_are_refused() {
    let (_d, f) = written(&case(100, 2, &mut Rng::new(1)));
    let (_e, other) = written(&case(100, 2, &mut Rng::new(2)));
    let (opts, st) = saved(&f, 1);
    let refuse =
        |f: &SpillFile<memmap2::Mmap>, o: BatchOptions| f.batches::<f32>(o).expect_err("refused");
    let resume = |o: BatchOptions| o.resume(st.clone());
    let e = refuse(&other, resume(opts.clone()));
    assert!(matches!(e, Error::StateOtherFile { .. }), "{e}");
    assert!(e
        .to_string()
        .starts_with("the state belongs to another file or another selection of rows"));
    let e = refuse(&f, resume(opts.clone().ranges([0..50])));
    assert!(matches!(e, Error::StateOtherFile { .. }), "{e}");
    // The same rows as a different list of ranges is another selection too.
    let e = refuse(&f, resume(opts.clone().ranges([0..50, 50..100])));
    assert!(matches!(e, Error::StateOtherFile { .. }), "{e}");
    // The default selection is [0, nrows): naming it is the same selection.
    assert!(f
        .batches::<f32>(resume(opts.clone().ranges([0..100])))
        .is_ok());

    let mismatch = |o: BatchOptions, field: &str, text: &str| {
        let e = refuse(&f, o);
        assert!(
            matches!(&e, Error::StateMismatch { field: got, .. } if *got == field),
            "{e}"
        );
        assert_eq!(e.to_string(), text);
    };
    let o = BatchOptions::new(8)
        .shuffle_blocks(10, 3)
        .rank(0, 2)
        .drop_last();
    mismatch(
        resume(o),
        "batch_rows",
        "the state was saved with batch_rows=4, this call has batch_rows=8",
    );
    let o = BatchOptions::new(4).rank(0, 2).drop_last();
    mismatch(
        resume(o),
        "shuffle",
        "the state was saved with shuffle=\"blocks\", this call has shuffle=null",
    );
    let o = BatchOptions::new(4)
        .shuffle_blocks(11, 3)
        .rank(0, 2)
        .drop_last();
    mismatch(
        resume(o),
        "block_rows",
        "the state was saved with block_rows=10, this call has block_rows=11",
    );
    let o = BatchOptions::new(4)
        .shuffle_blocks(10, 4)
        .rank(0, 2)
        .drop_last();
    mismatch(
        resume(o),
        "seed",
        "the state was saved with seed=3, this call has seed=4",
    );
    mismatch(
        resume(opts.clone().epoch(3)),
        "epoch",
        "the state was saved with epoch=2, this call has epoch=3",
    );
    // The epoch comes from the state: unset (or equal) on the call.
    let o = BatchOptions::new(4)
        .shuffle_blocks(10, 3)
        .rank(0, 2)
        .drop_last();
    assert_eq!(f.batches::<f32>(resume(o)).expect("resume").state(), st);
    mismatch(
        resume(opts.clone().whole_timestamps()),
        "whole_timestamps",
        "the state was saved with whole_timestamps=false, this call has whole_timestamps=true",
    );
    let edit = |change: &dyn Fn(&mut BatchState)| {
        let mut s = st.clone();
        change(&mut s);
        opts.clone().resume(s)
    };
    mismatch(
        edit(&|s| s.rows = 99),
        "rows",
        "the state was saved with rows=99, this call has rows=100",
    );
    mismatch(
        edit(&|s| s.batches = 26),
        "batches",
        "the state was saved with batches=26, this call has batches=25",
    );
    let e = refuse(&f, edit(&|s| s.spillway_batches = 2));
    assert!(matches!(e, Error::StateVersion { found: 2 }), "{e}");
    let e = refuse(&f, edit(&|s| s.cursor = 26));
    assert!(
        matches!(
            e,
            Error::StatePastEnd {
                field: "cursor",
                value: 26,
                max: 25
            }
        ),
        "{e}"
    );
    let e = refuse(&f, edit(&|s| s.worker_batches = 1));
    assert!(
        matches!(
            e,
            Error::StatePastEnd {
                field: "worker_batches",
                ..
            }
        ),
        "{e}"
    );
    // A rank's state moves to any size; a worker's only to its own.
    assert!(f
        .batches::<f32>(resume(opts.clone().rank(2, 3).worker(1, 2)))
        .is_ok());
    let (wopts, wst) = saved(&f, 2);
    assert_eq!((wst.rank, wst.worker), (0, 0));
    assert_eq!((wst.cursor, wst.worker_batches), (0, 1));
    assert!(f.batches::<f32>(wopts.clone().resume(wst.clone())).is_ok());
    for moved in [
        wopts.clone().worker(0, 3),
        wopts.clone().rank(0, 1),
        wopts.clone().worker(1, wst.num_workers),
    ] {
        let e = refuse(&f, moved.resume(wst.clone()));
        assert!(matches!(e, Error::WorkerStateMoved { .. }), "{e}");
        assert!(e.to_string().starts_with(
            "a worker's state resumes only the same worker at the same world_size and \
             num_workers; merge the workers' states first"
        ));
    }
    let mut past = wst.clone();
    past.worker_batches = 7; // 25 batches over 4 workers: 6 each
    let e = refuse(&f, wopts.resume(past));
    assert!(
        matches!(
            e,
            Error::StatePastEnd {
                field: "worker_batches",
                value: 7,
                max: 6
            }
        ),
        "{e}"
    );
    for bad in ["", "{}", "[1]", "{\"spillway_batches\": 1}", "not json"] {
        assert!(
            matches!(BatchState::from_json(bad), Err(Error::BadStateJson(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn ranks_workers_and_evenness_are_checked_up_front() {
    let (_d, f) = written(&case(10, 1, &mut Rng::new(3)));
    let err = |o: BatchOptions| f.batches::<f32>(o).expect_err("refused");
    let e = err(BatchOptions::new(4).rank(0, 2));
    assert!(matches!(e, Error::BadBatchOptions(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "batch options: world_size x num_workers > 1: call drop_last() or pad() so every rank \
         and worker gets the same number of batches"
    );
    assert!(matches!(
        err(BatchOptions::new(4).worker(1, 2)),
        Error::BadBatchOptions(_)
    ));
    assert!(matches!(
        err(BatchOptions::new(4).drop_last().pad()),
        Error::BadBatchOptions(_)
    ));
    let e = err(BatchOptions::new(4).rank(2, 2).pad());
    assert!(matches!(
        e,
        Error::BadPartition {
            what: "rank",
            index: 2,
            count: 2,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "batch options: rank=2 is not in 0..world_size=2"
    );
    let e = err(BatchOptions::new(4).worker(3, 3).pad());
    assert_eq!(
        e.to_string(),
        "batch options: worker=3 is not in 0..num_workers=3"
    );
    assert!(matches!(
        err(BatchOptions::new(4).rank(0, 0)),
        Error::BadBatchOptions(_)
    ));
    assert!(matches!(
        err(BatchOptions::new(4).worker(0, 0)),
        Error::BadBatchOptions(_)
    ));
    // One rank of one worker may still drop the partial batch, or pad (which changes nothing).
    let it = f
        .batches::<f32>(BatchOptions::new(4).drop_last())
        .expect("ok");
    assert_eq!((it.len(), it.dropped_rows()), (2, vec![8..10]));
    assert_eq!(
        f.batches::<f32>(BatchOptions::new(4).pad())
            .expect("ok")
            .len(),
        3
    );
}

#[test]
fn the_epoch_adds_to_the_seed() {
    let (_d, f) = written(&case(500, 1, &mut Rng::new(4)));
    let rows = |o: BatchOptions| -> Vec<Vec<u64>> {
        let it = f.batches::<f32>(o).expect("batches");
        it.map(|b| b.positions().collect()).collect()
    };
    let s = |seed| BatchOptions::new(7).shuffle_blocks(10, seed);
    assert_eq!(rows(s(5).epoch(3)), rows(s(8)));
    assert_eq!(rows(s(5).epoch(0)), rows(s(5)));
    assert_eq!(rows(s(u64::MAX).epoch(2)), rows(s(1)));
    assert_ne!(rows(s(5).epoch(1)), rows(s(5)));
    let it = f.batches::<f32>(s(5).epoch(3)).expect("batches");
    assert_eq!((it.state().epoch, it.state().seed), (3, 5));
}

#[test]
fn the_state_json_has_the_specs_keys_in_order_and_fits_in_a_kib() {
    let (_d, f) = written(&case(100, 2, &mut Rng::new(1)));
    let (_, st) = saved(&f, 1);
    let fp = &st.fingerprint;
    assert_eq!(
        st.to_json(),
        format!(
            "{{\"spillway_batches\":1,\"fingerprint\":\"{fp}\",\"rows\":100,\"batch_rows\":4,\
             \"shuffle\":\"blocks\",\"block_rows\":10,\"seed\":3,\"epoch\":2,\
             \"whole_timestamps\":false,\"batches\":25,\"cursor\":2,\"rank\":0,\"world_size\":2,\
             \"worker\":0,\"num_workers\":1,\"worker_batches\":0}}"
        )
    );
    let it = f.batches::<f32>(BatchOptions::new(4)).expect("batches");
    assert!(it.state().to_json().contains(
        "\"shuffle\":null,\"block_rows\":null,\"seed\":0,\"epoch\":0,\"whole_timestamps\":false"
    ));
    // The largest state there can be.
    let max = BatchState {
        spillway_batches: u64::MAX,
        fingerprint: "f".repeat(16),
        rows: u64::MAX,
        batch_rows: u64::MAX,
        shuffle: Some("blocks".into()),
        block_rows: Some(u64::MAX),
        seed: u64::MAX,
        epoch: u64::MAX,
        whole_timestamps: false,
        batches: u64::MAX,
        cursor: u64::MAX,
        rank: u64::MAX,
        world_size: u64::MAX,
        worker: u64::MAX,
        num_workers: u64::MAX,
        worker_batches: u64::MAX,
    };
    assert!(max.to_json().len() <= 1024, "{}", max.to_json().len());
    assert_eq!(BatchState::from_json(&max.to_json()).expect("parses"), max);
    // The spec's example, as Python's json.dumps writes it by default (with spaces).
    let python =
        "{\"spillway_batches\": 1, \"fingerprint\": \"0123456789abcdef\", \"rows\": 1234567, \
        \"batch_rows\": 65536, \"shuffle\": \"blocks\", \"block_rows\": 65536, \"seed\": 0, \
        \"epoch\": 3, \"whole_timestamps\": false, \"batches\": 19, \"cursor\": 8, \"rank\": 0, \
        \"world_size\": 2, \"worker\": 0, \"num_workers\": 1, \"worker_batches\": 0}";
    let parsed = BatchState::from_json(python).expect("the spec's example");
    assert_eq!(
        parsed.to_json(),
        python.replace(": ", ":").replace(", ", ",")
    );
}

/// The first 16 hex digits of the SHA-256 of `text`.
fn sha256_16(text: &str) -> String {
    let mut s = String::new();
    for b in &Sha256::digest(text.as_bytes())[..8] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[test]
fn fingerprint_test_vector() {
    // Shared with the numpy reader's tests:
    // sha256("spill-batches-v1;len=8192;meta=12345;ranges=0-100")
    //   = 1b59de144a8c991ea7fcc2bd3b4721cae0ea532519f53803b574d520978f235d
    // so the fingerprint of len=8192, meta=12345, ranges [0, 100) is "1b59de144a8c991e".
    assert_eq!(
        sha256_16("spill-batches-v1;len=8192;meta=12345;ranges=0-100"),
        "1b59de144a8c991e"
    );
    assert_eq!(
        spill::batches_fingerprint(8192, 12345, &[0..100]),
        "1b59de144a8c991e"
    );
    // A tiny file: its length and the trailer's metadata checksum, the ranges asked for.
    let (dir, f) = written(&case(8, 1, &mut Rng::new(5)));
    let bytes = std::fs::read(dir.path().join("b.spill")).expect("read");
    let mut t = [0u8; 64];
    t.copy_from_slice(&bytes[bytes.len() - 64..]);
    let meta = spill::Trailer::decode(&t)
        .expect("trailer")
        .metadata_checksum;
    let len = bytes.len();
    let state = |o: BatchOptions| f.batches::<f32>(o).expect("batches").state().fingerprint;
    let whole = format!("spill-batches-v1;len={len};meta={meta};ranges=0-8");
    assert_eq!(state(BatchOptions::new(3)), sha256_16(&whole));
    let some = format!("spill-batches-v1;len={len};meta={meta};ranges=2-5,6-8,2-5");
    let ranges = [2..5, 0..0, 6..8, 8..8, 2..5];
    assert_eq!(state(BatchOptions::new(3).ranges(ranges)), sha256_16(&some));
    let none = format!("spill-batches-v1;len={len};meta={meta};ranges=");
    assert_eq!(state(BatchOptions::new(3).ranges([4..4])), sha256_16(&none));
}

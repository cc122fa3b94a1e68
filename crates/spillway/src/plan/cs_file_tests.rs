//! The count and plan formats: round trips, and one negative test per error.

use super::*;

fn header() -> CountHeader {
    CountHeader {
        options: CountOptions {
            target: Some("y".into()),
            time_col: "ts".into(),
            time_unit: None,
            max_rows: None,
            drop_null_target: true,
            max_cs_samples: Some(2),
            seed: 7,
        },
        universe: UniverseId {
            symbols: 4,
            names: crc_text(1),
        },
        ranges: vec![[1, 3]],
        skipped: vec![Skipped {
            symbol: "BAD".into(),
            reason: "its time column is missing".into(),
        }],
    }
}

fn records() -> Vec<CountRecord> {
    vec![
        CountRecord {
            t: 10,
            count: 1,
            keys: vec![(5, 1, false)],
        },
        CountRecord {
            t: 20,
            count: 3,
            keys: vec![(1, 2, false), (9, 1, true)],
        },
    ]
}

fn counts(h: &CountHeader, recs: &[CountRecord]) -> Vec<u8> {
    let mut f = Framed::new(Vec::new(), COUNT_MAGIC, h).expect("header");
    f.fingerprints(&[11, 12]).expect("fps");
    for r in recs {
        f.count(r).expect("record");
    }
    f.finish().expect("trailer").0
}

/// Recomputes the checksum after an edit, so the edit itself is what the parser meets.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    let n = b.len();
    let crc = crc32fast::hash(&b[..n - 8]);
    b[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn count_files_round_trip() {
    let b = counts(&header(), &records());
    let (h, fps, recs) = parse_counts(&b).expect("parses");
    assert_eq!((h, fps, recs), (header(), vec![11, 12], records()));
}

#[test]
fn plans_round_trip() {
    let h = PlanHeader {
        options: header().options,
        min_cs: 2,
        universe: header().universe,
        counts: vec!["a".into()],
        distinct: 2,
        sampled: 1,
        rows: [4, 3],
        skipped: header().skipped,
    };
    let mut f = Framed::new(Vec::new(), PLAN_MAGIC, &h).expect("header");
    f.fingerprints(&[1, 2, 3, 4]).expect("fps");
    f.threshold(10, KEEP_ALL).expect("record");
    f.threshold(20, (9, 1, true)).expect("record");
    let b = f.finish().expect("trailer").0;
    let (back, fps, recs) = parse_plan(&b).expect("parses");
    assert_eq!(back, h);
    assert_eq!(fps, vec![1, 2, 3, 4]);
    assert_eq!(recs, vec![(10, KEEP_ALL), (20, (9, 1, true))]);
    assert!(
        matches!(parse_counts(&b), Err(CsFileError::Magic(_))),
        "a plan is no count file"
    );
}

#[test]
fn every_error_is_reported() {
    let good = counts(&header(), &records());
    let mut v = good.clone();
    v[8] = 1;
    v[10] = 0;
    assert!(
        matches!(parse_counts(&v), Err(CsFileError::Version(1, 0))),
        "version 1 keys tell no repeated rows apart"
    );
    assert!(matches!(
        parse_counts(&good[..good.len() - 30]),
        Err(CsFileError::Checksum { .. } | CsFileError::Length(_))
    ));
    assert!(matches!(
        parse_counts(&good[..20]),
        Err(CsFileError::Length(_))
    ));
    let mut v = good.clone();
    v[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse_counts(&v), Err(CsFileError::Length(_))));
    let mut v = good.clone();
    v[16] = b'[';
    assert!(matches!(parse_counts(&v), Err(CsFileError::Header(_))));
    let mut v = good.clone();
    let last = v.len() - 20;
    v[last] ^= 1;
    assert!(matches!(
        parse_counts(&v),
        Err(CsFileError::Checksum { .. })
    ));
    // Record rules, each with a valid checksum.
    let mut h = header();
    let bad = |recs: Vec<CountRecord>, h: &CountHeader| parse_counts(&reseal(counts(h, &recs)));
    let rec = |t, count, keys| CountRecord { t, count, keys };
    let unordered = vec![
        rec(20, 1, vec![(1, 1, false)]),
        rec(10, 1, vec![(1, 1, false)]),
    ];
    assert!(matches!(
        bad(unordered, &h),
        Err(CsFileError::Record { index: 1, .. })
    ));
    let few_keys = vec![rec(10, 3, vec![(1, 1, false)])];
    assert!(matches!(
        bad(few_keys, &h),
        Err(CsFileError::Record { index: 0, .. })
    ));
    let foreign = vec![rec(10, 1, vec![(1, 3, false)])];
    assert!(matches!(bad(foreign, &h), Err(CsFileError::Record { .. })));
    let keys_unsorted = vec![rec(10, 2, vec![(5, 1, false), (1, 1, false)])];
    assert!(matches!(
        bad(keys_unsorted, &h),
        Err(CsFileError::Record { .. })
    ));
    let repeats_unsorted = vec![rec(10, 2, vec![(5, 1, true), (5, 1, false)])];
    assert!(matches!(
        bad(repeats_unsorted, &h),
        Err(CsFileError::Record { .. })
    ));
    // A repeat byte that is neither 0 nor 1: the last key's, of the last record.
    let mut v = counts(&header(), &records());
    let at = v.len() - 25;
    assert_eq!(v[at], 1, "the repeat byte of (9, 1, true)");
    v[at] = 2;
    assert!(matches!(
        parse_counts(&reseal(v)),
        Err(CsFileError::Record { index: 1, .. })
    ));
    h.ranges = vec![[3, 9]];
    assert!(matches!(bad(records(), &h), Err(CsFileError::Header(_))));
    // Trailer counts that disagree with the body.
    let mut v = good.clone();
    let at = v.len() - 24;
    v[at] ^= 1;
    assert!(matches!(
        parse_counts(&reseal(v)),
        Err(CsFileError::Length(_))
    ));
}

#[test]
fn version_2_0_files_without_skipped_still_parse() {
    // A 2.0 count file: its header has no `skipped` key.
    let mut h = header();
    h.skipped.clear();
    let mut f = Framed::new(Vec::new(), COUNT_MAGIC, &h).expect("header");
    f.fingerprints(&[11, 12]).expect("fps");
    let mut b = f.finish().expect("trailer").0;
    assert!(!String::from_utf8_lossy(&b).contains("skipped"));
    // Say 2.0 in the prefix and fix the trailer's CRC.
    b[10..12].copy_from_slice(&0u16.to_le_bytes());
    let end = b.len() - 8;
    let crc = crc32fast::hash(&b[..end]);
    b[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    let (back, _, _) = parse_counts(&b).expect("a 2.0 file parses");
    assert_eq!(back, h);
}

#[test]
fn skipped_lists_must_be_sorted_distinct_and_short() {
    let write = |h: &CountHeader| {
        let mut f = Framed::new(Vec::new(), COUNT_MAGIC, h).expect("header");
        f.fingerprints(&[11, 12]).expect("fps");
        f.finish().expect("trailer").0
    };
    let mut h = header();
    h.skipped.push(Skipped {
        symbol: "AAA".into(),
        reason: "x".into(),
    });
    let e = parse_counts(&write(&h)).expect_err("unsorted");
    assert!(e.to_string().contains("not sorted"), "{e}");
    let mut h = header();
    h.skipped[0].reason = "x".repeat(MAX_REASON + 1);
    let e = parse_counts(&write(&h)).expect_err("long reason");
    assert!(e.to_string().contains("over 1024 bytes"), "{e}");
    let cut = normalize_skipped(h.skipped.clone());
    assert_eq!(cut[0].reason.len(), MAX_REASON);
}

//! The fast decoder against arrow-rs (issue 13): random universes written by the parquet crate's
//! own writers (every fast-eligible type, V1 and V2 pages, pages of a few values, dictionary
//! fallback, nulls, every codec, several row groups), each built twice through the library, once
//! with `Decoder::Arrow` and once with `Decoder::Auto`, under random row selections (`--max-rows`,
//! the cross-sectional filters), batch sizes and thread counts. The spill files must be identical
//! byte for byte, and the fast decoder must have read every file of the second build.
//!
//! `SPILLWAY_DECODER_CASES` sets the case count (scripts/test-heavy.sh runs many more).

mod coverage;
mod findings;
mod gen;
mod seeds;

use std::path::Path;

use proptest::prelude::*;
use spillway::config::Decoder;

use gen::{Col, Decl, FileSpec, Nulls, Props, TimeCol, TimeTy, TYS};

/// Symbols, each with its files (a single file is `S<i>.parquet`, several are a hive directory).
type Universe = Vec<Vec<FileSpec>>;

/// The build options of a case (only those that select rows or slice the work).
#[derive(Debug, Clone, Default)]
struct Opts {
    max_rows: Option<u64>,
    drop_null_target: bool,
    min_cs: Option<u64>,
    max_cs_samples: Option<u64>,
    seed: u64,
    batch_rows: Option<usize>,
    threads: usize,
    float64: bool,
}

/// Writes the universe under `dir`; returns the number of files.
fn write_universe(dir: &Path, u: &Universe) -> u64 {
    for (s, files) in u.iter().enumerate() {
        if let [one] = &files[..] {
            gen::write_file(&dir.join(format!("S{s}.parquet")), one);
            continue;
        }
        let d = dir.join(format!("symbol=S{s}"));
        std::fs::create_dir_all(&d).expect("symbol dir");
        for (i, f) in files.iter().enumerate() {
            gen::write_file(&d.join(format!("part-{i}.parquet")), f);
        }
    }
    u.iter().map(|f| f.len() as u64).sum()
}

/// One build of `input` with `decoder`: its summary's (fast, arrow) file counts and the spill
/// file's bytes, or the error as `Kind: message`.
fn build(
    input: &Path,
    out: &Path,
    o: &Opts,
    decoder: Decoder,
) -> Result<((u64, u64), Vec<u8>), String> {
    let mut cfg = spillway::BuildOptions {
        input: Some(input.to_path_buf()),
        output: Some(out.to_path_buf()),
        target: Some("target".into()),
        max_rows: o.max_rows,
        drop_null_target: Some(o.drop_null_target),
        min_cs: o.min_cs,
        max_cs_samples: o.max_cs_samples,
        seed: Some(o.seed),
        batch_rows: o.batch_rows,
        threads: Some(o.threads),
        no_float32: Some(o.float64),
        ..Default::default()
    }
    .resolve()
    .map_err(|e| format!("config: {e}"))?;
    cfg.decoder = decoder;
    let summary = spillway::build(&cfg, &spillway::Progress::hidden())
        .map_err(|e| format!("{:?}: {e}", e.kind()))?;
    let bytes = std::fs::read(out).expect("read the spill file");
    Ok(((summary.decoders.fast, summary.decoders.arrow), bytes))
}

/// Where two spill files first differ: the column and row, with both values' bytes.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (Ok(fa), Ok(fb)) = (
        spill::SpillFile::from_bytes(a),
        spill::SpillFile::from_bytes(b),
    ) else {
        return "one file does not open".into();
    };
    if fa.columns().len() != fb.columns().len() || fa.nrows() != fb.nrows() {
        return format!("shapes differ: {} vs {} rows", fa.nrows(), fb.nrows());
    }
    for (i, c) in fa.columns().iter().enumerate() {
        let (x, y) = (fa.column_bytes(i), fb.column_bytes(i));
        let size = c.dtype.size() as usize;
        if let Some(k) = x.iter().zip(y).position(|(p, q)| p != q) {
            let row = k / size;
            let cell = |v: &[u8]| format!("{:02x?}", &v[row * size..(row + 1) * size]);
            return format!(
                "column {:?} row {row}: arrow {} fast {}",
                c.name,
                cell(x),
                cell(y)
            );
        }
    }
    "the metadata differs".into()
}

/// Builds `u` with both decoders and requires the same outcome: identical bytes, or two errors.
fn check(u: &Universe, o: &Opts) -> Result<(), TestCaseError> {
    let d = tempfile::tempdir().expect("tempdir");
    let input = d.path().join("u");
    std::fs::create_dir(&input).expect("input dir");
    let files = write_universe(&input, u);
    let arrow = build(&input, &d.path().join("arrow.spill"), o, Decoder::Arrow);
    let fast = build(&input, &d.path().join("fast.spill"), o, Decoder::Auto);
    match (arrow, fast) {
        (Ok((counts_a, a)), Ok((counts_f, f))) => {
            prop_assert_eq!(counts_a, (0, files), "arrow build: (fast, arrow) files");
            prop_assert_eq!(counts_f, (files, 0), "auto build: (fast, arrow) files");
            prop_assert!(
                a == f,
                "the decoders disagree: {}",
                first_difference(&a, &f)
            );
        }
        (Err(_), Err(f)) => prop_assert!(!f.starts_with("Internal"), "fast build: {}", f),
        (a, f) => prop_assert!(
            false,
            "one build failed: arrow {:?}, fast {:?}",
            a.map(|_| "ok"),
            f.map(|_| "ok")
        ),
    }
    Ok(())
}

fn nulls() -> impl Strategy<Value = Option<Nulls>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some(Nulls::None)),
        2 => Just(Some(Nulls::Scattered)),
        2 => Just(Some(Nulls::Runs)),
        1 => Just(Some(Nulls::All)),
    ]
}

fn col() -> impl Strategy<Value = Col> {
    (
        prop::sample::select(&TYS[..]),
        prop::sample::select(&[Decl::Logical, Decl::Converted, Decl::Bare][..]),
        nulls(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ty, decl, nulls, distinct, wide, dict_array)| Col {
            ty,
            decl,
            nulls,
            distinct,
            wide,
            dict_array,
        })
}

fn time_col() -> impl Strategy<Value = TimeCol> {
    let tys = [TimeTy::Ms, TimeTy::Us, TimeTy::Ns, TimeTy::Date];
    (prop::sample::select(tys.to_vec()), nulls(), any::<bool>())
        .prop_map(|(ty, nulls, zoned)| TimeCol { ty, nulls, zoned })
}

fn props() -> impl Strategy<Value = Props> {
    (
        any::<bool>(),
        0..gen::codecs().len(),
        prop_oneof![1usize..=8, 9usize..=1024],
        prop_oneof![1usize..=8, 9usize..=20_000],
        prop_oneof![1usize..=64, Just(1 << 20)],
        any::<bool>(),
        prop_oneof![1usize..=64, Just(1 << 20)],
        1usize..=200,
    )
        .prop_map(
            |(v2, codec, write_batch, page_rows, page_bytes, dictionary, dict_bytes, rgr)| Props {
                v2,
                codec,
                write_batch,
                page_rows,
                page_bytes,
                dictionary,
                dict_bytes,
                row_group_rows: rgr,
            },
        )
}

fn file() -> impl Strategy<Value = FileSpec> {
    (
        0usize..=150,
        any::<bool>(),
        time_col(),
        col(),
        prop::collection::vec(prop::option::weighted(0.6, col()), 5),
        any::<usize>(),
        props(),
        any::<u64>(),
    )
        .prop_map(
            |(rows, low_level, time, target, features, ts_pos, props, seed)| FileSpec {
                rows,
                low_level,
                time,
                target,
                features,
                ts_pos,
                props,
                seed,
            },
        )
}

fn opts() -> impl Strategy<Value = Opts> {
    (
        prop::option::weighted(0.3, 0u64..300),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.3, 0u64..5),
        prop::option::weighted(0.3, 1u64..4),
        any::<u64>(),
        prop::option::weighted(0.8, prop_oneof![Just(1usize), 2usize..=70]),
        1usize..=3,
        any::<bool>(),
    )
        .prop_map(
            |(
                max_rows,
                drop_null_target,
                min_cs,
                max_cs_samples,
                seed,
                batch_rows,
                threads,
                float64,
            )| Opts {
                max_rows,
                drop_null_target,
                min_cs,
                max_cs_samples,
                seed,
                batch_rows,
                threads,
                float64,
            },
        )
}

fn cases() -> u32 {
    std::env::var("SPILLWAY_DECODER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Random universes and row selections: both decoders give the same spill file.
    #[test]
    fn fast_decoder_equals_arrow_rs(
        u in prop::collection::vec(prop::collection::vec(file(), 1..=2), 1..=3),
        o in opts(),
    ) {
        check(&u, &o)?;
    }
}

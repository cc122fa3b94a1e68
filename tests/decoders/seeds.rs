//! Seeds of the `decoders` fuzz target (`fuzz/seeds/decoders/`): small generator files the fast
//! decoder reads, mostly uncompressed so that mutations reach the pages. The target puts
//! `v1-plain.parquet` beside the fuzzed file as a second symbol.

use std::path::{Path, PathBuf};

use spillway::config::Decoder;

use super::gen::{Col, Decl, FileSpec, Nulls, Props, TimeCol, TimeTy, Ty};

fn col(ty: Ty, nulls: Option<Nulls>) -> Col {
    Col {
        ty,
        decl: Decl::Logical,
        nulls,
        distinct: true,
        wide: false,
        dict_array: false,
    }
}

fn spec(rows: usize, time: TimeTy, target: Col, features: Vec<Option<Col>>) -> FileSpec {
    FileSpec {
        rows,
        low_level: false,
        time: TimeCol {
            ty: time,
            nulls: None,
            zoned: false,
        },
        target,
        features,
        ts_pos: 0,
        props: Props {
            v2: false,
            codec: 0,
            write_batch: 8,
            page_rows: 8,
            page_bytes: 1 << 20,
            dictionary: false,
            dict_bytes: 1 << 20,
            row_group_rows: 24,
        },
        seed: 13,
    }
}

/// The seeds, by file name, with what each must hold (tags of `coverage::inspect`).
fn seeds() -> Vec<(&'static str, FileSpec, &'static [&'static str])> {
    let f64_opt = || col(Ty::F64, Some(Nulls::Scattered));
    let v1 = spec(
        40,
        TimeTy::Us,
        f64_opt(),
        vec![Some(col(Ty::I32, None)), None],
    );
    let mut v2 = spec(
        40,
        TimeTy::Date,
        f64_opt(),
        vec![Some(col(Ty::F32, Some(Nulls::Runs)))],
    );
    v2.props.v2 = true;
    let mut dict = spec(
        40,
        TimeTy::Ns,
        col(Ty::I64, None),
        vec![None, Some(f64_opt())],
    );
    dict.props.dictionary = true;
    dict.target.distinct = false;
    let mut fallback = dict.clone();
    fallback.props.dict_bytes = 40;
    fallback.target.distinct = true;
    fallback.props.v2 = true;
    let mut nulls = spec(
        40,
        TimeTy::Ms,
        col(Ty::U32, Some(Nulls::Runs)),
        vec![Some(f64_opt())],
    );
    nulls.time.nulls = Some(Nulls::Scattered);
    let narrow = |ty| Col {
        decl: Decl::Converted,
        wide: true,
        ..col(ty, Some(Nulls::Scattered))
    };
    let mut wide = spec(40, TimeTy::Ms, narrow(Ty::I8), vec![Some(narrow(Ty::U16))]);
    wide.features.push(Some(narrow(Ty::U8)));
    wide.features.push(Some(narrow(Ty::I16)));
    wide.low_level = true;
    let mut zstd = fallback.clone();
    zstd.props.codec = 5;
    vec![
        (
            "v1-plain.parquet",
            v1,
            &["DATA_PAGE", "PLAIN page", "nulls"],
        ),
        (
            "v2-plain.parquet",
            v2,
            &["DATA_PAGE_V2", "PLAIN page", "nulls"],
        ),
        (
            "v1-dictionary.parquet",
            dict,
            &["DATA_PAGE", "RLE_DICTIONARY page"],
        ),
        (
            "v2-dictionary-fallback.parquet",
            fallback,
            &["DATA_PAGE_V2", "dictionary fallback"],
        ),
        ("nulls.parquet", nulls, &["nulls", "several row groups"]),
        (
            "narrow-out-of-range.parquet",
            wide,
            &["SerializedFileWriter", "narrow integer out of range"],
        ),
        ("zstd-v2.parquet", zstd, &["ZSTD", "dictionary fallback"]),
    ]
}

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decoders")
}

#[test]
#[ignore = "rewrites fuzz/seeds/decoders (after a change to the generator)"]
fn regenerate_decoder_seeds() {
    std::fs::create_dir_all(seed_dir()).expect("seed dir");
    for (name, spec, _) in seeds() {
        super::gen::write_file(&seed_dir().join(name), &spec);
    }
}

/// Every committed seed, beside `v1-plain.parquet` as the fuzz target puts it, builds the same
/// with both decoders and takes the fast path.
#[test]
fn decoder_fuzz_seeds_take_the_fast_path() {
    let d = tempfile::tempdir().expect("tempdir");
    let input = d.path().join("u");
    std::fs::create_dir(&input).expect("input dir");
    let seed = |name: &str| std::fs::read(seed_dir().join(name)).expect("committed seed");
    std::fs::write(input.join("A.parquet"), seed("v1-plain.parquet")).expect("write A");
    for (name, _, holds) in seeds() {
        let tags = super::coverage::inspect(&seed_dir().join(name));
        for h in holds {
            assert!(tags.contains(*h), "{name} lacks {h:?}: {tags:?}");
        }
        std::fs::write(input.join("B.parquet"), seed(name)).expect("write B");
        let o = super::Opts {
            batch_rows: Some(7),
            threads: 1,
            ..Default::default()
        };
        let build = |decoder, out: &str| {
            super::build(&input, &d.path().join(out), &o, decoder).expect("seed builds")
        };
        let (arrow, fast) = (
            build(Decoder::Arrow, "a.spill"),
            build(Decoder::Auto, "f.spill"),
        );
        assert_eq!(
            (arrow.0, fast.0),
            ((0, 2), (2, 0)),
            "{name}: decoder counts"
        );
        assert!(
            arrow.1 == fast.1,
            "{name}: {}",
            super::first_difference(&arrow.1, &fast.1)
        );
    }
}

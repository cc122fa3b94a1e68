//! What the generator's files hold, read back page by page: proof that the differential test
//! covers what it claims (page versions, tiny pages, dictionary fallback, every codec, every
//! fast-eligible reading, narrow integers out of range, nulls, row groups, both writers).

use std::collections::BTreeSet;
use std::path::Path;

use parquet::basic::{PageType, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use super::gen::{self, FileSpec};

/// Tags for what one file holds; panics if a column is one the fast decoder would refuse.
pub(super) fn inspect(path: &Path) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    let file = std::fs::File::open(path).expect("open");
    let reader = SerializedFileReader::new(file).expect("parquet reader");
    let meta = reader.metadata();
    let kv = meta.file_metadata().key_value_metadata();
    let arrow = kv.is_some_and(|kv| kv.iter().any(|k| k.key == "ARROW:schema"));
    tags.insert(
        if arrow {
            "ArrowWriter"
        } else {
            "SerializedFileWriter"
        }
        .to_string(),
    );
    if meta.num_row_groups() > 1 {
        tags.insert("several row groups".into());
    }
    let descr = meta.file_metadata().schema_descr();
    for rg in 0..meta.num_row_groups() {
        let group = reader.get_row_group(rg).expect("row group");
        for c in 0..descr.num_columns() {
            let col = descr.column(c);
            let reading = spillway::internals::eligible(&col).unwrap_or_else(|| {
                panic!("{}: column {} not eligible", path.display(), col.name())
            });
            let chunk = meta.row_group(rg).column(c);
            assert!(
                spillway::internals::chunk_eligible(chunk),
                "{}: encodings",
                path.display()
            );
            let codec = format!("{:?}", chunk.compression());
            tags.insert(codec.split('(').next().unwrap_or_default().to_string());
            let how = match (col.logical_type_ref(), col.converted_type()) {
                (Some(l), _) => format!("{l:?}")
                    .split('(')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                (None, c) => format!("converted {c}"),
            };
            tags.insert(format!("{reading:?} {} {how}", col.physical_type()));
            tags.insert(match col.max_def_level() {
                0 => "required".into(),
                _ => "optional".into(),
            });
            if let Some(Statistics::Int32(s)) = chunk.statistics() {
                let bits = match reading {
                    spillway::internals::Physical::I8 | spillway::internals::Physical::U8 => 8,
                    spillway::internals::Physical::I16 | spillway::internals::Physical::U16 => 16,
                    _ => 32,
                };
                let out =
                    |v: Option<&i32>| v.is_some_and(|&v| v < -(1 << (bits - 1)) || v >= 1 << bits);
                if bits < 32 && (out(s.min_opt()) || out(s.max_opt())) {
                    tags.insert("narrow integer out of range".into());
                }
            }
            if chunk
                .statistics()
                .and_then(|s| s.null_count_opt())
                .unwrap_or(0)
                > 0
            {
                tags.insert("nulls".into());
            }
            let mut dictionary = false;
            for page in group.get_column_page_reader(c).expect("pages") {
                let page = page.expect("page");
                match page.page_type() {
                    PageType::DICTIONARY_PAGE => dictionary = true,
                    t => {
                        tags.insert(format!("{t:?}"));
                        tags.insert(format!("{:?} page", page.encoding()));
                        if dictionary && page.encoding() == parquet::basic::Encoding::PLAIN {
                            tags.insert("dictionary fallback".into());
                        }
                        if (1..=3).contains(&page.num_values()) {
                            tags.insert("page of 1-3 values".into());
                        }
                    }
                }
            }
            assert!(
                col.physical_type() != Physical::BOOLEAN,
                "a boolean column takes arrow-rs"
            );
        }
    }
    tags
}

/// Tags of the spec itself (what the file cannot show).
fn spec_tags(s: &FileSpec) -> BTreeSet<String> {
    let cols = std::iter::once(&s.target).chain(s.features.iter().flatten());
    let mut tags: BTreeSet<String> = cols
        .flat_map(|c| {
            [
                c.nulls.map(|n| format!("nulls {n:?}")),
                (c.dict_array && !s.low_level).then(|| "arrow dictionary array".into()),
            ]
        })
        .flatten()
        .collect();
    tags.insert(format!(
        "time {:?} nulls {:?}",
        s.time.ty,
        s.time.nulls.is_some()
    ));
    tags
}

#[test]
fn generator_covers_every_case() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut runner = TestRunner::deterministic();
    let strategy = super::file();
    let mut seen = BTreeSet::new();
    for i in 0..80 {
        let spec = strategy.new_tree(&mut runner).expect("a spec").current();
        let path = d.path().join(format!("{i}.parquet"));
        gen::write_file(&path, &spec);
        seen.extend(inspect(&path));
        seen.extend(spec_tags(&spec));
    }
    let mut want: Vec<String> = [
        "ArrowWriter",
        "SerializedFileWriter",
        "several row groups",
        "required",
        "optional",
        "nulls",
        "nulls Scattered",
        "nulls Runs",
        "nulls All",
        "DATA_PAGE",
        "DATA_PAGE_V2",
        "PLAIN page",
        "RLE_DICTIONARY page",
        "dictionary fallback",
        "page of 1-3 values",
        "narrow integer out of range",
        "arrow dictionary array",
        "UNCOMPRESSED",
        "SNAPPY",
        "GZIP",
        "LZ4",
        "LZ4_RAW",
        "ZSTD",
        "BROTLI",
        "F64 DOUBLE converted NONE",
        "F32 FLOAT converted NONE",
        "I32 INT32 converted NONE",
        "I64 INT64 converted NONE",
        "I32 INT32 Date",
    ]
    .map(String::from)
    .to_vec();
    for (r, bits, signed) in [
        ("I8", 8, true),
        ("I16", 16, true),
        ("I32", 32, true),
        ("U8", 8, false),
        ("U16", 16, false),
        ("U32", 32, false),
        ("I64", 64, true),
        ("U64", 64, false),
    ] {
        let phys = if bits == 64 { "INT64" } else { "INT32" };
        let conv = format!("{}INT_{bits}", if signed { "" } else { "U" });
        want.push(format!("{r} {phys} Integer"));
        want.push(format!("{r} {phys} converted {conv}"));
    }
    for t in ["Ms", "Us", "Ns", "Date"] {
        want.push(format!("time {t} nulls true"));
        want.push(format!("time {t} nulls false"));
    }
    want.push("I64 INT64 Timestamp".into());
    let missing: Vec<&String> = want.iter().filter(|w| !seen.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?}\nseen: {seen:?}"
    );
}

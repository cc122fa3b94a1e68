//! Property test: whatever the dtypes, column count, row count (0 included), symbol table
//! (unicode names, empty ranges) and batch slicing, what the writer wrote reads back exactly.

use proptest::prelude::*;
use spill::{DType, Role, Scalar, WriteOptions};

use crate::common::{random_case, Case, Data, Rng};

fn check_read_back(case: &Case, path: &std::path::Path) {
    let f = spill::open(path).expect("open what we wrote");
    assert_eq!(f.nrows(), case.nrows as u64);
    assert_eq!(f.symbols(), &case.symbols[..]);
    assert_eq!(f.build_metadata(), &case.build);
    assert_eq!(f.columns().len(), case.columns.len());
    for (i, (name, role, data)) in case.columns.iter().enumerate() {
        let meta = &f.columns()[i];
        assert_eq!(
            (&meta.name, meta.role, meta.dtype),
            (name, *role, data.dtype())
        );
        assert_eq!(meta.offset % 4096, 0, "column {name} is not page aligned");
        assert_eq!(f.column_bytes(i), data.bytes(), "column {name} differs");
        let ptr = f.column_bytes(i).as_ptr() as usize;
        assert_eq!(
            ptr % 4096,
            0,
            "mapped address of {name} is not page aligned"
        );
        check_stats(meta, data);
    }
    // Typed access agrees with the bytes.
    for (name, _, data) in &case.columns {
        if let Data::F32(v) = data {
            let got: &[f32] = f.column(name).expect("typed f32");
            assert_eq!(
                bytemuck::cast_slice::<f32, u8>(got),
                bytemuck::cast_slice::<f32, u8>(v)
            );
        }
    }
    // The feature matrix (f32 columns) is one strided view over the same bytes exactly when the
    // feature columns lie at a constant stride (always so when they are consecutive).
    let feats = f.columns_with_role(Role::Feature);
    let offs: Vec<u64> = feats.iter().map(|&i| f.columns()[i].offset).collect();
    let step = offs.get(1).map(|o| o - offs[0]);
    let constant = offs.windows(2).all(|w| Some(w[1] - w[0]) == step);
    if feats.windows(2).all(|w| w[1] == w[0] + 1) {
        assert!(
            constant,
            "consecutive f32 columns must be at a constant stride"
        );
    }
    match f.features::<f32>() {
        Ok(m) => {
            assert!(constant);
            assert_eq!((m.nrows(), m.ncols()), (case.nrows, feats.len()));
            for (j, &ci) in feats.iter().enumerate() {
                assert_eq!(
                    bytemuck::cast_slice::<f32, u8>(m.column(j)),
                    f.column_bytes(ci)
                );
            }
        }
        Err(spill::Error::NotStrided { .. }) => assert!(!constant),
        Err(e) => panic!("features: {e}"),
    }
    let report = f.verify();
    assert!(report.is_ok(), "{report:?}");
}

fn check_stats(meta: &spill::Column, data: &Data) {
    fn float_stats(v: impl Iterator<Item = f64> + Clone) -> (Option<f64>, Option<f64>, u64) {
        let finite = v.clone().filter(|x| !x.is_nan());
        let min = finite
            .clone()
            .reduce(|a, b| if a.total_cmp(&b).is_le() { a } else { b });
        let max = finite.reduce(|a, b| if a.total_cmp(&b).is_ge() { a } else { b });
        (min, max, v.filter(|x| x.is_nan()).count() as u64)
    }
    let s = meta.stats;
    let as_bits = |x: Option<Scalar>| match x {
        Some(Scalar::Float(v)) => Some(v.to_bits()),
        _ => None,
    };
    match data {
        Data::F32(v) => {
            let (min, max, nans) = float_stats(v.iter().map(|&x| f64::from(x)));
            assert_eq!(as_bits(s.min), min.map(f64::to_bits));
            assert_eq!(as_bits(s.max), max.map(f64::to_bits));
            assert_eq!(s.nan_count, Some(nans));
        }
        Data::F64(v) => {
            let (min, max, nans) = float_stats(v.iter().copied());
            assert_eq!(as_bits(s.min), min.map(f64::to_bits));
            assert_eq!(as_bits(s.max), max.map(f64::to_bits));
            assert_eq!(s.nan_count, Some(nans));
        }
        Data::I64(v) => assert_eq!(s.min, v.iter().min().map(|&x| Scalar::Int(x))),
        Data::I32(v) => assert_eq!(s.max, v.iter().max().map(|&x| Scalar::Int(i64::from(x)))),
        Data::U32(v) => assert_eq!(s.max, v.iter().max().map(|&x| Scalar::UInt(u64::from(x)))),
        Data::U8(v) => assert_eq!(s.min, v.iter().min().map(|&x| Scalar::UInt(u64::from(x)))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn written_files_read_back_exactly(seed in any::<u64>(), cuts in prop::collection::vec(0usize..5000, 0..6), window in 12u32..16) {
        let dir = tempfile::tempdir().expect("tempdir");
        let case = random_case(&mut Rng::new(seed), 5000);
        // Small writer memory forces many window changes per column.
        let opts = WriteOptions::default().with_memory(1 << window);
        let path = case.write(&dir.path().join("case.spill"), &cuts, opts);
        check_read_back(&case, &path);
    }

    #[test]
    fn batch_slicing_never_changes_the_bytes(seed in any::<u64>(), a in prop::collection::vec(0usize..3000, 0..5), b in prop::collection::vec(0usize..3000, 0..5)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let case = random_case(&mut Rng::new(seed), 3000);
        let p1 = case.write(&dir.path().join("a.spill"), &a, WriteOptions::default());
        let p2 = case.write(&dir.path().join("b.spill"), &b, WriteOptions::default().with_memory(4096));
        prop_assert_eq!(std::fs::read(p1).expect("read"), std::fs::read(p2).expect("read"));
    }
}

#[test]
fn many_chunks_per_column_verify_and_report_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 10_000;
    let case = Case {
        nrows: n,
        columns: vec![(
            "x".into(),
            Role::Feature,
            Data::F32((0..n).map(|i| i as f32).collect()),
        )],
        symbols: vec![spill::Symbol {
            name: "A".into(),
            start: 0,
            stop: n as u64,
        }],
        build: Default::default(),
    };
    let mut w = spill::SpillWriter::create(
        dir.path().join("c.spill"),
        case.layout().with_chunk_bytes(4096).expect("valid chunk"),
        WriteOptions::default(),
    )
    .expect("create");
    case.columns[0].2.write(&mut w, 0, 0, n).expect("write");
    let path = w.finish(Default::default()).expect("commit").path;
    let f = spill::open(&path).expect("open");
    assert_eq!(f.columns()[0].checksums.len(), 10); // 40,000 bytes in 4096-byte chunks
    assert!(f.verify().is_ok());
    // Damage one byte of row 5000 (chunk 4 covers rows 4096..5120).
    let mut bytes = std::fs::read(&path).expect("read");
    let at = f.columns()[0].offset as usize + 5000 * 4;
    bytes[at] ^= 0x10;
    let g = spill::SpillFile::from_bytes(bytes).expect("structure intact");
    let report = g.verify();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(
        (report.damaged[0].chunk, report.damaged[0].rows.clone()),
        (4, 4096..5120)
    );
    assert_eq!(report.damaged[0].column, "x");
}

#[test]
fn dtype_and_name_errors_on_access() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = Case {
        nrows: 3,
        columns: vec![
            ("t".into(), Role::Time, Data::I64(vec![1, 2, 3])),
            ("a".into(), Role::Feature, Data::F32(vec![1.0, 2.0, 3.0])),
            ("b".into(), Role::Feature, Data::F64(vec![1.0, 2.0, 3.0])),
        ],
        symbols: vec![spill::Symbol {
            name: "S".into(),
            start: 0,
            stop: 3,
        }],
        build: Default::default(),
    };
    let f = spill::open(case.write(&dir.path().join("x.spill"), &[], WriteOptions::default()))
        .expect("open");
    assert!(matches!(
        f.column::<f32>("t"),
        Err(spill::Error::DTypeMismatch {
            stored: DType::I64,
            ..
        })
    ));
    assert!(matches!(
        f.column::<f32>("zz"),
        Err(spill::Error::NoSuchColumn { .. })
    ));
    assert!(matches!(
        f.matrix::<f32>(&["a", "b"]),
        Err(spill::Error::DTypeMismatch { .. })
    ));
    assert!(matches!(
        f.features::<f32>(),
        Err(spill::Error::DTypeMismatch { .. })
    ));
    assert_eq!(
        f.matrix::<f32>(&["a"]).expect("one column").column(0),
        &[1.0, 2.0, 3.0]
    );
}

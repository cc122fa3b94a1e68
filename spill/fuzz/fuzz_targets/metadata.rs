//! Arbitrary bytes as the metadata of an otherwise valid file (checksums and trailer fixed up), so
//! the fuzzer spends its time in the JSON and layout validation instead of failing the CRCs.
//! Byte 0 picks the size of the data area (low 4 bits) and whether the trailer sets required-feature
//! bit 0 (high bit: a time-major file); the rest is the metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pages, meta)) = data.split_first() else {
        return;
    };
    let data_end = 4096 * (1 + u64::from(pages % 16));
    let mut file = vec![0u8; data_end as usize];
    file[..8].copy_from_slice(&spill::MAGIC);
    file[8..10].copy_from_slice(&spill::VERSION_MAJOR.to_le_bytes());
    file[10..12].copy_from_slice(&spill::VERSION_MINOR.to_le_bytes());
    file[12..16].copy_from_slice(&4096u32.to_le_bytes());
    file.extend_from_slice(meta);
    let trailer = spill::Trailer {
        metadata_offset: data_end,
        metadata_len: meta.len() as u64,
        file_len: data_end + meta.len() as u64 + 64,
        required_features: u64::from(pages >> 7) * spill::FEATURE_TIME_ORDER,
        major: spill::VERSION_MAJOR,
        minor: spill::VERSION_MINOR,
        checksum_algorithm: spill::CHECKSUM_CRC32,
        metadata_checksum: crc32(meta),
    };
    file.extend_from_slice(&trailer.encode());
    let Ok(f) = spill::SpillFile::from_bytes(file) else {
        return;
    };
    for i in 0..f.columns().len() {
        assert_eq!(f.column_bytes(i).len() as u64, f.columns()[i].length);
    }
    let _ = f.features::<f32>();
    let _ = f.verify();
    let _ = f.verify_time_index();
    exercise_time_lookups(&f);
});

/// Every lookup of a time-major file's index, on a bounded number of timestamps (a hostile index
/// may claim 2^48 of them).
fn exercise_time_lookups<D: spill::Backing>(f: &spill::SpillFile<D>) {
    let Some(ts) = f.timestamps() else {
        assert!(f.time_range(0, 1).is_none());
        return;
    };
    let mut next = 0;
    for (i, (t, rows)) in ts.iter().take(64).enumerate() {
        assert_eq!(rows.start, next);
        assert_eq!(ts.find(t), Some(i));
        assert_eq!(ts.index_of_row(rows.start), Some(i));
        next = rows.end;
    }
    let r = f.time_range(i64::MIN, ts.first().unwrap_or(0).saturating_add(1000));
    assert!(r.is_some_and(|r| r.start == 0 && r.end <= f.nrows()));
    let k = ts.len().min(64);
    let end = ts.start(k).unwrap_or(0);
    if let Ok(sizes) = f.group_sizes(std::iter::once(0..end)) {
        assert_eq!(sizes.iter().sum::<u64>(), end);
    }
    if f.nrows() < 1 << 20 {
        let opts = spill::BatchOptions::new(7)
            .whole_timestamps()
            .shuffle_blocks(5, 1);
        if let Ok(batches) = f.batches::<f32>(opts.columns(Vec::<String>::new())) {
            assert_eq!(batches.map(|b| b.nrows() as u64).sum::<u64>(), f.nrows());
        }
    }
}

fn crc32(b: &[u8]) -> u32 {
    // The same CRC-32 the format uses, bit by bit (no extra dependency for the fuzz crate).
    let mut crc = !0u32;
    for &x in b {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

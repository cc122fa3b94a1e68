//! Arbitrary bytes as the metadata of an otherwise valid file (checksums and trailer fixed up), so
//! the fuzzer spends its time in the JSON and layout validation instead of failing the CRCs.
//! Byte 0 picks the size of the data area; the rest is the metadata.
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
        required_features: 0,
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
});

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

//! Arbitrary bytes as a spill file: validation must never panic or read out of bounds, and
//! whatever it accepts must be safe to read and verify in full.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Copy into an 8-byte-aligned buffer (an mmap is page aligned) so typed views are reachable.
    let mut buf = vec![0u64; data.len().div_ceil(8)];
    let bytes: &mut [u8] = &mut bytemuck_bytes(&mut buf)[..data.len()];
    bytes.copy_from_slice(data);
    let Ok(f) = spill::SpillFile::from_bytes(&*bytes) else {
        return;
    };
    for (i, c) in f.columns().iter().enumerate() {
        let b = f.column_bytes(i);
        assert_eq!(b.len() as u64, c.length);
        let _ = f.column::<f32>(&c.name);
    }
    let _ = f.features::<f32>();
    let report = f.verify();
    assert!(report.damaged.len() as u64 <= report.chunks);
    let _ = f.verify_time_index();
    if let Some(ts) = f.timestamps() {
        let rows: u64 = ts.iter().take(64).map(|(_, r)| r.end - r.start).sum();
        assert!(rows <= f.nrows());
        let _ = f.time_range(i64::MIN, i64::MAX);
    }
});

fn bytemuck_bytes(v: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and any bytes are a valid u8; the length is in bounds.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 8) }
}

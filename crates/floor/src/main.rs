//! The decompression floor of a universe: every compressed page of every parquet file under a
//! directory, decompressed by the same codec library spillway's fast decoder calls (the parquet
//! crate's codecs: zstd through zstd-sys, and so on), on N threads, with nothing else. No build can
//! beat it; `scripts/bench_shapes.sh` measures it beside the builds and reports build / floor.
//!
//! The pages are read into memory first (not timed): only decompression is timed, each thread
//! taking the next page and keeping one codec per compression kind, as spillway's readers do.
//!
//! ```text
//! cargo run --release -p spillway-floor -- DIR [--threads 2] [--repeat 3]
//! ```
//!
//! Prints one JSON object: pages, bytes, threads, and each run's wall seconds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parquet::basic::Compression;
use parquet::column::page::{Page, PageReader};
use parquet::compression::{create_codec, Codec, CodecOptionsBuilder};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::serialized_reader::SerializedPageReader;

/// One compressed page: its codec, its compressed bytes (levels of a V2 page left out).
struct Stored {
    codec: Compression,
    bytes: Vec<u8>,
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            parquet_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every compressed page of `path`, as stored (the chunk metadata is told "uncompressed" so that
/// the parquet crate hands the pages over without decompressing them).
fn pages(path: &Path, out: &mut Vec<Stored>) -> Result<(), Box<dyn std::error::Error>> {
    let file = Arc::new(File::open(path)?);
    let reader = SerializedFileReader::new(File::open(path)?)?;
    for rg in reader.metadata().row_groups() {
        for chunk in rg.columns() {
            let codec = chunk.compression();
            if codec == Compression::UNCOMPRESSED {
                continue;
            }
            let raw = chunk
                .clone()
                .into_builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build()?;
            let mut pages =
                SerializedPageReader::new(file.clone(), &raw, rg.num_rows() as usize, None)?;
            while let Some(page) = pages.get_next_page()? {
                let bytes = match &page {
                    Page::DataPageV2 {
                        buf,
                        def_levels_byte_len,
                        rep_levels_byte_len,
                        is_compressed,
                        ..
                    } => {
                        if !is_compressed {
                            continue;
                        }
                        buf[(*def_levels_byte_len + *rep_levels_byte_len) as usize..].to_vec()
                    }
                    page => page.buffer().to_vec(),
                };
                out.push(Stored { codec, bytes });
            }
        }
    }
    Ok(())
}

/// Decompresses every page once on `threads` threads; the wall seconds and the bytes produced.
fn run(stored: &[Stored], threads: usize) -> Result<(f64, u64), String> {
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let produced = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let mut codecs: Vec<(Compression, Box<dyn Codec>)> = Vec::new();
                    let options = CodecOptionsBuilder::default()
                        .set_backward_compatible_lz4(true)
                        .build();
                    let (mut out, mut produced) = (Vec::new(), 0u64);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(page) = stored.get(i) else { break };
                        let at = match codecs.iter().position(|(c, _)| *c == page.codec) {
                            Some(at) => at,
                            None => {
                                let made = create_codec(page.codec, &options)
                                    .map_err(|e| e.to_string())?
                                    .ok_or("no codec")?;
                                codecs.push((page.codec, made));
                                codecs.len() - 1
                            }
                        };
                        out.clear();
                        codecs[at]
                            .1
                            .decompress(&page.bytes, &mut out, None)
                            .map_err(|e| e.to_string())?;
                        produced += out.len() as u64;
                    }
                    Ok(produced)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a thread panicked".to_string())?)
            .sum::<Result<u64, String>>()
    })?;
    Ok((t0.elapsed().as_secs_f64(), produced))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut threads, mut repeat) = (None, 2usize, 1usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().ok_or("--threads N")?.parse()?,
            "--repeat" => repeat = args.next().ok_or("--repeat N")?.parse()?,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.ok_or("usage: zstd_floor DIR [--threads N] [--repeat N]")?;
    let mut files = Vec::new();
    parquet_files(&dir, &mut files)?;
    let mut stored = Vec::new();
    for f in &files {
        pages(f, &mut stored).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let compressed: u64 = stored.iter().map(|p| p.bytes.len() as u64).sum();
    let mut runs = Vec::new();
    let mut uncompressed = 0;
    for _ in 0..repeat {
        let (wall, produced) = run(&stored, threads)?;
        runs.push(format!("{wall:.4}"));
        uncompressed = produced;
    }
    let mut codecs: Vec<String> = stored.iter().map(|p| p.codec.to_string()).collect();
    codecs.sort();
    codecs.dedup();
    println!(
        "{{\"files\": {}, \"pages\": {}, \"codecs\": {:?}, \"compressed_bytes\": {compressed}, \
         \"uncompressed_bytes\": {uncompressed}, \"threads\": {threads}, \"wall_s\": [{}]}}",
        files.len(),
        stored.len(),
        codecs,
        runs.join(", ")
    );
    Ok(())
}

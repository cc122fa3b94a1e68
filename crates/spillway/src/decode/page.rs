//! Pages of a column chunk, read by spillway itself: the chunk's bytes come through a bounded
//! window of large reads, each page header is parsed (`header`), its CRC checked when the writer
//! stored one, and its payload decompressed by a codec kept per reader thread.
//!
//! Why not the parquet crate's `SerializedPageReader`: it builds a zstd compressor and a
//! decompressor for every column chunk (1024 small files x 102 columns is 104k of each), and
//! reads a chunk in many small reads. Here a reader thread creates one codec per compression kind
//! for the whole build, and a chunk is read in windows of at least [`WINDOW`] bytes.

use parquet::basic::Compression;
use parquet::compression::{create_codec, Codec, CodecOptionsBuilder};

use super::claim::{check_page, levels_len};
use super::header::{parse_header, Header};
use super::Problem;

/// Where a column chunk's bytes come from: a local file (`pread`), or an object read through
/// ranged requests (`input::source`).
pub trait ReadAt {
    /// Fills `buf` with the bytes at `offset`, as [`std::os::unix::fs::FileExt::read_exact_at`].
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;

    /// Where a read ahead from `offset` must stop, when the source knows better than the file's
    /// end (an object reads only the byte runs its task declared). `None`: the file's end.
    fn read_limit(&self, _offset: u64) -> Option<u64> {
        None
    }
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// Smallest read of a chunk's bytes: pages are read from a window of at least this many bytes.
pub const WINDOW: usize = 1 << 20;

/// Decompression codecs, one per compression kind, created on first use and kept for the whole
/// build by one reader thread.
#[derive(Default)]
pub struct Codecs {
    codecs: Vec<(Compression, Box<dyn Codec>)>,
}

impl Codecs {
    /// Appends the decompression of `input` (which must give `size` bytes) to `out`.
    pub fn decompress(
        &mut self,
        codec: Compression,
        input: &[u8],
        size: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Problem> {
        if codec == Compression::UNCOMPRESSED {
            if input.len() != size {
                return Err(Problem::PageSize(input.len()));
            }
            out.extend_from_slice(input);
            return Ok(());
        }
        let at = match self.codecs.iter().position(|(c, _)| *c == codec) {
            Some(at) => at,
            None => {
                let options = CodecOptionsBuilder::default()
                    .set_backward_compatible_lz4(true)
                    .build();
                let made = create_codec(codec, &options)
                    .map_err(|e| Problem::Parquet(e.to_string()))?
                    .ok_or_else(|| Problem::Parquet(format!("no codec for {codec}")))?;
                self.codecs.push((codec, made));
                self.codecs.len() - 1
            }
        };
        let c = &mut self.codecs[at].1;
        let start = out.len();
        c.decompress(input, out, Some(size))
            .map_err(|e| Problem::Parquet(format!("decompressing ({codec}): {e}")))?;
        if out.len() - start != size {
            return Err(Problem::Parquet(format!(
                "decompressing ({codec}): {} bytes where the page header says {size}",
                out.len() - start
            )));
        }
        Ok(())
    }
}

/// A column chunk's bytes `[start, end)` of a file, read through a window of large reads. A
/// window reads ahead past its chunk (up to the file's end), so the next chunk, which writers put
/// right after, is usually in memory already: the window passes from one chunk to the next with
/// its bytes ([`Held`]), and a small file is one read.
pub struct Window {
    /// File offset of `buf[0]`.
    at: u64,
    /// The bytes read are `buf[..valid]`; the buffer only grows (no zeroing per read).
    buf: Vec<u8>,
    valid: usize,
    /// Next unread position in the chunk (file offset).
    pos: u64,
    /// End of the chunk (file offset).
    end: u64,
    /// End of the file: reads ahead stop there.
    limit: u64,
    /// The chunk's start, as the footer says (for the error when it ends past the file).
    start: u64,
    /// Compression of the chunk's pages: each page's uncompressed size is checked against it.
    codec: Compression,
}

/// The bytes a window holds, passed on to the next window.
#[derive(Default)]
pub struct Held {
    at: u64,
    buf: Vec<u8>,
    valid: usize,
}

impl Held {
    /// Holds nothing (the bytes were another file's), keeping the allocation.
    pub fn forget(&mut self) {
        self.valid = 0;
    }
}

impl Window {
    /// A window over `[start, start + len)` of a file of `limit` bytes, whose pages are
    /// compressed by `codec`, keeping what `held` holds when the chunk starts inside it. A chunk
    /// ending past the file is refused by [`Window::next_page`], before any read is sized by it.
    pub fn new(start: u64, len: u64, limit: u64, codec: Compression, held: Held) -> Window {
        let mut w = Window {
            at: held.at,
            buf: held.buf,
            valid: held.valid,
            pos: start,
            end: start.saturating_add(len),
            limit,
            start,
            codec,
        };
        if !(w.at..w.at + w.valid as u64).contains(&start) {
            w.valid = 0;
            w.at = start;
        }
        w
    }

    /// Bytes of the chunk left.
    pub fn left(&self) -> u64 {
        self.end - self.pos
    }

    /// The next `n` bytes of the chunk (at least `n`, up to what the window holds when `more`),
    /// reading from `file` when the window does not hold them.
    fn get(&mut self, file: &dyn ReadAt, n: usize, more: bool) -> Result<&[u8], Problem> {
        let want = (n as u64).min(self.left());
        let have = (self.at + self.valid as u64).saturating_sub(self.pos);
        if have < want {
            // Refill from `pos`: at least a window, at most the file's end. The bytes held past
            // `pos` move to the front and only the rest is read (a page straddling the window's
            // end would otherwise be read twice).
            let limit = file
                .read_limit(self.pos)
                .map_or(self.limit, |l| l.min(self.limit).max(self.pos + want));
            let len = (want as usize).max(WINDOW).min((limit - self.pos) as usize);
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
            let kept = have as usize;
            if kept > 0 {
                let from = (self.pos - self.at) as usize;
                self.buf.copy_within(from..from + kept, 0);
            }
            self.valid = 0;
            file.read_exact_at(&mut self.buf[kept..len], self.pos + have)
                .map_err(|e| Problem::Parquet(format!("reading the column chunk: {e}")))?;
            self.valid = len;
            self.at = self.pos;
        }
        let from = (self.pos - self.at) as usize;
        let to = match more {
            // What the window holds of the chunk.
            true => self.valid.min(from + self.left() as usize),
            false => from + want as usize,
        };
        Ok(&self.buf[from..to])
    }

    /// The next page: its header and its stored payload, its uncompressed size checked against
    /// its codec's data (`claim`). `None` at the chunk's end.
    pub fn next_page(&mut self, file: &dyn ReadAt) -> Result<Option<(Header, &[u8])>, Problem> {
        if self.left() == 0 {
            return Ok(None);
        }
        if self.end > self.limit {
            return Err(Problem::ChunkOutsideFile {
                start: self.start,
                len: self.end - self.start,
                file_len: self.limit,
            });
        }
        // A header is small: parse it from what the window holds (or a fresh window).
        let head = self.get(file, 256.min(self.left() as usize), true)?;
        let (parsed, seen) = (parse_header(head), head.len());
        let (header, hlen) = match parsed {
            Ok(h) => h,
            // Headers with long statistics may exceed 256 bytes: read a whole window and retry.
            Err(_) if (seen as u64) < self.left() && seen < WINDOW => {
                parse_header(self.get(file, WINDOW.min(self.left() as usize), true)?)?
            }
            Err(e) => return Err(e),
        };
        let total = hlen as u64 + header.compressed as u64;
        if total > self.left() {
            return Err(Problem::PageSize(header.compressed));
        }
        self.get(file, total as usize, false)?;
        let payload_at = (self.pos - self.at) as usize + hlen;
        self.pos += total;
        let payload = &self.buf[payload_at..payload_at + header.compressed];
        let values = payload.get(levels_len(&header)..).unwrap_or_default();
        check_page(self.codec, &header, values)?;
        if let Some(stored) = header.crc {
            let actual = crc32fast::hash(payload);
            if actual != stored {
                return Err(Problem::Checksum { stored, actual });
            }
        }
        Ok(Some((header, payload)))
    }

    /// Gives the bytes read back, for the next window.
    pub fn into_held(self) -> Held {
        Held {
            at: self.at,
            buf: self.buf,
            valid: self.valid,
        }
    }
}

//! Page headers: a reader of the thrift compact protocol, just enough of it to parse a parquet
//! page header (the fields decoding needs; statistics and unknown fields are skipped, nesting and
//! collection sizes bounded by the bytes there are).

use parquet::basic::Encoding;

use super::Problem;

/// Deepest thrift nesting a page header may have (statistics are one level; real headers two).
const MAX_DEPTH: u32 = 16;

/// Largest page (compressed or not) accepted: parquet writers cut pages at about 1 MiB.
pub const MAX_PAGE: usize = 1 << 30;

/// What a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A V1 data page: levels then values, all compressed together.
    Data {
        /// Values, nulls included (levels).
        num_values: usize,
        /// Encoding of the values.
        encoding: Encoding,
        /// Encoding of the definition levels.
        def_encoding: Encoding,
    },
    /// A V2 data page: uncompressed levels, then values compressed when `compressed`.
    DataV2 {
        /// Values, nulls included (levels).
        num_values: usize,
        /// Encoding of the values.
        encoding: Encoding,
        /// Bytes of definition levels.
        def_len: usize,
        /// Bytes of repetition levels.
        rep_len: usize,
        /// Whether the values are compressed.
        compressed: bool,
    },
    /// A dictionary page.
    Dictionary {
        /// Entries.
        num_values: usize,
        /// Its encoding (PLAIN).
        encoding: Encoding,
    },
    /// A page spillway does not read (an index page).
    Other,
}

/// The fields of a page header decoding needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the page is.
    pub kind: Kind,
    /// Payload bytes after decompression (V2: levels included).
    pub uncompressed: usize,
    /// Payload bytes as stored (V2: levels included).
    pub compressed: usize,
    /// CRC-32 of the stored payload, when the writer wrote one.
    pub crc: Option<u32>,
}

/// A cursor over thrift compact protocol bytes.
struct Thrift<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Compact protocol field types.
const STOP: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// A truncated or malformed header.
fn bad(what: &str) -> Problem {
    Problem::PageHeader(what.to_string())
}

impl Thrift<'_> {
    fn byte(&mut self) -> Result<u8, Problem> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| bad("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Problem> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn zigzag(&mut self) -> Result<i64, Problem> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Result<i32, Problem> {
        i32::try_from(self.zigzag()?).map_err(|_| bad("i32 out of range"))
    }

    /// A non-negative i32 as usize.
    fn count(&mut self) -> Result<usize, Problem> {
        usize::try_from(self.i32()?).map_err(|_| bad("negative size or count"))
    }

    fn skip_bytes(&mut self, n: usize) -> Result<(), Problem> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        self.pos = end.ok_or_else(|| bad("truncated"))?;
        Ok(())
    }

    /// The next field of a struct: `None` at its end, else (id, type).
    fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>, Problem> {
        let b = self.byte()?;
        let kind = b & 0x0f;
        if kind == STOP {
            return Ok(None);
        }
        let id = match b >> 4 {
            0 => i16::try_from(self.zigzag()?).map_err(|_| bad("field id out of range"))?,
            delta => last
                .checked_add(i16::from(delta))
                .ok_or_else(|| bad("field id out of range"))?,
        };
        *last = id;
        Ok(Some((id, kind)))
    }

    /// Refuses a collection of `n` elements that the bytes left cannot hold: every element
    /// takes at least one byte, so a huge count cannot spin through elements of no bytes.
    fn check_elements(&self, n: usize) -> Result<(), Problem> {
        if n > self.bytes.len() - self.pos {
            return Err(bad("collection longer than the header"));
        }
        Ok(())
    }

    /// Skips an element of a list, set or map: as [`Thrift::skip`], except that booleans take a
    /// byte each (in a struct they live in the field header).
    fn skip_element(&mut self, kind: u8, depth: u32) -> Result<(), Problem> {
        match kind {
            TRUE | FALSE => self.skip_bytes(1),
            k => self.skip(k, depth),
        }
    }

    /// Skips a value of `kind`, nested at most [`MAX_DEPTH`] deep.
    fn skip(&mut self, kind: u8, depth: u32) -> Result<(), Problem> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deep"));
        }
        match kind {
            TRUE | FALSE => Ok(()),
            BYTE => self.skip_bytes(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.skip_bytes(8),
            BINARY => {
                let n = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                self.skip_bytes(n)
            }
            LIST | SET => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => usize::try_from(self.varint()?).map_err(|_| bad("length"))?,
                    n => usize::from(n),
                };
                self.check_elements(n)?;
                let elem = h & 0x0f;
                for _ in 0..n {
                    self.skip_element(elem, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                if n == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                self.check_elements(n)?;
                for _ in 0..n {
                    self.skip_element(kv >> 4, depth + 1)?;
                    self.skip_element(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => {
                let mut last = 0;
                while let Some((_, k)) = self.field(&mut last)? {
                    self.skip(k, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(bad("unknown field type")),
        }
    }

    fn encoding(&mut self) -> Result<Encoding, Problem> {
        let v = self.i32()?;
        Ok(match v {
            0 => Encoding::PLAIN,
            2 => Encoding::PLAIN_DICTIONARY,
            3 => Encoding::RLE,
            // The deprecated BIT_PACKED levels of old writers: named so that errors say so.
            #[allow(deprecated)]
            4 => Encoding::BIT_PACKED,
            5 => Encoding::DELTA_BINARY_PACKED,
            6 => Encoding::DELTA_LENGTH_BYTE_ARRAY,
            7 => Encoding::DELTA_BYTE_ARRAY,
            8 => Encoding::RLE_DICTIONARY,
            9 => Encoding::BYTE_STREAM_SPLIT,
            _ => return Err(bad("unknown encoding")),
        })
    }

    /// The fields of a nested page header struct this module reads, by id; others skipped.
    fn nested(
        &mut self,
        mut read: impl FnMut(&mut Self, i16, u8) -> Result<bool, Problem>,
    ) -> Result<(), Problem> {
        let mut last = 0;
        while let Some((id, kind)) = self.field(&mut last)? {
            if !read(self, id, kind)? {
                self.skip(kind, 1)?;
            }
        }
        Ok(())
    }
}

/// Parses the page header at the start of `bytes`: the header and its length in bytes.
pub fn parse_header(bytes: &[u8]) -> Result<(Header, usize), Problem> {
    let mut t = Thrift { bytes, pos: 0 };
    let (mut page_type, mut uncompressed, mut compressed, mut crc) = (None, None, None, None);
    let mut data = None;
    let mut v2 = None;
    let mut dict = None;
    let mut last = 0;
    while let Some((id, kind)) = t.field(&mut last)? {
        match (id, kind) {
            (1, I32) => page_type = Some(t.i32()?),
            (2, I32) => uncompressed = Some(t.count()?),
            (3, I32) => compressed = Some(t.count()?),
            (4, I32) => crc = Some(t.i32()? as u32),
            (5, STRUCT) => {
                let (mut n, mut enc, mut def) = (None, None, None);
                t.nested(|t, id, kind| {
                    match (id, kind) {
                        (1, I32) => n = Some(t.count()?),
                        (2, I32) => enc = Some(t.encoding()?),
                        (3, I32) => def = Some(t.encoding()?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                data = Some((n, enc, def));
            }
            (7, STRUCT) => {
                let (mut n, mut enc) = (None, None);
                t.nested(|t, id, kind| {
                    match (id, kind) {
                        (1, I32) => n = Some(t.count()?),
                        (2, I32) => enc = Some(t.encoding()?),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                dict = Some((n, enc));
            }
            (8, STRUCT) => {
                let (mut n, mut enc, mut def, mut rep, mut comp) = (None, None, None, None, true);
                t.nested(|t, id, kind| {
                    match (id, kind) {
                        (1, I32) => n = Some(t.count()?),
                        (4, I32) => enc = Some(t.encoding()?),
                        (5, I32) => def = Some(t.count()?),
                        (6, I32) => rep = Some(t.count()?),
                        (7, TRUE) => comp = true,
                        (7, FALSE) => comp = false,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                v2 = Some((n, enc, def, rep, comp));
            }
            _ => t.skip(kind, 0)?,
        }
    }
    let missing = || bad("a required field is missing");
    let kind = match page_type.ok_or_else(missing)? {
        0 => {
            let (n, enc, def) = data.ok_or_else(missing)?;
            Kind::Data {
                num_values: n.ok_or_else(missing)?,
                encoding: enc.ok_or_else(missing)?,
                def_encoding: def.ok_or_else(missing)?,
            }
        }
        2 => {
            let (n, enc) = dict.ok_or_else(missing)?;
            Kind::Dictionary {
                num_values: n.ok_or_else(missing)?,
                encoding: enc.ok_or_else(missing)?,
            }
        }
        3 => {
            let (n, enc, def, rep, compressed) = v2.ok_or_else(missing)?;
            Kind::DataV2 {
                num_values: n.ok_or_else(missing)?,
                encoding: enc.ok_or_else(missing)?,
                def_len: def.ok_or_else(missing)?,
                rep_len: rep.ok_or_else(missing)?,
                compressed,
            }
        }
        _ => Kind::Other,
    };
    let header = Header {
        kind,
        uncompressed: uncompressed.ok_or_else(missing)?,
        compressed: compressed.ok_or_else(missing)?,
        crc,
    };
    if header.uncompressed > MAX_PAGE || header.compressed > MAX_PAGE {
        return Err(Problem::PageSize(
            header.uncompressed.max(header.compressed),
        ));
    }
    Ok((header, t.pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::hybrid::tests::varint;

    fn i32_field(delta: u8, v: i32, out: &mut Vec<u8>) {
        out.push(delta << 4 | I32);
        varint(((v << 1) ^ (v >> 31)) as u32 as u64, out);
    }

    /// A V1 data page header with statistics (skipped) and a CRC.
    fn data_header() -> Vec<u8> {
        let mut h = Vec::new();
        i32_field(1, 0, &mut h); // type DATA_PAGE
        i32_field(1, 800, &mut h); // uncompressed
        i32_field(1, 400, &mut h); // compressed
        i32_field(1, -5, &mut h); // crc
        h.push(1 << 4 | STRUCT); // 5: data page header
        i32_field(1, 100, &mut h); // num_values
        i32_field(1, 8, &mut h); // RLE_DICTIONARY
        i32_field(1, 3, &mut h); // RLE levels
        i32_field(1, 3, &mut h);
        h.push(1 << 4 | STRUCT); // 5: statistics
        h.push(1 << 4 | BINARY);
        varint(3, &mut h);
        h.extend_from_slice(b"max");
        h.push(2 << 4 | I64);
        varint(12, &mut h);
        h.push(STOP);
        h.push(STOP);
        h.push(STOP);
        h
    }

    #[test]
    fn a_data_page_header_parses_and_skips_statistics() {
        let h = data_header();
        let (header, len) = parse_header(&h).expect("valid");
        assert_eq!(len, h.len());
        assert_eq!(header.crc, Some(-5i32 as u32));
        assert_eq!((header.uncompressed, header.compressed), (800, 400));
        assert_eq!(
            header.kind,
            Kind::Data {
                num_values: 100,
                encoding: Encoding::RLE_DICTIONARY,
                def_encoding: Encoding::RLE
            }
        );
    }

    #[test]
    fn truncated_or_hostile_headers_are_errors() {
        let h = data_header();
        for cut in 0..h.len() {
            assert!(parse_header(&h[..cut]).is_err(), "cut at {cut}");
        }
        // Deep nesting: structs in structs.
        let mut deep = vec![1 << 4 | STRUCT; 100];
        deep.push(STOP);
        assert!(parse_header(&deep).is_err());
        // A negative size.
        let mut neg = Vec::new();
        i32_field(1, 0, &mut neg);
        i32_field(1, -1, &mut neg);
        assert!(parse_header(&neg).is_err());
    }

    /// Found by the `pages` fuzz target (a 27-minute hang): a map of booleans with a count near
    /// 2^64 was skipped element by element, each taking no bytes. Booleans in a collection take a
    /// byte each, and no collection may count more elements than there are bytes left.
    #[test]
    fn huge_collections_of_booleans_are_refused_at_once() {
        for collection in [MAP, LIST, SET] {
            let mut h = vec![1 << 4 | STRUCT, 1 << 4 | collection];
            if collection == MAP {
                varint(u64::MAX >> 1, &mut h);
                h.push(TRUE << 4 | FALSE);
            } else {
                h.push(0xf0 | TRUE);
                varint(u64::MAX >> 1, &mut h);
            }
            h.extend_from_slice(&[0; 64]);
            let t = std::time::Instant::now();
            assert!(parse_header(&h).is_err(), "collection type {collection}");
            assert!(t.elapsed().as_secs() < 1, "collection type {collection}");
        }
    }
}

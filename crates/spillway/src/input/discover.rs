//! `discover`: find the symbols of a universe and their files.
//!
//! Two layouts, mixable in one directory:
//! - `DIR/<SYM>.parquet`: one file per symbol, the symbol is the file stem (`BRK.B.parquet` -> `BRK.B`);
//! - `DIR/symbol=<SYM>/**.parquet` (hive): any number of files per symbol, listed in natural path
//!   order (`part-2` before `part-10`; the plan then orders them by time), `<SYM>`
//!   percent-decoded as DuckDB and Spark write it (`symbol=%C3%84PF` -> `ÄPF`).
//!
//! Hidden entries (names starting with `.` or `_`, like `_SUCCESS` or `.crc` files) and files that
//! are not `.parquet` are ignored. Symbols come out in byte-wise sorted order of their names.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, SymbolError, SymbolErrorKind};

/// One symbol and its files, in read order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolFiles {
    /// The symbol's name.
    pub name: String,
    /// Its parquet files, in read order.
    pub files: Vec<PathBuf>,
}

/// The symbols found in an input directory.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    /// Symbols in byte-wise sorted order of name.
    pub symbols: Vec<SymbolFiles>,
    /// Entries that cannot be symbols (a name that is not UTF-8, an empty partition), each a
    /// symbol-level error: fatal under `--on-error fail`, skipped under `skip`.
    pub broken: Vec<SymbolError>,
    /// The object store the files are read from, kept open as long as the universe lives
    /// (`None`: a directory).
    #[cfg(feature = "object-store")]
    pub store: Option<std::sync::Arc<crate::input::store::Store>>,
}

impl Universe {
    /// Total number of files.
    pub fn file_count(&self) -> usize {
        self.symbols.iter().map(|s| s.files.len()).sum()
    }
}

fn hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes()
        .first()
        .is_some_and(|&b| b == b'.' || b == b'_')
}

fn is_parquet(name: &OsStr) -> bool {
    name.as_encoded_bytes().ends_with(b".parquet")
}

/// Lists the symbols of `dir` (see the module docs).
pub fn discover(dir: &Path) -> Result<Universe> {
    let mut found: BTreeMap<String, (PathBuf, Vec<PathBuf>)> = BTreeMap::new();
    let mut broken = Vec::new();
    for entry in sorted_entries(dir)? {
        let name = entry.file_name().unwrap_or_default().to_os_string();
        if hidden(&name) {
            continue;
        }
        // Follows symlinks. A loop, a dangling link or an unreadable entry fails the symbol it
        // would have been (skippable), not the universe.
        let meta = match std::fs::metadata(&entry) {
            Ok(m) => m,
            Err(e) => {
                let symbol = name.to_string_lossy();
                let symbol = symbol
                    .strip_suffix(".parquet")
                    .or_else(|| symbol.strip_prefix("symbol="))
                    .unwrap_or(&symbol);
                broken.push(SymbolError::new(
                    symbol,
                    &entry,
                    SymbolErrorKind::Io {
                        op: "reading",
                        message: e.to_string(),
                    },
                ));
                continue;
            }
        };
        let (symbol, files) = if meta.is_dir() {
            let Some(raw) = name.as_encoded_bytes().strip_prefix(b"symbol=") else {
                continue;
            };
            let decoded = percent_encoding::percent_decode(raw).collect::<Vec<u8>>();
            let Ok(symbol) = String::from_utf8(decoded) else {
                broken.push(SymbolError::new(
                    &name.to_string_lossy(),
                    &entry,
                    SymbolErrorKind::NotUtf8,
                ));
                continue;
            };
            let mut files = Vec::new();
            if let Err(e) = collect_parquet(&entry, &mut files) {
                broken.push(SymbolError::new(
                    &symbol,
                    &entry,
                    SymbolErrorKind::Io {
                        op: "listing",
                        message: e.to_string(),
                    },
                ));
                continue;
            }
            if symbol.is_empty() || files.is_empty() {
                let kind = match symbol.is_empty() {
                    true => SymbolErrorKind::EmptyName,
                    false => SymbolErrorKind::Empty,
                };
                broken.push(SymbolError::new(&symbol, &entry, kind));
                continue;
            }
            (symbol, files)
        } else if is_parquet(&name) {
            let Some(stem) = name
                .to_str()
                .map(|n| n[..n.len() - ".parquet".len()].to_string())
            else {
                broken.push(SymbolError::new(
                    &name.to_string_lossy(),
                    &entry,
                    SymbolErrorKind::NotUtf8,
                ));
                continue;
            };
            if stem.is_empty() {
                continue;
            }
            (stem, vec![entry.clone()])
        } else {
            continue;
        };
        if let Some((first, _)) = found.get(&symbol) {
            return Err(Error::DuplicateSymbol {
                symbol,
                first: first.clone(),
                second: entry,
            });
        }
        found.insert(symbol, (entry, files));
    }
    if found.is_empty() && broken.is_empty() {
        return Err(Error::NoInput {
            dir: dir.to_path_buf(),
        });
    }
    Ok(Universe {
        symbols: found
            .into_iter()
            .map(|(name, (_, files))| SymbolFiles { name, files })
            .collect(),
        broken,
        ..Universe::default()
    })
}

/// Entries of `dir`, in natural order of their names (see [`natural`]).
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(|e| Error::io("listing", dir, e))?.path());
    }
    out.sort_by(|a, b| {
        natural(
            a.as_os_str().as_encoded_bytes(),
            b.as_os_str().as_encoded_bytes(),
        )
    });
    Ok(out)
}

/// Natural order of names: runs of digits compare as numbers (`part-2` before `part-10`),
/// everything else byte by byte; names equal that way (`a01`, `a1`) fall back to bytes.
pub fn natural(a: &[u8], b: &[u8]) -> Ordering {
    fn runs(s: &[u8]) -> impl Iterator<Item = &[u8]> {
        s.chunk_by(|x, y| x.is_ascii_digit() == y.is_ascii_digit())
    }
    for (x, y) in runs(a).zip(runs(b)) {
        let order = match (x[0].is_ascii_digit(), y[0].is_ascii_digit()) {
            (true, true) => {
                let trim = |d: &[u8]| {
                    let zeros = d.iter().take_while(|&&c| c == b'0').count();
                    d[zeros..].to_vec()
                };
                let (x, y) = (trim(x), trim(y));
                x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
            }
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    runs(a).count().cmp(&runs(b).count()).then_with(|| a.cmp(b))
}

/// Every non-hidden `.parquet` file under a partition directory, in natural path order (the plan
/// then orders a symbol's files by time).
fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in sorted_entries(dir)? {
        let name = entry.file_name().unwrap_or_default();
        if hidden(name) {
            continue;
        }
        let meta = std::fs::metadata(&entry).map_err(|e| Error::io("reading", &entry, e))?;
        if meta.is_dir() {
            collect_parquet(&entry, out)?;
        } else if is_parquet(name) {
            out.push(entry);
        }
    }
    Ok(())
}

/// The two layouts, hidden names and other files: the table both discovery by directory and by
/// listing (`input::store::list`) are tested on.
#[cfg(test)]
pub(crate) const LAYOUT_CASES: [&str; 13] = [
    "BRK.B.parquet",
    "AAPL.parquet",
    "symbol=%C3%84PF/part-1.parquet",
    "symbol=%C3%84PF/part-0.parquet",
    "symbol=%C3%84PF/_SUCCESS",
    "symbol=%C3%84PF/.part-0.parquet.crc",
    "symbol=ZZ/date=2024/b.parquet",
    "symbol=ZZ/date=2023/a.parquet",
    "_SUCCESS",
    ".hidden.parquet",
    "_tmp.parquet",
    "notes.txt",
    ".cache/X.parquet",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, b"x").expect("write");
    }

    #[test]
    fn both_layouts_sorted_and_decoded() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        for f in LAYOUT_CASES {
            touch(&r.join(f));
        }
        let u = discover(r).expect("discover");
        let names: Vec<&str> = u.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["AAPL", "BRK.B", "ZZ", "ÄPF"]);
        let apf = &u.symbols[3].files;
        assert_eq!(apf.len(), 2);
        assert!(apf[0].ends_with("part-0.parquet") && apf[1].ends_with("part-1.parquet"));
        assert!(u.symbols[2].files[0].ends_with("date=2023/a.parquet"));
        assert!(u.broken.is_empty());
    }

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut names = vec![
            "part-10", "part-2", "part-0", "part-1", "part-11", "part-02", "a",
        ];
        names.sort_by(|a, b| natural(a.as_bytes(), b.as_bytes()));
        assert_eq!(
            names,
            ["a", "part-0", "part-1", "part-02", "part-2", "part-10", "part-11"]
        );
        assert_eq!(natural(b"x9y", b"x10"), Ordering::Less);
        assert_eq!(natural(b"date=2024-1", b"date=2023-12"), Ordering::Greater);
    }

    #[test]
    fn a_symbol_in_both_layouts_is_an_error() {
        let d = tempfile::tempdir().expect("tempdir");
        touch(&d.path().join("AAPL.parquet"));
        touch(&d.path().join("symbol=AAPL/x.parquet"));
        assert!(matches!(
            discover(d.path()),
            Err(Error::DuplicateSymbol { .. })
        ));
    }

    #[test]
    fn empty_dir_and_empty_partition() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(matches!(discover(d.path()), Err(Error::NoInput { .. })));
        std::fs::create_dir(d.path().join("symbol=X")).expect("mkdir");
        touch(&d.path().join("A.parquet"));
        let u = discover(d.path()).expect("discover");
        assert_eq!(u.broken.len(), 1);
        assert!(matches!(u.broken[0].kind, SymbolErrorKind::Empty));
    }
}

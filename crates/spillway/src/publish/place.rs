//! Where a command's files are: the local filesystem, or a bucket (`s3://`, `gs://`, `az://`).
//! [`Place`] gives both the few whole-file operations datasets need; [`Scratch`] is the local
//! directory where files bound for a bucket are built, or fetched ones are read, and checks that
//! it has room before anything is written.

use std::path::{Path, PathBuf};
#[cfg(feature = "object-store")]
use std::sync::Arc;

use crate::cancel::Cancel;
use crate::config::StorageOptions;
use crate::error::{Error, Result};
#[cfg(feature = "object-store")]
use crate::input::store::Store;
#[cfg(feature = "object-store")]
pub use crate::input::store::{Head, Put};

/// Bytes of a spill file's end read first by [`Place::describe`]: its metadata is usually
/// shorter (one more read if not).
const TAIL_GUESS: u64 = 256 << 10;

/// Whether `path` names an object in a store (`scheme://…`) rather than a local file.
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.contains("://"))
}

/// The store root of `url`: `scheme://authority` (the bucket or container).
pub(crate) fn root_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// The local filesystem, or one store (a bucket) with its client.
#[derive(Debug, Clone)]
pub struct Place {
    #[cfg(feature = "object-store")]
    store: Option<Arc<Store>>,
}

impl Place {
    /// The local filesystem.
    pub fn local() -> Place {
        Place {
            #[cfg(feature = "object-store")]
            store: None,
        }
    }

    /// Where `path` is, named `flag` in errors: a URL's bucket (its client configured by the
    /// environment and `storage`), else the local filesystem.
    pub fn of(flag: &str, path: &Path, storage: &StorageOptions, cancel: &Cancel) -> Result<Place> {
        Place::within(
            flag,
            path,
            storage,
            crate::config::DEFAULT_MEMORY_BUDGET,
            cancel,
        )
    }

    /// [`of`](Self::of), its requests in flight (an upload's parts) fitted to `budget` as a
    /// reader's are (`IoShape::from_options`).
    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    pub fn within(
        flag: &str,
        path: &Path,
        storage: &StorageOptions,
        budget: u64,
        cancel: &Cancel,
    ) -> Result<Place> {
        if !is_url(path) {
            return Ok(Place::local());
        }
        crate::config::check_url_for(flag, path)?;
        #[cfg(feature = "object-store")]
        {
            let text = path.to_string_lossy();
            let root = Path::new(root_of(&text));
            let store = Store::open_for(flag, root, storage, budget, cancel)?;
            Ok(Place { store: Some(store) })
        }
        #[cfg(not(feature = "object-store"))]
        Err(Error::Config(format!(
            "{flag} {}: this spillway was built without object storage",
            path.display()
        )))
    }

    /// Whether this is a bucket.
    pub fn is_remote(&self) -> bool {
        #[cfg(feature = "object-store")]
        return self.store.is_some();
        #[cfg(not(feature = "object-store"))]
        false
    }

    /// The store, for the operations only buckets have.
    #[cfg(feature = "object-store")]
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// The length of `path`, `None` when it does not exist.
    pub fn size(&self, path: &Path) -> Result<Option<u64>> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            return Ok(s.head(&path.to_string_lossy())?.map(|h| h.size));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(Error::Config(format!(
                "{}: not a regular file",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading the size of", path, e)),
        }
    }

    /// The bytes `range` of `path` (exactly).
    pub fn read_range(&self, path: &Path, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            let url = path.to_string_lossy();
            let len = range.end - range.start;
            return match s.get_bytes(&url, Some(range), len)? {
                Some((b, _)) => Ok(b.to_vec()),
                None => Err(Error::Remote {
                    url: url.into_owned(),
                    what: "no such object".into(),
                }),
            };
        }
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        f.read_exact_at(&mut buf, range.start)
            .map_err(|e| Error::io("reading", path, e))?;
        Ok(buf)
    }

    /// The whole of `path` when it is at most `max` bytes (else an error), with its ETag in a
    /// bucket; `None` when it does not exist.
    pub fn read(&self, path: &Path, max: u64) -> Result<Option<(Vec<u8>, Option<String>)>> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            return Ok(s
                .get_bytes(&path.to_string_lossy(), None, max)?
                .map(|(b, h)| (b.to_vec(), h.e_tag)));
        }
        match self.size(path)? {
            None => Ok(None),
            Some(n) if n > max => Err(Error::Config(format!(
                "{}: {n} bytes, more than the {max} expected",
                path.display()
            ))),
            Some(_) => std::fs::read(path)
                .map(|b| Some((b, None)))
                .map_err(|e| Error::io("reading", path, e)),
        }
    }

    /// `path` as a local file: itself, or (in a bucket) a download into `scratch`, removed when
    /// the copy is dropped.
    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    pub fn local_copy(&self, path: &Path, scratch: &Scratch) -> Result<LocalCopy> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            let url = path.to_string_lossy();
            let name = url.rsplit('/').next().unwrap_or("object");
            let size = s.head(&url)?.map(|h| h.size).ok_or_else(|| Error::Remote {
                url: url.to_string(),
                what: "no such object".into(),
            })?;
            scratch.room(size, &url)?;
            let tmp = scratch.temp(name)?;
            s.download(&url, &tmp, Some(size))?;
            return Ok(LocalCopy {
                path: tmp.to_path_buf(),
                _temp: Some(tmp),
            });
        }
        Ok(LocalCopy {
            path: path.to_path_buf(),
            _temp: None,
        })
    }

    /// Downloads `path` (a bucket's object; a local file is copied) into `dest`, streamed, and
    /// checks that it has `expect` bytes when given. Returns the bytes written.
    pub fn download(&self, path: &Path, dest: &Path, expect: Option<u64>) -> Result<u64> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            return Ok(s.download(&path.to_string_lossy(), dest, expect)?.size);
        }
        let n = std::fs::copy(path, dest).map_err(|e| Error::io("copying", path, e))?;
        match expect {
            Some(e) if e != n => Err(Error::Config(format!(
                "{}: {n} bytes, expected {e}",
                path.display()
            ))),
            _ => Ok(n),
        }
    }

    /// Puts the local file `src` at `path`: an upload (in parts when large, its size checked in
    /// the store), or a copy on disk.
    pub fn upload(&self, src: &Path, path: &Path) -> Result<()> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            return s.upload(src, &path.to_string_lossy()).map(|_| ());
        }
        std::fs::copy(src, path)
            .map(|_| ())
            .map_err(|e| Error::io("copying to", path, e))
    }

    /// The length, trailer and metadata of the spill file at `path` (`None`: there is none),
    /// from its header and its tail (metadata and trailer) alone, all checked as a reader checks
    /// them: one or two reads of its end, never its data.
    pub fn describe(&self, path: &Path) -> Result<Option<(u64, spill::Trailer, spill::Metadata)>> {
        let invalid = |e: spill::Error| Error::Dataset {
            path: path.to_path_buf(),
            what: format!("not a valid spill file: {e}"),
        };
        let Some(len) = self.size(path)? else {
            return Ok(None);
        };
        if len < spill::MIN_FILE_LEN {
            return Err(invalid(spill::Error::TooSmall {
                len,
                min: spill::MIN_FILE_LEN,
            }));
        }
        let header = self.read_range(path, 0..spill::HEADER_FIELDS_LEN as u64)?;
        let from = len.saturating_sub(TAIL_GUESS).max(spill::HEADER_LEN);
        let mut tail = self.read_range(path, from..len)?;
        let mut t = [0u8; spill::TRAILER_LEN as usize];
        t.copy_from_slice(&tail[tail.len() - spill::TRAILER_LEN as usize..]);
        let trailer = spill::Trailer::decode(&t).map_err(invalid)?;
        if trailer.metadata_offset < from && trailer.metadata_offset >= spill::HEADER_LEN {
            tail = self.read_range(path, trailer.metadata_offset..len)?;
        }
        let (trailer, meta) = spill::describe(&header, &tail, len).map_err(invalid)?;
        Ok(Some((len, trailer, meta)))
    }

    /// Deletes `path` (missing already is fine).
    pub fn delete(&self, path: &Path) -> Result<()> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            return s.delete(&path.to_string_lossy());
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing", path, e)),
        }
    }

    /// The files directly in `dir` (names, not recursing), sorted.
    pub fn list(&self, dir: &Path) -> Result<Vec<String>> {
        #[cfg(feature = "object-store")]
        if let Some(s) = &self.store {
            let base = format!("{}/", dir.to_string_lossy().trim_end_matches('/'));
            return Ok(s
                .list_under(base.trim_end_matches('/'))?
                .into_iter()
                .filter_map(|(url, _)| {
                    let rest = url.strip_prefix(&base)?;
                    (!rest.contains('/')).then(|| rest.to_string())
                })
                .collect());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| Error::io("listing", dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// A file read locally: the file itself, or a temporary download removed on drop.
#[derive(Debug)]
pub struct LocalCopy {
    /// Where to read it.
    pub path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

/// The local directory where files bound for (or fetched from) a bucket live while a command
/// runs.
#[derive(Debug, Clone)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// `dir` (created when missing: each node of a cluster needs its own), or the temporary
    /// directory.
    pub fn new(dir: Option<&Path>) -> Result<Scratch> {
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Config(format!("--scratch {}: {e}", dir.display())))?;
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(Scratch { dir }),
            Ok(_) => Err(Error::Config(format!(
                "--scratch {}: not a directory",
                dir.display()
            ))),
            Err(e) => Err(Error::Config(format!("--scratch {}: {e}", dir.display()))),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Files that processes now gone left in scratch directory `dir`: a build or a fetch killed
    /// before it could remove them. A scratch copy is `.spillway-<pid>-….tmp`; the spill writer's
    /// temporary file of one, `..spillway-<pid>-….tmp.<pid>-<n>.spill-tmp`.
    pub fn stale(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
            let Ok(e) = e else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            let copy = match name.strip_suffix(".spill-tmp") {
                Some(_) => name.strip_prefix('.').unwrap_or(&name),
                None => name.as_str(),
            };
            let pid = copy
                .strip_prefix(".spillway-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) =
                pid.filter(|_| name.ends_with(".tmp") || name.ends_with(".spill-tmp"))
            {
                if !spill::process_alive(pid) {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// A new empty file's path in the scratch directory, named after `name`; removed on drop.
    pub fn temp(&self, name: &str) -> Result<tempfile::TempPath> {
        tempfile::Builder::new()
            .prefix(&format!(".spillway-{}-{name}.", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map(|f| f.into_temp_path())
            .map_err(|e| Error::io("creating a scratch file in", &self.dir, e))
    }

    /// Refuses up front when the scratch filesystem lacks `needed` bytes for `what`.
    pub fn room(&self, needed: u64, what: &str) -> Result<()> {
        crate::output::room(
            &self.dir,
            needed,
            &format!("--scratch {}", self.dir.display()),
            what,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Scratch;

    #[test]
    fn stale_scratch_files_are_those_of_dead_processes_copies_and_writer_temps_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (me, dead) = (std::process::id(), 999_999_999u32);
        let names = [
            format!(".spillway-{dead}-shard.abc.tmp"),
            format!("..spillway-{dead}-shard.abc.tmp.{dead}-0.spill-tmp"),
            format!(".spillway-{me}-shard.def.tmp"),
            format!("..spillway-{me}-shard.def.tmp.{me}-0.spill-tmp"),
            format!(".spillway-{dead}-not-ours.txt"),
            "train.spill".to_string(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), b"x").expect("write");
        }
        let stale = Scratch::stale(dir.path()).expect("stale");
        let mut want = vec![dir.path().join(&names[0]), dir.path().join(&names[1])];
        want.sort();
        assert_eq!(stale, want);
    }
}

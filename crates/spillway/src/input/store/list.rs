//! Discovery by listing: the objects under a store's prefix, taken by the rules a directory is
//! read by (`input::discover`): `<SYM>.parquet` at the top, `symbol=<SYM>/**.parquet` (the name
//! percent-decoded), hidden and `_`-prefixed names ignored at every level, a symbol's files in
//! natural path order. The listing is paged by the client (1,000 keys a page on S3).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectMeta;

use super::{Stopped, Store};
use crate::error::{Error, Result, SymbolError, SymbolErrorKind};
use crate::input::discover::{natural, SymbolFiles, Universe};

impl Store {
    /// Lists the universe under the store's prefix (see the module docs). Its files are named
    /// by their URLs; the listing is kept for reading them (size, last modification, ETag).
    pub fn discover(self: &Arc<Self>) -> Result<Universe> {
        let (os, prefix) = (Arc::clone(&self.os), self.prefix.clone());
        let listed = self.wait(async move {
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            os.list(prefix.as_ref())
                .try_collect::<Vec<ObjectMeta>>()
                .await
        });
        let listed = match listed {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(self.remote_error(&e)),
            Err(Stopped::Cancelled) => return Err(Error::Cancelled),
            Err(Stopped::Failed(m)) => return Err(Error::Internal(m)),
        };
        let strip = match self.prefix.as_ref() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let keys = listed.into_iter().filter_map(|m| {
            let rel = m.location.as_ref().strip_prefix(&strip)?.to_string();
            Some((rel, m))
        });
        let (universe, objects) = rules(&self.base, keys)?;
        if let Ok(mut o) = self.objects.lock() {
            *o = objects;
        }
        Ok(universe)
    }

    /// A failed listing as an error naming the URL: a missing bucket and refused credentials are
    /// told apart (the store's message follows, secrets scrubbed).
    fn remote_error(&self, e: &object_store::Error) -> Error {
        let text = self.scrub(e.to_string());
        let chain = {
            let mut all = text.clone();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                all.push(' ');
                all.push_str(&self.scrub(s.to_string()));
                src = s.source();
            }
            all
        };
        let has = |w: &str| chain.contains(w);
        let what = if has("NoSuchBucket") || has("does not exist") {
            "the bucket does not exist"
        } else if has("AccessDenied")
            || has("InvalidAccessKeyId")
            || has("SignatureDoesNotMatch")
            || has("ExpiredToken")
            || has("403")
            || has("401")
            || matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            "access denied (check the credentials)"
        } else if matches!(e, object_store::Error::NotFound { .. }) || has("404") {
            "the bucket does not exist"
        } else {
            "listing failed"
        };
        Error::Remote {
            url: format!("{}/", self.base),
            what: format!("{what}: {chain}"),
        }
    }
}

/// Whether a name is hidden (`.` or `_` first).
fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Natural order of keys, segment by segment: what listing a directory tree level by level gives.
fn key_order(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.split('/'), b.split('/'));
    loop {
        match (x.next(), y.next()) {
            (Some(p), Some(q)) => match natural(p.as_bytes(), q.as_bytes()) {
                Ordering::Equal => continue,
                o => return o,
            },
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
        }
    }
}

/// The universe of the keys (relative to the prefix) under `base`, and the objects by file name.
fn rules(
    base: &str,
    keys: impl Iterator<Item = (String, ObjectMeta)>,
) -> Result<(Universe, std::collections::HashMap<String, ObjectMeta>)> {
    let name = |rel: &str| format!("{base}/{rel}");
    // symbol -> (the entry that made it: a file or a partition, its files)
    let mut found: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    // partitions seen, with whether they hold a parquet file
    let mut partitions: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut broken = Vec::new();
    let mut objects = std::collections::HashMap::new();
    let mut keys: Vec<(String, ObjectMeta)> = keys.collect();
    keys.sort_by(|a, b| key_order(&a.0, &b.0));
    for (rel, meta) in keys {
        let segments: Vec<&str> = rel.split('/').collect();
        if segments.iter().any(|s| hidden(s)) || segments.iter().any(|s| s.is_empty()) {
            continue;
        }
        let parquet = rel.ends_with(".parquet");
        match segments.as_slice() {
            [file] if parquet => {
                let stem = &file[..file.len() - ".parquet".len()];
                if stem.is_empty() {
                    continue;
                }
                let entry = name(&rel);
                if let Some((first, _)) = found.get(stem) {
                    return Err(duplicate(stem, first, &entry));
                }
                found.insert(stem.to_string(), (entry.clone(), vec![entry.clone()]));
                objects.insert(entry, meta);
            }
            [dir, ..] if dir.starts_with("symbol=") => {
                let seen = partitions
                    .entry(dir.to_string())
                    .or_insert_with(|| (name(dir), false));
                if !parquet {
                    continue;
                }
                seen.1 = true;
                let raw = &dir.as_bytes()["symbol=".len()..];
                let decoded = percent_encoding::percent_decode(raw).collect::<Vec<u8>>();
                let Ok(symbol) = String::from_utf8(decoded) else {
                    continue; // reported below, once per partition
                };
                if symbol.is_empty() {
                    continue;
                }
                let file = name(&rel);
                match found.get_mut(&symbol) {
                    Some((entry, files)) if *entry == seen.0 => files.push(file.clone()),
                    Some((first, _)) => return Err(duplicate(&symbol, first, &seen.0)),
                    None => {
                        found.insert(symbol, (seen.0.clone(), vec![file.clone()]));
                    }
                }
                objects.insert(file, meta);
            }
            _ => {}
        }
    }
    for (dir, (entry, has_parquet)) in partitions {
        let raw = &dir.as_bytes()["symbol=".len()..];
        let decoded = percent_encoding::percent_decode(raw).collect::<Vec<u8>>();
        let kind = match String::from_utf8(decoded) {
            Err(_) => SymbolErrorKind::NotUtf8,
            Ok(s) if s.is_empty() => SymbolErrorKind::EmptyName,
            Ok(_) if !has_parquet => SymbolErrorKind::Empty,
            Ok(_) => continue,
        };
        broken.push(SymbolError::new(&dir, PathBuf::from(&entry), kind));
    }
    if found.is_empty() && broken.is_empty() {
        return Err(Error::NoInput {
            dir: PathBuf::from(format!("{base}/")),
        });
    }
    let symbols = found
        .into_iter()
        .map(|(name, (_, files))| SymbolFiles {
            name,
            files: files.into_iter().map(PathBuf::from).collect(),
        })
        .collect();
    Ok((
        Universe {
            symbols,
            broken,
            store: None,
        },
        objects,
    ))
}

fn duplicate(symbol: &str, first: &str, second: &str) -> Error {
    Error::DuplicateSymbol {
        symbol: symbol.to_string(),
        first: PathBuf::from(first),
        second: PathBuf::from(second),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            location: object_store::path::Path::from(key),
            last_modified: Default::default(),
            size: 1,
            e_tag: Some("\"e\"".into()),
            version: None,
        }
    }

    /// The rules of a directory, on keys: the same table as `discover`'s test.
    #[test]
    fn listing_rules_match_the_directory_rules() {
        // The directory's table, and what only a listing has: keys under hidden or non-symbol
        // prefixes, a partition without parquet, a sibling partition value that sorts apart.
        let keys = crate::input::discover::LAYOUT_CASES.iter().chain(&[
            "symbol=ZZ/date=2023-1/c.parquet",
            "_delta_log/0.json",
            "other/Y.parquet",
            "symbol=E/readme.txt",
        ]);
        let (u, objects) =
            rules("s3://b/u", keys.map(|k| (k.to_string(), meta(k)))).expect("rules");
        let names: Vec<&str> = u.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["AAPL", "BRK.B", "ZZ", "ÄPF"]);
        let apf: Vec<String> = u.symbols[3]
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        assert_eq!(
            apf,
            [
                "s3://b/u/symbol=%C3%84PF/part-0.parquet",
                "s3://b/u/symbol=%C3%84PF/part-1.parquet"
            ]
        );
        let zz: Vec<String> = u.symbols[2]
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        assert!(zz[0].ends_with("date=2023/a.parquet") && zz[1].ends_with("date=2023-1/c.parquet"));
        assert_eq!(u.broken.len(), 1);
        assert!(matches!(u.broken[0].kind, SymbolErrorKind::Empty));
        assert_eq!(objects.len(), 7);
        assert!(objects.contains_key("s3://b/u/AAPL.parquet"));
    }

    #[test]
    fn duplicates_and_empty_listings_are_errors() {
        let keys = ["AAPL.parquet", "symbol=AAPL/x.parquet"];
        let r = rules("s3://b/u", keys.iter().map(|k| (k.to_string(), meta(k))));
        assert!(matches!(r, Err(Error::DuplicateSymbol { .. })));
        let r = rules("s3://b/u", std::iter::empty());
        assert!(matches!(r, Err(Error::NoInput { .. })));
    }
}

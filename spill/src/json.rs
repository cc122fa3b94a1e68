//! The strict pass over the metadata JSON: duplicate object keys refused anywhere (serde_json keeps
//! the last one silently, and the Python reader must agree with us on what a file says), strings
//! valid Unicode, nesting at most 128 deep. It builds nothing, so the typed parse that follows
//! holds the only copy of the metadata (a tree of `serde_json::Value`s costs 32 bytes a number:
//! 0.7 GB for the run lists of an index of 10 million irregular timestamps).

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::short;

/// Checks `bytes` is one JSON value with no duplicate key in any object (and nothing after it).
pub(crate) fn check_strict(bytes: &[u8]) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Strict::deserialize(&mut de)?;
    de.end()
}

/// Any JSON value, checked and dropped.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(|()| Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    // Strings arrive decoded: serde_json refuses invalid escapes and lone surrogates on the way.
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<Strict>()?;
            if keys.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {:?}",
                    short(&key)
                )));
            }
            keys.insert(key);
        }
        Ok(())
    }
}

//! `--cs-transform rank|zscore|winsorize=Q`: the per-timestamp transform of the feature columns
//! a time-major build applies (`order::transform` has the kernels). It parses from its name, as
//! the other choices do, and is written back in one canonical form, the one the spill file
//! records among the output options.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A transform of each feature column within each timestamp's cross-section (`--cs-transform`,
/// time-major output only). NaN stays NaN and is left out of every statistic; values are
/// computed in float64 and stored in the column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CsTransform {
    /// The percentile rank in (0, 1], ties averaged: pandas'
    /// `groupby(time)[col].rank(pct=True)` (the average rank over the count of non-NaN values).
    Rank,
    /// `(x - mean) / std` with the population standard deviation (ddof = 0); 0 where the
    /// standard deviation is 0.
    Zscore,
    /// Clipped to the `Q` and `1 - Q` quantiles of the cross-section's values (linear
    /// interpolation, as pandas' `Series.quantile`), `0 <= Q < 0.5`.
    Winsorize(f64),
}

impl CsTransform {
    /// The forms `--cs-transform` takes, for help and error messages.
    pub const NAMES: &'static [&'static str] = &["rank", "zscore", "winsorize=Q"];
}

impl std::str::FromStr for CsTransform {
    type Err = Error;

    fn from_str(s: &str) -> Result<CsTransform> {
        let bad = |why: &str| {
            Error::Config(format!(
                "--cs-transform {s:?}: {why} (one of rank, zscore, winsorize=Q with 0 <= Q < 0.5)"
            ))
        };
        match s {
            "rank" => Ok(CsTransform::Rank),
            "zscore" => Ok(CsTransform::Zscore),
            _ => {
                let Some(q) = s.strip_prefix("winsorize=") else {
                    return Err(bad("unknown transform"));
                };
                let q: f64 = q.trim().parse().map_err(|_| bad("Q is not a number"))?;
                // Also refuses NaN, which no comparison holds for.
                if !(0.0..0.5).contains(&q) {
                    return Err(bad("Q is out of range"));
                }
                // +0.0 for -0.0, so that one transform has one recorded name.
                Ok(CsTransform::Winsorize(q + 0.0))
            }
        }
    }
}

/// The canonical name: `rank`, `zscore`, or `winsorize=Q` with Q's shortest decimal that reads
/// back as the same float64 (`winsorize=1e-2` is written `winsorize=0.01`).
impl std::fmt::Display for CsTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsTransform::Rank => f.write_str("rank"),
            CsTransform::Zscore => f.write_str("zscore"),
            CsTransform::Winsorize(q) => write!(f, "winsorize={q}"),
        }
    }
}

impl Serialize for CsTransform {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CsTransform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<CsTransform, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|e: Error| {
            serde::de::Error::custom(match e {
                Error::Config(m) => m,
                other => other.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CsTransform> {
        s.parse()
    }

    #[test]
    fn names_parse_and_print_canonically() {
        assert_eq!(parse("rank").ok(), Some(CsTransform::Rank));
        assert_eq!(parse("zscore").ok(), Some(CsTransform::Zscore));
        assert_eq!(
            parse("winsorize=0.01").ok(),
            Some(CsTransform::Winsorize(0.01))
        );
        for (given, canonical) in [
            ("rank", "rank"),
            ("zscore", "zscore"),
            ("winsorize=1e-2", "winsorize=0.01"),
            ("winsorize=0", "winsorize=0"),
            ("winsorize=-0", "winsorize=0"),
            ("winsorize=0.25", "winsorize=0.25"),
        ] {
            let t = parse(given).expect(given);
            assert_eq!(t.to_string(), canonical);
            assert_eq!(parse(canonical).ok(), Some(t), "{canonical} reads back");
        }
    }

    #[test]
    fn bad_names_and_quantiles_are_refused() {
        for bad in [
            "",
            "Rank",
            "winsorize",
            "winsorize=",
            "winsorize=x",
            "winsorize=0.5",
            "winsorize=-0.1",
            "winsorize=nan",
            "winsorize=inf",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(
                matches!(&e, Error::Config(m) if m.contains("--cs-transform")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn serde_uses_the_canonical_name() {
        let t: CsTransform = serde_json::from_str("\"winsorize=0.050\"").expect("parses");
        assert_eq!(t, CsTransform::Winsorize(0.05));
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            "\"winsorize=0.05\""
        );
        let e = serde_json::from_str::<CsTransform>("\"median\"").expect_err("unknown");
        assert!(e.to_string().contains("unknown transform"), "{e}");
    }
}

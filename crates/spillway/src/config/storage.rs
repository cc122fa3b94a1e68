//! Where a universe is stored, as given: a local path or an object-storage URL, and the options of
//! the object store (credentials, endpoint, timeouts). Pure data: nothing here opens a socket
//! (`input::store` does). Secrets never leave this module in a readable form: `Debug` prints
//! them as `***`, and a URL carrying credentials is refused.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The URL schemes spillway reads through object storage (`file://` is read as a local path).
pub const SCHEMES: [&str; 8] = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss"];

/// The storage options spillway itself takes (the rest go to the object store client):
/// `requests_in_flight` (ranged GETs each reader keeps running ahead), `request_size` (bytes per
/// GET, e.g. `8MiB`), `max_retries` and `retry_timeout` (of each request, e.g. `30s`).
pub const OWN_KEYS: [&str; 4] = [
    "requests_in_flight",
    "request_size",
    "max_retries",
    "retry_timeout",
];

/// The options of an object store, by object_store's key names (the keys polars'
/// `storage_options` takes: `aws_endpoint_url`, `aws_region`, `aws_access_key_id`, `timeout`,
/// ...), lowercased. `Debug` hides the values of secret keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(BTreeMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| match is_secret(k) {
                true => (k.as_str(), "***"),
                false => (k.as_str(), v.as_str()),
            }))
            .finish()
    }
}

/// Whether the value of option `key` is a secret (never printed, recorded or put on a command
/// line): keys naming a secret, token, password, SAS, key (but not a key id), credential or
/// signature.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "sas",
        "credential",
        "signature",
    ]
    .iter()
    .any(|w| k.contains(w))
        || (k.contains("key") && !k.contains("key_id"))
}

impl StorageOptions {
    /// No options.
    pub fn new() -> StorageOptions {
        StorageOptions::default()
    }

    /// Sets `key` (lowercased) to `value`.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.trim().to_ascii_lowercase(), value.into());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every option, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Options of `over` replace those of `self` with the same key.
    pub fn merge(mut self, over: StorageOptions) -> StorageOptions {
        self.0.extend(over.0);
        self
    }

    /// Parses `KEY=VALUE` (a `--storage-option`).
    pub fn parse_pair(s: &str) -> Result<(String, String)> {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_ascii_lowercase(), v.to_string()))
            }
            _ => Err(Error::Config(format!(
                "--storage-option {:?}: expected KEY=VALUE",
                s.split_once('=').map_or(s, |(k, _)| k)
            ))),
        }
    }

    /// Options from a JSON object of strings (the environment variable
    /// `SPILLWAY_STORAGE_OPTIONS`, through which child processes get them: never the command
    /// line, which `ps` shows).
    pub fn from_json(text: &str) -> Result<StorageOptions> {
        serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("storage options (JSON): {e}")))
    }

    /// The options as a JSON object (for a child process's environment).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// Every secret value, for scrubbing error texts.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(k, v)| is_secret(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// From a TOML table or a JSON object: values are strings, booleans or integers, kept as text.
impl<'de> serde::Deserialize<'de> for StorageOptions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, toml::Value>::deserialize(d)?;
        let mut out = StorageOptions::new();
        for (k, v) in map {
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(n) => n.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "storage option {k}: expected a string, got {}",
                        other.type_str()
                    )))
                }
            };
            out.insert(&k, v);
        }
        Ok(out)
    }
}

/// The scheme of `input` when it is a URL (`s3://...` gives `s3`), else `None`: a local path.
pub fn url_scheme(input: &Path) -> Option<&str> {
    let s = input.to_str()?;
    let (scheme, _) = s.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    valid.then_some(scheme)
}

/// The local path of a `file://` URL (percent-decoded), `None` for anything else.
pub fn file_url_path(input: &Path) -> Option<std::path::PathBuf> {
    let rest = input.to_str()?.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = percent_encoding::percent_decode(rest.as_bytes()).collect::<Vec<u8>>();
    use std::os::unix::ffi::OsStringExt;
    Some(std::ffi::OsString::from_vec(bytes).into())
}

/// Checks an input URL before anything is opened: a known scheme, a bucket, and no credentials
/// or query in it (they would be printed and recorded). Usage errors (exit 2).
pub fn check_url(input: &Path) -> Result<()> {
    check_url_for("--input", input)
}

/// `check_url` for the URL given as `flag` (an output, a dataset, a plan).
pub fn check_url_for(flag: &str, input: &Path) -> Result<()> {
    let Some(scheme) = url_scheme(input) else {
        return Ok(());
    };
    let text = input.to_string_lossy();
    let rest = &text[scheme.len() + 3..];
    let bad = |why: &str| Err(Error::Config(format!("{flag} {scheme}://…: {why}")));
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return bad(
            "credentials do not belong in the URL; put them in the environment or \
                    --storage-option",
        );
    }
    if rest.contains('?') || rest.contains('#') {
        return bad(
            "a URL with a query or fragment is not supported (options go in \
                    --storage-option)",
        );
    }
    if scheme == "file" {
        return Ok(());
    }
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(Error::Config(format!(
            "{flag} {text}: unknown URL scheme {scheme:?} (known: file, {})",
            SCHEMES.join(", ")
        )));
    }
    if authority.is_empty() {
        return Err(Error::Config(format!(
            "{flag} {text}: no bucket in the URL"
        )));
    }
    if !cfg!(feature = "object-store") {
        return Err(Error::Config(format!(
            "{flag} {text}: this spillway was built without the `object-store` feature"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut o = StorageOptions::new();
        o.insert("AWS_SECRET_ACCESS_KEY", "hunter2hunter2");
        o.insert("aws_access_key_id", "AKIDVISIBLE");
        o.insert("aws_session_token", "tok-secret");
        o.insert("aws_region", "us-east-1");
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && !d.contains("tok-secret"), "{d}");
        assert!(d.contains("AKIDVISIBLE") && d.contains("us-east-1"), "{d}");
        assert_eq!(o.secrets().count(), 2);
        assert!(is_secret("azure_storage_account_key") && is_secret("azure_storage_sas_key"));
        assert!(!is_secret("aws_endpoint_url") && !is_secret("timeout"));
    }

    #[test]
    fn urls_are_checked() {
        let p = |s: &str| std::path::PathBuf::from(s);
        assert_eq!(url_scheme(&p("s3://b/u/")), Some("s3"));
        assert_eq!(url_scheme(&p("/data/u")), None);
        assert_eq!(url_scheme(&p("./a://b")), None);
        assert!(check_url(&p("s3://bucket/prefix/")).is_ok() || !cfg!(feature = "object-store"));
        for bad in [
            "s3://key:secret@bucket/u",
            "s3://bucket/u?X-Amz-Signature=abc",
            "ftp://host/u",
            "s3:///u",
        ] {
            let e = check_url(&p(bad)).expect_err(bad).to_string();
            assert!(!e.contains("secret@") && !e.contains("abc"), "{e}");
        }
    }

    #[test]
    fn pairs_json_and_toml() {
        assert_eq!(
            StorageOptions::parse_pair("AWS_Region=eu-west-1=x").expect("pair"),
            ("aws_region".into(), "eu-west-1=x".into())
        );
        assert!(StorageOptions::parse_pair("novalue").is_err());
        let o = StorageOptions::from_json(r#"{"aws_allow_http": true, "timeout": "5s"}"#)
            .expect("json");
        assert_eq!(o.get("aws_allow_http"), Some("true"));
        let back = StorageOptions::from_json(&o.to_json()).expect("round trip");
        assert_eq!(back, o);
        let t: StorageOptions = toml::from_str("AWS_REGION = 'x'\nmax_retries = 3").expect("toml");
        assert_eq!(t.get("max_retries"), Some("3"));
    }
}

//! Multipart uploads left behind by killed processes: each upload keeps a marker object
//! (`_spillway-uploads/<name>.<id hash>.json`, beside its object) for as long as it runs, and
//! removes it when it completes or aborts. [`clean_uploads`] aborts the uploads whose markers
//! outlived their process, so that the store stops keeping (and billing) their parts.

use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::StorageOptions;
use crate::error::{Error, Result};
use crate::input::store::{UploadMarker, UPLOADS_DIR};

use super::Place;

/// What [`clean_uploads`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Uploads {
    /// Uploads aborted (or, dry run, that would be).
    pub aborted: Vec<UploadMarker>,
    /// Uploads left alone: their process runs on this machine, or they are younger than asked.
    pub running: Vec<UploadMarker>,
}

/// Aborts the multipart uploads under `prefix` (a URL) whose process is gone: on this machine,
/// a dead pid; from another machine (whose processes cannot be seen from here), any upload
/// started more than `older_than` ago. `dry_run`: only say which.
pub fn clean_uploads(
    prefix: &Path,
    storage: &StorageOptions,
    older_than: Duration,
    dry_run: bool,
    cancel: &Cancel,
) -> Result<Uploads> {
    let place = Place::of("clean", prefix, storage, cancel)?;
    let store = place
        .store()
        .ok_or_else(|| Error::Config(format!("{}: not a URL", prefix.display())))?;
    let base = prefix.to_string_lossy();
    let base = base.trim_end_matches('/');
    let host = crate::input::store::host_name();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Uploads::default();
    let markers = store.list_under(base)?;
    let marker_dir = format!("/{UPLOADS_DIR}/");
    for (url, _) in markers.iter().filter(|(u, _)| u.contains(&marker_dir)) {
        let Some((bytes, _)) = store.get_bytes(url, None, 64 << 10)? else {
            continue; // completed meanwhile
        };
        let Ok(m) = serde_json::from_slice::<UploadMarker>(&bytes) else {
            continue; // not one of ours
        };
        let alive = m.host == host && spill::process_alive(m.pid);
        let young = now.saturating_sub(m.started) < older_than.as_secs();
        if alive || (m.host != host && young) {
            out.running.push(m);
            continue;
        }
        if !dry_run {
            store.abort_upload(&m.url, &m.upload_id)?;
            store.delete(url)?;
        }
        out.aborted.push(m);
    }
    Ok(out)
}

//! `ListMultipartUploads`, which s3s-fs 0.14.1 lacks, read from s3s-fs's own bookkeeping.
//!
//! s3s-fs keeps, in the root directory, `.upload-<uuid>.json` for each open upload and
//! `.bucket-<b64 bucket>.object-<b64 key>.upload-<uuid>.metadata.json` beside it (base64 URL-safe,
//! unpadded). Both go away on complete and abort. An upload is listed when both files exist; its
//! `Initiated` is the first file's mtime. `Delimiter` is ignored (no common prefixes).

use std::collections::HashSet;
use std::path::Path;

use s3s::dto::{ListMultipartUploadsInput, ListMultipartUploadsOutput, MultipartUpload, Timestamp};
use s3s::{s3_error, S3Result};

/// One open upload found on disk.
struct Found {
    key: String,
    upload_id: String,
    initiated: Option<Timestamp>,
}

/// Lists the open uploads of `input.bucket`, ordered by key then upload id, paged by `max_uploads`.
pub(super) async fn list(
    root: &Path,
    input: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    if !root.join(&input.bucket).is_dir() {
        return Err(s3_error!(NoSuchBucket));
    }
    let mut open = HashSet::new();
    let mut metadata = Vec::new();
    let mut dir = tokio::fs::read_dir(root)
        .await
        .map_err(|e| s3_error!(e, InternalError))?;
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| s3_error!(e, InternalError))?
    {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(id) = name
            .strip_prefix(".upload-")
            .and_then(|s| s.strip_suffix(".json"))
        {
            open.insert(id.to_owned());
        } else if let Some(found) = parse_metadata_name(&name, &input.bucket) {
            metadata.push(found);
        }
    }
    let mut uploads = Vec::new();
    for mut found in metadata.into_iter().filter(|f| open.contains(&f.upload_id)) {
        let marker = root.join(format!(".upload-{}.json", found.upload_id));
        let meta = tokio::fs::metadata(&marker).await.ok();
        found.initiated = meta.and_then(|m| m.modified().ok()).map(Timestamp::from);
        uploads.push(found);
    }
    let prefix = input.prefix.as_deref().unwrap_or("");
    uploads.retain(|u| u.key.starts_with(prefix));
    uploads.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    if let Some(key_marker) = input.key_marker.as_deref() {
        let id_marker = input.upload_id_marker.as_deref();
        uploads.retain(|u| match id_marker {
            Some(id) => (u.key.as_str(), u.upload_id.as_str()) > (key_marker, id),
            None => u.key.as_str() > key_marker,
        });
    }
    let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let is_truncated = uploads.len() > max;
    uploads.truncate(max);
    let (next_key_marker, next_upload_id_marker) = match uploads.last() {
        Some(last) if is_truncated => (Some(last.key.clone()), Some(last.upload_id.clone())),
        _ => (None, None),
    };
    let uploads = uploads
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.upload_id),
            initiated: u.initiated,
            ..Default::default()
        })
        .collect();
    Ok(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: input.max_uploads,
        is_truncated: Some(is_truncated),
        next_key_marker,
        next_upload_id_marker,
        uploads: Some(uploads),
        ..Default::default()
    })
}

/// `.bucket-<b64>.object-<b64>.upload-<uuid>.metadata.json` of `bucket`, decoded.
fn parse_metadata_name(name: &str, bucket: &str) -> Option<Found> {
    let rest = name
        .strip_prefix(".bucket-")?
        .strip_suffix(".metadata.json")?;
    let (b, rest) = rest.split_once(".object-")?;
    let (k, upload_id) = rest.split_once(".upload-")?;
    if decode(b)? != bucket {
        return None;
    }
    Some(Found {
        key: decode(k)?,
        upload_id: upload_id.to_owned(),
        initiated: None,
    })
}

fn decode(s: &str) -> Option<String> {
    let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names() {
        // "bkt" and "u/a.parquet", as s3s-fs encodes them.
        let enc = |s: &str| base64_simd::URL_SAFE_NO_PAD.encode_to_string(s);
        let name = format!(
            ".bucket-{}.object-{}.upload-1234.metadata.json",
            enc("bkt"),
            enc("u/a.parquet")
        );
        let found = parse_metadata_name(&name, "bkt").expect("parses");
        assert_eq!(
            (found.key.as_str(), found.upload_id.as_str()),
            ("u/a.parquet", "1234")
        );
        assert!(parse_metadata_name(&name, "other").is_none());
        let object_meta = format!(".bucket-{}.object-{}.metadata.json", enc("bkt"), enc("k"));
        assert!(parse_metadata_name(&object_meta, "bkt").is_none());
    }
}

//! What a store's requests cost, for the summary: the HTTP layer under the object store client
//! counts every attempt (the client's own retries included) and every response body byte
//! received; [`Counters`] also keep the byte ranges the build used, and the slowest request.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

/// Counters shared with the HTTP layer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) attempts: AtomicU64,
    pub(crate) logical: AtomicU64,
    pub(crate) list_pages: AtomicU64,
    pub(crate) body_bytes: AtomicU64,
    /// Per object, the byte ranges handed to a decoder or the footer code (merged).
    used: Mutex<HashMap<String, Vec<std::ops::Range<u64>>>>,
    pub(crate) unplanned: AtomicU64,
    pub(crate) slowest: Mutex<(Duration, String)>,
}

impl Counters {
    /// Notes that `range` of object `name` was used.
    pub(crate) fn note_used(&self, name: &str, range: std::ops::Range<u64>) {
        if range.start >= range.end {
            return;
        }
        let Ok(mut used) = self.used.lock() else {
            return;
        };
        // Looked up first: a key is allocated once per object, not once per read.
        match used.get_mut(name) {
            Some(v) => merge_range(v, range),
            None => {
                used.insert(name.to_string(), vec![range]);
            }
        }
    }

    /// Bytes used at least once, over every object.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.used
            .lock()
            .map_or(0, |u| u.values().flatten().map(|r| r.end - r.start).sum())
    }

    pub(crate) fn note_time(&self, took: Duration, name: &str) {
        if let Ok(mut s) = self.slowest.lock() {
            if took > s.0 {
                *s = (took, name.to_string());
            }
        }
    }
}

/// Adds `r` to the sorted, disjoint ranges `v`, merging what overlaps or touches it.
fn merge_range(v: &mut Vec<std::ops::Range<u64>>, r: std::ops::Range<u64>) {
    let i = v.partition_point(|x| x.end < r.start);
    let j = v.partition_point(|x| x.start <= r.end);
    if i == j {
        v.insert(i, r);
        return;
    }
    let merged = v[i].start.min(r.start)..v[j - 1].end.max(r.end);
    v.splice(i..j, std::iter::once(merged));
}
/// Connects reqwest's client, wrapped in [`Service`].
#[derive(Debug)]
pub(super) struct Counting {
    counters: Arc<Counters>,
}

impl Counting {
    pub(super) fn new(counters: Arc<Counters>) -> Counting {
        Counting { counters }
    }
}

impl HttpConnector for Counting {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Service {
            inner,
            counters: Arc::clone(&self.counters),
        }))
    }
}

/// Counts a request, then its response's body bytes as they arrive.
#[derive(Debug)]
struct Service {
    inner: HttpClient,
    counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
        if req.uri().query().is_some_and(|q| q.contains("list-type")) {
            self.counters.list_pages.fetch_add(1, Ordering::Relaxed);
        }
        let res = self.inner.execute(req).await?;
        let counters = Arc::clone(&self.counters);
        Ok(res.map(|body| HttpResponseBody::new(Counted { body, counters })))
    }
}

/// A response body that counts its bytes.
struct Counted {
    body: HttpResponseBody,
    counters: Arc<Counters>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counters
                    .body_bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_ranges_merge() {
        let mut v = Vec::new();
        for r in [10..20, 30..40, 18..25, 50..60, 25..30, 0..5, 5..6] {
            merge_range(&mut v, r);
        }
        assert_eq!(v, vec![0..6, 10..40, 50..60]);
        merge_range(&mut v, 0..100);
        assert_eq!(v, vec![0..100]);
    }
}

//! The HTTP layer under the object store client: it counts every attempt (the client's own
//! retries included) and every response body byte received, for the summary.

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

use super::Counters;

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

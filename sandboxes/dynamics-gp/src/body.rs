//! Response bodies: whole, or produced chunk by chunk while the client reads.
//!
//! SOAP lists have no paging, so `GetCustomerList` over 50,000 customers is one response of
//! tens of megabytes. Rendering it lazily (a few hundred records per chunk, each under the data
//! lock for a moment) keeps the sandbox's memory flat, which matters when a memory benchmark of
//! the connector runs the sandbox in the same process.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame, SizeHint};

/// A response body.
pub enum Body {
    /// The whole body (sent with `Content-Length`).
    Full(Option<Bytes>),
    /// Chunks rendered on demand (sent chunked).
    Chunks(Box<dyn Iterator<Item = String> + Send>),
}

impl Body {
    /// A whole body.
    pub fn full(data: impl Into<Bytes>) -> Body {
        Body::Full(Some(data.into()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(match this {
            Body::Full(data) => data.take().map(|d| Ok(Frame::data(d))),
            Body::Chunks(chunks) => chunks.find(|c| !c.is_empty()).map(|c| Ok(Frame::data(Bytes::from(c)))),
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Chunks(_) => SizeHint::default(),
        }
    }
}

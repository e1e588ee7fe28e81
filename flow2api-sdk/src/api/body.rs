//! Response bodies: whole, or a stream of chunks (SSE).

use std::fmt;

use crate::seams::{BoxStream, Bytes};

/// The body of a response from [`crate::App::handle`].
pub enum Body {
    /// The whole body.
    Full(Bytes),
    /// A body produced over time (server-sent events). Hosts forward each chunk as it comes.
    Stream(BoxStream<'static, Bytes>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self::Full(Bytes::new())
    }

    /// Collects the body (waits for a stream to end).
    pub async fn collect(self) -> Bytes {
        use futures::StreamExt;
        match self {
            Self::Full(b) => b,
            Self::Stream(mut s) => {
                let mut out = Vec::new();
                while let Some(chunk) = s.next().await {
                    out.extend_from_slice(&chunk);
                }
                Bytes::from(out)
            }
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::Full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::Full(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::Full(Bytes::from(v))
    }
}

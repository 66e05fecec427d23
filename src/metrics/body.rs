//! The `/metrics` response body: the exposition written and sent piece by piece,
//! gzipped on the way when the scraper asked for it.
//!
//! Each piece is rendered only when hyper is ready to send it, so a scrape holds one
//! piece in memory instead of the whole exposition (tens of megabytes at 10,000
//! services), however many scrapers there are. The pieces come from one immutable
//! snapshot at one instant (see [`ExpositionWriter`]), so the body is consistent even
//! though it is never whole in memory.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use hyper::body::{Body, Frame};

use super::render::{ExpositionWriter, CHUNK_BYTES};

/// A streamed exposition, plain or gzip-compressed.
pub struct MetricsBody {
    writer: Option<ExpositionWriter>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    /// Records the scrape's duration when the body is done (or dropped unfinished).
    timer: Option<prometheus::HistogramTimer>,
}

impl MetricsBody {
    /// `timer`, if any, observes the scrape when the last byte has been handed out.
    pub fn new(
        writer: ExpositionWriter,
        gzip: bool,
        timer: Option<prometheus::HistogramTimer>,
    ) -> MetricsBody {
        MetricsBody {
            timer,
            writer: Some(writer),
            // The fastest level: a scrape's text compresses about 15× even so, and
            // the CPU per scrape stays a fraction of rendering's.
            gzip: gzip.then(|| {
                GzEncoder::new(
                    Vec::with_capacity(CHUNK_BYTES / 4),
                    flate2::Compression::fast(),
                )
            }),
        }
    }

    /// The next frame's bytes, or `None` at the end.
    fn next_bytes(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            let Some(writer) = &mut self.writer else {
                return Ok(None);
            };
            match (writer.next_piece(CHUNK_BYTES), &mut self.gzip) {
                (Some(piece), None) => return Ok(Some(Bytes::from(piece))),
                (Some(piece), Some(encoder)) => {
                    encoder.write_all(piece.as_bytes())?;
                    let compressed = std::mem::take(encoder.get_mut());
                    if !compressed.is_empty() {
                        return Ok(Some(Bytes::from(compressed)));
                    }
                }
                (None, _) => {
                    self.writer = None;
                    // The last piece is out: the scrape's duration is known.
                    drop(self.timer.take());
                    return match self.gzip.take() {
                        Some(encoder) => Ok(Some(Bytes::from(encoder.finish()?))),
                        None => Ok(None),
                    };
                }
            }
        }
    }
}

impl Body for MetricsBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .next_bytes()
                .transpose()
                .map(|r| r.map(Frame::data)),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.writer.is_none() && self.gzip.is_none()
    }
}

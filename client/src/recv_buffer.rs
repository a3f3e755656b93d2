//! The connection's receive buffer: bytes from the socket in, whole response frames out.
//!
//! The buffer holds at most one frame plus the start of the next, so it never needs more than
//! [`FRAME_BYTES_MAX`]: it starts at [`RECV_BUFFER_BYTES_INITIAL`], grows to fit the frame
//! whose length prefix has arrived (the prefix is checked against `FRAME_BYTES_MAX` before
//! anything is allocated for it), and gives a large allocation back once it is empty.
//!
//! Each whole frame is copied out once into its own [`Bytes`]. That copy is what the rest of
//! the client reads: the reply's record payloads are slices of it, so they can outlive the
//! buffer (and be handed to another task) without a copy per record, while the buffer is
//! immediately free for the next frame.

use bytes::Bytes;
use sluice_protocol::frame::FRAME_PREFIX_BYTES;
use sluice_protocol::{frame_len, FrameError, FRAME_BYTES_MAX};

/// The receive buffer's size while responses are small: enough for a few hundred
/// PutRecord/GetShardIterator-sized responses per read, so a busy pipelined connection needs
/// few reads, and small enough that thousands of idle connections cost little.
pub(crate) const RECV_BUFFER_BYTES_INITIAL: usize = 64 * 1024;

/// A buffer grown beyond this size for a large frame (a big GetRecords page or
/// SubscribeToShardEvent) is given back once it is empty, so that one large response does not
/// pin up to `FRAME_BYTES_MAX` per connection for the connection's lifetime. Re-growing costs
/// about what copying such a frame out costs anyway.
pub(crate) const RECV_BUFFER_BYTES_RETAINED_MAX: usize = 1024 * 1024;

const _: () = assert!(FRAME_PREFIX_BYTES < RECV_BUFFER_BYTES_INITIAL);
const _: () = assert!(RECV_BUFFER_BYTES_INITIAL <= RECV_BUFFER_BYTES_RETAINED_MAX);
const _: () = assert!(RECV_BUFFER_BYTES_RETAINED_MAX <= FRAME_BYTES_MAX);

pub(crate) struct RecvBuffer {
    /// Zero-initialised storage (reads need initialised memory without `unsafe`).
    /// `bytes.len()` is the capacity in use and never exceeds [`FRAME_BYTES_MAX`].
    bytes: Vec<u8>,
    /// Received bytes not yet consumed are `bytes[start..end]`.
    start: usize,
    end: usize,
}

impl RecvBuffer {
    pub(crate) fn new() -> Self {
        Self { bytes: vec![0; RECV_BUFFER_BYTES_INITIAL], start: 0, end: 0 }
    }

    /// Bytes of storage currently allocated.
    #[cfg(test)]
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes received and not yet returned as a frame.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// The next whole frame, copied out of the buffer; `Ok(None)` until one has arrived.
    ///
    /// An error (a zero or oversized length prefix) is final: the stream can no longer be
    /// framed, and the connection must be closed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let buffered = &self.bytes[self.start..self.end];
        let Some(frame_bytes) = frame_len(buffered)? else {
            return Ok(None);
        };
        let Some(frame) = buffered.get(..frame_bytes) else {
            return Ok(None);
        };
        let frame = Bytes::copy_from_slice(frame);
        self.start += frame_bytes;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.bytes.len() > RECV_BUFFER_BYTES_RETAINED_MAX {
                self.bytes = vec![0; RECV_BUFFER_BYTES_INITIAL];
            }
        }
        Ok(Some(frame))
    }

    /// Where to read the next bytes into; record how many arrived with [`Self::filled`].
    ///
    /// Call only after [`Self::next_frame`] returned `Ok(None)`: then the slice is never
    /// empty, and it is large enough for the rest of the pending frame. Space is made by
    /// moving the unconsumed bytes to the front, and by growing the storage to the pending
    /// frame's length when it does not fit (at least doubling, never past
    /// [`FRAME_BYTES_MAX`]).
    pub(crate) fn unfilled(&mut self) -> &mut [u8] {
        let buffered = self.end - self.start;
        // The whole frame at `start`, once its prefix is in; until then, its prefix. A bad
        // prefix cannot be here: `next_frame` reported it, and the connection is closed.
        let pending = match frame_len(&self.bytes[self.start..self.end]) {
            Ok(Some(frame_bytes)) => frame_bytes,
            Ok(None) | Err(_) => FRAME_PREFIX_BYTES,
        };
        // `pending > buffered` when the contract holds; the `max` keeps the slice non-empty
        // even if it does not, without going past the frame size limit.
        let needed = pending.max(buffered + 1).min(FRAME_BYTES_MAX);
        if self.bytes.len() < needed {
            let capacity = needed.max(self.bytes.len().saturating_mul(2)).min(FRAME_BYTES_MAX);
            let mut grown = vec![0; capacity];
            grown[..buffered].copy_from_slice(&self.bytes[self.start..self.end]);
            self.bytes = grown;
            self.start = 0;
            self.end = buffered;
        } else if self.bytes.len() - self.start < needed || self.bytes.len() - self.end < self.bytes.len() / 2 {
            // Move the partial frame to the front when the frame would not fit after it, or
            // when less than half the buffer is left to read into (so reads stay large). It
            // moves at most one partial frame, which the next reads complete.
            self.bytes.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = buffered;
        }
        &mut self.bytes[self.end..]
    }

    /// Records that `read_bytes` bytes were read into the front of [`Self::unfilled`].
    pub(crate) fn filled(&mut self, read_bytes: usize) {
        assert!(read_bytes <= self.bytes.len() - self.end, "read more bytes than the space offered");
        self.end += read_bytes;
    }
}

#[cfg(test)]
mod tests;

//! A native connection's receive buffer: frames are split off it without copying, and the
//! room a read fills is zeroed once per allocation instead of before every read.
//!
//! A read needs initialised memory (`AsyncRead::read` takes `&mut [u8]`). Zeroing the whole
//! room before every read, as `BytesMut::resize` does, zeroes the rest of a large frame again
//! on each of the reads that bring it in. Here the buffer remembers how far its memory is
//! initialised (zeroed, or written by an earlier read), so each byte is zeroed at most once
//! per allocation.
//!
//! That once is still a byte zeroed per byte received, since a frame handed to its request
//! keeps its memory and the next frame gets new memory; so only frames up to a receive chunk
//! are read here, and larger ones into reused memory (`net/frame_pool.rs`).

use bytes::{Bytes, BytesMut};

pub struct ReceiveBuffer {
    bytes: BytesMut,
    /// How many bytes from the start of `bytes`' memory are initialised; never less than
    /// `bytes.len()`, never more than `bytes.capacity()`.
    initialized: usize,
}

impl ReceiveBuffer {
    /// A buffer continuing `bytes` (what the handshake left of the first read).
    pub fn new(bytes: BytesMut) -> ReceiveBuffer {
        let initialized = bytes.len();
        ReceiveBuffer { bytes, initialized }
    }

    /// The bytes received and not yet split off.
    pub fn received(&self) -> &[u8] {
        &self.bytes
    }

    /// Splits the first `len` received bytes off as a frame; the buffer keeps the rest.
    pub fn split_frame(&mut self, len: usize) -> Bytes {
        let frame = self.bytes.split_to(len).freeze();
        // The rest is the same memory, `len` bytes further on.
        self.initialized -= len;
        frame
    }

    /// Drops the received bytes (a large frame's start, copied into its own buffer); the
    /// memory stays for the next reads.
    pub fn clear(&mut self) {
        // The view keeps its start, so `initialized` still counts from it.
        self.bytes.clear();
    }

    /// `room` bytes of initialised memory after the received bytes, for one read; call
    /// [`ReceiveBuffer::filled`] with what the read put there.
    pub fn room(&mut self, room: usize) -> &mut [u8] {
        let len = self.bytes.len();
        let (ptr, capacity) = (self.bytes.as_ptr(), self.bytes.capacity());
        self.bytes.reserve(room);
        if self.bytes.as_ptr() != ptr || self.bytes.capacity() != capacity {
            // New (or moved, or grown) memory: only the received bytes were carried over.
            self.initialized = len;
        }
        let spare = &mut self.bytes.spare_capacity_mut()[..room];
        let zeroed_from = self.initialized - len;
        if zeroed_from < room {
            spare[zeroed_from..].fill(std::mem::MaybeUninit::new(0));
            self.initialized = len + room;
        }
        // SAFETY: the first `room` bytes of the spare capacity are initialised: the ones below
        // `initialized` were zeroed or written before (and `initialized` is reset whenever the
        // memory changes), the rest were zeroed just above. `MaybeUninit<u8>` has `u8`'s layout.
        unsafe { &mut *(spare as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) }
    }

    /// Counts `read` bytes that a read put at the start of the last [`ReceiveBuffer::room`].
    pub fn filled(&mut self, read: usize) {
        let len = self.bytes.len() + read;
        assert!(len <= self.initialized, "a read cannot fill more than the room it was given");
        // SAFETY: the bytes up to `len` are initialised (`room` made them so, and the
        // assertion keeps `len` within them) and within the capacity (`initialized` is).
        unsafe { self.bytes.set_len(len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_as_they_were_read_across_reads_and_reallocations() {
        let stream: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        // Frames of uneven sizes, read in pieces of uneven sizes.
        let frame_lens = [1usize, 70_000, 3, 130_000, 99_996];
        assert_eq!(frame_lens.iter().sum::<usize>(), stream.len());
        let mut buffer = ReceiveBuffer::new(BytesMut::new());
        let (mut offset, mut frames) = (0, Vec::new());
        let mut pieces = [17usize, 65_536, 100_000, 5, 40_000].into_iter().cycle();
        for &len in &frame_lens {
            while buffer.received().len() < len {
                let room = buffer.room((len - buffer.received().len()).max(1024));
                let read = pieces.next().unwrap().min(room.len()).min(stream.len() - offset);
                room[..read].copy_from_slice(&stream[offset..offset + read]);
                offset += read;
                buffer.filled(read);
            }
            frames.push(buffer.split_frame(len));
        }
        assert!(buffer.received().is_empty());
        assert_eq!(frames.concat(), stream);
    }

    #[test]
    fn room_after_a_short_read_is_the_same_memory_and_still_zeroed() {
        let mut buffer = ReceiveBuffer::new(BytesMut::from(&b"abc"[..]));
        let room = buffer.room(10);
        assert_eq!(room, &[0u8; 10]);
        room[..2].copy_from_slice(b"de");
        buffer.filled(2);
        // The next room starts after the received bytes: not zeroed again, but initialised.
        assert_eq!(buffer.room(8), &[0u8; 8]);
        buffer.filled(0);
        assert_eq!(buffer.received(), b"abcde");
        assert_eq!(&buffer.split_frame(4)[..], b"abcd");
        assert_eq!(buffer.received(), b"e");
    }
}

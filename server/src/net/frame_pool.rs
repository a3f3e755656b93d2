//! Reused memory for large request frames (a PutRecords of 500 records is about half a MiB).
//!
//! A read needs initialised memory (`AsyncRead::read` takes `&mut [u8]`), so memory that a
//! frame is read into has to be zeroed first, once. When every frame came in fresh memory,
//! that was a byte zeroed per byte received (memset 3.8% of sluiced's CPU under
//! `bench/peers/iggy.sh`'s load), plus a large allocation and free per frame (glibc's `free`
//! of a chunk of 64 KiB or more consolidates its fast bins each time). A frame larger than
//! a receive chunk is instead read straight into a buffer from its core's pool: zeroed when it
//! was first allocated, handed back when the frame's last [`Bytes`] handle is dropped (on
//! whichever core that is: records are appended on their shards' cores), and read into again.
//!
//! The pool is per core (a connection's frames come back to its core's pool) and bounded in
//! bytes ([`FRAME_POOL_BYTES_PER_CORE_MAX`]); a buffer handed back to a full pool is freed.

use crate::limits::FRAME_POOL_BYTES_PER_CORE_MAX;
use bytes::Bytes;
use std::sync::{Arc, Mutex, PoisonError};

/// Buffers ready for a frame, and the bytes they hold (their capacity).
#[derive(Default)]
struct Idle {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

/// One core's pool of frame buffers. `Sync` because a frame's last handle can be dropped on
/// another core; the lock is held for a `Vec` push or pop, and contended only by such a drop.
#[derive(Default)]
pub struct FramePool {
    idle: Mutex<Idle>,
}

impl FramePool {
    /// This core's pool.
    pub fn of_this_core() -> Arc<FramePool> {
        thread_local! {
            static POOL: Arc<FramePool> = Arc::default();
        }
        POOL.with(Arc::clone)
    }

    /// A frame buffer of `len` bytes to read into: a pooled one (the most recently handed
    /// back, the likeliest to be in cache), grown if it is shorter, else new memory. Only
    /// memory never used before is zeroed.
    pub fn take(self: &Arc<Self>, len: usize) -> FrameBuffer {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let buffer = idle.buffers.pop();
            if let Some(buffer) = &buffer {
                idle.bytes -= buffer.capacity();
            }
            buffer
        };
        let mut memory = reused.unwrap_or_default();
        if memory.len() < len {
            // Zeroes only the new part (and a new `Vec` may get it from the allocator zeroed);
            // exactly `len`, since the pool's bound counts capacity.
            memory.reserve_exact(len - memory.len());
            memory.resize(len, 0);
        }
        FrameBuffer { memory, len, filled: 0, pool: self.clone() }
    }

    fn give_back(&self, memory: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.bytes + memory.capacity() <= FRAME_POOL_BYTES_PER_CORE_MAX {
            idle.bytes += memory.capacity();
            idle.buffers.push(memory);
        }
        // Else `memory` is freed here: the pool is full.
    }

    /// Bytes held by idle buffers.
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }
}

/// A frame being read into pooled memory; [`FrameBuffer::into_bytes`] once it is whole.
pub struct FrameBuffer {
    /// Initialised memory, at least `len` bytes.
    memory: Vec<u8>,
    /// The frame's length.
    len: usize,
    /// How many of its bytes are received.
    filled: usize,
    pool: Arc<FramePool>,
}

impl FrameBuffer {
    /// Appends bytes received before the frame had its own buffer (the start of the frame).
    pub fn extend_from_slice(&mut self, received: &[u8]) {
        assert!(received.len() <= self.len - self.filled, "more bytes than the frame has");
        self.memory[self.filled..self.filled + received.len()].copy_from_slice(received);
        self.filled += received.len();
    }

    /// The rest of the frame, to read into; call [`FrameBuffer::filled`] with what the read put
    /// at its start.
    pub fn unfilled(&mut self) -> &mut [u8] {
        &mut self.memory[self.filled..self.len]
    }

    /// Counts `read` bytes a read put at the start of [`FrameBuffer::unfilled`].
    pub fn filled(&mut self, read: usize) {
        assert!(read <= self.len - self.filled, "a read cannot fill more than the room it was given");
        self.filled += read;
    }

    pub fn is_whole(&self) -> bool {
        self.filled == self.len
    }

    /// The whole frame; its memory goes back to the pool when the last handle (or slice) of it
    /// is dropped.
    pub fn into_bytes(self) -> Bytes {
        assert!(self.is_whole(), "a frame is handed on only when whole");
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for FrameBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.memory[..self.filled]
    }
}

impl Drop for FrameBuffer {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.memory));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pool: &Arc<FramePool>, content: &[u8], pieces: usize) -> Bytes {
        let mut buffer = pool.take(content.len());
        let head = content.len() / 3;
        buffer.extend_from_slice(&content[..head]);
        let mut offset = head;
        while !buffer.is_whole() {
            let room = buffer.unfilled();
            let read = room.len().min(pieces).min(content.len() - offset);
            room[..read].copy_from_slice(&content[offset..offset + read]);
            buffer.filled(read);
            offset += read;
        }
        buffer.into_bytes()
    }

    #[test]
    fn frames_keep_their_bytes_while_the_memory_is_reused() {
        let pool = Arc::new(FramePool::default());
        let first: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let a = frame(&pool, &first, 70_000);
        assert_eq!(&a[..], &first[..]);
        let slice = a.slice(1000..2000);
        drop(a);
        // A slice keeps the memory out of the pool.
        assert_eq!(pool.idle_bytes(), 0);
        assert_eq!(&slice[..], &first[1000..2000]);
        drop(slice);
        assert_eq!(pool.idle_bytes(), 200_000);
        // A shorter frame reuses the memory, and sees only its own bytes.
        let second: Vec<u8> = (0..150_000u32).map(|i| (i % 7) as u8).collect();
        let b = frame(&pool, &second, 4096);
        assert_eq!(pool.idle_bytes(), 0);
        assert_eq!(&b[..], &second[..]);
        drop(b);
        // A longer one grows it.
        let third: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
        let c = frame(&pool, &third, 100_000);
        assert_eq!(&c[..], &third[..]);
        drop(c);
        assert_eq!(pool.idle_bytes(), 300_000);
    }

    #[test]
    fn a_full_pool_frees_what_comes_back() {
        let pool = Arc::new(FramePool::default());
        let len = FRAME_POOL_BYTES_PER_CORE_MAX / 2 + 1;
        let content = vec![7u8; len];
        let (a, b) = (frame(&pool, &content, len), frame(&pool, &content, len));
        drop(a);
        drop(b);
        assert_eq!(pool.idle_bytes(), len);
    }

    #[test]
    fn a_frame_dropped_on_another_thread_comes_back() {
        let pool = Arc::new(FramePool::default());
        let a = frame(&pool, &[1u8; 100_000], 100_000);
        std::thread::spawn(move || drop(a)).join().unwrap();
        assert_eq!(pool.idle_bytes(), 100_000);
    }
}

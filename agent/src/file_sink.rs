//! A sink that appends records to local files (`--sink-file DIR`): the debugging sink, and
//! the one the agent's own end-to-end tests run against.
//!
//! It is a real sink, not a mock: it buffers per destination within the flow's
//! `maxBufferSizeRecords` / `maxBufferSizeBytes` / `maxBufferAgeMillis` as the producer will,
//! writes each buffer as length-prefixed, CRC-checked frames to `DIR/kinesis-NAME.records` or
//! `DIR/firehose-NAME.records`, fdatasyncs (one fdatasync for everything written in one pass:
//! a group commit), and only then acknowledges the records. Its queue is bounded
//! ([`limits::SINK_QUEUE_BATCHES_MAX`] batches), so a slow disk slows the flows down.
//!
//! Frame layout (little-endian), also in `docs/agent.md`:
//!
//! ```text
//! u32 body length | u32 CRC-32 of the body | body
//! body = 0x00 | u16 key length | key | data      a stream record (with its partition key)
//!      | 0x02 | data                             a delivery-stream record
//!      | 0x01 | u32 pid | u64 unix ms            a session start (written when the sink opens)
//! ```
//!
//! A crash can leave a torn last frame; opening the file again cuts it off (it was never
//! acknowledged, so the agent sends it again).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::config::{BufferLimits, Destination, DestinationKind};
use crate::limits;
use crate::sink::{Sink, SinkError, SinkRecord, SubmitError};

/// Bytes of a frame header: body length and CRC.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest frame body a reader accepts: the largest record plus its key and framing.
pub const FRAME_BODY_BYTES_MAX: usize = limits::KINESIS_RECORD_BYTES_MAX + 1024;

const KIND_STREAM_RECORD: u8 = 0;
const KIND_SESSION: u8 = 1;
const KIND_DELIVERY_RECORD: u8 = 2;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Record { partition_key: Option<String>, data: Vec<u8> },
    Session { pid: u32, unix_ms: u64 },
}

/// Appends the frame of one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, partition_key: Option<&str>, data: &[u8]) {
    let body_len = match partition_key {
        Some(key) => 1 + 2 + key.len() + data.len(),
        None => 1 + data.len(),
    };
    let header = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    match partition_key {
        Some(key) => {
            out.push(KIND_STREAM_RECORD);
            out.extend_from_slice(&(key.len() as u16).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
        }
        None => out.push(KIND_DELIVERY_RECORD),
    }
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[body..]);
    out[header + 4..header + 8].copy_from_slice(&crc.to_le_bytes());
}

fn encode_session(out: &mut Vec<u8>, pid: u32, unix_ms: u64) {
    let mut body = vec![KIND_SESSION];
    body.extend_from_slice(&pid.to_le_bytes());
    body.extend_from_slice(&unix_ms.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Why decoding stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("incomplete frame at offset {offset}")]
    Incomplete { offset: usize },
    #[error("frame at offset {offset} has a body of {len} bytes (at most {FRAME_BODY_BYTES_MAX})")]
    TooLong { offset: usize, len: usize },
    #[error("frame at offset {offset} fails its CRC")]
    Crc { offset: usize },
    #[error("frame at offset {offset} is malformed: {reason}")]
    Malformed { offset: usize, reason: &'static str },
}

/// Decodes one frame body.
fn decode_body(body: &[u8], offset: usize) -> Result<Frame, FrameError> {
    let malformed = |reason| FrameError::Malformed { offset, reason };
    match body.split_first() {
        Some((&KIND_STREAM_RECORD, rest)) => {
            if rest.len() < 2 {
                return Err(malformed("record without key length"));
            }
            let key_len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            let rest = &rest[2..];
            if rest.len() < key_len {
                return Err(malformed("key longer than the frame"));
            }
            let key = std::str::from_utf8(&rest[..key_len]).map_err(|_| malformed("key is not UTF-8"))?;
            Ok(Frame::Record { partition_key: Some(key.to_string()), data: rest[key_len..].to_vec() })
        }
        Some((&KIND_DELIVERY_RECORD, rest)) => Ok(Frame::Record { partition_key: None, data: rest.to_vec() }),
        Some((&KIND_SESSION, rest)) if rest.len() == 12 => Ok(Frame::Session {
            pid: u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")),
            unix_ms: u64::from_le_bytes(rest[4..].try_into().expect("8 bytes")),
        }),
        Some((&KIND_SESSION, _)) => Err(malformed("session frame of the wrong length")),
        Some(_) => Err(malformed("unknown frame kind")),
        None => Err(malformed("empty body")),
    }
}

/// Decodes frames from the start of `bytes`: the frames, the length of the valid prefix, and
/// why decoding stopped early (if it did).
pub fn decode_frames(bytes: &[u8]) -> (Vec<Frame>, usize, Option<FrameError>) {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        match decode_frame(&bytes[offset..], offset) {
            Ok((frame, len)) => {
                frames.push(frame);
                offset += len;
            }
            Err(e) => return (frames, offset, Some(e)),
        }
    }
    (frames, offset, None)
}

fn decode_frame(bytes: &[u8], offset: usize) -> Result<(Frame, usize), FrameError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameError::Incomplete { offset });
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    if len > FRAME_BODY_BYTES_MAX {
        return Err(FrameError::TooLong { offset, len });
    }
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let Some(body) = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(FrameError::Incomplete { offset });
    };
    if crc32fast::hash(body) != crc {
        return Err(FrameError::Crc { offset });
    }
    Ok((decode_body(body, offset)?, FRAME_HEADER_BYTES + len))
}

/// Reads every frame of a sink file, streaming (the file may be large). Stops at the first
/// frame that is torn or corrupt and says where.
pub fn read_file(path: &Path) -> io::Result<(Vec<Frame>, u64, Option<FrameError>)> {
    let mut frames = Vec::new();
    let valid = scan_file(path, |frame| frames.push(frame))?;
    Ok((frames, valid.0, valid.1))
}

/// Calls `each` for every valid frame of the file; returns the valid length and the error.
pub fn scan_file(path: &Path, mut each: impl FnMut(Frame)) -> io::Result<(u64, Option<FrameError>)> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut offset: u64 = 0;
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut body = Vec::new();
    loop {
        let got = read_full(&mut reader, &mut header)?;
        if got == 0 {
            return Ok((offset, None));
        }
        let at = offset as usize;
        if got < FRAME_HEADER_BYTES {
            return Ok((offset, Some(FrameError::Incomplete { offset: at })));
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if len > FRAME_BODY_BYTES_MAX {
            return Ok((offset, Some(FrameError::TooLong { offset: at, len })));
        }
        body.resize(len, 0);
        if read_full(&mut reader, &mut body)? < len {
            return Ok((offset, Some(FrameError::Incomplete { offset: at })));
        }
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if crc32fast::hash(&body) != crc {
            return Ok((offset, Some(FrameError::Crc { offset: at })));
        }
        match decode_body(&body, at) {
            Ok(frame) => each(frame),
            Err(e) => return Ok((offset, Some(e))),
        }
        offset += (FRAME_HEADER_BYTES + len) as u64;
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The file a destination's records go to in `dir`.
pub fn destination_path(dir: &Path, destination: &Destination) -> PathBuf {
    let kind = match destination.kind {
        DestinationKind::Stream => "kinesis",
        DestinationKind::DeliveryStream => "firehose",
    };
    // Stream names are [a-zA-Z0-9_.-]; anything else is replaced so the name stays one path
    // component.
    let name: String = destination
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
        .collect();
    dir.join(format!("{kind}-{name}.records"))
}

enum Message {
    Records(Vec<SinkRecord>),
    Open { destination: Destination, limits: BufferLimits, reply: Sender<Result<(), SinkError>> },
    Flush,
    Shutdown(Duration),
}

/// The file sink. See the module docs.
pub struct FileSink {
    dir: PathBuf,
    queue: Sender<Message>,
    closed: AtomicBool,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl FileSink {
    /// A sink writing into `dir` (created if missing), with its writer thread.
    pub fn start(dir: &Path) -> io::Result<Arc<FileSink>> {
        fs::create_dir_all(dir)?;
        let (queue, messages) = bounded(limits::SINK_QUEUE_BATCHES_MAX);
        let writer_dir = dir.to_owned();
        let worker = std::thread::Builder::new()
            .name("file-sink".into())
            .spawn(move || Writer::new(writer_dir).run(messages))?;
        Ok(Arc::new(FileSink {
            dir: dir.to_owned(),
            queue,
            closed: AtomicBool::new(false),
            worker: Mutex::new(Some(worker)),
        }))
    }
}

impl Sink for FileSink {
    fn open(&self, destination: &Destination, limits: BufferLimits) -> Result<(), SinkError> {
        let (reply, answer) = bounded(1);
        let error = |message: String| SinkError { destination: destination.name.clone(), message };
        self.queue
            .send(Message::Open { destination: destination.clone(), limits, reply })
            .map_err(|_| error("the file sink is shut down".into()))?;
        answer.recv().map_err(|_| error("the file sink's writer stopped".into()))?
    }

    fn submit(&self, records: Vec<SinkRecord>, wait: Duration) -> Result<(), SubmitError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed(records));
        }
        match self.queue.send_timeout(Message::Records(records), wait) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(Message::Records(records))) => Err(SubmitError::Full(records)),
            Err(SendTimeoutError::Disconnected(Message::Records(records))) => Err(SubmitError::Closed(records)),
            Err(_) => unreachable!("the message sent was records"),
        }
    }

    fn flush(&self) {
        let _ = self.queue.send(Message::Flush);
    }

    fn shutdown(&self, timeout: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.queue.send(Message::Shutdown(timeout));
        if let Some(worker) = self.worker.lock().expect("not poisoned").take() {
            let _ = worker.join();
        }
    }

    fn describe(&self) -> String {
        format!("file sink in {}", self.dir.display())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

struct Buffered {
    file: File,
    path: PathBuf,
    limits: BufferLimits,
    records: Vec<SinkRecord>,
    bytes: u64,
    oldest: Option<Instant>,
}

struct Writer {
    dir: PathBuf,
    destinations: HashMap<Destination, Buffered>,
    /// Encoded frames per destination waiting for one write + fdatasync, with their records.
    ready: HashMap<Destination, (Vec<u8>, Vec<SinkRecord>)>,
}

impl Writer {
    fn new(dir: PathBuf) -> Writer {
        Writer { dir, destinations: HashMap::new(), ready: HashMap::new() }
    }

    fn run(mut self, messages: Receiver<Message>) {
        loop {
            let timeout = self
                .destinations
                .values()
                .filter_map(|b| b.oldest.map(|t| (t + b.limits.age).saturating_duration_since(Instant::now())))
                .min()
                .unwrap_or(Duration::from_secs(3600));
            let first = match messages.recv_timeout(timeout) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Take everything already queued too: one fdatasync for all of it.
            let mut shutdown = None;
            for message in first.into_iter().chain(messages.try_iter()) {
                match message {
                    Message::Records(records) => {
                        for record in records {
                            self.add(record);
                        }
                    }
                    Message::Open { destination, limits, reply } => {
                        let _ = reply.send(self.open(destination, limits));
                    }
                    Message::Flush => self.seal_all(),
                    Message::Shutdown(timeout) => {
                        shutdown = Some(timeout);
                        break;
                    }
                }
            }
            let now = Instant::now();
            let aged: Vec<Destination> = self
                .destinations
                .iter()
                .filter(|(_, b)| b.oldest.is_some_and(|t| now >= t + b.limits.age))
                .map(|(d, _)| d.clone())
                .collect();
            for destination in aged {
                self.seal(&destination);
            }
            if let Some(timeout) = shutdown {
                if !timeout.is_zero() {
                    self.seal_all();
                }
                self.commit();
                // Records still buffered are dropped here: their Acks report Abandoned.
                return;
            }
            self.commit();
        }
    }

    fn open(&mut self, destination: Destination, limits: BufferLimits) -> Result<(), SinkError> {
        if self.destinations.contains_key(&destination) {
            return Ok(());
        }
        let path = destination_path(&self.dir, &destination);
        let error = |e: io::Error| SinkError {
            destination: destination.name.clone(),
            message: format!("{}: {e}", path.display()),
        };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(error)?;
        // Cut a torn last frame left by a crash: it was never acknowledged.
        let (valid, torn) = scan_file(&path, |_| {}).map_err(error)?;
        if let Some(reason) = torn {
            tracing::warn!(path = %path.display(), %reason, valid, "cutting a torn frame left by a crash");
            file.set_len(valid).map_err(error)?;
        }
        let mut session = Vec::new();
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        encode_session(&mut session, std::process::id(), unix_ms);
        file.write_all(&session).map_err(error)?;
        file.sync_data().map_err(error)?;
        self.destinations
            .insert(destination, Buffered { file, path, limits, records: Vec::new(), bytes: 0, oldest: None });
        Ok(())
    }

    fn add(&mut self, record: SinkRecord) {
        let destination = (*record.destination).clone();
        let size = record.data.len() as u64 + record.partition_key.as_ref().map_or(0, |k| k.len() as u64);
        let Some(buffered) = self.destinations.get_mut(&destination) else {
            record.ack.failed("destination was not opened");
            return;
        };
        if !buffered.records.is_empty() && buffered.bytes + size > buffered.limits.bytes {
            self.seal(&destination);
        }
        let buffered = self.destinations.get_mut(&destination).expect("present");
        buffered.records.push(record);
        buffered.bytes += size;
        buffered.oldest.get_or_insert_with(Instant::now);
        if buffered.records.len() as u64 >= buffered.limits.records || buffered.bytes >= buffered.limits.bytes {
            self.seal(&destination);
        }
    }

    /// Moves a destination's buffer into the next write (one "PutRecords call").
    fn seal(&mut self, destination: &Destination) {
        let Some(buffered) = self.destinations.get_mut(destination) else {
            return;
        };
        if buffered.records.is_empty() {
            return;
        }
        let (frames, records) = self.ready.entry(destination.clone()).or_default();
        for record in buffered.records.drain(..) {
            encode_record(frames, record.partition_key.as_deref(), &record.data);
            records.push(record);
        }
        buffered.bytes = 0;
        buffered.oldest = None;
    }

    fn seal_all(&mut self) {
        let all: Vec<Destination> = self.destinations.keys().cloned().collect();
        for destination in all {
            self.seal(&destination);
        }
    }

    /// Writes every sealed buffer, fdatasyncs, and acknowledges.
    fn commit(&mut self) {
        for (destination, (frames, records)) in self.ready.drain() {
            let buffered = self.destinations.get_mut(&destination).expect("opened");
            let result = buffered.file.write_all(&frames).and_then(|()| buffered.file.sync_data());
            match result {
                Ok(()) => {
                    for record in records {
                        record.ack.delivered(0);
                    }
                }
                Err(e) => {
                    // Nothing is acknowledged; the Acks report Abandoned and the records are
                    // read again after a restart. Cut what may have been written partly.
                    tracing::error!(path = %buffered.path.display(), error = %e, "file sink write failed");
                    if let Ok((valid, _)) = scan_file(&buffered.path, |_| {}) {
                        let _ = buffered.file.set_len(valid);
                    }
                    drop(records);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_torn_tails_are_found() {
        let mut bytes = Vec::new();
        encode_session(&mut bytes, 7, 9);
        encode_record(&mut bytes, Some("key"), b"data\n");
        encode_record(&mut bytes, None, b"");
        let (frames, valid, error) = decode_frames(&bytes);
        assert_eq!(
            frames,
            [
                Frame::Session { pid: 7, unix_ms: 9 },
                Frame::Record { partition_key: Some("key".into()), data: b"data\n".to_vec() },
                Frame::Record { partition_key: None, data: Vec::new() },
            ]
        );
        assert_eq!((valid, error), (bytes.len(), None));
        for cut in 0..bytes.len() {
            let (_, valid, error) = decode_frames(&bytes[..cut]);
            assert!(valid <= cut);
            assert_eq!(error.is_some(), valid < cut, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last - 1] ^= 1;
        let (frames, _, error) = decode_frames(&flipped);
        assert_eq!(frames.len(), 2);
        assert!(matches!(error, Some(FrameError::Crc { .. })));
    }
}

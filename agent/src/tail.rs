//! One flow: finding its files, following them through rotations, reading, splitting,
//! processing, handing records to the sink, and moving the checkpoint.
//!
//! # Files and their identity
//!
//! A flow tracks every file in its directory that matches its glob (compressed `.gz`, `.bz2`
//! and `.zip` files excepted, as in the AWS agent), each with an open descriptor, its identity
//! (device, inode, fingerprint of its first bytes; see [`crate::identity`]) and two offsets:
//! how far it was read and how far its records were acknowledged. Files are read oldest first:
//! in the order the flow discovered them, and at start-up in the order of their modification
//! times, so a rotated file is finished before the file that replaced it.
//!
//! # Rotation
//!
//! - **Rename and create** (logrotate's default): the renamed file keeps its inode, so the
//!   flow keeps reading it through its descriptor, under its new name or, if the new name no
//!   longer matches the glob or the file was deleted, under none. The new file is a new file,
//!   read from its start.
//! - **Copy and truncate** (`copytruncate`): the original's first bytes change (it was
//!   truncated), so its fingerprint no longer matches; the flow looks for the file that now
//!   starts with those bytes (the copy) and carries on reading *it* from the same offset. The
//!   truncated original is then a new file, read from its start. A new file that starts like a
//!   file still being tailed is held back for [`limits::COPY_SETTLE`] in case it is a copy
//!   whose original is about to be truncated; so is an empty or half-written one whose bytes
//!   so far are the first bytes of such a file (a copy is created empty, then filled).
//! - A listing taken while a rotation renames files can miss a file: a closed (dormant) or
//!   checkpointed file missing from one is remembered like a vanished file, so it resumes at
//!   its offset when it is found again under its next name.
//! - **Disappear and reappear**: a file that vanished is read to its end through its
//!   descriptor, then retired; its identity and offset are remembered, so if it comes back
//!   (moved away and back) it resumes where it was.
//! - A rotated file is retired when it has been unchanged at its end for
//!   [`limits::ROTATED_FILE_IDLE`]; only then is an unterminated last line in it sent. The same
//!   holds for a file followed by a newer one.
//!
//! # At least once
//!
//! Every piece of a file (a record, a skipped header line, bytes discarded from an overlong
//! record) takes a slot in the flow's window, in file order. A slot is done when the sink
//! acknowledges its record (pieces without a record are done at once). The acknowledged
//! offset of a file moves only over a prefix of done slots, and a slot leaves the window only
//! when a checkpoint covering it is durable. So the window bounds both the memory in flight
//! and the duplicates a crash can cause.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use md5::{Digest, Md5};
use rand::Rng;

use crate::checkpoint::{CheckpointStore, FileCheckpoint, FlowCheckpoint};
use crate::config::{Destination, DestinationKind, FlowConfig, InitialPosition, PartitionKeyOption};
use crate::identity::{self, Fingerprint, Inode};
use crate::limits;
use crate::metrics::{add, FileStatus, FlowMetrics};
use crate::process::Processor;
use crate::sink::{Ack, Completion, Outcome, Sink, SinkRecord, SubmitError};
use crate::split::{self, Piece, Splitter};
use crate::watch::Wake;

/// A flow that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("flow {flow}: {message}")]
    Setup { flow: String, message: String },
}

/// Everything a flow thread needs.
pub struct FlowContext {
    pub config: Arc<FlowConfig>,
    pub sink: Arc<dyn Sink>,
    pub store: Arc<CheckpointStore>,
    pub metrics: Arc<FlowMetrics>,
    pub wake: Arc<Wake>,
    /// Set by a signal: stop reading, let in-flight records finish, checkpoint, return.
    pub stop: Arc<AtomicBool>,
    /// `--once`: read what exists, ship it, return.
    pub once: bool,
    /// Records in flight at most (≤ [`limits::WINDOW_RECORDS_MAX`]).
    pub window_records: usize,
    /// How long to wait for records in flight at the end (`shutdownTimeoutMillis`).
    pub shutdown_timeout: Duration,
    /// The flow's entry in the checkpoint file, if it had one.
    pub restored: Option<FlowCheckpoint>,
}

/// How a flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowExit {
    /// Records still unacknowledged when the flow gave up waiting.
    pub records_unacknowledged: usize,
}

/// Compressed rotations the AWS agent never tails (`SourceFile.java`).
const IGNORED_EXTENSIONS: &[&str] = &[".gz", ".bz2", ".zip"];

struct Tracked {
    birth: u64,
    /// `None` while dormant: read to its end, superseded, idle, its descriptor closed. It
    /// keeps its identity and checkpoint and is reopened if it grows.
    file: Option<File>,
    path: PathBuf,
    inode: Inode,
    fingerprint: Fingerprint,
    splitter: Splitter,
    acked: u64,
    size: u64,
    size_max: u64,
    last_change: Instant,
    at_matching_path: bool,
    broken_since: Option<Instant>,
    /// Truncated with no copy found: nothing more is read; retired once acknowledged.
    dead: bool,
    /// `fileFooterPattern` matched: nothing more is read from this file.
    footer: bool,
}

impl Tracked {
    fn at_end(&self) -> bool {
        self.dead || self.footer || self.file.is_none() || self.splitter.read_offset() >= self.size
    }

    fn is_open(&self) -> bool {
        self.file.is_some() && !self.dead
    }
}

struct Remembered {
    inode: Inode,
    fingerprint: Fingerprint,
    offset: u64,
}

struct Slot {
    birth: u64,
    end: u64,
    bytes: usize,
    done: bool,
}

struct Entry {
    path: PathBuf,
    inode: Inode,
    size: u64,
    mtime: (i64, i64),
    matching: bool,
}

struct Flow {
    ctx: FlowContext,
    destination: Arc<Destination>,
    /// The flow ships through the KPL producer (`SinkRecord::aggregated`).
    aggregated: bool,
    processor: Processor,
    dir: PathBuf,
    glob: globset::GlobMatcher,
    files: Vec<Tracked>,
    next_birth: u64,
    /// Whether the flow had a checkpoint (then every file found later is new: read from 0).
    has_checkpoint: bool,
    retired: VecDeque<Remembered>,
    deferred: HashMap<Inode, Instant>,
    backlog: VecDeque<(u64, Piece)>,
    window: VecDeque<Slot>,
    front_ticket: u64,
    next_ticket: u64,
    window_bytes: usize,
    unflushed: VecDeque<(u64, usize, usize)>,
    unflushed_records: usize,
    unflushed_bytes: usize,
    outbox: Vec<SinkRecord>,
    completions_tx: Sender<Completion>,
    completions_rx: Receiver<Completion>,
    dirty: bool,
    released_since_update: (usize, usize),
    last_scan: Instant,
    last_status: Instant,
    chunk: Vec<u8>,
    pieces: Vec<Piece>,
    abandoned_logged: bool,
    too_many_logged: bool,
    /// The last scan left matching files untracked for lack of descriptors.
    waiting_for_room: bool,
}

/// Runs one flow until it is stopped (or, with `once`, until what exists is shipped).
pub fn run_flow(ctx: FlowContext) -> Result<FlowExit, TailError> {
    let mut flow = Flow::new(ctx)?;
    flow.run()
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl Flow {
    fn new(ctx: FlowContext) -> Result<Flow, TailError> {
        let setup = |message: String| TailError::Setup { flow: ctx.config.id.clone(), message };
        let pattern = Path::new(&ctx.config.file_pattern);
        let dir = pattern.parent().ok_or_else(|| setup("filePattern has no directory".into()))?.to_owned();
        let name = pattern
            .file_name()
            .ok_or_else(|| setup("filePattern has no file name".into()))?
            .to_string_lossy()
            .into_owned();
        let glob = globset::GlobBuilder::new(&name)
            .literal_separator(true)
            .build()
            .map_err(|e| setup(format!("filePattern: {e}")))?
            .compile_matcher();
        ctx.sink.open_flow(&ctx.config).map_err(|e| setup(e.to_string()))?;
        // Completions never exceed the window (plus abandoned outbox records), so sends into
        // this queue never block.
        let (completions_tx, completions_rx) = bounded(limits::WINDOW_RECORDS_MAX + limits::SUBMIT_RECORDS_MAX);
        let now = Instant::now();
        Ok(Flow {
            destination: Arc::new(ctx.config.destination.clone()),
            aggregated: crate::producer_sink::aggregates(&ctx.config),
            processor: Processor::new(ctx.config.processing.clone()),
            dir,
            glob,
            files: Vec::new(),
            next_birth: 0,
            has_checkpoint: ctx.restored.is_some(),
            retired: VecDeque::new(),
            deferred: HashMap::new(),
            backlog: VecDeque::new(),
            window: VecDeque::new(),
            front_ticket: 0,
            next_ticket: 0,
            window_bytes: 0,
            unflushed: VecDeque::new(),
            unflushed_records: 0,
            unflushed_bytes: 0,
            outbox: Vec::new(),
            completions_tx,
            completions_rx,
            dirty: false,
            released_since_update: (0, 0),
            last_scan: now,
            last_status: now - Duration::from_secs(1),
            chunk: vec![0; limits::READ_CHUNK_BYTES],
            pieces: Vec::new(),
            abandoned_logged: false,
            too_many_logged: false,
            waiting_for_room: false,
            ctx,
        })
    }

    fn id(&self) -> &str {
        &self.ctx.config.id
    }

    fn run(&mut self) -> Result<FlowExit, TailError> {
        if let Some(restored) = self.ctx.restored.take() {
            self.restore(restored);
        }
        self.scan(true);
        self.last_scan = Instant::now();
        let mut draining_since: Option<Instant> = None;
        loop {
            self.handle_completions();
            self.release_durable();
            let stopping = self.ctx.stop.load(Ordering::Acquire);
            if !stopping && draining_since.is_none() {
                let rescan_due = self.last_scan.elapsed() >= self.ctx.config.rescan_interval
                    || (!self.ctx.wake.is_watched() && self.last_scan.elapsed() >= self.ctx.config.poll_interval);
                if self.ctx.wake.take_scan() || rescan_due || self.needs_attention() {
                    self.scan(false);
                    self.last_scan = Instant::now();
                }
                self.read_all();
                self.idle_flushes();
                self.retire();
            }
            self.drain_backlog();
            self.submit();
            self.update_checkpoint();
            self.publish_status(false);

            let finished_reading = self.ctx.once && self.everything_read();
            if (stopping || finished_reading) && draining_since.is_none() {
                if finished_reading {
                    self.flush_all_pending();
                    self.drain_backlog();
                    self.submit();
                }
                // On a stop, records split but not yet handed over are not sent: they are not
                // acknowledged, so the next run reads them again.
                if stopping || self.backlog.is_empty() {
                    self.ctx.sink.flush();
                    draining_since = Some(Instant::now());
                }
            }
            if let Some(since) = draining_since {
                if (stopping || self.backlog.is_empty())
                    && self.outbox.is_empty()
                    && self.window.is_empty()
                    && self.unflushed.is_empty()
                    && !self.dirty
                {
                    self.publish_status(true);
                    return Ok(FlowExit { records_unacknowledged: 0 });
                }
                if since.elapsed() >= self.ctx.shutdown_timeout {
                    let left = self.window.iter().filter(|s| !s.done).count();
                    tracing::warn!(flow = self.id(), records = left, "shutdown timeout: records in flight are not acknowledged; they will be sent again after a restart");
                    self.update_checkpoint();
                    self.publish_status(true);
                    return Ok(FlowExit { records_unacknowledged: left });
                }
                // Keep asking the sink to send: records may have arrived after the last flush.
                if self.outbox.is_empty() {
                    self.ctx.sink.flush();
                }
            }
            self.wait(draining_since.is_some());
        }
    }

    /// Whether something is waiting on time (deferred copies, broken files, idle flushes).
    fn needs_attention(&self) -> bool {
        !self.deferred.is_empty() || self.waiting_for_room || self.files.iter().any(|t| t.broken_since.is_some())
    }

    fn wait(&mut self, draining: bool) {
        let mut timeout = self.ctx.config.rescan_interval.saturating_sub(self.last_scan.elapsed());
        if !self.ctx.wake.is_watched() {
            timeout = timeout.min(self.ctx.config.poll_interval);
        }
        let timed = self.needs_attention()
            || draining
            || !self.unflushed.is_empty()
            || !self.outbox.is_empty()
            || self.files.iter().any(|t| t.splitter.held_bytes() > 0 || !t.at_matching_path);
        if timed {
            timeout = timeout.min(Duration::from_millis(100));
        }
        if !self.outbox.is_empty() || !self.backlog.is_empty() && self.has_room() {
            // The sink was full: `submit` already waited; go round again.
            timeout = Duration::ZERO;
        }
        let completions = self.completions_rx.clone();
        let wake = self.ctx.wake.receiver().clone();
        select! {
            recv(completions) -> completion => {
                if let Ok(completion) = completion {
                    self.complete(completion);
                }
            }
            recv(wake) -> _ => {}
            default(timeout) => {}
        }
    }

    // ----- files -----

    /// The directory's files. A name that is gone by the time it is looked up was renamed or
    /// removed while the directory was read (a rotation under way), and the listing may miss
    /// other files of that rotation too: it is read again, at most
    /// [`limits::DIR_LIST_ATTEMPTS`] times.
    fn list_dir(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        for _ in 0..limits::DIR_LIST_ATTEMPTS {
            entries.clear();
            let Ok(read_dir) = fs::read_dir(&self.dir) else {
                return entries;
            };
            let mut raced = false;
            for dirent in read_dir.flatten() {
                let path = dirent.path();
                let metadata = match fs::metadata(&path) {
                    Ok(metadata) => metadata,
                    Err(_) => {
                        // A dangling symbolic link is not a race; a name that is gone is.
                        raced |= fs::symlink_metadata(&path).is_err();
                        continue;
                    }
                };
                if !metadata.is_file() {
                    continue;
                }
                let name = dirent.file_name();
                let name = name.to_string_lossy();
                let matching =
                    self.glob.is_match(name.as_ref()) && !IGNORED_EXTENSIONS.iter().any(|ext| name.ends_with(ext));
                entries.push(Entry {
                    path,
                    inode: Inode::of(&metadata),
                    size: metadata.len(),
                    mtime: (metadata.mtime(), metadata.mtime_nsec()),
                    matching,
                });
            }
            if !raced {
                break;
            }
        }
        entries
    }

    fn track(&mut self, file: Option<File>, entry: &Entry, offset: u64, fingerprint: Fingerprint) {
        let config = &self.ctx.config;
        let birth = self.next_birth;
        self.next_birth += 1;
        if file.is_some() {
            tracing::info!(flow = self.ctx.config.id.as_str(), path = %entry.path.display(), offset, "tailing");
        }
        self.files.push(Tracked {
            birth,
            file,
            path: entry.path.clone(),
            inode: entry.inode,
            fingerprint,
            splitter: Splitter::new(offset, config.multi_line_start.as_ref(), config.skip_header_lines),
            acked: offset,
            size: entry.size,
            size_max: entry.size,
            last_change: Instant::now(),
            at_matching_path: entry.matching,
            broken_since: None,
            dead: false,
            footer: false,
        });
        self.dirty = true;
    }

    /// Picks up the files of the flow's checkpoint, by inode (under any name in the directory)
    /// or, for a file truncated while the agent was down, by the copy that carries its bytes.
    fn restore(&mut self, restored: FlowCheckpoint) {
        let entries = self.list_dir();
        let ttl_ms = self.ctx.store.ttl().as_millis() as u64;
        let now_ms = unix_ms();
        let mut claimed: Vec<Inode> = Vec::new();
        for checkpoint in restored.files {
            if now_ms.saturating_sub(checkpoint.seen_unix_ms) > ttl_ms {
                continue;
            }
            // The file, with its fingerprint now (taken while it still starts as it did).
            let fits = |entry: &Entry| -> Option<(File, Fingerprint)> {
                if claimed.contains(&entry.inode) || entry.size < checkpoint.offset {
                    return None;
                }
                let file = File::open(&entry.path).ok()?;
                // The path must still name the listed inode (a rotation may be under way).
                file.metadata().ok().filter(|m| Inode::of(m) == entry.inode)?;
                let fingerprint = identity::extend(&file, checkpoint.fingerprint).ok()??;
                Some((file, fingerprint))
            };
            let by_inode = entries.iter().filter(|e| e.inode == checkpoint.inode).find_map(|e| fits(e).map(|f| (e, f)));
            let found = by_inode.or_else(|| {
                entries
                    .iter()
                    .filter(|e| e.matching && checkpoint.fingerprint.len > 0)
                    .find_map(|e| fits(e).map(|f| (e, f)))
            });
            match found {
                Some((entry, (file, fingerprint))) => {
                    claimed.push(entry.inode);
                    // A file read to its end that nothing was added to stays closed (dormant)
                    // until it grows: a directory of many old rotations costs no descriptors.
                    let dormant = entry.size == checkpoint.offset && entry.matching;
                    self.track((!dormant).then_some(file), entry, checkpoint.offset, fingerprint);
                }
                None => {
                    tracing::warn!(
                        flow = self.id(),
                        path = %checkpoint.path.display(),
                        offset = checkpoint.offset,
                        "a checkpointed file is gone; whatever it held past the checkpoint is lost"
                    );
                    // A rotation under way at start-up can hide it from the listing: if it
                    // is found again, it resumes at its checkpoint.
                    self.remember(Remembered {
                        inode: checkpoint.inode,
                        fingerprint: checkpoint.fingerprint,
                        offset: checkpoint.offset,
                    });
                }
            }
        }
    }

    fn scan(&mut self, startup: bool) {
        let entries = self.list_dir();
        let now = Instant::now();

        // 1. What happened to the files we track.
        let open_count = self.files.iter().filter(|t| t.is_open()).count();
        let mut reopened = 0;
        let mut vanished = Vec::new();
        let mut forgotten = Vec::new();
        for tracked in &mut self.files {
            if tracked.dead {
                continue;
            }
            let listed = entries.iter().find(|e| e.inode == tracked.inode);
            if tracked.file.is_none() {
                // Dormant: gone (it was read to its end), unchanged, or grown (reopen it).
                match listed {
                    // Gone, or hidden from this listing by a rename under way: its identity
                    // and offset are remembered, so if it is found again (under its next
                    // name) it is not read again.
                    None => {
                        vanished.push(tracked.birth);
                        forgotten.push(Remembered {
                            inode: tracked.inode,
                            fingerprint: tracked.fingerprint,
                            offset: tracked.acked,
                        });
                    }
                    Some(entry) if entry.size == tracked.size => tracked.at_matching_path = entry.matching,
                    Some(_) if open_count + reopened >= limits::OPEN_FILES_PER_FLOW_MAX => {}
                    Some(entry) => {
                        let file = File::open(&entry.path).ok().filter(|f| {
                            f.metadata().is_ok_and(|m| Inode::of(&m) == tracked.inode)
                                && identity::starts_with(f, tracked.fingerprint).unwrap_or(false)
                        });
                        match file {
                            Some(file) => {
                                tracing::info!(path = %entry.path.display(), offset = tracked.acked, "tailing again");
                                tracked.file = Some(file);
                                tracked.path = entry.path.clone();
                                tracked.at_matching_path = entry.matching;
                                tracked.last_change = now;
                                reopened += 1;
                            }
                            // Other content under the same inode: a new file (found below).
                            None => vanished.push(tracked.birth),
                        }
                    }
                }
                continue;
            }
            let Some(file) = tracked.file.as_ref() else {
                continue;
            };
            tracked.at_matching_path = listed.is_some_and(|e| e.matching);
            if let Some(entry) = listed {
                tracked.path = entry.path.clone();
            }
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            if size != tracked.size {
                tracked.size = size;
                tracked.last_change = now;
            }
            tracked.size_max = tracked.size_max.max(size);
            if tracked.broken_since.is_none() && !tracked.footer {
                // Still what was read from it (a short file's fingerprint grows with it).
                let known = tracked.fingerprint;
                let checked = if size >= tracked.splitter.read_offset() {
                    identity::check(file, known, size).unwrap_or(None)
                } else {
                    None
                };
                if let Some(fingerprint) = checked.filter(|&fingerprint| fingerprint != known) {
                    tracked.fingerprint = fingerprint;
                    self.dirty = true;
                }
                if checked.is_none() {
                    tracing::info!(path = %tracked.path.display(), "file truncated or rewritten; looking for its copy");
                    tracked.broken_since = Some(now);
                }
            }
        }
        if !vanished.is_empty() {
            self.files.retain(|t| !vanished.contains(&t.birth));
            self.dirty = true;
        }
        for r in forgotten {
            self.remember(r);
        }
        let claimed = |files: &[Tracked], inode: Inode| files.iter().any(|t| !t.dead && t.inode == inode);

        // 2. Truncated files: carry on in their copy, or give up after a while.
        for index in 0..self.files.len() {
            let Some(since) = self.files[index].broken_since else {
                continue;
            };
            let read_offset = self.files[index].splitter.read_offset();
            let fingerprint = self.files[index].fingerprint;
            let copy = entries.iter().filter(|e| e.matching && !claimed(&self.files, e.inode)).find_map(|e| {
                let file = self.open_listed(e)?;
                // The listing may have seen the copy half written (a copy is written
                // before its original is truncated): its size now is what counts.
                let size = file.metadata().ok()?.len();
                (size >= read_offset && fingerprint.len > 0 && identity::starts_with(&file, fingerprint).ok()?)
                    .then_some((e, file, size))
            });
            let tracked = &mut self.files[index];
            if let Some((entry, file, size)) = copy {
                tracing::info!(from = %tracked.path.display(), to = %entry.path.display(), offset = read_offset, "copytruncate: continuing in the copy");
                self.deferred.remove(&entry.inode);
                tracked.file = Some(file);
                tracked.inode = entry.inode;
                tracked.path = entry.path.clone();
                tracked.size = size;
                tracked.size_max = size;
                tracked.at_matching_path = entry.matching;
                tracked.broken_since = None;
                tracked.last_change = now;
                self.dirty = true;
            } else if now.duration_since(since) >= limits::COPY_SETTLE || fingerprint.len == 0 {
                let lost = tracked.size_max.saturating_sub(read_offset);
                if lost > 0 {
                    tracing::warn!(path = %tracked.path.display(), bytes = lost, "file truncated before it was read to its end and no copy found: those bytes are lost");
                }
                add(&self.ctx.metrics.bytes_lost_to_truncation, lost);
                tracked.dead = true;
                tracked.broken_since = None;
                tracked.last_change = now - limits::ROTATED_FILE_IDLE;
                self.dirty = true;
            }
        }

        // 3. New files, oldest first.
        let mut fresh: Vec<&Entry> = entries.iter().filter(|e| e.matching && !claimed(&self.files, e.inode)).collect();
        fresh.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| b.path.cmp(&a.path)));
        let mut added = Vec::new();
        self.waiting_for_room = false;
        for entry in fresh {
            if self.files.iter().filter(|t| t.is_open()).count() + added.len() >= limits::OPEN_FILES_PER_FLOW_MAX
                || self.files.len() + added.len() >= limits::TRACKED_FILES_PER_FLOW_MAX
            {
                self.waiting_for_room = true;
                if !self.too_many_logged {
                    tracing::warn!(
                        flow = self.id(),
                        max = limits::TRACKED_FILES_PER_FLOW_MAX,
                        "too many matching files; the newest wait until older ones are retired"
                    );
                    self.too_many_logged = true;
                }
                break;
            }
            let Some(file) = self.open_listed(entry) else {
                continue;
            };
            let Ok(prefix) = identity::read_prefix(&file, limits::FINGERPRINT_BYTES) else {
                continue;
            };
            let fingerprint = Fingerprint::of(&prefix);
            let held_since = self.deferred.get(&entry.inode).copied();
            if held_since.is_some_and(|first| now.duration_since(first) >= limits::COPY_SETTLE) {
                // Held back long enough and its original was not truncated: a file of its own.
                self.deferred.remove(&entry.inode);
            } else if self.files.iter().any(|t| may_be_copy_of(&prefix, t)) {
                if prefix.is_empty() && self.ctx.once {
                    // Nothing to ship; the next run reads it from its start.
                    continue;
                }
                if held_since.is_none() {
                    self.deferred.insert(entry.inode, now);
                }
                continue;
            } else {
                // No longer looks like a copy (an empty new file got lines of its own).
                self.deferred.remove(&entry.inode);
            }
            let remembered = self
                .retired
                .iter()
                .position(|r| r.inode == entry.inode && identity::starts_with(&file, r.fingerprint).unwrap_or(false));
            let offset = match remembered {
                Some(position) => {
                    let r = self.retired.remove(position).expect("position is valid");
                    r.offset.min(entry.size)
                }
                None if startup && !self.has_checkpoint => match (self.ctx.once, self.ctx.config.initial_position) {
                    (true, _) | (false, InitialPosition::StartOfFile) => 0,
                    (false, InitialPosition::EndOfFile) => end_of_last_line(&file, entry.size),
                },
                None => 0,
            };
            added.push((Some(file), entry, offset, fingerprint));
        }
        for (file, entry, offset, fingerprint) in added {
            self.track(file, entry, offset, fingerprint);
        }
        self.deferred.retain(|inode, _| entries.iter().any(|e| e.inode == *inode));
    }

    /// Opens a listed file, if the path still names the inode the listing saw there: a
    /// rotation between the listing and the open moves another file under that name, and
    /// tracking that file's descriptor under the listed inode would read it twice. A scan is
    /// asked for: the rename that raced this one also makes inotify call for it.
    fn open_listed(&self, entry: &Entry) -> Option<File> {
        let file = File::open(&entry.path).ok()?;
        let same = file.metadata().is_ok_and(|m| Inode::of(&m) == entry.inode);
        if !same {
            self.ctx.wake.wake(true);
            return None;
        }
        Some(file)
    }

    // ----- reading -----

    fn has_room(&self) -> bool {
        self.window.len() + self.unflushed_records < self.ctx.window_records
            && self.window_bytes + self.unflushed_bytes < limits::WINDOW_BYTES_MAX
    }

    fn read_all(&mut self) {
        for index in 0..self.files.len() {
            if !self.read_file(index) {
                break;
            }
        }
    }

    /// Reads one file to its end or until the window is full; false if the window is full.
    fn read_file(&mut self, index: usize) -> bool {
        let now = Instant::now();
        {
            let tracked = &mut self.files[index];
            if tracked.dead || tracked.footer || tracked.broken_since.is_some() {
                return true;
            }
            let Some(file) = tracked.file.as_ref() else {
                return true;
            };
            let size = match file.metadata() {
                Ok(metadata) => metadata.len(),
                Err(_) => return true,
            };
            if size != tracked.size {
                tracked.size = size;
                tracked.last_change = now;
                tracked.size_max = tracked.size_max.max(size);
            }
            if tracked.splitter.read_offset() >= size {
                if size < tracked.splitter.read_offset() {
                    tracked.broken_since = Some(now);
                    self.ctx.wake.wake(true);
                }
                return true;
            }
        }
        loop {
            if !self.backlog.is_empty() || !self.has_room() {
                add(&self.ctx.metrics.backpressure_stalls, 1);
                return false;
            }
            let tracked = &mut self.files[index];
            let offset = tracked.splitter.read_offset();
            let Some(file) = tracked.file.as_ref() else {
                return true;
            };
            let n = match file.read_at(&mut self.chunk, offset) {
                Ok(0) => return true,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(path = %tracked.path.display(), error = %e, "read failed; retrying later");
                    return true;
                }
            };
            add(&self.ctx.metrics.bytes_read, n as u64);
            // The file must still start as it did: a copytruncate since the scan looked (or
            // since the last read) may have put new content under the offset just read, which
            // then waits for the copy's. A fingerprint taken while the file was short grows
            // with it.
            match identity::check(file, tracked.fingerprint, offset + n as u64) {
                Ok(Some(fingerprint)) => tracked.fingerprint = fingerprint,
                Ok(None) => {
                    tracked.broken_since = Some(now);
                    self.ctx.wake.wake(true);
                    return true;
                }
                Err(_) => {}
            }
            if offset + n as u64 > tracked.size {
                tracked.size = offset + n as u64;
                tracked.size_max = tracked.size_max.max(tracked.size);
                tracked.last_change = now;
            }
            let birth = tracked.birth;
            tracked.splitter.push(&self.chunk[..n], &mut self.pieces);
            self.backlog.extend(self.pieces.drain(..).map(|p| (birth, p)));
            self.drain_backlog();
        }
    }

    /// Emits held records no more lines are coming for.
    fn idle_flushes(&mut self) {
        let now = Instant::now();
        let newest_matching = self.files.iter().filter(|t| t.at_matching_path && !t.dead).map(|t| t.birth).max();
        for tracked in &mut self.files {
            let idle = now.duration_since(tracked.last_change);
            if !tracked.at_end() || tracked.broken_since.is_some() || tracked.footer {
                continue;
            }
            let superseded =
                !tracked.at_matching_path || tracked.dead || newest_matching.is_some_and(|b| b > tracked.birth);
            if superseded && idle >= limits::ROTATED_FILE_IDLE && tracked.splitter.held_bytes() > 0 {
                tracked.splitter.flush(true, &mut self.pieces);
            } else if tracked.splitter.has_pending_record() && idle >= limits::MULTILINE_IDLE_FLUSH {
                tracked.splitter.flush(false, &mut self.pieces);
            }
            let birth = tracked.birth;
            self.backlog.extend(self.pieces.drain(..).map(|p| (birth, p)));
        }
    }

    /// `--once` at the end: multi-line records whose lines are complete are sent; an
    /// unterminated last line is not (it may still be being written).
    fn flush_all_pending(&mut self) {
        for tracked in &mut self.files {
            tracked.splitter.flush(tracked.dead, &mut self.pieces);
            let birth = tracked.birth;
            self.backlog.extend(self.pieces.drain(..).map(|p| (birth, p)));
        }
    }

    fn everything_read(&self) -> bool {
        self.backlog.is_empty()
            && self.deferred.is_empty()
            && !self.waiting_for_room
            && self.files.iter().all(|t| t.at_end() && t.broken_since.is_none())
    }

    /// Retires files rotated away and fully acknowledged.
    fn retire(&mut self) {
        let now = Instant::now();
        let backlog = &self.backlog;
        let mut retired = Vec::new();
        self.files.retain(|t| {
            let gone = !t.at_matching_path || t.dead;
            let done = t.at_end()
                && t.splitter.held_bytes() == 0
                && t.acked >= t.splitter.read_offset()
                && now.duration_since(t.last_change) >= limits::ROTATED_FILE_IDLE
                && !backlog.iter().any(|(b, _)| *b == t.birth);
            if gone && done {
                tracing::info!(path = %t.path.display(), offset = t.acked, "retired");
                if !t.dead {
                    retired.push(Remembered { inode: t.inode, fingerprint: t.fingerprint, offset: t.acked });
                }
                false
            } else {
                true
            }
        });
        for r in retired {
            self.dirty = true;
            self.remember(r);
        }
        // Older rotations still matching the pattern, read to their end and idle, close their
        // descriptors (dormant); a scan reopens one that grows.
        let newest_matching = self.files.iter().filter(|t| t.at_matching_path && !t.dead).map(|t| t.birth).max();
        for t in &mut self.files {
            let superseded = newest_matching.is_some_and(|b| b > t.birth);
            if superseded
                && t.is_open()
                && t.at_end()
                && t.broken_since.is_none()
                && t.splitter.held_bytes() == 0
                && t.acked >= t.splitter.read_offset()
                // `--once` ships a snapshot: no writer is expected to come back to old files.
                && (self.ctx.once || now.duration_since(t.last_change) >= limits::ROTATED_FILE_IDLE)
                && !self.backlog.iter().any(|(b, _)| *b == t.birth)
            {
                tracing::debug!(path = %t.path.display(), "dormant: read to its end and superseded");
                t.file = None;
            }
        }
    }

    fn remember(&mut self, r: Remembered) {
        if self.retired.len() >= limits::RETIRED_REMEMBERED_MAX {
            self.retired.pop_front();
        }
        self.retired.push_back(r);
    }

    // ----- records -----

    /// Turns backlog pieces into window slots and sink records while there is room.
    fn drain_backlog(&mut self) {
        while self.has_room() {
            let Some((birth, piece)) = self.backlog.pop_front() else {
                return;
            };
            self.take_piece(birth, piece);
        }
    }

    fn take_piece(&mut self, birth: u64, piece: Piece) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let Some(data) = piece.data else {
            self.window.push_back(Slot { birth, end: piece.end, bytes: 0, done: true });
            return;
        };
        add(&self.ctx.metrics.lines_read, 1);
        let config = &self.ctx.config;
        if let Some(footer) = &config.file_footer {
            if footer.is_match(String::from_utf8_lossy(&data).trim()) {
                if let Some(tracked) = self.files.iter_mut().find(|t| t.birth == birth) {
                    tracing::info!(path = %tracked.path.display(), "fileFooterPattern matched: the rest of the file is not read");
                    tracked.footer = true;
                }
                self.backlog.retain(|(b, _)| *b != birth);
                self.window.push_back(Slot { birth, end: piece.end, bytes: 0, done: true });
                return;
            }
        }
        let data = if self.processor.is_identity() {
            data
        } else {
            match self.processor.apply(&data, SystemTime::now()) {
                Ok(Some(processed)) => processed,
                Ok(None) => {
                    add(&self.ctx.metrics.records_skipped, 1);
                    self.window.push_back(Slot { birth, end: piece.end, bytes: 0, done: true });
                    return;
                }
                Err(error) => {
                    add(&self.ctx.metrics.processing_errors, 1);
                    tracing::debug!(%error, "sending the record unprocessed");
                    data
                }
            }
        };
        let partition_key = match (self.destination.kind.clone(), config.partition_key) {
            (DestinationKind::DeliveryStream, _) => None,
            (DestinationKind::Stream, PartitionKeyOption::Random) => {
                Some(format!("{}", rand::thread_rng().gen::<f64>() * 1_000_000.0))
            }
            (DestinationKind::Stream, PartitionKeyOption::Deterministic) => {
                let digest = Md5::digest(&data);
                Some(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
        };
        let mut data = data;
        let max = self.destination.record_bytes_max() - partition_key.as_ref().map_or(0, |k| k.len());
        if split::truncate(&mut data, max, &config.truncated_record_terminator) {
            add(&self.ctx.metrics.records_truncated, 1);
        }
        let bytes = data.len();
        self.window.push_back(Slot { birth, end: piece.end, bytes, done: false });
        self.window_bytes += bytes;
        self.outbox.push(SinkRecord {
            destination: Arc::clone(&self.destination),
            partition_key,
            data,
            ack: Ack::new(self.completions_tx.clone(), ticket),
            aggregated: self.aggregated,
        });
        if self.outbox.len() >= limits::SUBMIT_RECORDS_MAX {
            self.submit();
        }
    }

    fn submit(&mut self) {
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(limits::SUBMIT_RECORDS_MAX);
            let rest = self.outbox.split_off(take);
            let batch = std::mem::replace(&mut self.outbox, rest);
            let count = batch.len() as u64;
            match self.ctx.sink.submit(batch, limits::SUBMIT_WAIT) {
                Ok(()) => add(&self.ctx.metrics.records_submitted, count),
                Err(SubmitError::Full(mut batch)) | Err(SubmitError::Closed(mut batch)) => {
                    add(&self.ctx.metrics.backpressure_stalls, 1);
                    batch.append(&mut self.outbox);
                    self.outbox = batch;
                    return;
                }
            }
        }
    }

    fn handle_completions(&mut self) {
        while let Ok(completion) = self.completions_rx.try_recv() {
            self.complete(completion);
        }
    }

    fn complete(&mut self, completion: Completion) {
        let Some(index) = completion.ticket.checked_sub(self.front_ticket) else {
            return;
        };
        let Some(slot) = self.window.get_mut(index as usize) else {
            return;
        };
        let metrics = &self.ctx.metrics;
        match completion.outcome {
            Outcome::Delivered { throttles } => {
                slot.done = true;
                add(&metrics.records_sent, 1);
                add(&metrics.bytes_sent, slot.bytes as u64);
                add(&metrics.throttles, u64::from(throttles));
            }
            Outcome::Failed { reason } => {
                slot.done = true;
                add(&metrics.records_failed, 1);
                tracing::warn!(flow = self.ctx.config.id.as_str(), %reason, "record failed for good; skipped");
            }
            Outcome::Abandoned => {
                if !self.abandoned_logged && !self.ctx.stop.load(Ordering::Acquire) {
                    tracing::error!(
                        flow = self.ctx.config.id.as_str(),
                        "the sink abandoned a record; the checkpoint stays before it until a restart sends it again"
                    );
                    self.abandoned_logged = true;
                }
            }
        }
        self.advance();
    }

    /// Moves acknowledged offsets over the done prefix of the window.
    fn advance(&mut self) {
        while self.window.front().is_some_and(|s| s.done) {
            let slot = self.window.pop_front().expect("front exists");
            self.front_ticket += 1;
            self.window_bytes -= slot.bytes;
            if let Some(tracked) = self.files.iter_mut().find(|t| t.birth == slot.birth) {
                tracked.acked = tracked.acked.max(slot.end);
            }
            self.released_since_update.0 += 1;
            self.released_since_update.1 += slot.bytes;
            self.dirty = true;
        }
    }

    // ----- checkpoints -----

    fn snapshot(&self) -> FlowCheckpoint {
        let seen = unix_ms();
        FlowCheckpoint {
            files: self
                .files
                .iter()
                .filter(|t| !t.dead || t.acked < t.splitter.read_offset())
                .map(|t| FileCheckpoint {
                    path: t.path.clone(),
                    inode: t.inode,
                    fingerprint: t.fingerprint,
                    offset: t.acked,
                    seen_unix_ms: seen,
                })
                .collect(),
        }
    }

    fn update_checkpoint(&mut self) {
        // Also refresh the checkpoint (and the pending window) when records were acknowledged.
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let generation = self.ctx.store.update(&self.ctx.config.id, self.snapshot());
        let (records, bytes) = std::mem::take(&mut self.released_since_update);
        self.unflushed.push_back((generation, records, bytes));
        self.unflushed_records += records;
        self.unflushed_bytes += bytes;
    }

    fn release_durable(&mut self) {
        let durable = self.ctx.store.durable_generation();
        while let Some(&(generation, records, bytes)) = self.unflushed.front() {
            if generation > durable {
                break;
            }
            self.unflushed.pop_front();
            self.unflushed_records -= records;
            self.unflushed_bytes -= bytes;
        }
    }

    fn publish_status(&mut self, force: bool) {
        if !force && self.last_status.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last_status = Instant::now();
        let files = self
            .files
            .iter()
            .map(|t| FileStatus {
                path: t.path.clone(),
                size: t.size,
                read_offset: t.splitter.read_offset(),
                acked_offset: t.acked,
                lag_bytes: t.size.saturating_sub(t.acked),
            })
            .collect();
        *self.ctx.metrics.files.lock().expect("not poisoned") = files;
    }
}

/// Whether a new file whose first bytes are `prefix` may be a copy of the file `tracked`
/// (logrotate's `copytruncate`, or `cp`): it starts with the bytes the tracked file's
/// fingerprint covers, or, while it is shorter than that, with as many of the tracked file's
/// first bytes as it holds. A copy is created empty and then filled, so a scan can find it
/// empty or half written; read as a file of its own then, it would claim the copy before the
/// original, truncated, looks for it, and its whole content would be shipped a second time.
/// A truncated file still looking for its copy counts: its copy is held back for it.
fn may_be_copy_of(prefix: &[u8], tracked: &Tracked) -> bool {
    let covered = tracked.fingerprint.len as usize;
    if tracked.dead || covered == 0 {
        return false;
    }
    if prefix.len() >= covered {
        return Fingerprint::of(&prefix[..covered]) == tracked.fingerprint;
    }
    let Some(file) = tracked.file.as_ref() else {
        return false;
    };
    identity::read_prefix(file, prefix.len()).is_ok_and(|original| original == prefix)
}

/// The offset just after the last complete line, for `END_OF_FILE`: a line being written
/// when the agent starts is sent once complete. Looks back at most
/// [`limits::RECORD_HELD_BYTES_MAX`]; with no newline there, starts where it looked.
fn end_of_last_line(file: &File, size: u64) -> u64 {
    const STEP: u64 = 64 * 1024;
    let floor = size.saturating_sub(limits::RECORD_HELD_BYTES_MAX as u64);
    let mut end = size;
    let mut buf = vec![0; STEP as usize];
    while end > floor {
        let start = end.saturating_sub(STEP).max(floor);
        let len = (end - start) as usize;
        if file.read_exact_at(&mut buf[..len], start).is_err() {
            return size;
        }
        if let Some(position) = memchr::memrchr(b'\n', &buf[..len]) {
            return start + position as u64 + 1;
        }
        end = start;
    }
    floor
}

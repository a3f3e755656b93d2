//! Turning a file's bytes into records, incrementally, as the AWS agent's splitters do.
//!
//! Bytes arrive in chunks in file order ([`Splitter::push`]); records come out with the file
//! offsets they cover. By default a record is one line, ending with (and including) its `\n`.
//! With `multiLineStartPattern`, a record is a line that matches the pattern at its start
//! plus the lines after it that do not (lines before the first match form a record of their
//! own, as in the AWS agent). An unterminated last line is held until its `\n` arrives, or
//! until the caller says the file is finished ([`Splitter::flush`]). A record longer than
//! [`limits::RECORD_HELD_BYTES_MAX`] is cut there and the rest of it is discarded up to the
//! next record (the AWS agent's "runaway record").
//!
//! The splitter also yields *gaps*: header lines skipped by `skipHeaderLines` and discarded
//! bytes. They carry no data but cover offsets, so the checkpoint moves past them.

use regex::bytes::Regex;

use crate::limits;

/// A piece of the file: a record, or a gap that only advances the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset just past the last byte.
    pub end: u64,
    /// The record's bytes (`None` for a gap).
    pub data: Option<Vec<u8>>,
}

/// The incremental splitter of one file.
#[derive(Debug)]
pub struct Splitter {
    multi_line_start: Option<Regex>,
    record_held_bytes_max: usize,
    /// Lines still to skip (`skipHeaderLines`, only when reading from offset 0).
    headers_to_skip: u64,
    /// Bytes received but not yet part of an emitted piece: complete lines of a pending
    /// multi-line record, then an unterminated line.
    held: Vec<u8>,
    /// File offset of `held[0]`.
    held_start: u64,
    /// In multi-line mode: how many bytes of `held` are complete lines of the pending record.
    pending_len: usize,
    /// Discarding the rest of an overlong record: until the next `\n` (single-line) or the
    /// next start line (multi-line).
    discarding: bool,
}

impl Splitter {
    /// A splitter for a file read from `offset`. `skip_header_lines` applies only at offset 0.
    pub fn new(offset: u64, multi_line_start: Option<&regex::Regex>, skip_header_lines: u64) -> Splitter {
        Splitter::with_limit(offset, multi_line_start, skip_header_lines, limits::RECORD_HELD_BYTES_MAX)
    }

    /// [`Splitter::new`] with a smaller hold limit (tests).
    pub fn with_limit(
        offset: u64,
        multi_line_start: Option<&regex::Regex>,
        skip_header_lines: u64,
        record_held_bytes_max: usize,
    ) -> Splitter {
        Splitter {
            // Java's `lookingAt`: the pattern must match at the start of the line.
            multi_line_start: multi_line_start
                .map(|r| Regex::new(&format!("\\A(?:{})", r.as_str())).expect("a valid pattern stays valid anchored")),
            record_held_bytes_max,
            headers_to_skip: if offset == 0 { skip_header_lines } else { 0 },
            held: Vec::new(),
            held_start: offset,
            pending_len: 0,
            discarding: false,
        }
    }

    /// The offset of the first byte not yet covered by an emitted piece: where reading must
    /// resume after a restart.
    pub fn resume_offset(&self) -> u64 {
        self.held_start
    }

    /// The offset just past the last byte pushed.
    pub fn read_offset(&self) -> u64 {
        self.held_start + self.held.len() as u64
    }

    /// Bytes held back (unterminated line, pending multi-line record).
    pub fn held_bytes(&self) -> usize {
        self.held.len()
    }

    /// Whether a multi-line record is pending (complete lines waiting for the next start).
    pub fn has_pending_record(&self) -> bool {
        self.pending_len > 0
    }

    /// Feeds the next bytes of the file; complete pieces are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Piece>) {
        while !bytes.is_empty() {
            // Work line by line: find the end of the current (possibly held) line.
            let Some(newline) = memchr::memchr(b'\n', bytes) else {
                self.hold_partial(bytes, out);
                return;
            };
            let (line_tail, rest) = bytes.split_at(newline + 1);
            bytes = rest;
            if self.held.len() == self.pending_len
                && self.multi_line_start.is_none()
                && !self.discarding
                && self.headers_to_skip == 0
            {
                // Fast path: a whole line with nothing held; emit it directly.
                let start = self.held_start;
                let end = start + line_tail.len() as u64;
                if line_tail.len() > self.record_held_bytes_max {
                    self.emit_overlong(line_tail, start, out);
                } else {
                    out.push(Piece { start, end, data: Some(line_tail.to_vec()) });
                }
                self.held_start = end;
                continue;
            }
            self.complete_line(line_tail, out);
        }
    }

    /// An unterminated piece of a line: hold it, cutting an overlong line.
    fn hold_partial(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        if self.discarding && self.multi_line_start.is_none() {
            // Past the cut of an overlong line: nothing more of it is kept. (In multi-line
            // mode the line is held: it may start the next record.)
            let start = self.held_start;
            self.gap_after_held(start, bytes.len(), out);
            return;
        }
        self.held.extend_from_slice(bytes);
        let partial_len = self.held.len() - self.pending_len;
        if partial_len <= self.record_held_bytes_max {
            return;
        }
        // One line longer than we hold. A pending multi-line record ends before it.
        if self.pending_len > 0 {
            let rest = self.held.split_off(self.pending_len);
            let record = std::mem::replace(&mut self.held, rest);
            let start = self.held_start;
            self.held_start += record.len() as u64;
            out.push(Piece { start, end: self.held_start, data: Some(record) });
            self.pending_len = 0;
        }
        let held = std::mem::take(&mut self.held);
        let start = self.held_start;
        if self.headers_to_skip > 0 || self.discarding {
            out.push(Piece { start, end: start + held.len() as u64, data: None });
        } else {
            self.emit_overlong(&held, start, out);
        }
        self.held_start = start + held.len() as u64;
        self.discarding = true;
    }

    /// Emits a gap of `len` bytes at `start`, when nothing else is held before it.
    fn gap_after_held(&mut self, start: u64, len: usize, out: &mut Vec<Piece>) {
        if len == 0 {
            return;
        }
        match out.last_mut() {
            Some(last) if last.data.is_none() && last.end == start => last.end += len as u64,
            _ => out.push(Piece { start, end: start + len as u64, data: None }),
        }
        self.held_start = start + len as u64;
    }

    /// An overlong single line arriving whole: its first part is the record.
    fn emit_overlong(&mut self, line: &[u8], start: u64, out: &mut Vec<Piece>) {
        let cut = self.record_held_bytes_max;
        out.push(Piece { start, end: start + cut as u64, data: Some(line[..cut].to_vec()) });
        out.push(Piece { start: start + cut as u64, end: start + line.len() as u64, data: None });
    }

    /// `line_tail` ends with `\n` and completes the line held after the pending record.
    fn complete_line(&mut self, line_tail: &[u8], out: &mut Vec<Piece>) {
        if self.headers_to_skip > 0 {
            let len = self.held.len() + line_tail.len();
            self.held.clear();
            self.headers_to_skip -= 1;
            out.push(Piece { start: self.held_start, end: self.held_start + len as u64, data: None });
            self.held_start += len as u64;
            return;
        }
        let Some(start_pattern) = &self.multi_line_start else {
            if self.discarding {
                // The end of an overlong line: discard through its newline.
                self.discarding = false;
                let start = self.held_start;
                self.gap_after_held(start, line_tail.len(), out);
                return;
            }
            let mut line = std::mem::take(&mut self.held);
            line.extend_from_slice(line_tail);
            let start = self.held_start;
            let end = start + line.len() as u64;
            if line.len() > self.record_held_bytes_max {
                self.emit_overlong(&line, start, out);
            } else {
                out.push(Piece { start, end, data: Some(line) });
            }
            self.held_start = end;
            return;
        };
        // Multi-line: classify the completed line.
        let line_start = self.pending_len;
        self.held.extend_from_slice(line_tail);
        let starts_record = start_pattern.is_match(&self.held[line_start..]);
        if starts_record && self.pending_len > 0 {
            // The pending record is complete.
            let line: Vec<u8> = self.held.split_off(self.pending_len);
            let record = std::mem::replace(&mut self.held, line);
            let start = self.held_start;
            let end = start + record.len() as u64;
            out.push(Piece { start, end, data: Some(record) });
            self.held_start = end;
            self.pending_len = 0;
        }
        if self.discarding && !starts_record {
            // Still inside an overlong record: discard this line.
            let len = self.held.len() - self.pending_len;
            self.held.truncate(self.pending_len);
            let start = self.held_start + self.pending_len as u64;
            debug_assert_eq!(self.pending_len, 0);
            self.gap_after_held(start, len, out);
            return;
        }
        self.discarding = false;
        self.pending_len = self.held.len();
        if self.pending_len > self.record_held_bytes_max {
            let held = std::mem::take(&mut self.held);
            let start = self.held_start;
            let cut = self.record_held_bytes_max;
            out.push(Piece { start, end: start + cut as u64, data: Some(held[..cut].to_vec()) });
            out.push(Piece { start: start + cut as u64, end: start + held.len() as u64, data: None });
            self.held_start = start + held.len() as u64;
            self.pending_len = 0;
            self.discarding = true;
        }
    }

    /// Emits what is held because no more is coming soon: the pending multi-line record, and
    /// with `partial_line` also an unterminated last line (when the file is finished: rotated
    /// away and idle). Header lines still to skip stay skipped.
    pub fn flush(&mut self, partial_line: bool, out: &mut Vec<Piece>) {
        if self.pending_len > 0 {
            let rest = self.held.split_off(self.pending_len);
            let record = std::mem::replace(&mut self.held, rest);
            let start = self.held_start;
            let end = start + record.len() as u64;
            out.push(Piece { start, end, data: Some(record) });
            self.held_start = end;
            self.pending_len = 0;
        }
        if partial_line && !self.held.is_empty() {
            let record = std::mem::take(&mut self.held);
            let start = self.held_start;
            let end = start + record.len() as u64;
            if self.headers_to_skip > 0 {
                out.push(Piece { start, end, data: None });
            } else {
                out.push(Piece { start, end, data: Some(record) });
            }
            self.held_start = end;
        }
        if partial_line {
            self.discarding = false;
        }
    }
}

/// Cuts `data` to `max` bytes, ending it with `terminator`, as the AWS agent's
/// `AbstractRecord.truncate` does (the terminator replaces the last bytes kept).
pub fn truncate(data: &mut Vec<u8>, max: usize, terminator: &[u8]) -> bool {
    if data.len() <= max {
        return false;
    }
    debug_assert!(terminator.len() < max);
    data.truncate(max - terminator.len());
    data.extend_from_slice(terminator);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of every size and checks the pieces are the same.
    fn check(
        input: &str,
        multi: Option<&str>,
        skip: u64,
        limit: usize,
        flush: bool,
        expected: &[(u64, u64, Option<&str>)],
    ) {
        let regex = multi.map(|m| regex::Regex::new(m).unwrap());
        for chunk in 1..=input.len().max(1) {
            let mut splitter = Splitter::with_limit(0, regex.as_ref(), skip, limit);
            let mut out = Vec::new();
            for part in input.as_bytes().chunks(chunk) {
                splitter.push(part, &mut out);
            }
            if flush {
                splitter.flush(true, &mut out);
            }
            // Adjacent gaps may be split differently per chunking; merge them.
            let mut merged: Vec<Piece> = Vec::new();
            for piece in out {
                match merged.last_mut() {
                    Some(last) if last.data.is_none() && piece.data.is_none() && last.end == piece.start => {
                        last.end = piece.end
                    }
                    _ => merged.push(piece),
                }
            }
            let got: Vec<(u64, u64, Option<String>)> =
                merged.into_iter().map(|p| (p.start, p.end, p.data.map(|d| String::from_utf8(d).unwrap()))).collect();
            let want: Vec<(u64, u64, Option<String>)> =
                expected.iter().map(|(s, e, d)| (*s, *e, d.map(str::to_string))).collect();
            assert_eq!(got, want, "input {input:?} in chunks of {chunk}");
            // Pieces are contiguous from 0.
            let mut offset = 0;
            for (s, e, _) in &got {
                assert_eq!(*s, offset);
                offset = *e;
            }
            if flush {
                assert_eq!(offset, input.len() as u64);
            }
        }
    }

    #[test]
    fn single_lines() {
        check("a\nbb\n", None, 0, 100, false, &[(0, 2, Some("a\n")), (2, 5, Some("bb\n"))]);
        check("a\nbb", None, 0, 100, false, &[(0, 2, Some("a\n"))]);
        check("a\nbb", None, 0, 100, true, &[(0, 2, Some("a\n")), (2, 4, Some("bb"))]);
        check("\n\n", None, 0, 100, false, &[(0, 1, Some("\n")), (1, 2, Some("\n"))]);
    }

    #[test]
    fn header_lines_are_skipped() {
        check("h1\nh2\nx\n", None, 2, 100, false, &[(0, 6, None), (6, 8, Some("x\n"))]);
        check("h1\n", None, 2, 100, true, &[(0, 3, None)]);
    }

    #[test]
    fn overlong_lines_are_cut_and_the_rest_discarded() {
        check("abcdefgh\nxy\n", None, 0, 4, false, &[(0, 4, Some("abcd")), (4, 9, None), (9, 12, Some("xy\n"))]);
        check("abcd\n", None, 0, 4, false, &[(0, 4, Some("abcd")), (4, 5, None)]);
        check("abc\n", None, 0, 4, false, &[(0, 4, Some("abc\n"))]);
    }

    #[test]
    fn multi_line_records() {
        let input = "pre\n[1] a\n  at x\n  at y\n[2] b\n[3] c\n  at z\n";
        check(
            input,
            Some(r"\["),
            0,
            100,
            false,
            &[(0, 4, Some("pre\n")), (4, 24, Some("[1] a\n  at x\n  at y\n")), (24, 30, Some("[2] b\n"))],
        );
        check(
            input,
            Some(r"\["),
            0,
            100,
            true,
            &[
                (0, 4, Some("pre\n")),
                (4, 24, Some("[1] a\n  at x\n  at y\n")),
                (24, 30, Some("[2] b\n")),
                (30, 43, Some("[3] c\n  at z\n")),
            ],
        );
        // The pattern must match at the start of the line, not inside it.
        check("x [1]\ny\n", Some(r"\["), 0, 100, true, &[(0, 8, Some("x [1]\ny\n"))]);
    }

    #[test]
    fn overlong_multi_line_records_are_cut() {
        check(
            "[1] a\nbbbbbb\ncc\n[2]\n",
            Some(r"\["),
            0,
            8,
            true,
            &[(0, 8, Some("[1] a\nbb")), (8, 16, None), (16, 20, Some("[2]\n"))],
        );
    }

    #[test]
    fn truncation_keeps_the_limit_with_the_terminator() {
        let mut data = b"abcdefgh".to_vec();
        assert!(truncate(&mut data, 5, b"\n"));
        assert_eq!(data, b"abcd\n");
        let mut short = b"abc".to_vec();
        assert!(!truncate(&mut short, 5, b"\n"));
        assert_eq!(short, b"abc");
    }
}

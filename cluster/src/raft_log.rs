//! raft-rs' own log lines (it logs through `slog`) as `tracing` events of target `raft`, so
//! an operator sees a group's elections in the node's log: `--log-level warn,raft=debug`
//! shows every member's pre-votes, votes and leader changes, each with its group. raft-rs'
//! info lines (a role or term changed, a vote cast, a snapshot restored) come at debug,
//! its debug and trace lines at trace, its warnings at info and its errors at error: at the
//! default level nothing of raft-rs shows, as before, when its records were discarded.

use std::fmt::{self, Write};

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

/// The drain of a replica's raft-rs logger.
pub struct RaftToTracing;

impl Drain for RaftToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if !self.is_enabled(record.level()) {
            return Ok(());
        }
        let mut line = Line(String::new());
        // The logger's own values (the group, the member) first, then the record's.
        let _ = values.serialize(record, &mut line);
        let _ = record.kv().serialize(record, &mut line);
        let (message, fields) = (record.msg(), line.0.as_str());
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{message}{fields}"),
            Level::Warning => tracing::info!(target: "raft", "{message}{fields}"),
            Level::Info => tracing::debug!(target: "raft", "{message}{fields}"),
            Level::Debug | Level::Trace => tracing::trace!(target: "raft", "{message}{fields}"),
        }
        Ok(())
    }

    fn is_enabled(&self, level: Level) -> bool {
        match level {
            Level::Critical | Level::Error => tracing::enabled!(target: "raft", tracing::Level::ERROR),
            Level::Warning => tracing::enabled!(target: "raft", tracing::Level::INFO),
            Level::Info => tracing::enabled!(target: "raft", tracing::Level::DEBUG),
            Level::Debug | Level::Trace => tracing::enabled!(target: "raft", tracing::Level::TRACE),
        }
    }
}

/// A record's key-value pairs, each as ` key=value`.
struct Line(String);

impl Serializer for Line {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

/// A logger for the raft-rs member of group `group`.
pub fn logger(group: String) -> slog::Logger {
    slog::Logger::root(RaftToTracing, slog::o!("group" => group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_message_and_every_value() {
        let mut line = Line(String::new());
        let values = slog::o!("group" => "shard-7".to_string(), "raft_id" => 2u64);
        let record_values = slog::b!("term" => 5u64);
        let args = format_args!("became leader");
        let at = slog::record_static!(Level::Info, "");
        let record = Record::new(&at, &args, record_values);
        OwnedKVList::from(values).serialize(&record, &mut line).unwrap();
        record.kv().serialize(&record, &mut line).unwrap();
        assert_eq!(line.0, " raft_id=2 group=shard-7 term=5");
    }
}

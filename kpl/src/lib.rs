//! Sans-IO producer and consumer cores for Kinesis-compatible streams.

pub mod aggregation;
pub mod types;

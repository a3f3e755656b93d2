//! The native protocol's frame decoder on arbitrary bytes: it must answer Ok or Err, never
//! panic, and whatever it accepts must be safe to walk like the server walks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::{decode_request, decode_response, RequestBodyRef};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((len, request))) = decode_request(data) {
        assert!(len <= data.len());
        let _ = request.correlation_id();
        match RequestBodyRef::of(&request) {
            RequestBodyRef::PutRecords(put) => {
                for entry in put.records().into_iter().flatten() {
                    let _ = (entry.data().map(|d| d.bytes().len()), entry.partition_key(), entry.explicit_hash_key());
                }
            }
            RequestBodyRef::PutRecord(put) => {
                let _ = (put.data().map(|d| d.bytes().len()), put.partition_key(), put.stream_name(), put.stream_arn());
            }
            RequestBodyRef::CreateStream(create) => {
                for tag in create.tags().into_iter().flatten() {
                    let _ = (tag.key(), tag.value());
                }
            }
            RequestBodyRef::SubscribeToShard(subscribe) => {
                let _ = subscribe.starting_position().map(|p| (p.type_(), p.sequence_number(), p.timestamp()));
            }
            RequestBodyRef::ListShards(list) => {
                let _ = list.shard_filter().map(|f| (f.type_(), f.shard_id(), f.timestamp()));
            }
            _ => {}
        }
    }
    let _ = decode_response(data);
});

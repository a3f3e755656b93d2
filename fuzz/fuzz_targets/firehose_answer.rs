//! The agent's Firehose client reading PutRecordBatch's answers (`sluice_client::firehose`):
//! a 200's body through `decode_put_record_batch`, and an error body through
//! `decode_firehose_error`, on arbitrary bytes from the network. Neither may panic; an answer
//! that decodes has exactly one entry per record sent (the agent zips entries with its records),
//! and every error body decodes to one of the model's kinds (unknown names become
//! `InternalFailure`). (PutRecords'
//! answer is `aws_codec`'s: `aws::decode_response` for every operation.)
//!
//! Input: one byte, the number of records the call sent (0–255), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_client::firehose::{decode_firehose_error, decode_put_record_batch};
use sluice_model::ErrorKind;

fuzz_target!(|data: &[u8]| {
    let Some((&records, body)) = data.split_first() else { return };
    let records = usize::from(records);
    if let Ok(output) = decode_put_record_batch(body, records) {
        assert_eq!(output.request_responses.len(), records, "one entry per record");
    }
    let error = decode_firehose_error(body);
    // Whatever the bytes, the kind's name is one AWS uses and the message is text.
    assert!(ErrorKind::ALL.contains(&error.kind));
    let _ = error.message.len();
});

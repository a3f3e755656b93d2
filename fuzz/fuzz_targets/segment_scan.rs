//! Recovery's segment scan on arbitrary bytes (a segment file after any crash or corruption):
//! it must classify the segment without panicking, and every batch it accepts must yield
//! records that pass their checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::format::{decode_batch, scan_segment};

fuzz_target!(|data: &[u8]| {
    let scan = scan_segment(data, 0);
    assert!(scan.valid_bytes <= data.len() + 4096 || scan.batches.is_empty());
    for batch in &scan.batches {
        let (_, runs) = decode_batch(&data[batch.offset..], batch.offset as u64).expect("accepted batches decode");
        for run in runs {
            for record in run.records() {
                record.expect("records of an accepted batch pass their checksums");
            }
        }
    }
});

//! The AWS JSON 1.1 / CBOR 1.1 codec on arbitrary bodies, both directions. The first byte picks
//! the operation, the rest is the body, read in both encodings. A request body decodes to the
//! model or to AWS's error, never a panic, and whatever decodes encodes (as a client would send
//! it) to a body that decodes to the same request; likewise for response bodies (a client
//! reading, a server writing) and SubscribeToShard event payloads. The PutRecord/PutRecords fast
//! path (`aws::put_body`) is held against the general path: whatever it reads, the general
//! path reads the same; whatever answer it writes, serde writes the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_model::Operation;
use sluice_protocol::aws::{self, Encoding};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let operation = Operation::ALL[usize::from(selector) % Operation::ALL.len()];
    for encoding in [Encoding::Json, Encoding::Cbor] {
        if let Some(fast) = aws::put_body::decode(operation, encoding, body) {
            let general = aws::decode_request_general(operation, encoding, body);
            assert_eq!(general.as_ref(), Ok(&fast), "{operation}: the fast path read what the general one did not");
        }
        if let Ok(request) = aws::decode_request(operation, encoding, body) {
            let again = aws::encode_request(encoding, &request);
            let redecoded = aws::decode_request(operation, encoding, &again);
            assert_eq!(redecoded.as_ref(), Ok(&request), "{operation} request re-read");
        }
        if let Ok(response) = aws::decode_response(operation, encoding, body) {
            if let Some(written) = aws::put_body::encode_response(encoding, &response) {
                assert_eq!(written, aws::to_vec(encoding, &response), "{operation}: the hand-written answer");
            }
            let again = aws::encode_response(encoding, &response);
            let redecoded = aws::decode_response(operation, encoding, &again).expect("an encoded response decodes");
            assert_eq!(redecoded, response, "{operation} response re-read");
        }
        if operation == Operation::SubscribeToShard {
            if let Ok(event) = aws::decode_event(encoding, body) {
                let again = aws::encode_event(encoding, &event);
                assert_eq!(aws::decode_event(encoding, &again).expect("an encoded event decodes"), event);
            }
        }
        let _ = aws::decode_error(encoding, body);
    }
});

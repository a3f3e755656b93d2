//! The event-stream decoder (SubscribeToShard over HTTP) on arbitrary bytes: a message, "not
//! all there yet" or an error, never a panic. The first byte, if odd, has the target write
//! valid CRCs into the rest first, so that the header reader is reached; every message read
//! encodes again (as the server writes it) and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::eventstream;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= 16 {
        let prelude_crc = crc32fast::hash(&bytes[..8]);
        bytes[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
        let total = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if (16..=bytes.len()).contains(&total) {
            let crc = crc32fast::hash(&bytes[..total - 4]);
            bytes[total - 4..total].copy_from_slice(&crc.to_be_bytes());
        }
    }
    if let Ok(Some((message, used))) = eventstream::decode(&bytes) {
        assert!(used <= bytes.len());
        let headers: Vec<(&str, &str)> =
            message.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let again = eventstream::message(&headers, &message.payload);
        let (reread, reread_used) = eventstream::decode(&again).unwrap().expect("a whole message");
        assert_eq!((reread, reread_used), (message, again.len()));
    }
});

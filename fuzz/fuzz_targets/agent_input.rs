//! The agent's decoders of bytes it does not control: log lines (every LOGTOJSON format,
//! CSVTOJSON, SINGLELINE, ADDMETADATA, through the splitter in uneven chunks, with and without
//! a multi-line pattern), `agent.json`, the checkpoint file, and the file sink's frames. The
//! first byte picks the decoder. Nothing may panic; the splitter's pieces must cover the input
//! contiguously; decoded frames must re-encode to the bytes they came from.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use libfuzzer_sys::fuzz_target;
use sluice_agent::checkpoint::Checkpoints;
use sluice_agent::config::AgentConfig;
use sluice_agent::file_sink::{self, Frame};
use sluice_agent::json::Json;
use sluice_agent::process::{parse_option, Processor};
use sluice_agent::split::Splitter;

const OPTIONS: &[&str] = &[
    r#"{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG"}"#,
    r#"{"optionName":"LOGTOJSON","logFormat":"COMBINEDAPACHELOG"}"#,
    r#"{"optionName":"LOGTOJSON","logFormat":"APACHEERRORLOG"}"#,
    r#"{"optionName":"LOGTOJSON","logFormat":"SYSLOG"}"#,
    r#"{"optionName":"LOGTOJSON","logFormat":"RFC3339SYSLOG"}"#,
    r#"{"optionName":"LOGTOJSON","logFormat":"RFC5424SYSLOG"}"#,
    r#"{"optionName":"CSVTOJSON","customFieldNames":["a","b","c"],"delimiter":"\\t|,"}"#,
    r#"{"optionName":"SINGLELINE","parseOptions":["ESCAPE_NEW_LINE"]}"#,
    r#"{"optionName":"ADDMETADATA","timestamp":"true","metadata":{"k":[1,"v"]}}"#,
];

/// The processors, built once (compiling the log patterns is far slower than running them).
fn processors() -> &'static [Processor] {
    static PROCESSORS: OnceLock<Vec<Processor>> = OnceLock::new();
    PROCESSORS.get_or_init(|| {
        OPTIONS
            .iter()
            .map(|o| Processor::new(vec![parse_option(&Json::parse(o.as_bytes()).unwrap(), "o").unwrap()]))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 5 {
        0 => {
            let _ = AgentConfig::parse(rest);
        }
        1 => {
            let _ = Checkpoints::decode(rest, Path::new("fuzz"));
        }
        2 => {
            let (frames, valid, error) = file_sink::decode_frames(rest);
            assert!(valid <= rest.len());
            assert_eq!(error.is_none(), valid == rest.len());
            let mut encoded = Vec::new();
            for frame in &frames {
                if let Frame::Record { partition_key, data } = frame {
                    file_sink::encode_record(&mut encoded, partition_key.as_deref(), data);
                }
            }
            let records = frames.iter().filter(|f| matches!(f, Frame::Record { .. })).count();
            let (again, _, _) = file_sink::decode_frames(&encoded);
            assert_eq!(again.len(), records);
        }
        3 => {
            for processor in processors() {
                if let Ok(Some(output)) = processor.apply(rest, UNIX_EPOCH) {
                    assert!(output.ends_with(b"\n"));
                }
            }
        }
        _ => {
            let Some((&chunk, text)) = rest.split_first() else { return };
            let chunk = usize::from(chunk.max(1));
            let pattern = regex::Regex::new(r"\[").unwrap();
            for multi in [None, Some(&pattern)] {
                let mut splitter = Splitter::with_limit(0, multi, u64::from(chunk as u8 % 3), 64);
                let mut pieces = Vec::new();
                for part in text.chunks(chunk) {
                    splitter.push(part, &mut pieces);
                }
                splitter.flush(true, &mut pieces);
                let mut offset = 0;
                for piece in &pieces {
                    assert_eq!(piece.start, offset);
                    assert!(piece.end > piece.start);
                    if let Some(data) = &piece.data {
                        assert!(data.len() as u64 <= piece.end - piece.start);
                        assert!(data.len() <= 64);
                    }
                    offset = piece.end;
                }
                assert_eq!(offset, text.len() as u64);
            }
        }
    }
});

//! The AWS HTTP API of the real `sluiced`, below the SDKs: the CBOR encoding the Java SDKs
//! use (request and response round trip), and hostile input on the HTTP port. The SDK-level
//! suites (boto3, AWS CLI, JS SDK v3, HTTP/2) are in `tests/aws/`.

mod common;

use ciborium::Value as Cbor;
use common::Daemon;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn cbor(&self) -> Cbor {
        assert_eq!(self.header("content-type"), Some("application/x-amz-cbor-1.1"));
        ciborium::de::from_reader(&self.body[..]).expect("a CBOR body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// One HTTP/1.1 exchange on `stream` (kept alive for the next).
fn exchange(stream: &mut TcpStream, target: &str, content_type: &str, body: &[u8]) -> Answer {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: Kinesis_20131202.{target}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: head and body in two would wait out Nagle and delayed ACKs (40 ms each).
    stream.write_all(&[head.as_bytes(), body].concat()).unwrap();
    read_answer(stream)
}

fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("a header");
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.parse().unwrap())
        .expect("a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Answer { status, headers, body }
}

fn connect(daemon: &Daemon) -> TcpStream {
    let stream = TcpStream::connect(daemon.http_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

fn cbor(members: Vec<(&str, Cbor)>) -> Vec<u8> {
    let map = Cbor::Map(members.into_iter().map(|(key, value)| (Cbor::Text(key.into()), value)).collect());
    let mut out = Vec::new();
    ciborium::ser::into_writer(&map, &mut out).unwrap();
    out
}

fn member<'v>(value: &'v Cbor, name: &str) -> &'v Cbor {
    value
        .as_map()
        .and_then(|map| map.iter().find(|(key, _)| key.as_text() == Some(name)))
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no member {name} in {value:?}"))
}

const CBOR: &str = "application/x-amz-cbor-1.1";
const JSON: &str = "application/x-amz-json-1.1";

#[test]
fn cbor_requests_get_cbor_answers() {
    let daemon = Daemon::start("unlimited", 2);
    let mut http = connect(&daemon);
    let created = exchange(
        &mut http,
        "CreateStream",
        CBOR,
        &cbor(vec![("StreamName", Cbor::Text("c".into())), ("ShardCount", Cbor::Integer(2.into()))]),
    );
    assert_eq!(created.status, 200, "{:?}", created.cbor());
    assert!(created.header("x-amzn-RequestId").is_some());

    // A blob is a CBOR byte string: every byte value, no base64.
    let every_byte: Vec<u8> = (0..=255).collect();
    let put = exchange(
        &mut http,
        "PutRecord",
        CBOR,
        &cbor(vec![
            ("StreamName", Cbor::Text("c".into())),
            ("Data", Cbor::Bytes(every_byte.clone())),
            ("PartitionKey", Cbor::Text("k".into())),
        ]),
    );
    assert_eq!(put.status, 200);
    let put = put.cbor();
    let shard_id = member(&put, "ShardId").as_text().unwrap().to_string();
    let sequence_number = member(&put, "SequenceNumber").as_text().unwrap().to_string();

    // A timestamp is tag 1 around epoch milliseconds; one from 1970 starts at the trim horizon.
    let iterator = exchange(
        &mut http,
        "GetShardIterator",
        CBOR,
        &cbor(vec![
            ("StreamName", Cbor::Text("c".into())),
            ("ShardId", Cbor::Text(shard_id.clone())),
            ("ShardIteratorType", Cbor::Text("AT_TIMESTAMP".into())),
            ("Timestamp", Cbor::Tag(1, Box::new(Cbor::Integer(1_000.into())))),
        ]),
    );
    assert_eq!(iterator.status, 200);
    let iterator = member(&iterator.cbor(), "ShardIterator").as_text().unwrap().to_string();
    let records = exchange(&mut http, "GetRecords", CBOR, &cbor(vec![("ShardIterator", Cbor::Text(iterator))]));
    assert_eq!(records.status, 200);
    let records = records.cbor();
    let record = &member(&records, "Records").as_array().unwrap()[0];
    assert_eq!(member(record, "Data"), &Cbor::Bytes(every_byte));
    assert_eq!(member(record, "SequenceNumber").as_text(), Some(sequence_number.as_str()));
    let Cbor::Tag(1, arrival) = member(record, "ApproximateArrivalTimestamp") else {
        panic!("the arrival time is a tag-1 timestamp");
    };
    let arrival_ms = i64::try_from(arrival.as_integer().expect("epoch milliseconds")).unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now_ms - arrival_ms).abs() < 60_000, "{arrival_ms} is not epoch milliseconds of now ({now_ms})");
    assert_eq!(member(&records, "MillisBehindLatest"), &Cbor::Integer(0.into()));

    // Errors come back in CBOR too.
    let missing = exchange(&mut http, "DescribeStream", CBOR, &cbor(vec![("StreamName", Cbor::Text("nope".into()))]));
    assert_eq!(missing.status, 400);
    assert_eq!(member(&missing.cbor(), "__type").as_text(), Some("ResourceNotFoundException"));
    let wrong_type = exchange(&mut http, "CreateStream", CBOR, &cbor(vec![("StreamName", Cbor::Bytes(vec![1]))]));
    assert_eq!(member(&wrong_type.cbor(), "__type").as_text(), Some("SerializationException"));
    let garbage = exchange(&mut http, "ListStreams", CBOR, b"\xbf\x61");
    assert_eq!(member(&garbage.cbor(), "__type").as_text(), Some("SerializationException"));

    // The same connection speaks JSON to the next request: the encoding is per request.
    let json = exchange(&mut http, "ListStreams", JSON, b"{}");
    assert_eq!(json.json()["StreamNames"], serde_json::json!(["c"]));
}

#[test]
fn hostile_input_never_brings_the_daemon_down() {
    let daemon = Daemon::start("kinesis", 2);
    let mut seed = 0x9E3779B97F4A7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Random bodies behind valid headers, for every operation, in both encodings: always an
    // AWS-shaped answer in the request's encoding.
    let operations: Vec<&str> = sluice_model::Operation::ALL.iter().map(|operation| operation.name()).collect();
    let mut http = connect(&daemon);
    for round in 0..400 {
        let len = (next() % 300) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 4 == 0 {
            // Plausible JSON of the wrong shape: random members of random types.
            let value = match next() % 5 {
                0 => "1".to_string(),
                1 => "\"text\"".to_string(),
                2 => "[{}]".to_string(),
                3 => "{\"a\":{\"b\":null}}".to_string(),
                _ => "true".to_string(),
            };
            let names = ["StreamName", "ShardCount", "Records", "Data", "Tags", "StartingPosition", "Limit"];
            body = format!("{{\"{}\":{value}}}", names[(next() % names.len() as u64) as usize]).into_bytes();
        }
        let operation = operations[(next() % operations.len() as u64) as usize];
        let content_type = if round % 2 == 0 { JSON } else { CBOR };
        let answer = exchange(&mut http, operation, content_type, &body);
        // Mostly 400s; a document whose members the model ignores can be a valid call.
        assert!(answer.status == 200 || (400..500).contains(&answer.status), "{operation} {body:?}: {}", answer.status);
        if content_type == JSON {
            let _ = answer.json();
        } else {
            let _ = answer.cbor();
        }
    }
    // Raw garbage where HTTP belongs, a truncated request, an absurd Content-Length: the
    // connection closes or answers, the daemon lives.
    for round in 0..100 {
        let mut stream = connect(&daemon);
        let bytes: Vec<u8> = if round == 0 {
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec()
        } else if round == 1 {
            b"POST / HTTP/1.1\r\nX-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Length: 100\r\n\r\n{".to_vec()
        } else {
            (0..(next() % 512)).map(|_| next() as u8).collect()
        };
        let _ = stream.write_all(&bytes);
    }
    // A body larger than the limit is refused from its Content-Length, unread.
    let mut stream = connect(&daemon);
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\n\
              Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1073741824\r\n\r\n",
        )
        .unwrap();
    let answer = read_answer(&mut stream);
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["__type"], "SerializationException");

    let mut http = connect(&daemon);
    let created = exchange(&mut http, "CreateStream", JSON, br#"{"StreamName":"alive","ShardCount":1}"#);
    assert_eq!(created.status, 200);
    let put = exchange(&mut http, "PutRecord", JSON, br#"{"StreamName":"alive","Data":"b2s=","PartitionKey":"k"}"#);
    assert_eq!(put.json()["ShardId"], "shardId-000000000000");
}

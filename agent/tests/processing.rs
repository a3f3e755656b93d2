//! Each processing option against sample inputs, with the exact JSON expected.
//!
//! Samples marked "AWS docs" are the before/after examples of "Use the Agent to Pre-process
//! Data" in the Kinesis Data Streams developer guide (`writing-with-agents.md` in
//! `awsdocs/amazon-kinesis-data-streams-developer-guide`); the others follow the AWS agent's
//! converters (`awslabs/amazon-kinesis-agent`, `processing/`), field names and all.

use std::time::{Duration, UNIX_EPOCH};

use sluice_agent::json::Json;
use sluice_agent::process::{parse_option, Processor};

/// Runs `input` through the options (a JSON list) and compares with `expected` (`None`: the
/// record is skipped).
fn check(options: &str, input: &str, expected: Option<&str>) {
    let Json::Array(list) = Json::parse(options.as_bytes()).expect("options are JSON") else {
        panic!("options must be a list");
    };
    let parsed = list
        .iter()
        .enumerate()
        .map(|(i, o)| parse_option(o, &format!("dataProcessingOptions[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{options}: {e}"));
    // 2026-12-01T12:00:00.123Z, for ADDMETADATA's timestamp.
    let now = UNIX_EPOCH + Duration::from_millis(1_796_126_400_123);
    let output =
        Processor::new(parsed).apply(input.as_bytes(), now).unwrap_or_else(|e| panic!("{options} on {input:?}: {e}"));
    let output = output.map(|o| String::from_utf8(o).expect("UTF-8 output"));
    assert_eq!(output.as_deref(), expected, "{options} on {input:?}");
}

const COMMON_LINE: &str =
    "64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] \"GET /mailman/listinfo/hsdivision HTTP/1.1\" 200 6291\n";

#[test]
fn logtojson_common_apache_log() {
    // AWS docs: "LOGTOJSON Configuration".
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG"}]"#,
        COMMON_LINE,
        Some("{\"host\":\"64.242.88.10\",\"ident\":null,\"authuser\":null,\"datetime\":\"07/Mar/2004:16:10:02 -0800\",\"request\":\"GET /mailman/listinfo/hsdivision HTTP/1.1\",\"response\":\"200\",\"bytes\":\"6291\"}\n"),
    );
    // AWS docs: "LOGTOJSON Configuration With Custom Fields".
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG","customFieldNames":["f1","f2","f3","f4","f5","f6","f7"]}]"#,
        COMMON_LINE,
        Some("{\"f1\":\"64.242.88.10\",\"f2\":null,\"f3\":null,\"f4\":\"07/Mar/2004:16:10:02 -0800\",\"f5\":\"GET /mailman/listinfo/hsdivision HTTP/1.1\",\"f6\":\"200\",\"f7\":\"6291\"}\n"),
    );
    // AWS docs: "LOGTOJSON Configuration with Match Pattern" (the bytes field omitted).
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG","matchPattern":"^([\\d.]+) (\\S+) (\\S+) \\[([\\w:/]+\\s[+\\-]\\d{4})\\] \"(.+?)\" (\\d{3})","customFieldNames":["host","ident","authuser","datetime","request","response"]}]"#,
        "123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] \"GET /java/javaResources.html HTTP/1.0\" 200\n",
        Some("{\"host\":\"123.45.67.89\",\"ident\":null,\"authuser\":null,\"datetime\":\"27/Oct/2000:09:27:09 -0400\",\"request\":\"GET /java/javaResources.html HTTP/1.0\",\"response\":\"200\"}\n"),
    );
    // A user name, a `-` byte count, and text after the entry (the format ends in `.*`).
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG"}]"#,
        "example.com - frank [10/Oct/2000:13:55:36 -0700] \"GET /a\\\"b HTTP/1.0\" 304 - extra\n",
        None,
    );
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG"}]"#,
        "example.com - frank [10/Oct/2000:13:55:36 -0700] \"GET /a\\b HTTP/1.0\" 304 - extra\n",
        Some("{\"host\":\"example.com\",\"ident\":null,\"authuser\":\"frank\",\"datetime\":\"10/Oct/2000:13:55:36 -0700\",\"request\":\"GET /a\\\\b HTTP/1.0\",\"response\":\"304\",\"bytes\":null}\n"),
    );
    // Not an access log line: skipped, as the AWS agent skips records LOGTOJSON cannot parse.
    check(r#"[{"optionName":"LOGTOJSON","logFormat":"COMMONAPACHELOG"}]"#, "this is not an access log line\n", None);
}

#[test]
fn logtojson_combined_apache_log() {
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"COMBINEDAPACHELOG"}]"#,
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n",
        Some("{\"host\":\"127.0.0.1\",\"ident\":null,\"authuser\":\"frank\",\"datetime\":\"10/Oct/2000:13:55:36 -0700\",\"request\":\"GET /apache_pb.gif HTTP/1.0\",\"response\":\"200\",\"bytes\":\"2326\",\"referer\":\"http://www.example.com/start.html\",\"agent\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\"}\n"),
    );
    // The referer and agent are required: a common-format line does not match.
    check(r#"[{"optionName":"LOGTOJSON","logFormat":"COMBINEDAPACHELOG"}]"#, COMMON_LINE, None);
}

#[test]
fn logtojson_apache_error_log() {
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"APACHEERRORLOG"}]"#,
        "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico\n",
        Some("{\"timestamp\":\"Fri Sep 09 10:42:29.902022 2011\",\"module\":\"core\",\"severity\":\"error\",\"processid\":\"35708\",\"threadid\":\"4328636416\",\"client\":\"72.15.99.187\",\"message\":\"File does not exist: /usr/local/apache2/htdocs/favicon.ico\"}\n"),
    );
    // No module, no thread id: those fields are null.
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"APACHEERRORLOG"}]"#,
        "[Wed Oct 11 14:32:52 2000] [error] [pid 123] [client 127.0.0.1:5000] client denied by server configuration\n",
        Some("{\"timestamp\":\"Wed Oct 11 14:32:52 2000\",\"module\":null,\"severity\":\"error\",\"processid\":\"123\",\"threadid\":null,\"client\":\"127.0.0.1:5000\",\"message\":\"client denied by server configuration\"}\n"),
    );
}

#[test]
fn logtojson_syslog_formats() {
    for format in ["SYSLOG", "RFC3164SYSLOG"] {
        check(
            &format!(r#"[{{"optionName":"LOGTOJSON","logFormat":"{format}"}}]"#),
            "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\n",
            Some("{\"timestamp\":\"Mar 12 12:00:08\",\"hostname\":\"server2\",\"program\":\"rcd\",\"processid\":\"308\",\"message\":\"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\"}\n"),
        );
    }
    // No pid: null. Syslog keeps a `-` as it is (only the Apache formats turn it into null).
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"SYSLOG"}]"#,
        "Dec  1 08:15:00 web-1 kernel: - eth0 link up\n",
        Some("{\"timestamp\":\"Dec  1 08:15:00\",\"hostname\":\"web-1\",\"program\":\"kernel\",\"processid\":null,\"message\":\"- eth0 link up\"}\n"),
    );
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"RFC3339SYSLOG"}]"#,
        "2016-04-01T12:00:00.123+02:00 host-a sshd[12]: Accepted publickey for alice\n",
        Some("{\"timestamp\":\"2016-04-01T12:00:00.123+02:00\",\"hostname\":\"host-a\",\"program\":\"sshd\",\"processid\":\"12\",\"message\":\"Accepted publickey for alice\"}\n"),
    );
    // RFC 5424 (a Sluice extension), the examples of RFC 5424 section 6.5.
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"RFC5424SYSLOG"}]"#,
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8\n",
        Some("{\"priority\":\"34\",\"version\":\"1\",\"timestamp\":\"2003-10-11T22:14:15.003Z\",\"hostname\":\"mymachine.example.com\",\"program\":\"su\",\"processid\":null,\"messageid\":\"ID47\",\"structureddata\":null,\"message\":\"'su root' failed for lonvick on /dev/pts/8\"}\n"),
    );
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"RFC5424SYSLOG"}]"#,
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry...\n",
        Some("{\"priority\":\"165\",\"version\":\"1\",\"timestamp\":\"2003-10-11T22:14:15.003Z\",\"hostname\":\"mymachine.example.com\",\"program\":\"evntslog\",\"processid\":null,\"messageid\":\"ID47\",\"structureddata\":\"[exampleSDID@32473 iut=\\\"3\\\" eventSource=\\\"Application\\\" eventID=\\\"1011\\\"]\",\"message\":\"An application event log entry...\"}\n"),
    );
    check(r#"[{"optionName":"LOGTOJSON","logFormat":"SYSLOG"}]"#, "not syslog\n", None);
}

#[test]
fn csvtojson() {
    // The AWS docs' example record "v1, v2": the AWS agent does not trim, so the space stays.
    check(
        r#"[{"optionName":"CSVTOJSON","customFieldNames":["f1","f2"]}]"#,
        "v1, v2\n",
        Some("{\"f1\":\"v1\",\"f2\":\" v2\"}\n"),
    );
    // Missing columns are null, extra columns dropped; the delimiter is a regular expression.
    check(
        r#"[{"optionName":"CSVTOJSON","customFieldNames":["a","b","c"],"delimiter":"\\t"}]"#,
        "1\t2\n",
        Some("{\"a\":\"1\",\"b\":\"2\",\"c\":null}\n"),
    );
    check(
        r#"[{"optionName":"CSVTOJSON","customFieldNames":["a"],"delimiter":"\\|"}]"#,
        "x|y|z\n",
        Some("{\"a\":\"x\"}\n"),
    );
    // Trailing empty columns vanish (Java's split), so they are null, not "".
    check(
        r#"[{"optionName":"CSVTOJSON","customFieldNames":["a","b","c"]}]"#,
        "1,,\n",
        Some("{\"a\":\"1\",\"b\":null,\"c\":null}\n"),
    );
    check(
        r#"[{"optionName":"CSVTOJSON","customFieldNames":["a","b"]}]"#,
        "\"q\",back\\slash\n",
        Some("{\"a\":\"\\\"q\\\"\",\"b\":\"back\\\\slash\"}\n"),
    );
}

#[test]
fn singleline() {
    check(
        r#"[{"optionName":"SINGLELINE"}]"#,
        "java.lang.Exception: boom\n    at A.b(A.java:1)\n    at C.d(C.java:2)\n",
        Some("java.lang.Exception: boom    at A.b(A.java:1)    at C.d(C.java:2)\n".replace("    ", "").as_str()),
    );
    check(r#"[{"optionName":"SINGLELINE","parseOptions":["NO_TRIM"]}]"#, "a \n  b\n", Some("a   b\n"));
    check(r#"[{"optionName":"SINGLELINE","parseOptions":["ESCAPE_NEW_LINE"]}]"#, "a\n  b\n\n", Some("a\\nb\n"));
}

#[test]
fn addmetadata() {
    check(
        r#"[{"optionName":"ADDMETADATA","timestamp":"true","metadata":{"ClusterName":"MyCluster","Application":"WebApp","tags":[1,2]}}]"#,
        "hello \"world\"\n",
        Some("{\"ts\":\"2026-12-01T12:00:00.123Z\",\"metadata\":{\"ClusterName\":\"MyCluster\",\"Application\":\"WebApp\",\"tags\":[1,2]},\"data\":\"hello \\\"world\\\"\"}\n"),
    );
    check(
        r#"[{"optionName":"ADDMETADATA","metadata":"env=prod"}]"#,
        "x\n",
        Some("{\"metadata\":\"env=prod\",\"data\":\"x\"}\n"),
    );
    check(r#"[{"optionName":"ADDMETADATA"}]"#, "x", Some("{\"metadata\":null,\"data\":\"x\"}\n"));
}

#[test]
fn options_chain_in_order() {
    // AWS docs: "Convert Multi-Line Records": SINGLELINE, then CSVTOJSON on tabs.
    check(
        r#"[{"optionName":"SINGLELINE"},{"optionName":"CSVTOJSON","customFieldNames":["field1","field2","field3"],"delimiter":"\\t"}]"#,
        "[SEQUENCE=1]\tv1\n\tv2\n",
        Some("{\"field1\":\"[SEQUENCE=1]\",\"field2\":\"v1v2\",\"field3\":null}\n"),
    );
    // LOGTOJSON then ADDMETADATA: the JSON becomes the data string.
    check(
        r#"[{"optionName":"LOGTOJSON","logFormat":"SYSLOG"},{"optionName":"ADDMETADATA","metadata":{"k":"v"}}]"#,
        "Mar  1 00:00:01 h p: m\n",
        Some("{\"metadata\":{\"k\":\"v\"},\"data\":\"{\\\"timestamp\\\":\\\"Mar  1 00:00:01\\\",\\\"hostname\\\":\\\"h\\\",\\\"program\\\":\\\"p\\\",\\\"processid\\\":null,\\\"message\\\":\\\"m\\\"}\"}\n"),
    );
    // A skip ends the chain.
    check(r#"[{"optionName":"LOGTOJSON","logFormat":"SYSLOG"},{"optionName":"ADDMETADATA"}]"#, "garbage\n", None);
}

#[test]
fn invalid_options_are_refused() {
    for options in [
        r#"{"optionName":"ADDEC2METADATA"}"#,
        r#"{"optionName":"ADDBRACKETS"}"#,
        r#"{"optionName":"NOPE"}"#,
        r#"{"optionName":"CSVTOJSON"}"#,
        r#"{"optionName":"LOGTOJSON"}"#,
        r#"{"optionName":"LOGTOJSON","logFormat":"W3C"}"#,
        r#"{"optionName":"LOGTOJSON","logFormat":"SYSLOG","matchPattern":"(a)"}"#,
        r#"{"optionName":"LOGTOJSON","logFormat":"SYSLOG","matchPattern":"(a)(b)","customFieldNames":["a"]}"#,
        r#"{"optionName":"LOGTOJSON","logFormat":"SYSLOG","customFieldNames":["a"]}"#,
        r#"{"optionName":"LOGTOJSON","logFormat":"SYSLOG","jsonFormat":"PRETTYPRINT"}"#,
        r#"{"optionName":"SINGLELINE","parseOptions":["SQUASH"]}"#,
        r#"{"optionName":"CSVTOJSON","customFieldNames":["a"],"delimiter":"("}"#,
        r#"{"optionName":"CSVTOJSON","customfieldnames":["a"]}"#,
        r#""SINGLELINE""#,
    ] {
        let value = Json::parse(options.as_bytes()).unwrap();
        assert!(parse_option(&value, "o").is_err(), "{options} was accepted");
    }
}

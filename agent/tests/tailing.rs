//! Tailing scenarios on real files with the real agent process (file sink): each kind of
//! rotation, files that disappear and reappear, several files oldest first, inode reuse,
//! partial lines, multi-line records, header lines, truncation, initial positions, restarts.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use common::{append, sessions, stop, wait_for, Scene};

fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

fn expected(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

#[test]
fn rename_rotation_loses_nothing_and_reads_the_old_file_to_its_end() {
    let scene = Scene::new("app.log*", "");
    fs::write(scene.log("app.log"), "").unwrap();
    let agent = scene.start(&[]);
    // Let the agent find the (empty) file at its end before writing.
    std::thread::sleep(Duration::from_millis(300));
    append(&scene.log("app.log"), &lines("a", 0..100));
    scene.wait_records(100);
    // Rotate: rename, the writer still appends to the old file for a while, then the new one.
    let mut old = fs::OpenOptions::new().append(true).open(scene.log("app.log")).unwrap();
    fs::rename(scene.log("app.log"), scene.log("app.log.1")).unwrap();
    use std::io::Write;
    old.write_all(lines("a", 100..150).as_bytes()).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..100));
    let records = scene.wait_records(250);
    stop(agent);
    let mut a: Vec<String> = records.iter().filter(|r| r.starts_with('a')).cloned().collect();
    let b: Vec<String> = records.iter().filter(|r| r.starts_with('b')).cloned().collect();
    assert_eq!(a, expected("a", 0..150), "the old file, in order, once");
    assert_eq!(b, expected("b", 0..100), "the new file, in order, once");
    a.extend(b);
    assert_eq!(scene.records().len(), 250);
}

#[test]
fn rename_out_of_the_pattern_is_still_read_to_the_end() {
    // The pattern names one file; the rotated name does not match it.
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("a", 0..10));
    let agent = scene.start(&[]);
    scene.wait_records(10);
    let mut old = fs::OpenOptions::new().append(true).open(scene.log("app.log")).unwrap();
    fs::rename(scene.log("app.log"), scene.log("app.log.1")).unwrap();
    use std::io::Write;
    old.write_all(lines("a", 10..20).as_bytes()).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..5));
    let records = scene.wait_records(25);
    stop(agent);
    assert_eq!(records[..20], expected("a", 0..20)[..]);
    assert_eq!(records[20..], expected("b", 0..5)[..]);
}

#[test]
fn copytruncate_rotation_continues_in_the_copy() {
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("a", 0..100));
    let agent = scene.start(&[]);
    scene.wait_records(100);
    // More lines the agent may or may not have read before the rotation.
    append(&scene.log("app.log"), &lines("a", 100..200));
    fs::copy(scene.log("app.log"), scene.log("app.log.1")).unwrap();
    fs::OpenOptions::new().write(true).open(scene.log("app.log")).unwrap().set_len(0).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..50));
    let records = scene.wait_records(250);
    std::thread::sleep(Duration::from_millis(300));
    stop(agent);
    let records_now = scene.records();
    assert_eq!(records_now.len(), 250, "no duplicates: {records_now:?}");
    let a: Vec<String> = records.iter().filter(|r| r.starts_with('a')).cloned().collect();
    let b: Vec<String> = records.iter().filter(|r| r.starts_with('b')).cloned().collect();
    assert_eq!(a, expected("a", 0..200));
    assert_eq!(b, expected("b", 0..50));
}

#[test]
fn a_copy_found_before_it_is_filled_still_continues_the_original() {
    // `copytruncate` (and `cp`) create the copy empty and then fill it: the agent can list it
    // empty. Read as a new file, it claimed the copy, so the original, once truncated, found
    // no copy to continue in, and the copy was shipped from its start: every line twice.
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE", "maxBufferSizeRecords": 1"#);
    append(&scene.log("app.log"), &lines("a", 0..100));
    let agent = scene.start(&[]);
    scene.wait_records(100);
    let copy = fs::File::create(scene.log("app.log.1")).unwrap();
    // Two new files, each waited for: the agent found the second in a listing that started
    // after the first was shipped, so that listing saw the empty copy.
    for (i, marker) in ["m0", "m1"].into_iter().enumerate() {
        append(&scene.log(&format!("app.log.{marker}")), &format!("{marker}\n"));
        scene.wait_records(101 + i);
    }
    use std::io::Write;
    (&copy).write_all(&fs::read(scene.log("app.log")).unwrap()).unwrap();
    fs::OpenOptions::new().write(true).open(scene.log("app.log")).unwrap().set_len(0).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..50));
    wait_for("the new file's last line", || scene.records().contains(&"b49\n".to_string()).then_some(()));
    stop(agent);
    let records = scene.records();
    let of = |prefix: char| records.iter().filter(|r| r.starts_with(prefix)).cloned().collect::<Vec<_>>();
    assert_eq!(of('a'), expected("a", 0..100), "the copy continues the original: no line twice");
    assert_eq!(of('b'), expected("b", 0..50));
    assert_eq!(records.len(), 152, "{records:?}");
}

#[test]
fn a_truncated_file_waits_for_a_copy_listed_half_written() {
    // The agent can list a copy half written and find its original truncated in the same scan
    // (the writer finished the copy and truncated in between). Here the copy is finished only
    // after the truncation, which the agent sees the same way. The short copy was read as a new
    // file: every line in it twice.
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE", "maxBufferSizeRecords": 1"#);
    // Longer than the fingerprint, as logs are, so the half copy is too.
    let a: Vec<String> = (0..100).map(|i| format!("a{i} {}\n", "x".repeat(40))).collect();
    let text = a.concat();
    append(&scene.log("app.log"), &text);
    let agent = scene.start(&[]);
    scene.wait_records(100);
    let half = text.len() / 2;
    fs::write(scene.log("app.log.1"), &text[..half]).unwrap();
    fs::OpenOptions::new().write(true).open(scene.log("app.log")).unwrap().set_len(0).unwrap();
    // The second marker's listing saw the short copy and the truncated original.
    for (i, marker) in ["m0", "m1"].into_iter().enumerate() {
        append(&scene.log(&format!("app.log.{marker}")), &format!("{marker}\n"));
        scene.wait_records(101 + i);
    }
    append(&scene.log("app.log.1"), &text[half..]);
    append(&scene.log("app.log"), &lines("b", 0..50));
    wait_for("the new file's last line", || scene.records().contains(&"b49\n".to_string()).then_some(()));
    stop(agent);
    let records = scene.records();
    let of = |prefix: char| records.iter().filter(|r| r.starts_with(prefix)).cloned().collect::<Vec<_>>();
    assert_eq!(of('a'), a, "the copy continues the original: no line twice");
    assert_eq!(of('b'), expected("b", 0..50));
    assert_eq!(records.len(), 152, "{records:?}");
}

#[test]
fn a_closed_old_rotation_missing_from_one_listing_is_not_read_again() {
    // An old rotation read to its end is closed (dormant). A rotation renaming files while the
    // agent lists the directory can hide it from one listing (the name read, then renamed
    // before it is looked up); it was then forgotten, and found again as a new file under its
    // next name, shipped a second time from its start. Here it leaves the directory and comes
    // back under the next rotation's name.
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE", "maxBufferSizeRecords": 1"#);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    append(&scene.log("app.log.1"), &lines("a", 0..50));
    fs::OpenOptions::new().append(true).open(scene.log("app.log.1")).unwrap().set_modified(hour_ago).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..10));
    scene.once();
    // Restarted, the agent keeps app.log.1 closed: read to its end, superseded. Each new
    // file is found by a listing that started after the one before it was shipped.
    let agent = scene.start(&[]);
    let marker = |name: &str, count: usize| {
        append(&scene.log(name), &format!("{name}\n"));
        scene.wait_records(count);
    };
    marker("app.log.m0", 61);
    let parked = scene.dir.path().join("parked");
    fs::rename(scene.log("app.log.1"), &parked).unwrap();
    // The second marker's listing saw app.log.1 gone.
    marker("app.log.m1", 62);
    marker("app.log.m2", 63);
    fs::rename(&parked, scene.log("app.log.2")).unwrap();
    marker("app.log.m3", 64);
    marker("app.log.m4", 65);
    stop(agent);
    let records = scene.records();
    let mut want = expected("a", 0..50);
    want.extend(expected("b", 0..10));
    assert_eq!(records[..60], want[..]);
    assert_eq!(records.len(), 65, "app.log.1 came back and was read again: {:?}", &records[60..]);
}

#[test]
fn copytruncate_while_the_agent_is_down_resumes_in_the_copy() {
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("a", 0..50));
    scene.once();
    append(&scene.log("app.log"), &lines("a", 50..80));
    fs::copy(scene.log("app.log"), scene.log("app.log.1")).unwrap();
    fs::OpenOptions::new().write(true).open(scene.log("app.log")).unwrap().set_len(0).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..20));
    scene.once();
    let records = scene.records();
    assert_eq!(records[..80], expected("a", 0..80)[..]);
    assert_eq!(records[80..], expected("b", 0..20)[..]);
}

#[test]
fn a_file_that_disappears_and_reappears_resumes_where_it_was() {
    let scene = Scene::new("*.log", r#""initialPosition": "START_OF_FILE""#);
    let parked = scene.dir.path().join("parked.log");
    append(&scene.log("app.log"), &lines("a", 0..30));
    let agent = scene.start(&[]);
    scene.wait_records(30);
    // Moved away (out of the directory) for longer than a rotated file is kept open
    // (ROTATED_FILE_IDLE), so the agent retires it, and back with more lines: it resumes from
    // the remembered offset, no line twice.
    fs::rename(scene.log("app.log"), &parked).unwrap();
    append(&parked, &lines("a", 30..40));
    std::thread::sleep(sluice_agent::limits::ROTATED_FILE_IDLE + Duration::from_secs(1));
    fs::rename(&parked, scene.log("app.log")).unwrap();
    append(&scene.log("app.log"), &lines("a", 40..50));
    scene.wait_records(50);
    // Deleted, and a new file of the same name: read from its start.
    fs::remove_file(scene.log("app.log")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&scene.log("app.log"), &lines("c", 0..5));
    let records = scene.wait_records(55);
    std::thread::sleep(Duration::from_millis(300));
    let stderr = stop(agent);
    assert!(stderr.contains("retired"), "the moved file was retired: {stderr}");
    assert_eq!(scene.records().len(), 55, "{records:?}");
    assert_eq!(records[..50], expected("a", 0..50)[..]);
    assert_eq!(records[50..], expected("c", 0..5)[..]);
}

#[test]
fn several_files_are_read_oldest_first() {
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE""#);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for (name, prefix, age) in [("app.log", "c", 0), ("app.log.1", "b", 1), ("app.log.2", "a", 2)] {
        append(&scene.log(name), &lines(prefix, 0..20));
        let file = fs::OpenOptions::new().append(true).open(scene.log(name)).unwrap();
        file.set_modified(hour_ago - Duration::from_secs(60 * age)).unwrap();
    }
    // Compressed rotations are never read.
    append(&scene.log("app.log.3.gz"), "not text\n");
    scene.once();
    let mut want = expected("a", 0..20);
    want.extend(expected("b", 0..20));
    want.extend(expected("c", 0..20));
    assert_eq!(scene.records(), want);
}

#[test]
fn a_reused_inode_with_new_content_is_read_from_its_start() {
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("old", 0..100));
    scene.once();
    // Same inode, new content longer than the checkpoint offset (an inode reused by a new
    // file looks the same to the agent): the fingerprint tells them apart.
    fs::write(scene.log("app.log"), lines("new", 0..200)).unwrap();
    scene.once();
    let records = scene.records();
    assert_eq!(records[..100], expected("old", 0..100)[..]);
    assert_eq!(records[100..], expected("new", 0..200)[..]);
}

#[test]
fn partial_lines_wait_for_their_end_and_are_flushed_at_rotation() {
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), "one\ntw");
    let agent = scene.start(&[]);
    scene.wait_records(1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(scene.records(), ["one\n"], "an unterminated line is held");
    append(&scene.log("app.log"), "o\nthr");
    scene.wait_records(2);
    // Rotated away with an unterminated last line: sent once the old file is idle.
    fs::rename(scene.log("app.log"), scene.log("app.log.old")).unwrap();
    append(&scene.log("app.log"), "four\n");
    let records = scene.wait_records(4);
    stop(agent);
    assert_eq!(records, ["one\n", "two\n", "four\n", "thr"]);
}

#[test]
fn multi_line_records_header_lines_and_truncation() {
    let scene = Scene::new(
        "app.log",
        r#""initialPosition": "START_OF_FILE", "skipHeaderLines": 2, "multiLineStartPattern": "\\[SEQUENCE=", "truncatedRecordTerminator": "<cut>\n""#,
    );
    let long = format!("[SEQUENCE=3] {}\n", "z".repeat(2 * 1024 * 1024));
    let text =
        format!("header 1\nheader 2\n[SEQUENCE=1] a\n  more a\n[SEQUENCE=2] b\n{long}[SEQUENCE=4] d\n  more d\n");
    append(&scene.log("app.log"), &text);
    scene.once();
    let records = scene.records();
    assert_eq!(records.len(), 4, "{:?}", records.iter().map(|r| r.len()).collect::<Vec<_>>());
    assert_eq!(records[0], "[SEQUENCE=1] a\n  more a\n");
    assert_eq!(records[1], "[SEQUENCE=2] b\n");
    // A record over the 1 MiB Kinesis limit (less its partition key) ends with the terminator.
    assert!(records[2].starts_with("[SEQUENCE=3] zzz") && records[2].ends_with("zzz<cut>\n"));
    assert!(records[2].len() < 1024 * 1024 && records[2].len() > 1024 * 1024 - 64, "{}", records[2].len());
    assert_eq!(records[3], "[SEQUENCE=4] d\n  more d\n");
}

#[test]
fn end_of_file_skips_what_exists_but_not_a_line_being_written() {
    let scene = Scene::new("app.log", "");
    append(&scene.log("app.log"), "old 1\nold 2\nhalf");
    let agent = scene.start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    append(&scene.log("app.log"), " done\nnew\n");
    let records = scene.wait_records(2);
    stop(agent);
    assert_eq!(records, ["half done\n", "new\n"]);
}

#[test]
fn a_restart_resumes_from_the_checkpoint_without_duplicates() {
    let scene = Scene::new(
        "app.log",
        r#""initialPosition": "START_OF_FILE", "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}]"#,
    );
    append(&scene.log("app.log"), "Mar  1 00:00:01 h p[1]: first\nnot syslog\nMar  1 00:00:02 h p: second\n");
    let agent = scene.start(&[]);
    scene.wait_records(2);
    stop(agent);
    append(&scene.log("app.log"), "Mar  1 00:00:03 h p: third\n");
    let agent = scene.start(&[]);
    scene.wait_records(3);
    stop(agent);
    let runs = sessions(&scene.sink_file());
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].len(), 2, "the unparsable line is skipped");
    assert_eq!(runs[1], ["{\"timestamp\":\"Mar  1 00:00:03\",\"hostname\":\"h\",\"program\":\"p\",\"processid\":null,\"message\":\"third\"}\n"]);
}

#[test]
fn status_subcommand_and_sigusr1() {
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("a", 0..10));
    let agent = scene.start(&[]);
    scene.wait_records(10);
    let status = wait_for("a status file showing 10 records and no lag", || {
        let output = std::process::Command::new(common::agent_bin())
            .args(["status", "--config"])
            .arg(&scene.config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && stdout.contains("records sent 10") && stdout.contains("lag 0 bytes"))
            .then_some(stdout)
    });
    assert!(status.contains("is running"), "{status}");
    assert!(status.contains("lag 0 bytes"), "{status}");
    common::signal(&agent, libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    let stderr = stop(agent);
    assert!(stderr.contains("sluice-agent status: flow kinesis:s:"), "{stderr}");
    // Once stopped, `status` says so (LSB exit code 3).
    let output = std::process::Command::new(common::agent_bin())
        .args(["status", "--config"])
        .arg(&scene.config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn without_inotify_polling_follows_rotations() {
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE", "minTimeBetweenFilePollsMillis": 50"#);
    append(&scene.log("app.log"), &lines("a", 0..10));
    let agent = scene.start(&["--no-inotify"]);
    scene.wait_records(10);
    fs::rename(scene.log("app.log"), scene.log("app.log.1")).unwrap();
    append(&scene.log("app.log"), &lines("b", 0..10));
    let records = scene.wait_records(20);
    let stderr = stop(agent);
    assert!(stderr.contains("inotify disabled"), "{stderr}");
    assert_eq!(records[..10], expected("a", 0..10)[..]);
    assert_eq!(records[10..], expected("b", 0..10)[..]);
}

#[test]
fn more_old_rotations_than_open_descriptors_are_all_shipped_in_order() {
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE""#);
    let count = sluice_agent::limits::OPEN_FILES_PER_FLOW_MAX + 44;
    let start = SystemTime::now() - Duration::from_secs(86_400);
    let mut want = Vec::new();
    for i in 0..count {
        let name = if i == count - 1 { "app.log".to_string() } else { format!("app.log.{}", count - 1 - i) };
        append(&scene.log(&name), &lines(&format!("f{i}-"), 0..3));
        let file = fs::OpenOptions::new().append(true).open(scene.log(&name)).unwrap();
        file.set_modified(start + Duration::from_secs(i as u64)).unwrap();
        want.extend(expected(&format!("f{i}-"), 0..3));
    }
    scene.once();
    assert_eq!(scene.records(), want);
    // A second run finds nothing new: the old rotations are remembered by the checkpoint.
    scene.once();
    assert_eq!(scene.records().len(), want.len());
}

/// One HTTP/1.0 GET to the agent's metrics port: the status code and body.
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line");
    (status, text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// A family's value in one scrape (its one flow's series).
fn scraped(addr: std::net::SocketAddr, family: &str) -> Option<u64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find(|line| line.strip_prefix(family).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[test]
fn the_metrics_port_counts_what_the_agent_read_and_shipped() {
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    append(&scene.log("app.log"), &lines("a", 0..100));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sluice_testkit::free_port()));
    let agent = scene.start(&["--metrics-listen", &addr.to_string()]);
    scene.wait_records(100);
    let counted = |family: &str, expected: u64| {
        wait_for(&format!("{family} = {expected}"), || {
            (std::net::TcpStream::connect(addr).is_ok() && scraped(addr, family) == Some(expected)).then_some(())
        })
    };
    let file_bytes = fs::metadata(scene.log("app.log")).unwrap().len();
    counted("sluice_agent_lines_read_total", 100);
    counted("sluice_agent_records_sent_total", 100);
    counted("sluice_agent_read_bytes_total", file_bytes);
    counted("sluice_agent_lag_bytes", 0);
    counted("sluice_agent_records_in_flight", 0);
    counted("sluice_agent_files_tailed", 1);
    assert_eq!(scraped(addr, "sluice_agent_records_failed_total"), Some(0));
    // More lines move the counters on; the sent bytes are the lines' bytes.
    append(&scene.log("app.log"), &lines("b", 0..50));
    scene.wait_records(150);
    counted("sluice_agent_records_sent_total", 150);
    counted("sluice_agent_lines_read_total", 150);
    let data_bytes: usize = scene.records().iter().map(String::len).sum();
    counted("sluice_agent_sent_bytes_total", data_bytes as u64);
    assert_eq!(get(addr, "/health/live").0, 200);
    assert_eq!(get(addr, "/nothing").0, 404);
    stop(agent);
}

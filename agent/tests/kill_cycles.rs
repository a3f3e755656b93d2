//! The crash test: a writer appends numbered lines at a steady rate while rotating its file
//! both ways every 1.5 s (rename-and-create, copy-and-truncate, alternately, deleting old
//! rotations), and the agent (file sink) is SIGKILLed and restarted again and again. An
//! independent checker then reads the sink file and the writer's numbering: every line
//! written arrived; within each agent run lines of one file arrived in order and at most once;
//! and each restart re-sent at most a window of records.
//!
//! `SLUICE_AGENT_KILL_SECONDS` (default 12) sets how long the writer runs.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{sessions, signal, writer_bin, Scene};
use rand::Rng;

/// The window of records in flight the agent runs with: each restart may re-send at most this
/// many records (small, so the bound is tight enough to be tested).
const WINDOW: usize = 500;

#[test]
fn every_line_arrives_across_kills_and_rotations() {
    let seconds: u64 = std::env::var("SLUICE_AGENT_KILL_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let scene = Scene::new("app.log*", r#""initialPosition": "START_OF_FILE", "maxBufferSizeRecords": 100"#);
    let rate = 2000;
    let writer = Command::new(writer_bin())
        .arg(&scene.logs)
        .args(["app.log", &rate.to_string(), "1500", &(seconds * 1000).to_string(), "4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");

    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let agent = scene.start(&["--window-records", &WINDOW.to_string()]);
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        signal(&agent, libc::SIGKILL);
        let _ = agent.wait_with_output();
        kills += 1;
        // Down for a moment, as a crashed service is before systemd restarts it.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
    }
    let written = writer.wait_with_output().expect("the writer finishes");
    assert!(written.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&written.stdout).expect("writer summary");
    let lines = summary["lines"].as_u64().unwrap();
    let generations = summary["generations"].as_u64().unwrap();

    // The last run ships the rest and exits.
    scene.once();

    // The checker: parse `g=GEN s=SEQ` from every record of every session.
    let runs = sessions(&scene.sink_file());
    let mut count: BTreeMap<u64, u32> = BTreeMap::new();
    let mut duplicates_per_restart = Vec::new();
    for (run, records) in runs.iter().enumerate() {
        let mut last_in_generation: BTreeMap<u64, u64> = BTreeMap::new();
        let mut repeated = 0;
        // Per file generation, the first and last line this run sent again (for the message
        // if a restart re-sends more than the window: which files, which stretch).
        let mut repeated_in: BTreeMap<u64, (u64, u64, usize)> = BTreeMap::new();
        for record in records {
            let mut fields = record.split(' ');
            let generation: u64 = fields
                .next()
                .and_then(|f| f.strip_prefix("g="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad record {record:?}"));
            let seq: u64 = fields
                .next()
                .and_then(|f| f.strip_prefix("s="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad record {record:?}"));
            assert!(
                record.ends_with('\n') && record.len() == format!("g={generation} s={seq} {}\n", "x".repeat(40)).len(),
                "torn record {record:?}"
            );
            assert!(seq < lines, "a line never written: {record:?}");
            if let Some(previous) = last_in_generation.insert(generation, seq) {
                assert!(
                    seq > previous,
                    "run {run}: file generation {generation} out of order or repeated: {seq} after {previous}"
                );
            }
            let seen = count.entry(seq).or_insert(0);
            if *seen > 0 {
                repeated += 1;
                let stretch = repeated_in.entry(generation).or_insert((seq, seq, 0));
                stretch.1 = seq;
                stretch.2 += 1;
            }
            *seen += 1;
        }
        if run > 0 {
            duplicates_per_restart.push((repeated, repeated_in));
        }
    }
    let missing: Vec<u64> = (0..lines).filter(|s| !count.contains_key(s)).take(10).collect();
    assert!(missing.is_empty(), "lines lost (first few): {missing:?}");
    let duplicates: u64 = count.values().map(|&c| u64::from(c - 1)).sum();
    for (restart, (repeated, repeated_in)) in duplicates_per_restart.iter().enumerate() {
        assert!(
            *repeated <= WINDOW,
            "restart {restart} re-sent {repeated} records, more than the window of {WINDOW}; \
             per file generation (first line, last line, count): {repeated_in:?}"
        );
    }
    let duplicates_per_restart: Vec<usize> = duplicates_per_restart.iter().map(|(repeated, _)| *repeated).collect();
    assert_eq!(runs.len(), kills + 1, "one session per agent run");
    eprintln!(
        "kill cycles: {lines} lines in {generations} file generations, {kills} SIGKILLs, {} runs, 0 lost, {duplicates} duplicates (per restart: {duplicates_per_restart:?})",
        runs.len()
    );
}

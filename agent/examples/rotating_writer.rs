//! A log writer for the agent's crash tests: appends numbered lines at a steady rate and
//! rotates its file every few seconds, alternating logrotate's two ways (rename and create,
//! then copy and truncate), keeping a few rotated files and deleting older ones.
//!
//! ```text
//! rotating_writer DIR NAME RATE_LINES_PER_S ROTATE_EVERY_MS DURATION_MS KEEP
//! ```
//!
//! Each line is `g=GEN s=SEQ pad…\n` with SEQ counting from 0 across all files and GEN the
//! file generation (one more after every rotation), written with one `write` call. Unlike
//! logrotate's `copytruncate`, which loses lines written between its copy and its truncate,
//! the writer rotates between two writes, so every line it wrote is in some file and the
//! checker can demand that every line arrives. At the end it prints
//! `{"lines":N,"generations":G}` on stdout.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn open_log(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).expect("open the log")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 7, "usage: rotating_writer DIR NAME RATE ROTATE_EVERY_MS DURATION_MS KEEP");
    let dir = Path::new(&args[1]);
    let name = &args[2];
    let rate: u64 = args[3].parse().expect("rate");
    let rotate_every = Duration::from_millis(args[4].parse().expect("rotate every"));
    let duration = Duration::from_millis(args[5].parse().expect("duration"));
    let keep: u32 = args[6].parse().expect("keep");
    let path = dir.join(name);
    let rotated = |i: u32| dir.join(format!("{name}.{i}"));

    let mut file = open_log(&path);
    let start = Instant::now();
    let mut last_rotation = start;
    let mut generation = 0u64;
    let mut seq = 0u64;
    let pad = "x".repeat(40);
    while start.elapsed() < duration {
        // Lines due by now at the steady rate.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while seq < due {
            let line = format!("g={generation} s={seq} {pad}\n");
            file.write_all(line.as_bytes()).expect("write a line");
            seq += 1;
        }
        if last_rotation.elapsed() >= rotate_every {
            last_rotation = Instant::now();
            let _ = fs::remove_file(rotated(keep));
            for i in (1..keep).rev() {
                let _ = fs::rename(rotated(i), rotated(i + 1));
            }
            if generation.is_multiple_of(2) {
                // Rename and create.
                fs::rename(&path, rotated(1)).expect("rename the log");
                file = open_log(&path);
            } else {
                // Copy and truncate (the descriptor stays; O_APPEND writes go to offset 0).
                fs::copy(&path, rotated(1)).expect("copy the log");
                file.set_len(0).expect("truncate the log");
            }
            generation += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    file.sync_all().expect("sync the log");
    println!("{{\"lines\":{seq},\"generations\":{}}}", generation + 1);
}

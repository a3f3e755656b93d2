//! Micro-benchmarks of the engine's hot pure functions: framing, checksums, routing and index
//! lookups. Each reports throughput so results read as a fraction of memory bandwidth.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_engine::format::{self, BatchWriter, COMMIT_END, COMMIT_START};
use sluice_engine::limits::BATCH_BYTES_MAX;
use sluice_engine::routing::{find_range, split_evenly, HashKey};
use sluice_engine::shard_index::{NoSealedRuns, RunEntry, ShardIndex};
use std::hint::black_box;

const RECORD_BYTES: usize = 1024;

fn framing(c: &mut Criterion) {
    let key = b"partition-key-0001";
    let data = vec![0x5Au8; RECORD_BYTES];
    let records = (BATCH_BYTES_MAX - 4096) / format::record_bytes(key.len(), data.len());
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes((records * (key.len() + data.len())) as u64));
    group.bench_function("batch_of_1KiB_records", |b| {
        b.iter_batched_ref(
            || vec![0u8; BATCH_BYTES_MAX],
            |buffer| {
                let mut writer = BatchWriter::new(&mut buffer[..]);
                writer.begin_run(7, 0, 1, None);
                for _ in 0..records {
                    writer.push_record(key, &data, 0);
                }
                black_box(writer.finish(0, 1, COMMIT_START | COMMIT_END, format::BLOCK_BYTES).1)
            },
            BatchSize::LargeInput,
        )
    });
    let mut framed = vec![0u8; BATCH_BYTES_MAX];
    let mut writer = BatchWriter::new(&mut framed[..]);
    writer.begin_run(7, 0, 1, None);
    for _ in 0..records {
        writer.push_record(key, &data, 0);
    }
    writer.finish(0, 1, COMMIT_START | COMMIT_END, format::BLOCK_BYTES);
    // What recovery does with each batch of the unsealed segment: in format version 2 this
    // checks every record's checksum too (the batch's own covers only the headers).
    group.bench_function("verify_batch", |b| {
        b.iter(|| {
            let (_, runs) = format::decode_batch(black_box(&framed), 0).unwrap();
            runs.len()
        })
    });
    group.finish();
}

/// XXH3-64 as the engine computes it (`sluice_engine::checksum`: run-time dispatch) beside
/// `xxhash-rust` (compile-time choice: SSE2 in a portable build), at a record's size with a
/// seed (as record checksums are) and at a batch's size.
fn checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("xxh3");
    for bytes in [1024usize, 1 << 20] {
        let data = vec![0xA5u8; bytes];
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("engine_{bytes}_bytes"), |b| {
            b.iter(|| sluice_engine::checksum::xxh3_64(black_box(&data)))
        });
        group.bench_function(format!("engine_seeded_{bytes}_bytes"), |b| {
            b.iter(|| sluice_engine::checksum::xxh3_64_with_seed(black_box(&data), 0x5eed))
        });
        group.bench_function(format!("xxhash_rust_{bytes}_bytes"), |b| {
            b.iter(|| xxhash_rust::xxh3::xxh3_64(black_box(&data)))
        });
        group.bench_function(format!("xxhash_rust_seeded_{bytes}_bytes"), |b| {
            b.iter(|| xxhash_rust::xxh3::xxh3_64_with_seed(black_box(&data), 0x5eed))
        });
    }
    group.finish();
}

/// MD5 of short partition keys alone (what `md5_and_find_shard_of_1024` spends most on).
fn md5(c: &mut Criterion) {
    use md5::{Digest, Md5};
    let keys: Vec<String> = (0..1024).map(|i| format!("user-{i}")).collect();
    let mut group = c.benchmark_group("md5");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("digest_of_1024_keys", |b| {
        b.iter(|| keys.iter().map(|key| Md5::digest(black_box(key.as_bytes()))[0] as usize).sum::<usize>())
    });
    group.finish();
}

fn routing(c: &mut Criterion) {
    let ranges = split_evenly(1024);
    let keys: Vec<String> = (0..1024).map(|i| format!("user-{i}")).collect();
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("md5_and_find_shard_of_1024", |b| {
        b.iter(|| keys.iter().map(|key| find_range(&ranges, HashKey::from_partition_key(key)).unwrap()).sum::<usize>())
    });
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let runs = 1_000_000u64;
    let mut index = ShardIndex::default();
    for run in 0..runs {
        // Record indexes start at 1: index 0 is the shard's starting sequence number.
        let entry = RunEntry {
            first_index: 1 + run * 10,
            record_count: 10,
            run_bytes: 10_000,
            position: run * 10_000,
            timestamp_ms: run as i64,
        };
        index.push(1, entry).unwrap();
    }
    let mut group = c.benchmark_group("shard_index_1M_runs");
    group.throughput(Throughput::Elements(1));
    let mut probe = 0u64;
    group.bench_function("by_record_index", |b| {
        b.iter(|| {
            probe = (probe + 7_919_993) % (runs * 10);
            index.run_from(black_box(1 + probe), &NoSealedRuns).unwrap().map(|run| run.position)
        })
    });
    group.bench_function("by_timestamp", |b| {
        b.iter(|| {
            probe = (probe + 7_919) % runs;
            index.index_at_timestamp(black_box(probe as i64), &NoSealedRuns).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, framing, checksum, md5, routing, index_lookup);
criterion_main!(benches);

//! The Iceberg table destination through the engine, on an in-memory object store, read back
//! with the `iceberg` crate's own scan: rows as converted, records that do not fit in the
//! dead-letter bucket, and the exactly-once rule: an engine that starts again and is fed
//! records the table already holds (a crash after a commit, before the checkpoint) skips them.
//! The pyiceberg read-back against a real S3 server is `server/tests/channels_iceberg.rs`.
#![cfg(feature = "iceberg")]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use sluice_firehose::channel::{plan, CreateChannelInput};
use sluice_firehose::plan::Environment;
use sluice_firehose::store::Buckets;
use sluice_firehose::{Position, SourceRecord};

fn input(columns: Option<serde_json::Value>) -> CreateChannelInput {
    let mut table = json!({"TableBucketARN": "arn:aws:s3tables:us-east-1:000000000000:bucket/lake",
        "Namespace": "ns", "TableName": "events", "CompressionType": "SNAPPY"});
    if let Some(columns) = columns {
        table["SluiceColumns"] = columns;
    }
    serde_json::from_value(json!({
        "ChannelName": "events",
        "ServiceExecutionRoleARN": "arn:aws:iam::000000000000:role/channel",
        "StreamConfigurationList": [{"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            "RecordConfiguration": {"RecordFormatType": "JSON"}}],
        "S3TablesDestinationConfiguration": {
            "DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::lake",
                "ExpectedBucketOwner": "000000000000", "ErrorOutputPrefix": "dlq/"},
            "S3TablesConfigurationList": [table]}
    }))
    .unwrap()
}

fn columns() -> serde_json::Value {
    json!([{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}])
}

fn env(store: Arc<dyn ObjectStore>) -> Environment {
    let mut buckets = Buckets::new();
    buckets.insert_store("lake", store);
    Environment {
        buckets,
        functions: Default::default(),
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        options: Default::default(),
        glue: None,
    }
}

/// Record `n` of lane `n % 2`, at position `n` (decimal text, as sluiced's sequence numbers).
fn record(n: u64, data: &str) -> SourceRecord {
    SourceRecord {
        lane: (n % 2) as u32,
        position: Position(Bytes::from(n.to_string())),
        arrival_ms: 1_764_633_600_000,
        data: Bytes::from(data.to_string()),
    }
}

fn good(n: u64) -> SourceRecord {
    record(n, &format!("{{\"id\": {n}, \"name\": \"n{n}\"}}"))
}

/// Runs one engine over `records` to the end; answers how many records it reported done.
async fn deliver(store: Arc<dyn ObjectStore>, columns: Option<serde_json::Value>, records: Vec<SourceRecord>) -> u64 {
    let plan = plan(&input(columns), &env(store), Some(Duration::from_millis(200))).expect("plans");
    let mut handle = sluice_firehose::spawn(plan);
    for r in records {
        handle.records.send(r).await.expect("engine runs");
    }
    drop(handle.records);
    tokio::time::timeout(Duration::from_secs(60), &mut handle.task).await.expect("finishes").expect("no panic");
    let done = handle.progress.borrow().records_done;
    done
}

/// Every row of the table (id, name), read by the crate's scan from the current metadata file.
async fn rows(store: Arc<dyn ObjectStore>) -> (Vec<(i64, Option<String>)>, usize) {
    let hint = store.get(&"ns/events/metadata/version-hint.text".into()).await.unwrap().bytes().await.unwrap();
    let location = format!("s3://lake/ns/events/metadata/{}", String::from_utf8(hint.to_vec()).unwrap());
    let file_io = sluice_firehose::iceberg::file_io("lake", store);
    let ident = iceberg::TableIdent::from_strs(["ns", "events"]).unwrap();
    let table = iceberg::table::StaticTable::from_metadata_file(&location, ident, file_io).await.unwrap();
    let snapshots = table.metadata().snapshots().count();
    let batches: Vec<RecordBatch> =
        table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let names = batch.column_by_name("name").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        for i in 0..batch.num_rows() {
            out.push((ids.value(i), (!names.is_null(i)).then(|| names.value(i).to_string())));
        }
    }
    out.sort();
    (out, snapshots)
}

#[tokio::test]
async fn records_are_committed_once_and_unfit_ones_go_to_the_dead_letter_bucket() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut first: Vec<SourceRecord> = (0..100).map(good).collect();
    first[7] = record(7, "not json");
    first[8] = record(8, r#"{"id": "eight"}"#);
    first[9] = record(9, r#"{"id": 9}"#);
    assert_eq!(deliver(store.clone(), Some(columns()), first).await, 100);
    let (table, snapshots) = rows(store.clone()).await;
    let want: Vec<(i64, Option<String>)> =
        (0..100).filter(|n| ![7, 8].contains(n)).map(|n| (n, (n != 9).then(|| format!("n{n}")))).collect();
    assert_eq!(table, want);
    assert!(snapshots >= 1);
    let dead: Vec<_> = store.list(Some(&"dlq/format-conversion-failed".into())).try_collect().await.unwrap();
    assert_eq!(dead.len(), 1, "one buffer's unfit records: {dead:?}");

    // Started again and fed from before the commit (the checkpoint lagged): the 100 records the
    // table holds are skipped, the 50 new ones committed; the schema is the table's own (no
    // SluiceColumns given this time).
    assert_eq!(deliver(store.clone(), None, (0..150).map(good).collect()).await, 150);
    let (table, _) = rows(store.clone()).await;
    let mut ids: Vec<i64> = table.iter().map(|(id, _)| *id).collect();
    ids.dedup();
    assert_eq!(ids.len(), table.len(), "no record twice");
    assert_eq!(table.len(), 98 + 50);
    assert!(table.contains(&(149, Some("n149".into()))));
}

#[test]
fn a_table_destination_is_validated() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut bad = input(Some(json!([{"Name": "m", "Type": "map<string,int>"}])));
    let error = plan(&bad, &env(store.clone()), None).unwrap_err();
    assert!(error.to_string().contains("map<string,int>"), "{error}");
    bad = input(Some(columns()));
    bad.s3_tables_destination_configuration.as_mut().unwrap().s3_tables_configuration_list[0].partition_spec =
        Some(json!({"PartitionFields": [{"Transform": "TIME_HOUR", "SourceName": "at"}]}));
    assert!(plan(&bad, &env(store.clone()), None).unwrap_err().to_string().contains("PartitionSpec"));
    let mut directory = env(store);
    directory.buckets.insert_directory("lake", "/nonexistent");
    assert!(plan(&input(Some(columns())), &directory, None).unwrap_err().to_string().contains("directory"));
}

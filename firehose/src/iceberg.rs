//! The Iceberg table destination of Kinesis channels (`S3TablesDestinationConfiguration`),
//! written with the `iceberg` crate (apache/iceberg-rust). Built only with the `iceberg` cargo
//! feature.
//!
//! # Layout in the bucket
//!
//! The table bucket of `TableBucketARN` (`arn:aws:s3tables:…:bucket/NAME`) is the bucket NAME of
//! sluiced's `--firehose-config`; the table lives at `s3://NAME/NAMESPACE/TABLE`: Parquet data
//! files under `data/`, manifests, manifest lists and `NNNNN-UUID.metadata.json` files under
//! `metadata/`, and `metadata/version-hint.text` naming the current metadata file (the Hadoop
//! catalog's convention, which `pyiceberg`'s `StaticTable.from_metadata("s3://NAME/NS/TABLE")`
//! follows). There is no catalog server: sluiced is the table's only writer, and the current
//! table is the metadata file of the highest version number.
//!
//! # Exactly once in the table
//!
//! Every commit (one `fast_append` snapshot per buffer) carries in its snapshot summary, under
//! [`POSITIONS_PROPERTY`], the position of the last record of every lane (shard) that is in the
//! table. The commit point is the PUT of the new metadata file, a single object that appears
//! whole or not at all. At start the engine reads the current snapshot's positions and skips
//! every record at or before them ([`Committed::covers`]); sluiced's checkpoint only says where
//! to start reading, never what is in the table. So:
//! - a crash before the metadata file is written leaves orphaned data files and manifests that
//!   no snapshot references (invisible to readers); their records are read again and committed;
//! - a crash after the metadata file is written but before the checkpoint moves re-reads the
//!   records, finds them covered by the snapshot's positions, and skips them;
//! - records that do not convert go to the dead-letter bucket before the commit, so after a
//!   crash they may be written there twice (at least once, as Firehose's error output), never
//!   into the table twice.
//!
//! A commit whose metadata write failed is resolved by reading the metadata directory again: if
//! the highest version carries this commit's id, it happened (the PUT landed though the answer
//! was lost); otherwise it is retried on that version.
//!
//! Unfinished: removing the data files and manifests a crash orphaned (nothing references them;
//! Iceberg's "remove orphan files" maintenance would); expiring old snapshots (every buffer adds
//! one, and the metadata file lists them all, so it grows by a few hundred bytes per commit);
//! the `TIME_HOUR` partition spec; a second writer (two sluiced on one table would both write
//! version N+1: a conditional PUT, `PutMode::Create`, would make that a conflict to retry).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::memory::{MemoryCatalogBuilder, MEMORY_CATALOG_WAREHOUSE};
use iceberg::spec::{DataFileFormat, NestedField, PrimitiveType, Schema, Type};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::columns::ColumnType;
use crate::config::Column;
use crate::convert::ParquetConverter;
use crate::error::{ApiError, DeliveryError};
use crate::limits::{STORE_BACKOFF_MS_INITIAL, STORE_BACKOFF_MS_MAX};
use crate::output::{BufferLimits, ErrorTarget};
use crate::source::{Lane, Position};

/// The snapshot-summary property holding, as a JSON object `{"LANE": "POSITION"}`, the position
/// of the last record of each lane that is in the table after that snapshot.
pub const POSITIONS_PROPERTY: &str = "sluice.positions";
/// The snapshot-summary property naming the buffer a commit came from (a UUID), to tell after a
/// failed metadata write whether the commit happened.
pub const COMMIT_ID_PROPERTY: &str = "sluice.commit-id";

/// Where a channel's records go: one Iceberg table.
#[derive(Debug)]
pub struct TablePlan {
    /// The object-store bucket the table bucket ARN names.
    pub bucket_name: String,
    pub store: Arc<dyn ObjectStore>,
    pub namespace: String,
    pub table: String,
    /// The columns to create the table with (`SluiceColumns`); `None`: the table must exist.
    pub columns: Option<Vec<Column>>,
    /// The Parquet compression of the data files (`CompressionType`).
    pub compression: ParquetCompression,
    pub buffer: BufferLimits,
    /// The dead-letter bucket: records that do not convert to the table's columns.
    pub errors: ErrorTarget,
    /// The table once opened by the engine (one engine per plan).
    state: tokio::sync::Mutex<Option<Open>>,
}

/// The positions of records already in the table, per lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed(pub BTreeMap<Lane, Position>);

impl Committed {
    /// Whether the record at `position` of `lane` is already in the table. Positions are
    /// sluiced's sequence numbers: canonical decimal text (no leading zero), which compare as
    /// numbers by length first, then digit by digit.
    pub fn covers(&self, lane: Lane, position: &Position) -> bool {
        self.0.get(&lane).is_some_and(|last| decimal_order(&position.0, &last.0).is_le())
    }

    fn to_json(&self) -> String {
        let text: BTreeMap<String, String> =
            self.0.iter().map(|(lane, p)| (lane.to_string(), String::from_utf8_lossy(&p.0).into_owned())).collect();
        serde_json::to_string(&text).expect("positions serialize")
    }

    fn from_json(text: &str) -> Option<Committed> {
        let lanes: BTreeMap<String, String> = serde_json::from_str(text).ok()?;
        lanes
            .into_iter()
            .map(|(lane, p)| Some((lane.parse().ok()?, Position(Bytes::from(p)))))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Committed)
    }
}

/// Numeric order of two canonical decimal numbers given as text.
fn decimal_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The table bucket's name in `arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME`.
pub fn table_bucket_name(arn: &str) -> &str {
    arn.rsplit_once(":bucket/").map_or(arn, |(_, name)| name)
}

/// The Parquet compression of an `S3TablesConfiguration.CompressionType` (validated).
pub fn compression_of(compression_type: &str) -> ParquetCompression {
    match compression_type {
        "NONE" => ParquetCompression::UNCOMPRESSED,
        "ZSTD" => ParquetCompression::ZSTD(ZstdLevel::default()),
        _ => ParquetCompression::SNAPPY,
    }
}

/// The Iceberg type of a column Sluice converts to. Iceberg has no 8- or 16-bit integers
/// (`int` holds them) and keeps timestamps in microseconds (`timestamptz`, UTC).
fn iceberg_type(column_type: ColumnType) -> PrimitiveType {
    match column_type {
        ColumnType::String => PrimitiveType::String,
        ColumnType::Boolean => PrimitiveType::Boolean,
        ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int => PrimitiveType::Int,
        ColumnType::BigInt => PrimitiveType::Long,
        ColumnType::Float => PrimitiveType::Float,
        ColumnType::Double => PrimitiveType::Double,
        ColumnType::Timestamp => PrimitiveType::Timestamptz,
        ColumnType::Date => PrimitiveType::Date,
    }
}

/// The Hive type name Sluice converts records of an existing table's column with.
fn hive_type(field: &NestedField) -> Result<&'static str, String> {
    Ok(match &*field.field_type {
        Type::Primitive(PrimitiveType::String) => "string",
        Type::Primitive(PrimitiveType::Boolean) => "boolean",
        Type::Primitive(PrimitiveType::Int) => "int",
        Type::Primitive(PrimitiveType::Long) => "bigint",
        Type::Primitive(PrimitiveType::Float) => "float",
        Type::Primitive(PrimitiveType::Double) => "double",
        Type::Primitive(PrimitiveType::Timestamptz | PrimitiveType::Timestamp) => "timestamp",
        Type::Primitive(PrimitiveType::Date) => "date",
        // Unfinished: decimal, binary, uuid, time, nanosecond timestamps and nested types.
        other => return Err(format!("column {} has type {other}, which Sluice does not write yet", field.name)),
    })
}

/// The Iceberg schema of `columns` (field ids from 1, every field optional: a missing key is
/// NULL, as in the Parquet conversion).
pub fn schema_of(columns: &[Column]) -> Result<Schema, ApiError> {
    let mut fields = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let column_type = ColumnType::parse(&column.column_type).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "Column {} has type '{}', which Sluice does not write to Iceberg tables (string, boolean, tinyint, smallint, int, bigint, float, double, timestamp, date).",
                column.name, column.column_type
            ))
        })?;
        let mut field = NestedField::optional(i as i32 + 1, &column.name, Type::Primitive(iceberg_type(column_type)));
        if let Some(comment) = &column.comment {
            field = field.with_doc(comment);
        }
        fields.push(field.into());
    }
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| ApiError::invalid_argument(format!("SluiceColumns do not make an Iceberg schema: {e}")))
}

/// The table as the engine holds it between commits.
#[derive(Debug)]
struct Open {
    catalog: iceberg::memory::MemoryCatalog,
    table: Table,
    converter: ParquetConverter,
    /// The table's schema in Arrow, with Iceberg's field ids.
    arrow_schema: arrow_schema::SchemaRef,
    committed: Committed,
}

impl TablePlan {
    #[expect(clippy::too_many_arguments, reason = "the members of one S3TablesConfiguration, resolved")]
    pub fn new(
        bucket_name: String,
        store: Arc<dyn ObjectStore>,
        namespace: String,
        table: String,
        columns: Option<Vec<Column>>,
        compression: ParquetCompression,
        buffer: BufferLimits,
        errors: ErrorTarget,
    ) -> Self {
        TablePlan {
            bucket_name,
            store,
            namespace,
            table,
            columns,
            compression,
            buffer,
            errors,
            state: tokio::sync::Mutex::new(None),
        }
    }

    fn location(&self) -> String {
        format!("s3://{}/{}/{}", self.bucket_name, self.namespace, self.table)
    }

    fn metadata_key(&self) -> String {
        format!("{}/{}/metadata", self.namespace, self.table)
    }

    /// Opens (or creates) the table, retrying until the store answers, and answers what is
    /// already in it.
    pub async fn open(&self) -> Committed {
        let mut backoff = Duration::from_millis(STORE_BACKOFF_MS_INITIAL);
        loop {
            match self.try_open().await {
                Ok(open) => {
                    let committed = open.committed.clone();
                    *self.state.lock().await = Some(open);
                    return committed;
                }
                Err(error) => {
                    tracing::warn!(bucket = %self.bucket_name, table = %self.table, %error, "opening the Iceberg table failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(STORE_BACKOFF_MS_MAX));
                }
            }
        }
    }

    /// The metadata file of the highest version under `metadata/`, if any.
    async fn current_metadata(&self) -> Result<Option<String>, DeliveryError> {
        let prefix = StorePath::from(self.metadata_key());
        let mut listing = self.store.list(Some(&prefix));
        let mut best: Option<(u64, String)> = None;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| DeliveryError::Store { bucket: self.bucket_name.clone(), source })?;
            let Some(name) = meta.location.filename() else { continue };
            let Some(stem) = name.strip_suffix(".metadata.json") else { continue };
            let Some(version) = stem.split_once('-').and_then(|(v, _)| v.parse::<u64>().ok()) else { continue };
            if best.as_ref().is_none_or(|(b, _)| version > *b) {
                best = Some((version, name.to_string()));
            }
        }
        Ok(best.map(|(_, name)| name))
    }

    async fn try_open(&self) -> Result<Open, DeliveryError> {
        let warehouse = format!("s3://{}", self.bucket_name);
        let factory =
            Arc::new(BucketStorageFactory { bucket: self.bucket_name.clone(), store: Some(self.store.clone()) });
        let catalog = MemoryCatalogBuilder::default()
            .with_storage_factory(factory)
            .load("sluice", HashMap::from([(MEMORY_CATALOG_WAREHOUSE.to_string(), warehouse)]))
            .await?;
        let namespace = NamespaceIdent::new(self.namespace.clone());
        catalog.create_namespace(&namespace, HashMap::new()).await?;
        let ident = TableIdent::new(namespace.clone(), self.table.clone());
        let table = match self.current_metadata().await? {
            Some(name) => {
                let table = catalog.register_table(&ident, format!("{}/metadata/{name}", self.location())).await?;
                // A crash between a commit and its hint leaves the hint one version behind.
                self.write_version_hint(&table).await?;
                table
            }
            None => {
                let columns = self.columns.as_deref().ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "Table {}.{} does not exist in bucket {} and the channel gives no SluiceColumns to create it with.",
                        self.namespace, self.table, self.bucket_name
                    ))
                })?;
                let creation = TableCreation::builder()
                    .name(self.table.clone())
                    .location(self.location())
                    .schema(schema_of(columns)?)
                    .build();
                let table = catalog.create_table(&namespace, creation).await?;
                self.write_version_hint(&table).await?;
                table
            }
        };
        let schema = table.metadata().current_schema().clone();
        let columns = schema
            .as_struct()
            .fields()
            .iter()
            .map(|field| {
                Ok(Column { name: field.name.clone(), column_type: hive_type(field)?.to_string(), comment: None })
            })
            .collect::<Result<Vec<Column>, String>>()
            .map_err(ApiError::invalid_argument)?;
        let converter = ParquetConverter::from_columns(&columns)?;
        let arrow_schema = Arc::new(schema_to_arrow_schema(&schema)?);
        let committed = table
            .metadata()
            .current_snapshot()
            .and_then(|snapshot| snapshot.summary().additional_properties.get(POSITIONS_PROPERTY).cloned())
            .and_then(|text| Committed::from_json(&text))
            .unwrap_or_default();
        Ok(Open { catalog, table, converter, arrow_schema, committed })
    }

    /// Points `metadata/version-hint.text` at the table's current metadata file, for readers
    /// that follow the Hadoop catalog's convention. Only a hint: the highest version is the
    /// table, whether or not this write lands.
    async fn write_version_hint(&self, table: &Table) -> Result<(), DeliveryError> {
        let Some(location) = table.metadata_location() else { return Ok(()) };
        let name = location.rsplit('/').next().unwrap_or(location);
        let key = StorePath::from(format!("{}/version-hint.text", self.metadata_key()));
        self.store
            .put(&key, PutPayload::from(Bytes::from(name.to_string())))
            .await
            .map(|_| ())
            .map_err(|source| DeliveryError::Store { bucket: self.bucket_name.clone(), source })
    }

    /// Writes `batch` (from [`TablePlan::convert`]) as one Parquet data file and commits it
    /// with `lanes` (the last position of each lane in the buffer) merged into the committed
    /// positions; an empty buffer (every record failed to convert) still commits its positions.
    /// Retries until the store takes it; answers the data file's size in bytes.
    pub async fn commit(&self, batch: Option<RecordBatch>, lanes: &BTreeMap<Lane, Position>) -> u64 {
        let commit_id = uuid::Uuid::new_v4();
        let mut backoff = Duration::from_millis(STORE_BACKOFF_MS_INITIAL);
        loop {
            match self.try_commit(batch.clone(), lanes, commit_id).await {
                Ok(bytes) => return bytes,
                Err(error) => {
                    tracing::warn!(bucket = %self.bucket_name, table = %self.table, %error, "committing to the Iceberg table failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(STORE_BACKOFF_MS_MAX));
                    // The metadata PUT may have landed though its answer was lost: read the
                    // table again, and stop if this commit is in it.
                    match self.try_open().await {
                        Ok(open) => {
                            let landed = open.table.metadata().current_snapshot().is_some_and(|snapshot| {
                                snapshot.summary().additional_properties.get(COMMIT_ID_PROPERTY)
                                    == Some(&commit_id.to_string())
                            });
                            *self.state.lock().await = Some(open);
                            if landed {
                                return 0;
                            }
                        }
                        Err(error) => tracing::warn!(%error, "reading the Iceberg table again failed"),
                    }
                }
            }
        }
    }

    /// Converts a buffer's records to an Arrow batch of the table's schema (field ids and
    /// Iceberg's types), with the records that did not convert.
    pub async fn convert(
        &self,
        records: Vec<Bytes>,
    ) -> Result<(Option<RecordBatch>, Vec<(usize, String)>), DeliveryError> {
        let (converter, arrow_schema) = {
            let state = self.state.lock().await;
            let open = state.as_ref().expect("the engine opens the table before it delivers");
            (open.converter.clone(), open.arrow_schema.clone())
        };
        tokio::task::spawn_blocking(move || {
            let (batch, failed) = converter.to_batch(records.iter().map(|r| &r[..]))?;
            let batch = match batch {
                Some(batch) => {
                    let columns = batch
                        .columns()
                        .iter()
                        .zip(arrow_schema.fields())
                        .map(|(column, field)| arrow_cast::cast(column, field.data_type()))
                        .collect::<Result<Vec<_>, _>>()?;
                    Some(RecordBatch::try_new(arrow_schema, columns)?)
                }
                None => None,
            };
            Ok((batch, failed))
        })
        .await
        .expect("conversion does not panic")
    }

    async fn try_commit(
        &self,
        batch: Option<RecordBatch>,
        lanes: &BTreeMap<Lane, Position>,
        commit_id: uuid::Uuid,
    ) -> Result<u64, DeliveryError> {
        let mut state = self.state.lock().await;
        let open = state.as_mut().expect("the engine opens the table before it delivers");
        let mut data_files = Vec::new();
        if let Some(batch) = batch {
            let properties = WriterProperties::builder()
                .set_compression(self.compression)
                .set_created_by("sluice-firehose".into())
                .build();
            let parquet = ParquetWriterBuilder::new(properties, open.table.metadata().current_schema().clone());
            let rolling = RollingFileWriterBuilder::new_with_default_file_size(
                parquet,
                open.table.file_io().clone(),
                DefaultLocationGenerator::new(open.table.metadata())?,
                DefaultFileNameGenerator::new(commit_id.to_string(), None, DataFileFormat::Parquet),
            );
            let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
            writer.write(batch).await?;
            data_files = writer.close().await?;
        }
        let bytes = data_files.iter().map(|file| file.file_size_in_bytes()).sum();
        let mut committed = open.committed.clone();
        committed.0.extend(lanes.iter().map(|(lane, p)| (*lane, p.clone())));
        let properties = HashMap::from([
            (POSITIONS_PROPERTY.to_string(), committed.to_json()),
            (COMMIT_ID_PROPERTY.to_string(), commit_id.to_string()),
        ]);
        let transaction = Transaction::new(&open.table);
        // No duplicate check: it reads every manifest of the table on each commit, and data
        // file names carry the commit's UUID, so they are never added twice.
        let action = transaction
            .fast_append()
            .with_check_duplicate(false)
            .add_data_files(data_files)
            .set_snapshot_properties(properties);
        let transaction = action.apply(transaction)?;
        let table = transaction.commit(&open.catalog).await?;
        // Committed: the metadata file is written. The hint is for readers only.
        if let Err(error) = self.write_version_hint(&table).await {
            tracing::warn!(%error, "version-hint.text not written (readers of the highest version are unaffected)");
        }
        open.table = table;
        open.committed = committed;
        Ok(bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// The table's files through the channel's object-store bucket.

/// Builds [`BucketStorage`]: Iceberg's file I/O over the `object_store` bucket sluiced already
/// has for the table bucket (so no second S3 client).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketStorageFactory {
    bucket: String,
    /// Not serialisable: Iceberg serialises factories only to ship them between processes,
    /// which Sluice never does.
    #[serde(skip)]
    store: Option<Arc<dyn ObjectStore>>,
}

#[typetag::serde]
impl StorageFactory for BucketStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        let store = self.store.clone().ok_or_else(|| {
            iceberg::Error::new(iceberg::ErrorKind::FeatureUnsupported, "a deserialised bucket storage has no store")
        })?;
        Ok(Arc::new(BucketStorage { bucket: self.bucket.clone(), store: Some(store) }))
    }
}

/// Iceberg's `Storage` on one bucket: `s3://BUCKET/KEY` is object KEY.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketStorage {
    bucket: String,
    #[serde(skip)]
    store: Option<Arc<dyn ObjectStore>>,
}

fn io_error(error: impl std::fmt::Display) -> iceberg::Error {
    iceberg::Error::new(iceberg::ErrorKind::Unexpected, error.to_string())
}

impl BucketStorage {
    fn store(&self) -> iceberg::Result<&Arc<dyn ObjectStore>> {
        self.store.as_ref().ok_or_else(|| io_error("a deserialised bucket storage has no store"))
    }

    fn key(&self, path: &str) -> iceberg::Result<StorePath> {
        let key = path
            .strip_prefix("s3://")
            .or_else(|| path.strip_prefix("s3a://"))
            .and_then(|rest| rest.strip_prefix(self.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| {
                iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("{path} is not in bucket {}", self.bucket))
            })?;
        StorePath::parse(key).map_err(io_error)
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for BucketStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        match self.store()?.head(&self.key(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(io_error(error)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let meta = self.store()?.head(&self.key(path)?).await.map_err(io_error)?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let result = self.store()?.get(&self.key(path)?).await.map_err(io_error)?;
        result.bytes().await.map_err(io_error)
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        Ok(Box::new(BucketRead { store: self.store()?.clone(), key: self.key(path)? }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        self.store()?.put(&self.key(path)?, PutPayload::from(bs)).await.map(|_| ()).map_err(io_error)
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        Ok(Box::new(BucketWrite { store: self.store()?.clone(), key: self.key(path)?, buffer: Vec::new() }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        self.store()?.delete(&self.key(path)?).await.map_err(io_error)
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let store = self.store()?;
        let prefix = self.key(path)?;
        let mut listing = store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            store.delete(&meta.map_err(io_error)?.location).await.map_err(io_error)?;
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

struct BucketRead {
    store: Arc<dyn ObjectStore>,
    key: StorePath,
}

#[async_trait]
impl FileRead for BucketRead {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store.get_range(&self.key, range).await.map_err(io_error)
    }
}

/// Collects a file and PUTs it whole on close: a data file is at most one buffer (the channel's
/// buffer size bounds it), and a single PUT makes it appear whole or not at all.
// Unfinished: a multipart upload for data files near the 128 MiB buffer, which now sit in
// memory twice (the records and the Parquet bytes) while they are written.
struct BucketWrite {
    store: Arc<dyn ObjectStore>,
    key: StorePath,
    buffer: Vec<u8>,
}

#[async_trait]
impl FileWrite for BucketWrite {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        self.buffer.extend_from_slice(&bs);
        Ok(())
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        let body = Bytes::from(std::mem::take(&mut self.buffer));
        self.store.put(&self.key, PutPayload::from(body)).await.map(|_| ()).map_err(io_error)
    }
}

/// A `FileIO` on `store` for tests and tools that read a table Sluice wrote.
pub fn file_io(bucket: &str, store: Arc<dyn ObjectStore>) -> FileIO {
    FileIOBuilder::new(Arc::new(BucketStorageFactory { bucket: bucket.to_string(), store: Some(store) })).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_compare_as_numbers() {
        let committed = Committed(BTreeMap::from([(0, Position(Bytes::from("1000")))]));
        assert!(committed.covers(0, &Position(Bytes::from("999"))));
        assert!(committed.covers(0, &Position(Bytes::from("1000"))));
        assert!(!committed.covers(0, &Position(Bytes::from("1001"))));
        assert!(!committed.covers(0, &Position(Bytes::from("10000"))));
        assert!(!committed.covers(1, &Position(Bytes::from("1"))));
        assert_eq!(Committed::from_json(&committed.to_json()), Some(committed));
    }

    #[test]
    fn table_bucket_names() {
        assert_eq!(table_bucket_name("arn:aws:s3tables:us-east-1:000000000000:bucket/lake"), "lake");
    }
}

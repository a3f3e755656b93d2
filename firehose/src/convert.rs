//! Record format conversion: JSON records to one Parquet file per buffer (`arrow` + `parquet`).
//!
//! The schema is the AWS Glue table `SchemaConfiguration` names (`DatabaseName`, `TableName`,
//! `VersionId`), read from sluiced's Data Catalog (`crate::glue`) each time a buffer is
//! converted, as AWS reads it (a `LATEST` table's changes apply to the next buffer), or
//! Sluice's inline `SluiceColumns`, fixed when the delivery stream is planned ([`Conversion`]).
//! Records are read the way the OpenX JSON SerDe reads them: keys match columns
//! case-insensitively unless `CaseInsensitive` is false, `ConvertDotsInJsonKeysToUnderscores`
//! renames `a.b` to `a_b`, `ColumnToJsonKeyMappings` maps a column to another key, missing keys
//! and JSON `null` are NULL, and scalars are coerced leniently (`"42"` into an `int` column).
//!
//! A record that is not a JSON object, or whose value cannot be coerced to its column's type, is
//! not written: it comes back in [`Converted::failed`] and goes to the error output under
//! `format-conversion-failed`. The other records of the buffer are converted. A table that
//! is missing or whose columns Sluice cannot write fails the whole buffer the same way
//! ([`ConversionFailure`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    Int8Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, GzipLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use serde_json::Value;

use crate::columns::{self, ColumnType};
use crate::config::{Column, DataFormatConversionConfiguration};
use crate::error::{ApiError, DeliveryError};
use crate::glue::{SchemaError, SharedCatalog};

/// One converted value, before it is appended to its column.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// The result of converting one buffer.
#[derive(Debug, Default)]
pub struct Converted {
    /// The Parquet file, or `None` when no record converted.
    pub parquet: Option<Vec<u8>>,
    /// Records converted.
    pub record_count: usize,
    /// Indexes (into the input) of the records that did not convert, with the reason.
    pub failed: Vec<(usize, String)>,
}

/// A JSON → Parquet converter for one destination.
#[derive(Debug, Clone)]
pub struct ParquetConverter {
    schema: SchemaRef,
    columns: Vec<(String, ColumnType)>,
    /// JSON key (normalised) for each column.
    keys: Vec<String>,
    case_insensitive: bool,
    dots_to_underscores: bool,
    properties: WriterProperties,
}

impl ParquetConverter {
    /// A converter of records into `columns` with the OpenX JSON SerDe's defaults, for callers
    /// that write the batches themselves (the Iceberg table destination).
    pub fn from_columns(columns: &[Column]) -> Result<Self, ApiError> {
        Self::new(columns, &DataFormatConversionConfiguration::default())
    }

    /// The converter of records into `columns` (a Glue table's or `SluiceColumns`) with the
    /// SerDe options of `config`.
    pub fn new(columns_config: &[Column], config: &DataFormatConversionConfiguration) -> Result<Self, ApiError> {
        let openx = config
            .input_format_configuration
            .as_ref()
            .and_then(|i| i.deserializer.as_ref())
            .and_then(|d| d.open_x_json_ser_de.clone())
            .unwrap_or_default();
        let case_insensitive = openx.case_insensitive.unwrap_or(true);
        let dots_to_underscores = openx.convert_dots_in_json_keys_to_underscores.unwrap_or(false);
        let mappings = openx.column_to_json_key_mappings.unwrap_or_default();
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        let mut keys = Vec::new();
        for (column, column_type) in columns_config.iter().zip(columns::check(columns_config)?) {
            fields.push(Field::new(column.name.clone(), column_type.arrow(), true));
            let key = mappings.get(&column.name).cloned().unwrap_or_else(|| column.name.clone());
            keys.push(normalise(&key, case_insensitive, false));
            columns.push((column.name.clone(), column_type));
        }
        let serde = config
            .output_format_configuration
            .as_ref()
            .and_then(|o| o.serializer.as_ref())
            .and_then(|s| s.parquet_ser_de.clone())
            .unwrap_or_default();
        let compression = match serde.compression.as_deref().unwrap_or("SNAPPY") {
            "UNCOMPRESSED" => ParquetCompression::UNCOMPRESSED,
            "GZIP" => ParquetCompression::GZIP(GzipLevel::default()),
            _ => ParquetCompression::SNAPPY,
        };
        let mut properties = WriterProperties::builder()
            .set_compression(compression)
            .set_dictionary_enabled(serde.enable_dictionary_compression.unwrap_or(true))
            .set_writer_version(match serde.writer_version.as_deref() {
                Some("V2") => WriterVersion::PARQUET_2_0,
                _ => WriterVersion::PARQUET_1_0,
            })
            .set_created_by("sluice-firehose".into());
        if let Some(page) = serde.page_size_bytes {
            properties = properties.set_data_page_size_limit(page as usize);
        }
        if let Some(block) = serde.block_size_bytes {
            properties = properties.set_max_row_group_bytes(Some(block as usize));
        }
        Ok(ParquetConverter {
            schema: Arc::new(Schema::new(fields)),
            columns,
            keys,
            case_insensitive,
            dots_to_underscores,
            properties: properties.build(),
        })
    }

    /// The Arrow schema of the files written.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Converts the records of one buffer into one Parquet file.
    pub fn convert<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Result<Converted, DeliveryError> {
        let (batch, failed) = self.to_batch(records)?;
        let Some(batch) = batch else {
            return Ok(Converted { parquet: None, record_count: 0, failed });
        };
        let mut writer = ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(self.properties.clone()))?;
        writer.write(&batch)?;
        let bytes = writer.into_inner()?;
        Ok(Converted { parquet: Some(bytes), record_count: batch.num_rows(), failed })
    }

    /// Converts the records of one buffer into one Arrow batch of [`Self::schema`] (`None` when
    /// no record converted), with the indexes of the records that did not convert and why.
    #[expect(clippy::type_complexity, reason = "a batch and the failures beside it; named once here")]
    pub fn to_batch<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Option<RecordBatch>, Vec<(usize, String)>), DeliveryError> {
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut failed = Vec::new();
        for (index, data) in records.into_iter().enumerate() {
            match self.row(data) {
                Ok(row) => rows.push(row),
                Err(why) => failed.push((index, why)),
            }
        }
        if rows.is_empty() {
            return Ok((None, failed));
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (c, (_, column_type)) in self.columns.iter().enumerate() {
            arrays.push(build_array(*column_type, rows.iter().map(|r| &r[c])));
        }
        Ok((Some(RecordBatch::try_new(self.schema.clone(), arrays)?), failed))
    }

    /// One record's cells, or why it does not convert.
    fn row(&self, data: &[u8]) -> Result<Vec<Cell>, String> {
        let value: Value = serde_json::from_slice(data).map_err(|e| format!("The record is not valid JSON: {e}"))?;
        let Value::Object(object) = value else {
            return Err("The record is not a JSON object.".into());
        };
        let mut by_key: BTreeMap<String, &Value> = BTreeMap::new();
        for (k, v) in &object {
            by_key.entry(normalise(k, self.case_insensitive, self.dots_to_underscores)).or_insert(v);
        }
        let mut row = Vec::with_capacity(self.columns.len());
        for ((name, column_type), key) in self.columns.iter().zip(&self.keys) {
            let cell = match by_key.get(key) {
                None | Some(Value::Null) => Cell::Null,
                Some(v) => coerce(v, *column_type).ok_or_else(|| {
                    format!("The value {} of column {name} cannot be converted to {column_type:?}.", truncate_json(v))
                })?,
            };
            row.push(cell);
        }
        Ok(row)
    }
}

/// Why a whole buffer could not be converted: the error output's `errorCode` and message.
pub type ConversionFailure = SchemaError;

/// Where a delivery stream's Parquet schema comes from.
#[derive(Debug, Clone)]
pub enum Conversion {
    /// `SluiceColumns`: fixed when the delivery stream is planned (boxed: the converter is
    /// several times the size of a table's name).
    Inline(Box<ParquetConverter>),
    /// The Glue table `SchemaConfiguration` names, read at each buffer.
    Table {
        catalog: SharedCatalog,
        database: String,
        table: String,
        /// `VersionId` (`None` or `LATEST`: the table as it is when the buffer converts).
        version: Option<String>,
        config: Box<DataFormatConversionConfiguration>,
    },
}

impl Conversion {
    /// The converter for the next buffer: the inline one, or one of the table's columns now.
    pub fn converter(&self) -> Result<ParquetConverter, ConversionFailure> {
        match self {
            Conversion::Inline(converter) => Ok((**converter).clone()),
            Conversion::Table { catalog, database, table, version, config } => {
                let columns = catalog.read().expect("the catalog lock is not poisoned").columns(
                    database,
                    table,
                    version.as_deref(),
                )?;
                ParquetConverter::new(&columns, config).map_err(|e| SchemaError {
                    code: "DataFormatConversion.InvalidSchema",
                    message: format!("Table {database}.{table}: {}", e.message),
                })
            }
        }
    }
}

fn normalise(key: &str, case_insensitive: bool, dots_to_underscores: bool) -> String {
    let key = if dots_to_underscores { key.replace('.', "_") } else { key.to_string() };
    if case_insensitive {
        key.to_lowercase()
    } else {
        key
    }
}

fn truncate_json(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        let mut end = 64;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// Converts a JSON value to a column type, leniently as Hive's JSON SerDes do.
fn coerce(v: &Value, t: ColumnType) -> Option<Cell> {
    match t {
        ColumnType::String => Some(Cell::Str(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ColumnType::Boolean => match v {
            Value::Bool(b) => Some(Cell::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(Cell::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(Cell::Bool(false)),
            _ => None,
        },
        ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt => {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))?,
                Value::String(s) => s.trim().parse::<i64>().ok()?,
                _ => return None,
            };
            let (lo, hi) = match t {
                ColumnType::TinyInt => (i8::MIN as i64, i8::MAX as i64),
                ColumnType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
                ColumnType::Int => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            (lo..=hi).contains(&n).then_some(Cell::Int(n))
        }
        ColumnType::Float | ColumnType::Double => match v {
            Value::Number(n) => n.as_f64().map(Cell::Float),
            Value::String(s) => s.trim().parse::<f64>().ok().map(Cell::Float),
            _ => None,
        },
        ColumnType::Timestamp => match v {
            // Integers are epoch milliseconds (the OpenX SerDe's "millis").
            Value::Number(n) => n.as_i64().map(Cell::Int),
            Value::String(s) => parse_timestamp_ms(s.trim()).map(Cell::Int),
            _ => None,
        },
        ColumnType::Date => match v {
            Value::Number(n) => n.as_i64().filter(|d| i32::try_from(*d).is_ok()).map(Cell::Int),
            Value::String(s) => {
                let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
                Some(Cell::Int((date - epoch).num_days()))
            }
            _ => None,
        },
    }
}

/// ISO-8601 / RFC 3339 (`2024-01-02T03:04:05.678Z`) or Hive's `yyyy-MM-dd HH:mm:ss[.fff]`
/// (taken as UTC), or an integer string of epoch milliseconds.
fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    s.parse::<i64>().ok()
}

fn build_array<'a>(t: ColumnType, cells: impl Iterator<Item = &'a Cell>) -> ArrayRef {
    macro_rules! ints {
        ($builder:ty, $ty:ty) => {{
            let mut b = <$builder>::new();
            for c in cells {
                match c {
                    Cell::Int(n) => b.append_value(*n as $ty),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match t {
        ColumnType::String => {
            let mut b = StringBuilder::new();
            for c in cells {
                match c {
                    Cell::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::new();
            for c in cells {
                match c {
                    Cell::Bool(v) => b.append_value(*v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::TinyInt => ints!(Int8Builder, i8),
        ColumnType::SmallInt => ints!(Int16Builder, i16),
        ColumnType::Int => ints!(Int32Builder, i32),
        ColumnType::BigInt => ints!(Int64Builder, i64),
        ColumnType::Date => ints!(Date32Builder, i32),
        ColumnType::Timestamp => {
            let mut b = TimestampMillisecondBuilder::new().with_timezone("UTC");
            for c in cells {
                match c {
                    Cell::Int(n) => b.append_value(*n),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float => {
            let mut b = Float32Builder::new();
            for c in cells {
                match c {
                    Cell::Float(v) => b.append_value(*v as f32),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Double => {
            let mut b = Float64Builder::new();
            for c in cells {
                match c {
                    Cell::Float(v) => b.append_value(*v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Deserializer, InputFormatConfiguration, OpenXJsonSerDe, SchemaConfiguration};
    use arrow_schema::DataType;

    fn converter(columns: &[(&str, &str)], openx: Option<OpenXJsonSerDe>) -> ParquetConverter {
        let config = DataFormatConversionConfiguration {
            enabled: Some(true),
            schema_configuration: Some(SchemaConfiguration {
                sluice_columns: Some(
                    columns
                        .iter()
                        .map(|(n, t)| Column { name: n.to_string(), column_type: t.to_string(), comment: None })
                        .collect(),
                ),
                ..Default::default()
            }),
            input_format_configuration: openx.map(|o| InputFormatConfiguration {
                deserializer: Some(Deserializer { open_x_json_ser_de: Some(o), hive_json_ser_de: None }),
            }),
            output_format_configuration: None,
        };
        let columns = config.schema_configuration.as_ref().and_then(|s| s.sluice_columns.as_deref()).unwrap();
        ParquetConverter::new(columns, &config).unwrap()
    }

    /// A Glue table is read when a buffer converts: missing, then created, then changed.
    #[test]
    fn a_glue_table_is_read_at_each_buffer() {
        use crate::glue::{Call, Operation};
        let catalog: SharedCatalog = Default::default();
        let conversion = Conversion::Table {
            catalog: catalog.clone(),
            database: "db".into(),
            table: "Events".into(),
            version: Some("LATEST".into()),
            config: Box::default(),
        };
        assert_eq!(conversion.converter().unwrap_err().code, "DataFormatConversion.EntityNotFound");
        let run = |catalog: &SharedCatalog, operation, body: serde_json::Value| {
            let call = Call::from_json(operation, body.to_string().as_bytes(), "000000000000").unwrap();
            catalog.write().unwrap().run(call, "000000000000", 0).unwrap();
        };
        run(&catalog, Operation::CreateDatabase, serde_json::json!({"DatabaseInput": {"Name": "db"}}));
        let table = |t: &str| {
            serde_json::json!({"DatabaseName": "db", "TableInput": {"Name": "events",
            "StorageDescriptor": {"Columns": [{"Name": "id", "Type": t}]}}})
        };
        run(&catalog, Operation::CreateTable, table("bigint"));
        let schema = |c: &Conversion| c.converter().unwrap().schema().field(0).data_type().clone();
        assert_eq!(schema(&conversion), DataType::Int64);
        run(&catalog, Operation::UpdateTable, table("string"));
        assert_eq!(schema(&conversion), DataType::Utf8);
        run(&catalog, Operation::UpdateTable, table("array<int>"));
        assert_eq!(conversion.converter().unwrap_err().code, "DataFormatConversion.InvalidSchema");
    }

    #[test]
    fn converts_and_sets_aside_bad_records() {
        let c = converter(
            &[
                ("id", "bigint"),
                ("name", "string"),
                ("ok", "boolean"),
                ("at", "timestamp"),
                ("score", "double"),
                ("small", "tinyint"),
            ],
            None,
        );
        let records: Vec<&[u8]> = vec![
            br#"{"ID": 1, "name": "a", "ok": true, "at": "2024-01-02T03:04:05Z", "score": 1.5}"#,
            br#"{"id": "2", "name": 7, "ok": "false", "at": 1700000000000}"#,
            br#"not json"#,
            br#"[1, 2]"#,
            br#"{"id": "x"}"#,
            br#"{"small": 300}"#,
        ];
        let out = c.convert(records).unwrap();
        assert_eq!(out.record_count, 2);
        assert_eq!(out.failed.iter().map(|f| f.0).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        let bytes = bytes::Bytes::from(out.parquet.unwrap());
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }

    #[test]
    fn openx_options() {
        let c = converter(
            &[("a_b", "int"), ("Mixed", "string"), ("renamed", "string")],
            Some(OpenXJsonSerDe {
                convert_dots_in_json_keys_to_underscores: Some(true),
                case_insensitive: Some(false),
                column_to_json_key_mappings: Some(BTreeMap::from([("renamed".to_string(), "ts-field".to_string())])),
            }),
        );
        let row = c.row(br#"{"a.b": 3, "mixed": "no", "Mixed": "yes", "ts-field": "r"}"#).unwrap();
        assert_eq!(row, vec![Cell::Int(3), Cell::Str("yes".into()), Cell::Str("r".into())]);
    }
}

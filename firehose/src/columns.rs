//! The columns a delivery stream converts records into (a Glue table's or `SluiceColumns`):
//! their Hive type names and the Arrow types they are written as. Below the converter
//! (`crate::convert`), the request checks (`crate::validate`) and channels (`crate::channel`),
//! which all read column types and must not depend on each other for it.

use arrow_schema::{DataType, TimeUnit};

use crate::config::Column;
use crate::error::ApiError;

/// A column type Sluice converts to (Hive names, as in an AWS Glue table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    /// Milliseconds since the epoch, UTC.
    Timestamp,
    Date,
}

impl ColumnType {
    /// The Hive type names accepted in a Glue table's columns and `SluiceColumns[].Type`
    /// (`varchar(n)` and `char(n)` as strings: the length is Hive's, not Parquet's).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        let base = match name.split_once('(') {
            Some((base, rest)) if matches!(base.trim(), "varchar" | "char") && rest.ends_with(')') => base.trim(),
            _ => name.as_str(),
        };
        Some(match base {
            "string" | "varchar" | "char" => ColumnType::String,
            "boolean" => ColumnType::Boolean,
            "tinyint" => ColumnType::TinyInt,
            "smallint" => ColumnType::SmallInt,
            "int" | "integer" => ColumnType::Int,
            "bigint" => ColumnType::BigInt,
            "float" => ColumnType::Float,
            "double" => ColumnType::Double,
            "timestamp" => ColumnType::Timestamp,
            "date" => ColumnType::Date,
            _ => return None,
        })
    }

    /// The Arrow type its values are written as.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::TinyInt => DataType::Int8,
            ColumnType::SmallInt => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            ColumnType::Date => DataType::Date32,
        }
    }
}

/// Each column's type, or the InvalidArgumentException AWS-style that names the first column
/// whose type Sluice does not convert to.
pub fn check(columns: &[Column]) -> Result<Vec<ColumnType>, ApiError> {
    columns
        .iter()
        .map(|column| {
            ColumnType::parse(&column.column_type).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "Column {} has type '{}', which Sluice does not convert to (string, boolean, tinyint, smallint, int, bigint, float, double, timestamp, date).",
                    column.name, column.column_type
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_lengths_of_strings_are_strings() {
        assert_eq!(ColumnType::parse("varchar(10)"), Some(ColumnType::String));
        assert_eq!(ColumnType::parse(" CHAR(3) "), Some(ColumnType::String));
        assert_eq!(ColumnType::parse("decimal(10,2)"), None);
        assert_eq!(ColumnType::parse("bigint(3)"), None);
    }
}

//! The AWS Glue Data Catalog, the subset a Firehose user needs: databases and tables (their
//! `StorageDescriptor.Columns`, `PartitionKeys`, `TableType`, `Parameters` and every other
//! member of `TableInput` as sent), the operations CreateDatabase, GetDatabase, GetDatabases,
//! DeleteDatabase, CreateTable, GetTable, GetTables, UpdateTable and DeleteTable with the
//! shapes, limits and error types of botocore's `glue/2017-03-31` model, and the columns a
//! delivery stream's Parquet conversion reads from a table ([`Catalog::columns`]).
//!
//! Pure: no I/O and no runtime. sluiced serves the operations on its HTTP port (`AWSGlue.*`),
//! authorizes, audits and persists them (`server/src/ops/glue.rs`); the delivery engine reads
//! the same [`SharedCatalog`] when it converts a buffer (`crate::convert::Conversion`).
//!
//! As in AWS Glue, database and table names are kept in lower case (a name is found whatever
//! its case), a table's `VersionId` starts at `"0"` and grows by one per UpdateTable, and
//! deleting a database deletes its tables. One catalog per node: its `CatalogId` is the
//! node's account.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::Column;
use crate::limits::{
    GLUE_DATABASES_MAX, GLUE_EXPRESSION_PROGRAM_BYTES_MAX, GLUE_PAGE_SIZE_MAX, GLUE_TABLES_MAX, GLUE_TAGS_MAX,
};
use crate::validate::{at, pattern, Checker};

/// The target prefix of the Glue API (`X-Amz-Target: AWSGlue.<Operation>`).
pub const TARGET_PREFIX: &str = "AWSGlue.";

/// The catalog as the HTTP front end and the delivery engine share it.
pub type SharedCatalog = Arc<RwLock<Catalog>>;

/// The Glue operations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateDatabase,
    GetDatabase,
    GetDatabases,
    DeleteDatabase,
    CreateTable,
    GetTable,
    GetTables,
    UpdateTable,
    DeleteTable,
}

impl Operation {
    const ALL: [Operation; 9] = [
        Operation::CreateDatabase,
        Operation::GetDatabase,
        Operation::GetDatabases,
        Operation::DeleteDatabase,
        Operation::CreateTable,
        Operation::GetTable,
        Operation::GetTables,
        Operation::UpdateTable,
        Operation::DeleteTable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateDatabase => "CreateDatabase",
            Operation::GetDatabase => "GetDatabase",
            Operation::GetDatabases => "GetDatabases",
            Operation::DeleteDatabase => "DeleteDatabase",
            Operation::CreateTable => "CreateTable",
            Operation::GetTable => "GetTable",
            Operation::GetTables => "GetTables",
            Operation::UpdateTable => "UpdateTable",
            Operation::DeleteTable => "DeleteTable",
        }
    }

    /// The operation an `X-Amz-Target` names after [`TARGET_PREFIX`].
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|operation| operation.name() == name)
    }

    /// Whether the operation changes the catalog (the others only read it).
    pub fn changes(self) -> bool {
        !matches!(self, Operation::GetDatabase | Operation::GetDatabases | Operation::GetTable | Operation::GetTables)
    }
}

/// A refused Glue call: the model's exception name and AWS's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueError {
    pub exception: &'static str,
    pub message: String,
}

impl GlueError {
    pub fn new(exception: &'static str, message: impl Into<String>) -> GlueError {
        GlueError { exception, message: message.into() }
    }

    /// The HTTP status AWS answers the exception with.
    pub fn status(&self) -> u16 {
        match self.exception {
            "InternalServiceException" => 500,
            _ => 400,
        }
    }

    fn invalid(message: impl Into<String>) -> GlueError {
        GlueError::new("InvalidInputException", message)
    }

    fn database_not_found(name: &str) -> GlueError {
        GlueError::new("EntityNotFoundException", format!("Database {name} not found."))
    }

    fn table_not_found(name: &str) -> GlueError {
        GlueError::new("EntityNotFoundException", format!("Table {name} not found."))
    }
}

impl From<crate::ApiError> for GlueError {
    fn from(error: crate::ApiError) -> GlueError {
        GlueError::new(error.error_type.as_str(), error.message)
    }
}

/// The model's pattern of names, descriptions and most strings: any character but the
/// control characters (a tab allowed; `\r\n` too in descriptions and locations).
static TEXT: LazyLock<Regex> = LazyLock::new(|| pattern(r"[\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}\t]*"));
static TEXT_MULTILINE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"[\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}\r\n\t]*"));

/// `NameString`: 1–255 characters of the model's text pattern.
fn check_name(c: &mut Checker, path: String, value: &str) {
    c.string(path, value, 1, 255, Some(&TEXT));
}

fn check_catalog_id(c: &mut Checker, value: &Option<String>) {
    if let Some(id) = value {
        c.string("catalogId".into(), id, 1, 255, Some(&TEXT));
    }
}

/// `ParametersMap`: keys 1–255 characters, values at most 512,000.
fn check_parameters(c: &mut Checker, path: &str, parameters: &Option<BTreeMap<String, String>>) {
    for (key, value) in parameters.iter().flatten() {
        c.string(format!("{path}.key"), key, 1, 255, Some(&TEXT));
        c.string(format!("{path}.value"), value, 0, 512_000, Some(&TEXT_MULTILINE));
    }
}

/// The members of `DatabaseInput` Sluice checks; the others are kept as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DatabaseView {
    name: String,
    description: Option<String>,
    location_uri: Option<String>,
    parameters: Option<BTreeMap<String, String>>,
}

/// The members of Glue's `Column` Sluice checks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ColumnView {
    name: String,
    #[serde(rename = "Type")]
    column_type: Option<String>,
    comment: Option<String>,
    parameters: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StorageView {
    columns: Option<Vec<ColumnView>>,
    location: Option<String>,
    input_format: Option<String>,
    output_format: Option<String>,
    parameters: Option<BTreeMap<String, String>>,
}

/// The members of `TableInput` Sluice checks; the others are kept as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableView {
    name: String,
    description: Option<String>,
    owner: Option<String>,
    storage_descriptor: Option<StorageView>,
    partition_keys: Option<Vec<ColumnView>>,
    table_type: Option<String>,
    parameters: Option<BTreeMap<String, String>>,
}

fn check_columns(c: &mut Checker, path: &str, columns: &Option<Vec<ColumnView>>) {
    for (i, column) in columns.iter().flatten().enumerate() {
        let cp = format!("{path}.{}.member", i + 1);
        check_name(c, at(&cp, "Name"), &column.name);
        if let Some(t) = &column.column_type {
            c.string(at(&cp, "Type"), t, 0, 131_072, Some(&TEXT));
        }
        if let Some(comment) = &column.comment {
            c.string(at(&cp, "Comment"), comment, 0, 255, Some(&TEXT));
        }
        check_parameters(c, &at(&cp, "Parameters"), &column.parameters);
    }
}

fn check_database(c: &mut Checker, input: &DatabaseView) {
    let path = "databaseInput";
    check_name(c, at(path, "Name"), &input.name);
    if let Some(d) = &input.description {
        c.string(at(path, "Description"), d, 0, 2048, Some(&TEXT_MULTILINE));
    }
    if let Some(uri) = &input.location_uri {
        c.string(at(path, "LocationUri"), uri, 1, 1024, Some(&TEXT_MULTILINE));
    }
    check_parameters(c, &at(path, "Parameters"), &input.parameters);
}

fn check_table(c: &mut Checker, input: &TableView) {
    let path = "tableInput";
    check_name(c, at(path, "Name"), &input.name);
    if let Some(d) = &input.description {
        c.string(at(path, "Description"), d, 0, 2048, Some(&TEXT_MULTILINE));
    }
    if let Some(owner) = &input.owner {
        check_name(c, at(path, "Owner"), owner);
    }
    if let Some(t) = &input.table_type {
        c.string(at(path, "TableType"), t, 0, 255, None);
    }
    check_parameters(c, &at(path, "Parameters"), &input.parameters);
    check_columns(c, &at(path, "PartitionKeys"), &input.partition_keys);
    if let Some(s) = &input.storage_descriptor {
        let sp = at(path, "StorageDescriptor");
        check_columns(c, &at(&sp, "Columns"), &s.columns);
        if let Some(location) = &s.location {
            c.string(at(&sp, "Location"), location, 0, 2056, Some(&TEXT_MULTILINE));
        }
        for (member, value) in [("InputFormat", &s.input_format), ("OutputFormat", &s.output_format)] {
            if let Some(v) = value {
                c.string(at(&sp, member), v, 0, 128, Some(&TEXT));
            }
        }
        check_parameters(c, &at(&sp, "Parameters"), &s.parameters);
    }
}

/// The body as `T` (an empty body is `{}`): a missing required member is AWS's
/// ValidationException, any other decoding failure a SerializationException.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, GlueError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|error| {
        let text = error.to_string();
        match text.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((member, _)) => GlueError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    at("", member)
                ),
            ),
            None => GlueError::new("SerializationException", text),
        }
    })
}

/// A member kept as sent (an object), read through its typed view for the checks.
fn view<T: DeserializeOwned>(member: &Map<String, Value>) -> Result<T, GlueError> {
    decode(&serde_json::to_vec(member).expect("JSON values serialize"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDatabaseInput {
    catalog_id: Option<String>,
    database_input: Map<String, Value>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    catalog_id: Option<String>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageInput {
    catalog_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableInputRequest {
    catalog_id: Option<String>,
    database_name: String,
    table_input: Option<Map<String, Value>>,
    /// UpdateTable's optimistic lock: the version the caller read.
    version_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableNameInput {
    catalog_id: Option<String>,
    database_name: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TablesInput {
    catalog_id: Option<String>,
    database_name: String,
    expression: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One Glue call, decoded and checked against the model's shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    CreateDatabase { input: Map<String, Value> },
    GetDatabase { name: String },
    GetDatabases { page: Page },
    DeleteDatabase { name: String },
    CreateTable { database: String, input: Map<String, Value> },
    GetTable { database: String, name: String },
    GetTables { database: String, expression: Option<String>, page: Page },
    UpdateTable { database: String, input: Map<String, Value>, version_id: Option<String> },
    DeleteTable { database: String, name: String },
}

/// A page request: after which name, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub size: usize,
}

fn page(c: &mut Checker, next_token: Option<String>, max_results: Option<i64>) -> Page {
    if let Some(n) = max_results {
        c.range("maxResults".into(), n, 1, Some(GLUE_PAGE_SIZE_MAX as i64));
    }
    let size = max_results.map_or(GLUE_PAGE_SIZE_MAX, |n| n.clamp(1, GLUE_PAGE_SIZE_MAX as i64) as usize);
    Page { after: next_token, size }
}

/// Refuses a `CatalogId` other than the node's account: one catalog per node.
fn own_catalog(catalog_id: &Option<String>, account_id: &str) -> Result<(), GlueError> {
    match catalog_id {
        Some(id) if id != account_id => Err(GlueError::new(
            "EntityNotFoundException",
            format!("Catalog {id} not found: this Sluice node holds the Data Catalog of account {account_id} only."),
        )),
        _ => Ok(()),
    }
}

impl Call {
    /// The call an AWS JSON body of `operation` holds, checked as AWS checks it: shape
    /// violations together as one ValidationException, then the catalog id.
    pub fn from_json(operation: Operation, body: &[u8], account_id: &str) -> Result<Call, GlueError> {
        let mut c = Checker::default();
        let (call, catalog_id) = match operation {
            Operation::CreateDatabase => {
                let input: CreateDatabaseInput = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                check_database(&mut c, &view(&input.database_input)?);
                if let Some(tags) = &input.tags {
                    c.count("tags".into(), tags.len(), 0, GLUE_TAGS_MAX);
                }
                (Call::CreateDatabase { input: input.database_input }, input.catalog_id)
            }
            Operation::GetDatabase | Operation::DeleteDatabase => {
                let input: NameInput = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                check_name(&mut c, "name".into(), &input.name);
                let call = if operation == Operation::GetDatabase {
                    Call::GetDatabase { name: input.name }
                } else {
                    Call::DeleteDatabase { name: input.name }
                };
                (call, input.catalog_id)
            }
            Operation::GetDatabases => {
                let input: PageInput = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                (Call::GetDatabases { page: page(&mut c, input.next_token, input.max_results) }, input.catalog_id)
            }
            Operation::CreateTable | Operation::UpdateTable => {
                let input: TableInputRequest = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                check_name(&mut c, "databaseName".into(), &input.database_name);
                // The model leaves TableInput optional (for OpenTableFormatInput, which Sluice
                // does not serve); without it there is no table to create or update.
                let Some(table) = input.table_input else {
                    c.finish()?;
                    return Err(GlueError::invalid("TableInput is required."));
                };
                check_table(&mut c, &view(&table)?);
                if let Some(v) = &input.version_id {
                    c.string("versionId".into(), v, 1, 255, Some(&TEXT));
                }
                let database = input.database_name;
                let call = if operation == Operation::CreateTable {
                    Call::CreateTable { database, input: table }
                } else {
                    Call::UpdateTable { database, input: table, version_id: input.version_id }
                };
                (call, input.catalog_id)
            }
            Operation::GetTable | Operation::DeleteTable => {
                let input: TableNameInput = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                check_name(&mut c, "databaseName".into(), &input.database_name);
                check_name(&mut c, "name".into(), &input.name);
                let (database, name) = (input.database_name, input.name);
                let call = if operation == Operation::GetTable {
                    Call::GetTable { database, name }
                } else {
                    Call::DeleteTable { database, name }
                };
                (call, input.catalog_id)
            }
            Operation::GetTables => {
                let input: TablesInput = decode(body)?;
                check_catalog_id(&mut c, &input.catalog_id);
                check_name(&mut c, "databaseName".into(), &input.database_name);
                if let Some(e) = &input.expression {
                    c.string("expression".into(), e, 0, 2048, Some(&TEXT));
                }
                let page = page(&mut c, input.next_token, input.max_results);
                (
                    Call::GetTables { database: input.database_name, expression: input.expression, page },
                    input.catalog_id,
                )
            }
        };
        c.finish()?;
        own_catalog(&catalog_id, account_id)?;
        Ok(call)
    }

    /// The names the call touches, lower-cased as Glue keeps them: (database, table).
    pub fn resources(&self) -> (Option<String>, Option<String>) {
        let lower = |name: &str| Some(name.to_lowercase());
        let input_name = |input: &Map<String, Value>| input.get("Name").and_then(Value::as_str).and_then(lower);
        match self {
            Call::CreateDatabase { input } => (input_name(input), None),
            Call::GetDatabase { name } | Call::DeleteDatabase { name } => (lower(name), None),
            Call::GetDatabases { .. } => (None, None),
            Call::CreateTable { database, input } | Call::UpdateTable { database, input, .. } => {
                (lower(database), input_name(input))
            }
            Call::GetTable { database, name } | Call::DeleteTable { database, name } => (lower(database), lower(name)),
            Call::GetTables { database, .. } => (lower(database), None),
        }
    }
}

/// A database: `DatabaseInput` as sent (its name lower-cased), its tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub input: Map<String, Value>,
    pub create_ms: i64,
    pub tables: BTreeMap<String, Table>,
}

/// A table: `TableInput` as sent (its name lower-cased), its times and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub input: Map<String, Value>,
    pub create_ms: i64,
    pub update_ms: i64,
    /// `VersionId`: 0 at creation, one more per UpdateTable.
    pub version: u64,
}

/// Why a delivery stream could not read its schema from the catalog: the error output's
/// `errorCode` and `errorMessage` for every record of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub code: &'static str,
    pub message: String,
}

/// A node's Data Catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub databases: BTreeMap<String, Database>,
}

fn seconds(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The page of `names` after `page.after`, and the next page's token if more follow.
fn paged<'a, T>(items: impl Iterator<Item = (&'a String, T)>, page: &Page) -> (Vec<T>, Option<String>) {
    let mut items =
        items.skip_while(|(name, _)| page.after.as_ref().is_some_and(|after| name.as_str() <= after.as_str()));
    let mut out = Vec::new();
    let mut last = None;
    for (name, item) in items.by_ref().take(page.size) {
        last = Some(name.clone());
        out.push(item);
    }
    let more = items.next().is_some();
    (out, if more { last } else { None })
}

impl Catalog {
    fn table_count(&self) -> usize {
        self.databases.values().map(|d| d.tables.len()).sum()
    }

    fn database_mut(&mut self, name: &str) -> Result<&mut Database, GlueError> {
        self.databases.get_mut(&name.to_lowercase()).ok_or_else(|| GlueError::database_not_found(name))
    }

    fn database(&self, name: &str) -> Result<&Database, GlueError> {
        self.databases.get(&name.to_lowercase()).ok_or_else(|| GlueError::database_not_found(name))
    }

    /// Runs `call` at `now_ms` for the catalog of `account_id`: the answer in AWS's JSON shape.
    pub fn run(&mut self, call: Call, account_id: &str, now_ms: i64) -> Result<Value, GlueError> {
        match call {
            Call::CreateDatabase { mut input } => {
                let name = lowered_name(&mut input);
                if self.databases.contains_key(&name) {
                    return Err(GlueError::new("AlreadyExistsException", "Database already exists."));
                }
                if self.databases.len() >= GLUE_DATABASES_MAX {
                    return Err(GlueError::new(
                        "ResourceNumberLimitExceededException",
                        format!("Number of databases exceeds the limit of {GLUE_DATABASES_MAX} of this Sluice node."),
                    ));
                }
                self.databases.insert(name, Database { input, create_ms: now_ms, tables: BTreeMap::new() });
                Ok(json!({}))
            }
            Call::DeleteDatabase { name } => {
                // AWS deletes the database's tables with it.
                self.databases.remove(&name.to_lowercase()).ok_or_else(|| GlueError::database_not_found(&name))?;
                Ok(json!({}))
            }
            Call::CreateTable { database, mut input } => {
                let tables = self.table_count();
                let db = self.database_mut(&database)?;
                let name = lowered_name(&mut input);
                if db.tables.contains_key(&name) {
                    return Err(GlueError::new("AlreadyExistsException", "Table already exists."));
                }
                if tables >= GLUE_TABLES_MAX {
                    return Err(GlueError::new(
                        "ResourceNumberLimitExceededException",
                        format!("Number of tables exceeds the limit of {GLUE_TABLES_MAX} of this Sluice node."),
                    ));
                }
                db.tables.insert(name, Table { input, create_ms: now_ms, update_ms: now_ms, version: 0 });
                Ok(json!({}))
            }
            Call::UpdateTable { database, mut input, version_id } => {
                let db = self.database_mut(&database)?;
                let name = lowered_name(&mut input);
                let table = db.tables.get_mut(&name).ok_or_else(|| GlueError::table_not_found(&name))?;
                if version_id.as_ref().is_some_and(|v| *v != table.version.to_string()) {
                    return Err(GlueError::new(
                        "ConcurrentModificationException",
                        "Update table failed due to concurrent modifications.",
                    ));
                }
                // UpdateTable replaces the definition with `TableInput` whole, as AWS does.
                table.input = input;
                table.version += 1;
                table.update_ms = now_ms;
                Ok(json!({}))
            }
            Call::DeleteTable { database, name } => {
                let db = self.database_mut(&database)?;
                db.tables.remove(&name.to_lowercase()).ok_or_else(|| GlueError::table_not_found(&name))?;
                Ok(json!({}))
            }
            read => self.read(read, account_id),
        }
    }

    /// Answers a call that only reads the catalog (GetDatabase, GetDatabases, GetTable,
    /// GetTables), under a shared lock.
    pub fn read(&self, call: Call, account_id: &str) -> Result<Value, GlueError> {
        match call {
            Call::GetDatabase { name } => Ok(json!({ "Database": self.database(&name)?.describe(account_id) })),
            Call::GetDatabases { page } => {
                let (list, token) = paged(self.databases.iter().map(|(name, d)| (name, d.describe(account_id))), &page);
                let mut answer = json!({ "DatabaseList": list });
                if let Some(token) = token {
                    answer["NextToken"] = json!(token);
                }
                Ok(answer)
            }
            Call::GetTable { database, name } => {
                let db = self.database(&database)?;
                let table = db.tables.get(&name.to_lowercase()).ok_or_else(|| GlueError::table_not_found(&name))?;
                Ok(json!({ "Table": table.describe(db, account_id) }))
            }
            Call::GetTables { database, expression, page } => {
                let db = self.database(&database)?;
                let filter = expression.as_deref().map(expression_regex).transpose()?;
                let matching = db.tables.iter().filter(|(name, _)| filter.as_ref().is_none_or(|re| re.is_match(name)));
                let (list, token) = paged(matching.map(|(name, t)| (name, t.describe(db, account_id))), &page);
                let mut answer = json!({ "TableList": list });
                if let Some(token) = token {
                    answer["NextToken"] = json!(token);
                }
                Ok(answer)
            }
            change => Err(GlueError::new(
                "InternalServiceException",
                format!("{change:?} changes the catalog and cannot run as a read"),
            )),
        }
    }

    /// The columns of the table `database`.`table` (`StorageDescriptor.Columns`) for Parquet
    /// conversion: `version` `None` or `LATEST` is the table as it is now, as AWS reads it
    /// ("any updates to the table are automatically picked up"). Sluice keeps only a table's
    /// latest version, so an older `VersionId` is not found.
    pub fn columns(&self, database: &str, table: &str, version: Option<&str>) -> Result<Vec<Column>, SchemaError> {
        let not_found = |what: String| {
            SchemaError {
            code: "DataFormatConversion.EntityNotFound",
            message: format!(
                "{what} could not be found. Ensure that the table and database exist and that the values provided in the schema configuration are correct."
            ),
        }
        };
        let db =
            self.databases.get(&database.to_lowercase()).ok_or_else(|| not_found(format!("Database {database}")))?;
        let t = db.tables.get(&table.to_lowercase()).ok_or_else(|| not_found(format!("Table {database}.{table}")))?;
        if let Some(v) = version.filter(|v| *v != "LATEST" && *v != t.version.to_string()) {
            return Err(not_found(format!(
                "Version {v} of table {database}.{table} (Sluice keeps only the latest version, {})",
                t.version
            )));
        }
        let invalid = |message: String| SchemaError { code: "DataFormatConversion.InvalidSchema", message };
        let columns = t
            .input
            .get("StorageDescriptor")
            .and_then(|s| s.get("Columns"))
            .cloned()
            .map(serde_json::from_value::<Vec<Column>>)
            .transpose()
            .map_err(|e| invalid(format!("The columns of table {database}.{table} cannot be read: {e}")))?
            .unwrap_or_default();
        if columns.is_empty() {
            return Err(invalid(format!("Table {database}.{table} has no columns (StorageDescriptor.Columns).")));
        }
        Ok(columns)
    }
}

/// Lower-cases `input`'s `Name` in place (Glue keeps names in lower case) and returns it.
fn lowered_name(input: &mut Map<String, Value>) -> String {
    let name = input.get("Name").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    input.insert("Name".into(), json!(name));
    name
}

/// GetTables' `Expression`: a regular expression the whole table name must match.
fn expression_regex(expression: &str) -> Result<Regex, GlueError> {
    regex::RegexBuilder::new(&format!("^(?:{expression})$"))
        .size_limit(GLUE_EXPRESSION_PROGRAM_BYTES_MAX)
        .build()
        .map_err(|e| GlueError::invalid(format!("Expression '{expression}' is not a valid regular expression: {e}")))
}

impl Database {
    /// `Database` as GetDatabase answers it.
    fn describe(&self, account_id: &str) -> Value {
        let mut out = self.input.clone();
        out.insert("CreateTime".into(), seconds(self.create_ms));
        out.insert("CatalogId".into(), json!(account_id));
        Value::Object(out)
    }
}

impl Table {
    /// `Table` as GetTable answers it: `TableInput` as sent, with what Glue adds.
    fn describe(&self, db: &Database, account_id: &str) -> Value {
        let mut out = self.input.clone();
        out.insert("DatabaseName".into(), db.input.get("Name").cloned().unwrap_or(Value::Null));
        out.insert("CreateTime".into(), seconds(self.create_ms));
        out.insert("UpdateTime".into(), seconds(self.update_ms));
        out.insert("IsRegisteredWithLakeFormation".into(), json!(false));
        out.insert("CatalogId".into(), json!(account_id));
        out.insert("VersionId".into(), json!(self.version.to_string()));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "000000000000";

    fn call(catalog: &mut Catalog, operation: Operation, body: Value) -> Result<Value, GlueError> {
        let call = Call::from_json(operation, body.to_string().as_bytes(), ACCOUNT)?;
        catalog.run(call, ACCOUNT, 1_700_000_000_000)
    }

    fn check(result: Result<Value, GlueError>, exception: &str, message: &str) {
        let error = result.expect_err("refused");
        assert_eq!(error.exception, exception, "{error:?}");
        assert!(error.message.contains(message), "{error:?}");
    }

    fn table(name: &str) -> Value {
        json!({"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
               "PartitionKeys": [{"Name": "dt", "Type": "string"}],
               "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint", "Comment": "key"},
                                                  {"Name": "name", "Type": "string"}],
                                     "Location": "s3://lake/events/",
                                     "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})
    }

    #[test]
    fn tables_are_created_read_updated_and_deleted_as_glue_answers() {
        let mut catalog = Catalog::default();
        call(&mut catalog, Operation::CreateDatabase, json!({"DatabaseInput": {"Name": "Analytics"}})).unwrap();
        check(
            call(&mut catalog, Operation::CreateDatabase, json!({"DatabaseInput": {"Name": "analytics"}})),
            "AlreadyExistsException",
            "Database already exists.",
        );
        call(&mut catalog, Operation::CreateTable, json!({"DatabaseName": "analytics", "TableInput": table("Events")}))
            .unwrap();
        check(
            call(
                &mut catalog,
                Operation::CreateTable,
                json!({"DatabaseName": "analytics", "TableInput": table("events")}),
            ),
            "AlreadyExistsException",
            "Table already exists.",
        );
        check(
            call(&mut catalog, Operation::CreateTable, json!({"DatabaseName": "nope", "TableInput": table("t")})),
            "EntityNotFoundException",
            "Database nope not found.",
        );
        let got =
            call(&mut catalog, Operation::GetTable, json!({"DatabaseName": "ANALYTICS", "Name": "EVENTS"})).unwrap();
        let t = &got["Table"];
        assert_eq!(t["Name"], "events");
        assert_eq!(t["DatabaseName"], "analytics");
        assert_eq!(t["VersionId"], "0");
        assert_eq!(t["CatalogId"], ACCOUNT);
        assert_eq!(t["PartitionKeys"][0]["Name"], "dt");
        assert_eq!(t["StorageDescriptor"]["Columns"][0]["Comment"], "key");
        assert_eq!(t["CreateTime"], json!(1_700_000_000.0));
        check(
            call(&mut catalog, Operation::GetTable, json!({"DatabaseName": "analytics", "Name": "x"})),
            "EntityNotFoundException",
            "Table x not found.",
        );
        let mut changed = table("events");
        changed["StorageDescriptor"]["Columns"] = json!([{"Name": "id", "Type": "int"}]);
        check(
            call(
                &mut catalog,
                Operation::UpdateTable,
                json!({"DatabaseName": "analytics", "TableInput": changed, "VersionId": "7"}),
            ),
            "ConcurrentModificationException",
            "concurrent",
        );
        call(
            &mut catalog,
            Operation::UpdateTable,
            json!({"DatabaseName": "analytics", "TableInput": changed, "VersionId": "0"}),
        )
        .unwrap();
        let columns = catalog.columns("analytics", "events", Some("LATEST")).unwrap();
        assert_eq!(columns.len(), 1);
        assert_eq!(columns[0].column_type, "int");
        assert_eq!(
            catalog.columns("analytics", "events", Some("0")).unwrap_err().code,
            "DataFormatConversion.EntityNotFound"
        );
        assert_eq!(
            catalog.columns("analytics", "missing", None).unwrap_err().code,
            "DataFormatConversion.EntityNotFound"
        );
        call(&mut catalog, Operation::DeleteTable, json!({"DatabaseName": "analytics", "Name": "events"})).unwrap();
        check(
            call(&mut catalog, Operation::DeleteTable, json!({"DatabaseName": "analytics", "Name": "events"})),
            "EntityNotFoundException",
            "Table events not found.",
        );
        call(&mut catalog, Operation::DeleteDatabase, json!({"Name": "analytics"})).unwrap();
        check(
            call(&mut catalog, Operation::GetDatabase, json!({"Name": "analytics"})),
            "EntityNotFoundException",
            "Database analytics not found.",
        );
    }

    #[test]
    fn pages_and_expressions_list_tables_in_name_order() {
        let mut catalog = Catalog::default();
        call(&mut catalog, Operation::CreateDatabase, json!({"DatabaseInput": {"Name": "db"}})).unwrap();
        for name in ["a1", "a2", "b1", "a3"] {
            call(&mut catalog, Operation::CreateTable, json!({"DatabaseName": "db", "TableInput": table(name)}))
                .unwrap();
        }
        let first = call(
            &mut catalog,
            Operation::GetTables,
            json!({"DatabaseName": "db", "Expression": "a.*", "MaxResults": 2}),
        )
        .unwrap();
        let names = |v: &Value| {
            v["TableList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["Name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&first), ["a1", "a2"]);
        let token = first["NextToken"].as_str().unwrap();
        let second = call(
            &mut catalog,
            Operation::GetTables,
            json!({"DatabaseName": "db", "Expression": "a.*", "NextToken": token}),
        )
        .unwrap();
        assert_eq!(names(&second), ["a3"]);
        assert!(second.get("NextToken").is_none());
        check(
            call(&mut catalog, Operation::GetTables, json!({"DatabaseName": "db", "Expression": "(("})),
            "InvalidInputException",
            "not a valid regular expression",
        );
    }

    #[test]
    fn shapes_are_checked_as_the_model_says() {
        let mut catalog = Catalog::default();
        let long = "x".repeat(256);
        check(
            call(&mut catalog, Operation::CreateDatabase, json!({"DatabaseInput": {"Name": long}})),
            "ValidationException",
            "at 'databaseInput.name' failed to satisfy constraint: Member must have length less than or equal to 255",
        );
        check(
            call(&mut catalog, Operation::CreateDatabase, json!({})),
            "ValidationException",
            "Value null at 'databaseInput'",
        );
        check(
            call(&mut catalog, Operation::CreateDatabase, json!({"DatabaseInput": {"Name": 3}})),
            "SerializationException",
            "",
        );
        check(
            call(&mut catalog, Operation::GetDatabases, json!({"MaxResults": 101})),
            "ValidationException",
            "Member must have value less than or equal to 100",
        );
        check(
            call(&mut catalog, Operation::GetDatabase, json!({"Name": "a\u{1}b"})),
            "ValidationException",
            "regular expression pattern",
        );
        check(
            call(&mut catalog, Operation::CreateTable, json!({"DatabaseName": "db"})),
            "InvalidInputException",
            "TableInput is required.",
        );
        let mut bad = table("t");
        bad["StorageDescriptor"]["Columns"][1]["Comment"] = json!("c".repeat(256));
        check(
            call(&mut catalog, Operation::CreateTable, json!({"DatabaseName": "db", "TableInput": bad})),
            "ValidationException",
            "tableInput.storageDescriptor.columns.2.member.comment",
        );
        check(
            call(&mut catalog, Operation::GetDatabase, json!({"Name": "db", "CatalogId": "111111111111"})),
            "EntityNotFoundException",
            "Catalog 111111111111 not found",
        );
    }
}

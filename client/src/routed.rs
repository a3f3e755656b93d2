//! A client for a cluster that sends each write straight to its shard's leader (issue 13), as
//! Kafka clients use metadata: [`RoutedClient`].
//!
//! Every node of a cluster takes every request, forwarding a write it does not lead to the
//! member that does (`docs/cluster.md`). That costs a hop, and with `--credentials` or TLS
//! nothing is forwarded at all. This client asks any node for the stream's routing table
//! (DescribeStreamRoutes: the members' native addresses, each open shard's range and leader),
//! keeps one connection per member, and sends PutRecord and PutRecords by hash key (the
//! engine's routing function, [`crate::route_table`]) to the leader. A PutRecords whose records
//! have several leaders is split by leader, the parts sent at once, and the answers put back
//! in the request's order. Everything else (reads, the control plane) goes to one node, the
//! "any" connection: a seed, or the next one once it fails.
//!
//! A table goes stale when leaders move. Then:
//! - a call fails with a retriable error that may mean "not the leader" (InternalFailure,
//!   ServiceUnavailable; a node that cannot forward answers that, naming the leader), or its
//!   connection fails: the table is dropped and the call (or the records that failed) is sent
//!   once more through the any connection, which forwards it; a member whose connection failed
//!   is not tried directly for [`MEMBER_DOWN_MS`], and the tables (which name it) are fetched
//!   again; once no seed answers, the any connection goes to a member a table named;
//! - nothing fails (the old leader forwards after a rebalance): the table is refreshed every
//!   [`ROUTE_TABLE_TTL_MS`] anyway.
//!
//! Retrying a write can store it twice (its first try may have been stored before the failure
//! was seen): Kinesis' at-least-once contract, as for any client that retries.
//!
//! Bounded: tables for at most [`ROUTE_TABLES_MAX`] streams, each at most
//! [`crate::route_table::ROUTE_TABLE_SHARDS_MAX`] shards and
//! [`crate::route_table::ROUTE_TABLE_MEMBERS_MAX`] members (so as many connections, plus the
//! any one); one fetch of a table at a time; two tries per call; every connect and call under
//! a timeout. Like [`Client`], it lives on one glommio executor (`!Send`); clones share it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::sync::Semaphore;
use sluice_model::{
    DescribeStreamRoutesInput, ErrorKind, OperationInput, PutRecordInput, PutRecordOutput, PutRecordsInput,
    PutRecordsOutput, PutRecordsResultEntry, StreamArn,
};
use sluice_protocol::native::EncodeInput;

use crate::auth::ConnectOptions;
use crate::errors::{ClientError, ConnectionError};
use crate::route_table::{self, may_be_stale_route, part_answer, RouteTable, Target};
use crate::Client;

/// A table older than this is fetched again before its next use. Leaders move without any
/// call failing (a rebalance after a node returns: the old leader forwards), so only a refresh
/// finds them; 5 s is a few Raft election timeouts, and one small call per stream per 5 s.
pub const ROUTE_TABLE_TTL_MS: u64 = 5_000;

/// After a table could not be fetched (no node answered, an older sluiced without
/// DescribeStreamRoutes, a missing stream), writes go through the any connection for this long
/// before the table is asked for again: one failed fetch per second, not one per call.
pub const ROUTE_TABLE_RETRY_MS: u64 = 1_000;

/// A table is not dropped for a failure within this long of its fetch. During an election
/// every node answers the same table (no leader yet) for a second or so, and a burst of calls
/// failing at once would otherwise fetch it again once per call.
pub const ROUTE_TABLE_AGE_MIN_MS: u64 = 200;

/// Streams whose tables are kept; past it the oldest is dropped (and fetched again if used).
/// A client writes to a few streams; 64 tables of a few shards each are kilobytes.
pub const ROUTE_TABLES_MAX: usize = 64;

/// A member whose connection failed (refused, timed out, closed) is not tried directly for
/// this long: its writes go through the any connection, which forwards them. So a dead leader
/// costs one failed connect per second, not one per call, until the table names a new one.
pub const MEMBER_DOWN_MS: u64 = 1_000;

/// How long a connection to a member or a seed may take to open. On one network a connect
/// takes well under a millisecond; a partitioned node answers nothing, and this is how long
/// a call waits before going elsewhere.
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// How long one try of a call may take: the KPL's `RequestTimeout` default, 6 s, which the
/// producer's and consumer's transports use too. A PutRecords answer waits for one group
/// commit; seconds without one mean the node is gone or wedged.
pub const CALL_TIMEOUT_MS: u64 = 6_000;

/// Where a routed client starts and how long it waits.
#[derive(Debug, Clone)]
pub struct RoutedConfig {
    /// Native addresses (`host:port`) of one or more nodes, tried in turn for the any
    /// connection and the tables.
    pub seeds: Vec<String>,
    /// Credentials and TLS, for every connection.
    pub options: ConnectOptions,
    pub connect_timeout_ms: u64,
    pub call_timeout_ms: u64,
}

impl RoutedConfig {
    pub fn new(seeds: Vec<String>) -> RoutedConfig {
        RoutedConfig {
            seeds,
            options: ConnectOptions::default(),
            connect_timeout_ms: CONNECT_TIMEOUT_MS,
            call_timeout_ms: CALL_TIMEOUT_MS,
        }
    }
}

/// What the client did, for a caller (the loadgen) to report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoutedStats {
    /// Writes (or parts of a split PutRecords) sent straight to a shard's leader.
    pub direct_calls: u64,
    /// Writes (or parts) sent through the any connection: no leader known, or a retry.
    pub any_calls: u64,
    /// Routing tables fetched (successfully or not).
    pub table_fetches: u64,
    /// Calls (or records) sent again through the any connection after a stale route.
    pub retries: u64,
}

/// A client that writes to each shard's leader. See the module documentation.
#[derive(Clone)]
pub struct RoutedClient {
    inner: Rc<Inner>,
}

struct Inner {
    config: RoutedConfig,
    /// The node everything not routed goes to, and its address.
    any: RefCell<Option<(String, Client)>>,
    /// The seed the next any connection starts from.
    next_seed: Cell<usize>,
    /// One connection per member, by native address.
    members: RefCell<HashMap<String, Client>>,
    /// Every member address a table named (at most `ROUTE_TABLE_MEMBERS_MAX`, newest kept):
    /// where the any connection goes once no seed answers (the seeds may all be dead).
    learned: RefCell<Vec<String>>,
    /// Members not tried directly until the instant given ([`MEMBER_DOWN_MS`]).
    down: RefCell<HashMap<String, Instant>>,
    /// Tables by the stream's name or ARN as the caller names it.
    tables: RefCell<HashMap<String, Cached>>,
    /// One table fetch at a time: a burst of calls that find no table waits for one answer.
    fetching: Semaphore,
    /// Numbers the tables, so a failure drops only the table it was routed by.
    generation: Cell<u64>,
    stats: Cell<RoutedStats>,
    /// Why the last table fetch failed, if it did.
    table_error: RefCell<Option<String>>,
}

struct Cached {
    /// `None`: the fetch failed; writes go through the any connection meanwhile.
    table: Option<Rc<RouteTable>>,
    generation: u64,
    fetched: Instant,
}

impl Cached {
    fn fresh(&self, now: Instant) -> bool {
        let life_ms = if self.table.is_some() { ROUTE_TABLE_TTL_MS } else { ROUTE_TABLE_RETRY_MS };
        now.duration_since(self.fetched) < Duration::from_millis(life_ms)
    }
}

impl RoutedClient {
    /// Connects to the first seed that answers (the any connection). Tables are fetched on
    /// each stream's first write. Must run inside a glommio executor.
    pub async fn connect(config: RoutedConfig) -> Result<RoutedClient, ClientError> {
        if config.seeds.is_empty() {
            return Err(ClientError::Connect {
                addr: String::new(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "a routed client needs a seed address"),
            });
        }
        let client = RoutedClient {
            inner: Rc::new(Inner {
                config,
                any: RefCell::new(None),
                next_seed: Cell::new(0),
                members: RefCell::new(HashMap::new()),
                learned: RefCell::new(Vec::new()),
                down: RefCell::new(HashMap::new()),
                tables: RefCell::new(HashMap::new()),
                fetching: Semaphore::new(1),
                generation: Cell::new(0),
                stats: Cell::new(RoutedStats::default()),
                table_error: RefCell::new(None),
            }),
        };
        client.any().await?;
        Ok(client)
    }

    pub fn stats(&self) -> RoutedStats {
        self.inner.stats.get()
    }

    /// Why the last routing table could not be had (writes went through one node meanwhile),
    /// or `None` if the last fetch worked.
    pub fn table_error(&self) -> Option<String> {
        self.inner.table_error.borrow().clone()
    }

    fn count(&self, change: impl FnOnce(&mut RoutedStats)) {
        let mut stats = self.inner.stats.get();
        change(&mut stats);
        self.inner.stats.set(stats);
    }

    /// The any connection: the one open, or a new one to the next seed (then the members the
    /// tables named) that answers.
    pub async fn any(&self) -> Result<Client, ClientError> {
        self.any_at().await.map(|(_, client)| client)
    }

    /// [`RoutedClient::any`] with the address it is connected to.
    async fn any_at(&self) -> Result<(String, Client), ClientError> {
        if let Some((address, client)) = self.inner.any.borrow().as_ref() {
            if client.connection_error().is_none() {
                return Ok((address.clone(), client.clone()));
            }
        }
        let mut candidates = self.inner.config.seeds.clone();
        let start = self.inner.next_seed.get() % candidates.len();
        candidates.rotate_left(start);
        for address in self.inner.learned.borrow().iter() {
            if !candidates.contains(address) {
                candidates.push(address.clone());
            }
        }
        let mut last_error = None;
        for (tried, address) in candidates.iter().enumerate() {
            match self.open(address).await {
                Ok(client) => {
                    self.inner.next_seed.set(start + tried + 1);
                    *self.inner.any.borrow_mut() = Some((address.clone(), client.clone()));
                    return Ok((address.clone(), client));
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one seed was tried"))
    }

    /// A new connection to `address`, within the connect timeout.
    async fn open(&self, address: &str) -> Result<Client, ClientError> {
        let timeout_ms = self.inner.config.connect_timeout_ms;
        let connect = Client::connect_with(address, &self.inner.config.options);
        let timeout = async {
            glommio::timer::sleep(Duration::from_millis(timeout_ms)).await;
            Err(ClientError::Connect {
                addr: address.to_owned(),
                error: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {timeout_ms} ms"),
                ),
            })
        };
        future::or(connect, timeout).await
    }

    /// The connection to member `address`, opened if need be; `None` if it is marked down or
    /// the members' bound is reached (then the caller goes through the any connection).
    async fn member(&self, address: &str) -> Option<Result<Client, ClientError>> {
        let now = Instant::now();
        if self.inner.down.borrow().get(address).is_some_and(|until| now < *until) {
            return None;
        }
        if let Some(client) = self.inner.members.borrow().get(address) {
            if client.connection_error().is_none() {
                return Some(Ok(client.clone()));
            }
        }
        if self.inner.members.borrow().len() >= route_table::ROUTE_TABLE_MEMBERS_MAX {
            self.inner.members.borrow_mut().retain(|_, client| client.connection_error().is_none());
            if self.inner.members.borrow().len() >= route_table::ROUTE_TABLE_MEMBERS_MAX {
                return None;
            }
        }
        let opened = self.open(address).await;
        match &opened {
            Ok(client) => {
                self.inner.members.borrow_mut().insert(address.to_owned(), client.clone());
            }
            Err(_) => self.mark_down(address),
        }
        Some(opened)
    }

    /// Leaves member `address` alone for [`MEMBER_DOWN_MS`], and drops every table: they name
    /// it as a leader, and one fetched now names another once the survivors elected it. A
    /// member is marked down at most once per [`MEMBER_DOWN_MS`] (it is not tried meanwhile),
    /// so neither are the tables dropped more often for it.
    fn mark_down(&self, address: &str) {
        let now = Instant::now();
        let mut down = self.inner.down.borrow_mut();
        down.retain(|_, until| now < *until);
        if down.len() < route_table::ROUTE_TABLE_MEMBERS_MAX {
            down.insert(address.to_owned(), now + Duration::from_millis(MEMBER_DOWN_MS));
        }
        drop(down);
        self.inner.members.borrow_mut().remove(address);
        self.inner.tables.borrow_mut().clear();
    }

    /// One try of `input` at `target` (a member that is down goes through the any connection),
    /// within the call timeout, and the address it went to (`None`: no node could be reached).
    /// A failed connection is dropped (a member's also marked down).
    async fn call_at<I>(&self, target: &Target, input: &I) -> (Option<String>, Result<I::Output, ClientError>)
    where
        I: OperationInput + EncodeInput,
    {
        let direct = match target {
            Target::Member { address, .. } => self.member(address).await.map(|client| (address.clone(), client)),
            Target::Any => None,
        };
        let (client, direct) = match direct {
            Some((address, client)) => {
                self.count(|stats| stats.direct_calls += 1);
                (client.map(|client| (address, client)), true)
            }
            None => {
                self.count(|stats| stats.any_calls += 1);
                (self.any_at().await, false)
            }
        };
        let (address, client) = match client {
            Ok((address, client)) => (address, client),
            Err(error) => return (None, Err(error)),
        };
        let result = self.timed(client.call(input)).await;
        if matches!(result, Err(ClientError::Connection(_) | ClientError::Connect { .. })) {
            if direct {
                self.mark_down(&address);
            } else {
                self.inner.any.borrow_mut().take();
            }
        }
        (Some(address), result)
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let timeout_ms = self.inner.config.call_timeout_ms;
        let timeout = async {
            glommio::timer::sleep(Duration::from_millis(timeout_ms)).await;
            Err(ClientError::Connection(ConnectionError::Io(std::sync::Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout_ms} ms"),
            )))))
        };
        future::or(call, timeout).await
    }

    /// Calls any operation through the any connection (reads, the control plane), within the
    /// call timeout; a failed connection is dropped, so the next call opens one to the next
    /// seed. Not retried: the caller knows which operations are safe to repeat.
    pub async fn call<I>(&self, input: &I) -> Result<I::Output, ClientError>
    where
        I: OperationInput + EncodeInput,
    {
        let client = self.any().await?;
        let result = self.timed(client.call(input)).await;
        if matches!(result, Err(ClientError::Connection(_))) {
            self.inner.any.borrow_mut().take();
        }
        result
    }

    /// The routing table of a stream (named as in a write), fetched if there is none or it is
    /// older than [`ROUTE_TABLE_TTL_MS`]; `None` while none can be had. Also its generation.
    pub async fn table(
        &self,
        stream_name: Option<&str>,
        stream_arn: Option<&StreamArn>,
    ) -> Option<(Rc<RouteTable>, u64)> {
        let key = stream_key(stream_name, stream_arn)?;
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let _turn = self.inner.fetching.acquire_permit(1).await.ok()?;
        if let Some(known) = self.cached(&key) {
            return known;
        }
        self.count(|stats| stats.table_fetches += 1);
        let input =
            DescribeStreamRoutesInput { stream_name: stream_name.map(str::to_owned), stream_arn: stream_arn.cloned() };
        let fetched = match self.call(&input).await {
            Ok(output) => RouteTable::new(output).map(Rc::new).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let table = fetched.map_err(|why| *self.inner.table_error.borrow_mut() = Some(why)).ok();
        if let Some(table) = &table {
            self.inner.table_error.borrow_mut().take();
            let mut learned = self.inner.learned.borrow_mut();
            for (_, address) in table.addresses() {
                if !learned.iter().any(|known| known == address) {
                    if learned.len() == route_table::ROUTE_TABLE_MEMBERS_MAX {
                        learned.remove(0);
                    }
                    learned.push(address.to_owned());
                }
            }
        }
        let generation = self.inner.generation.get() + 1;
        self.inner.generation.set(generation);
        let mut tables = self.inner.tables.borrow_mut();
        if tables.len() >= ROUTE_TABLES_MAX && !tables.contains_key(&key) {
            let oldest = tables.iter().min_by_key(|(_, cached)| cached.fetched).map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                tables.remove(&oldest);
            }
        }
        tables.insert(key, Cached { table: table.clone(), generation, fetched: Instant::now() });
        table.map(|table| (table, generation))
    }

    /// Drops the stream's table and fetches it again (what [`RoutedClient::table`] returns).
    pub async fn refresh_table(
        &self,
        stream_name: Option<&str>,
        stream_arn: Option<&StreamArn>,
    ) -> Option<(Rc<RouteTable>, u64)> {
        let key = stream_key(stream_name, stream_arn)?;
        self.inner.tables.borrow_mut().remove(&key);
        self.table(stream_name, stream_arn).await
    }

    /// The cached answer for `key` if it is still fresh: `Some(None)` while a failed fetch is
    /// being waited out.
    fn cached(&self, key: &str) -> Option<Option<(Rc<RouteTable>, u64)>> {
        let tables = self.inner.tables.borrow();
        let cached = tables.get(key).filter(|cached| cached.fresh(Instant::now()))?;
        Some(cached.table.clone().map(|table| (table, cached.generation)))
    }

    /// Drops the table of `key` if it is still the one of `generation` (a newer one was
    /// fetched after the failure being reported, and stays) and older than
    /// [`ROUTE_TABLE_AGE_MIN_MS`].
    fn invalidate(&self, stream_name: Option<&str>, stream_arn: Option<&StreamArn>, generation: u64) {
        let Some(key) = stream_key(stream_name, stream_arn) else { return };
        let mut tables = self.inner.tables.borrow_mut();
        let age_min = Duration::from_millis(ROUTE_TABLE_AGE_MIN_MS);
        if tables.get(&key).is_some_and(|cached| cached.generation == generation && cached.fetched.elapsed() >= age_min)
        {
            tables.remove(&key);
        }
    }

    /// PutRecord to the leader of the record's shard; once more through the any connection if
    /// that fails in a way a stale route explains.
    pub async fn put_record(&self, input: &PutRecordInput) -> Result<PutRecordOutput, ClientError> {
        let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
        let table = self.table(name, arn).await;
        let target = match &table {
            Some((table, _)) => table.target(input.partition_key.as_deref(), input.explicit_hash_key),
            None => Target::Any,
        };
        match self.call_at(&target, input).await.1 {
            Err(error) if stale_route(&error) => {
                if let Some((_, generation)) = table {
                    self.invalidate(name, arn, generation);
                }
                self.count(|stats| stats.retries += 1);
                self.call_at(&Target::Any, input).await.1
            }
            result => result,
        }
    }

    /// PutRecords split by the leaders of its records' shards, the parts sent at once and
    /// their answers merged in the request's order; records that failed in a way a stale route
    /// explains are sent once more, together, through the any connection.
    ///
    /// A part refused whole for a reason of the request itself (a missing stream, access
    /// denied, a bad argument) fails the whole call with that error, as one node would have.
    pub async fn put_records(&self, input: &PutRecordsInput) -> Result<PutRecordsOutput, ClientError> {
        self.put_records_answered(input).await.map(|(output, _)| output)
    }

    /// [`RoutedClient::put_records`], and for each record the native address of the node whose
    /// answer it got (`None`: no node could be reached for it).
    pub async fn put_records_answered(
        &self,
        input: &PutRecordsInput,
    ) -> Result<(PutRecordsOutput, Vec<Option<String>>), ClientError> {
        let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
        let table = self.table(name, arn).await;
        let parts = match &table {
            Some((table, _)) => table.split(&input.records),
            None => vec![(Target::Any, (0..input.records.len()).collect())],
        };
        let mut answered_by: Vec<Option<String>> = vec![None; input.records.len()];
        let mut output = match parts.as_slice() {
            [(target, _)] => {
                let (address, answer) = self.call_at(target, input).await;
                answered_by.fill(address);
                let answer = request_error(answer)?;
                route_table::merge(
                    input.records.len(),
                    vec![((0..input.records.len()).collect(), part_answer(input.records.len(), answer))],
                )
            }
            _ => {
                let tasks: Vec<_> = parts
                    .into_iter()
                    .map(|(target, indexes)| {
                        let part = PutRecordsInput {
                            records: indexes.iter().map(|&index| input.records[index].clone()).collect(),
                            stream_name: input.stream_name.clone(),
                            stream_arn: input.stream_arn.clone(),
                        };
                        let client = self.clone();
                        glommio::spawn_local(async move {
                            let (address, answer) = client.call_at(&target, &part).await;
                            (indexes, address, answer)
                        })
                    })
                    .collect();
                let mut answers = Vec::with_capacity(tasks.len());
                for task in tasks {
                    let (indexes, address, answer) = task.await;
                    for &index in &indexes {
                        answered_by[index].clone_from(&address);
                    }
                    let answer = request_error(answer)?;
                    answers.push((indexes.clone(), part_answer(indexes.len(), answer)));
                }
                route_table::merge(input.records.len(), answers)
            }
        };
        let retry: Vec<usize> = output
            .records
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.error_code.is_some_and(may_be_stale_route))
            .map(|(index, _)| index)
            .collect();
        if retry.is_empty() {
            return Ok((output, answered_by));
        }
        if let Some((_, generation)) = table {
            self.invalidate(name, arn, generation);
        }
        self.count(|stats| stats.retries += 1);
        let again = PutRecordsInput {
            records: retry.iter().map(|&index| input.records[index].clone()).collect(),
            stream_name: input.stream_name.clone(),
            stream_arn: input.stream_arn.clone(),
        };
        if let (address, Ok(answer)) = self.call_at(&Target::Any, &again).await {
            if answer.records.len() == retry.len() {
                for (index, entry) in retry.into_iter().zip(answer.records) {
                    output.records[index] = entry;
                    answered_by[index].clone_from(&address);
                }
                let failed = output.records.iter().filter(|entry: &&PutRecordsResultEntry| entry.error_code.is_some());
                output.failed_record_count = Some(failed.count() as i32);
                output.encryption_type = output.encryption_type.or(answer.encryption_type);
            }
        }
        Ok((output, answered_by))
    }
}

/// A table's key: the stream as the caller names it (an ARN and a name are kept apart: the
/// table is the same, fetched once more).
fn stream_key(stream_name: Option<&str>, stream_arn: Option<&StreamArn>) -> Option<String> {
    match (stream_arn, stream_name) {
        (Some(arn), _) => Some(arn.as_str().to_owned()),
        (None, Some(name)) => Some(name.to_owned()),
        (None, None) => None,
    }
}

/// Whether a failed call is worth one more try through the any connection.
fn stale_route(error: &ClientError) -> bool {
    match error {
        ClientError::Connection(_) | ClientError::Connect { .. } => true,
        ClientError::Service(error) => may_be_stale_route(error.kind),
        _ => false,
    }
}

/// A part's answer as [`part_answer`] takes it, or the error that fails the whole call: one of
/// the request itself (not a stale route, not throttling), which every part would get.
fn request_error(
    answer: Result<PutRecordsOutput, ClientError>,
) -> Result<Result<PutRecordsOutput, (Option<ErrorKind>, String)>, ClientError> {
    match answer {
        Ok(output) => Ok(Ok(output)),
        Err(error) if stale_route(&error) || error.code() == Some(ErrorKind::ProvisionedThroughputExceeded) => {
            Ok(Err((error.code(), error.to_string())))
        }
        Err(error) => Err(error),
    }
}

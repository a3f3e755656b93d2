//! The Kinesis operations, with AWS's validation and errors, on top of the per-core runtime.
//!
//! Every operation runs on the core that received the request. Data-plane operations route by
//! the [`Routes`](crate::node::Routes) snapshot and run the shard work on the shard's core;
//! control-plane operations change the catalog on core 0 ([`Core::control`]).

use crate::arn::{self, resolve_stream};
use crate::error::{ErrorKind, ServiceError};
use crate::limits::*;
use crate::model::*;
use crate::node::{Core, Routes, ShardRoute, StreamRoute};
use crate::shard_iterator::{self, IteratorError, ShardIterator};
use base64::Engine as _;
use bytes::Bytes;
use sluice_engine::catalog::{self, CapacityMode, Catalog, ConsumerMeta, ShardMeta, StreamMeta};
use sluice_engine::limits::{
    GET_RECORDS_BYTES_MAX, GET_RECORDS_COUNT_MAX, PARTITION_KEY_CHARS_MAX, PUT_RECORDS_BYTES_MAX,
    PUT_RECORDS_COUNT_MAX, RECORD_BYTES_MAX, RETENTION_HOURS_MAX, RETENTION_HOURS_MIN,
};
use sluice_engine::routing::HashKey;
use sluice_engine::sequence::SequenceNumber;
use sluice_engine::shard_index::FIRST_RECORD_INDEX;
use sluice_engine::{AppendRecord, Appended, StartPosition};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ServiceError>;

/// Times a PutRecords record is routed again after a reshard closed its shard under it.
const PUT_ROUTING_ATTEMPTS_MAX: usize = 4;

fn validation(member: &str, constraint: &str) -> ServiceError {
    ServiceError::validation(format!(
        "1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

/// `shardId-000000000007` → 7.
pub fn parse_shard_id(shard_id: &str) -> Option<u32> {
    let digits = shard_id.strip_prefix("shardId-")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn shard_not_found(shard_id: &str, stream: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "Shard {shard_id} in stream {stream} under account {} does not exist",
        arn::account_id()
    ))
}

/// A pagination token: the last item returned, when, and for which stream.
fn encode_next_token(after: &str, scope: &str, now_ms: i64) -> String {
    let text = format!("{now_ms}\n{scope}\n{after}");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_next_token(token: &str, scope: &str, now_ms: i64) -> Result<String> {
    let invalid =
        || ServiceError::invalid(format!("Invalid NextToken: {}", token.chars().take(64).collect::<String>()));
    if token.len() > 1024 {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (issued, token_scope, after) = (parts.next(), parts.next(), parts.next());
    let issued: i64 = issued.and_then(|issued| issued.parse().ok()).ok_or_else(invalid)?;
    if token_scope != Some(scope) {
        return Err(invalid());
    }
    if now_ms - issued > NEXT_TOKEN_LIFETIME_MS {
        return Err(ServiceError::new(ErrorKind::ExpiredNextToken, "The NextToken has expired"));
    }
    after.map(str::to_string).ok_or_else(invalid)
}

fn page_size(requested: Option<u32>, default: u32, max: u32, member: &str) -> Result<usize> {
    match requested {
        None => Ok(default as usize),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit as usize),
        Some(_) => Err(validation(member, &format!("Member must have value between 1 and {max}"))),
    }
}

fn stream_status(meta: &StreamMeta) -> StreamStatus {
    match meta.status {
        catalog::StreamStatus::Creating => StreamStatus::Creating,
        catalog::StreamStatus::Active => StreamStatus::Active,
        catalog::StreamStatus::Updating => StreamStatus::Updating,
        catalog::StreamStatus::Deleting => StreamStatus::Deleting,
    }
}

fn stream_mode(meta: &StreamMeta) -> StreamMode {
    match meta.mode {
        CapacityMode::Provisioned => StreamMode::Provisioned,
        CapacityMode::OnDemand => StreamMode::OnDemand,
    }
}

fn shard_model(shard: &ShardMeta, stream: &StreamMeta) -> Shard {
    let parent = |number: Option<u32>| number.and_then(|n| stream.shard(n)).map(ShardMeta::shard_id);
    Shard {
        shard_id: shard.shard_id(),
        parent_shard_id: parent(shard.parent_shard_number),
        adjacent_parent_shard_id: parent(shard.adjacent_parent_shard_number),
        hash_key_range: HashKeyRange {
            starting_hash_key: shard.hash_key_start.to_string(),
            ending_hash_key: shard.hash_key_end.to_string(),
        },
        starting_sequence_number: shard.seq_prefix.sequence_number(0).to_string(),
        ending_sequence_number: shard
            .ending_index
            .map(|end| shard.seq_prefix.sequence_number(end.saturating_sub(1)).to_string()),
    }
}

fn consumer_model(stream: &StreamMeta, consumer: &ConsumerMeta) -> Consumer {
    Consumer {
        consumer_name: consumer.name.clone(),
        consumer_arn: arn::consumer_arn(&stream.name, &consumer.name, consumer.created_ms),
        consumer_status: match consumer.status {
            catalog::StreamStatus::Deleting => ConsumerStatus::Deleting,
            catalog::StreamStatus::Creating => ConsumerStatus::Creating,
            _ => ConsumerStatus::Active,
        },
        consumer_creation_timestamp_ms: consumer.created_ms,
        stream_arn: arn::stream_arn(&stream.name),
    }
}

fn validate_tags(tags: &[Tag]) -> Result<()> {
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > TAG_KEY_CHARS_MAX {
            return Err(validation("tags", "Map keys must have length between 1 and 128"));
        }
        if tag.value.as_ref().is_some_and(|value| value.chars().count() > TAG_VALUE_CHARS_MAX) {
            return Err(validation("tags", "Map values must have length less than or equal to 256"));
        }
    }
    Ok(())
}

fn apply_tags(stream: &mut StreamMeta, tags: &[Tag]) -> Result<()> {
    let mut merged = stream.tags.clone();
    for tag in tags {
        merged.insert(tag.key.clone(), tag.value.clone().unwrap_or_default());
    }
    if merged.len() > TAGS_PER_STREAM_MAX {
        return Err(ServiceError::limit(format!("A stream can have at most {TAGS_PER_STREAM_MAX} tags")));
    }
    stream.tags = merged;
    Ok(())
}

fn stream_mut<'c>(catalog: &'c mut Catalog, name: &str) -> Result<&'c mut StreamMeta> {
    catalog.streams.get_mut(name).ok_or_else(|| ServiceError::stream_not_found(name))
}

impl Core {
    fn stream_route(&self, stream: &StreamRef) -> Result<Arc<StreamRoute>> {
        let name = resolve_stream(stream)?;
        self.routes().streams.get(&name).cloned().ok_or_else(|| ServiceError::stream_not_found(&name))
    }

    /// Changes the catalog on core 0: `change` edits a copy; if the copy differs afterwards it
    /// is persisted, published to every core as new routes, and the cores adopt or drop the
    /// shards that moved. Control operations are serialized.
    pub async fn control<T, F>(self: &Rc<Self>, change: F) -> Result<T>
    where
        F: FnOnce(&mut Catalog, i64) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(0, move |core| async move { core.apply_control(change).await }).await?
    }

    async fn apply_control<T, F>(self: Rc<Self>, change: F) -> Result<T>
    where
        F: FnOnce(&mut Catalog, i64) -> Result<T>,
    {
        let _permit = self.control.acquire_permit(1).await.map_err(|_| ServiceError::internal("control closed"))?;
        let catalog = self.catalog.as_ref().expect("control operations run on core 0");
        let mut next = catalog.borrow().clone();
        let result = change(&mut next, self.now_ms())?;
        if next == *catalog.borrow() {
            return Ok(result);
        }
        let (dir, snapshot) = (self.shared.config.data_dir.clone(), next.clone());
        glommio::executor().spawn_blocking(move || snapshot.save(&dir)).await?;
        *catalog.borrow_mut() = next;
        let routes = Arc::new(Routes::from_catalog(&catalog.borrow()));
        let previous = self.shared.routes.swap(routes.clone());
        self.sync_cores(&previous, &routes).await?;
        Ok(result)
    }

    /// Makes every core serve exactly the shards the new routes place on it.
    async fn sync_cores(self: &Rc<Self>, previous: &Routes, next: &Routes) -> Result<()> {
        let shards_by_core = |routes: &Routes| {
            let mut by_core: BTreeMap<usize, Vec<ShardRoute>> = BTreeMap::new();
            for stream in routes.streams.values() {
                for shard in &stream.meta.shards {
                    let route = stream.shard(shard.number).expect("every shard is routed");
                    by_core.entry(route.core).or_default().push(route);
                }
            }
            by_core
        };
        let (before, after) = (shards_by_core(previous), shards_by_core(next));
        for core in 0..self.shared.config.cores {
            let adopt = after.get(&core).cloned().unwrap_or_default();
            let kept: std::collections::HashSet<u64> = adopt.iter().map(|shard| shard.uid).collect();
            let dropped: Vec<u64> = before
                .get(&core)
                .into_iter()
                .flatten()
                .map(|shard| shard.uid)
                .filter(|uid| !kept.contains(uid))
                .collect();
            if before.get(&core) == after.get(&core) {
                continue;
            }
            self.run_on(core, move |core| async move {
                core.drop_shards(&dropped);
                core.adopt_shards(&adopt);
            })
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Stream lifecycle.

    pub async fn create_stream(self: &Rc<Self>, request: CreateStream) -> Result<()> {
        let mode = request.stream_mode.unwrap_or(StreamMode::Provisioned);
        let shard_count = match (mode, request.shard_count) {
            (StreamMode::Provisioned, None) => {
                return Err(ServiceError::invalid("ShardCount is required for streams in PROVISIONED mode"))
            }
            (_, Some(0)) => return Err(validation("shardCount", "Member must have value greater than or equal to 1")),
            (_, Some(count)) if count > SHARDS_PER_STREAM_MAX => {
                return Err(ServiceError::limit(format!("A stream can have at most {SHARDS_PER_STREAM_MAX} shards")))
            }
            (StreamMode::OnDemand, None) => ON_DEMAND_INITIAL_SHARDS,
            (_, Some(count)) => count,
        };
        validate_tags(&request.tags)?;
        if request.tags.len() > TAGS_PER_STREAM_MAX {
            return Err(ServiceError::limit(format!("A stream can have at most {TAGS_PER_STREAM_MAX} tags")));
        }
        self.control(move |catalog, now_ms| {
            if !catalog::is_valid_name(&request.stream_name) {
                return Err(resolve_stream(&StreamRef { stream_name: Some(request.stream_name), stream_arn: None })
                    .unwrap_err());
            }
            if catalog.streams.contains_key(&request.stream_name) {
                return Err(catalog::CatalogError::StreamExists(request.stream_name).into());
            }
            let open: u32 = catalog.streams.values().flat_map(|s| &s.shards).filter(|s| s.is_open()).count() as u32;
            if open + shard_count > SHARD_LIMIT {
                return Err(ServiceError::limit(format!(
                    "This request would exceed the shard limit for the account {}. Current shard count for the account: {open}. Limit: {SHARD_LIMIT}. Number of additional shards that would have resulted from this request: {shard_count}.",
                    arn::account_id()
                )));
            }
            let capacity = match mode {
                StreamMode::Provisioned => CapacityMode::Provisioned,
                StreamMode::OnDemand => {
                    let on_demand = catalog.streams.values().filter(|s| s.mode == CapacityMode::OnDemand).count();
                    if on_demand as u32 >= ON_DEMAND_STREAM_LIMIT {
                        return Err(ServiceError::limit("On-demand stream limit reached"));
                    }
                    CapacityMode::OnDemand
                }
            };
            catalog.create_stream(&request.stream_name, shard_count, capacity, now_ms)?;
            apply_tags(stream_mut(catalog, &request.stream_name)?, &request.tags)
        })
        .await
    }

    pub async fn delete_stream(self: &Rc<Self>, request: DeleteStream) -> Result<()> {
        let name = resolve_stream(&request.stream)?;
        self.control(move |catalog, _| {
            let stream = stream_mut(catalog, &name)?;
            if !stream.consumers.is_empty() && !request.enforce_consumer_deletion {
                return Err(ServiceError::in_use(format!(
                    "Stream {name} has registered consumers; delete them or set EnforceConsumerDeletion"
                )));
            }
            catalog.delete_stream(&name)?;
            Ok(())
        })
        .await
    }

    pub fn describe_stream(&self, request: DescribeStream) -> Result<StreamDescription> {
        let route = self.stream_route(&request.stream)?;
        let limit = page_size(request.limit, DESCRIBE_STREAM_SHARDS_MAX, 10_000, "limit")?
            .min(DESCRIBE_STREAM_SHARDS_MAX as usize);
        let meta = &route.meta;
        let mut shards: Vec<&ShardMeta> = meta.shards.iter().collect();
        shards.sort_by_key(|shard| shard.number);
        let start = match &request.exclusive_start_shard_id {
            Some(id) => {
                let number = parse_shard_id(id)
                    .ok_or_else(|| ServiceError::invalid(format!("Invalid ExclusiveStartShardId {id}")))?;
                shards.partition_point(|shard| shard.number <= number)
            }
            None => 0,
        };
        let page: Vec<Shard> = shards[start..].iter().take(limit).map(|shard| shard_model(shard, meta)).collect();
        Ok(StreamDescription {
            stream_name: meta.name.clone(),
            stream_arn: arn::stream_arn(&meta.name),
            stream_status: stream_status(meta),
            stream_mode: stream_mode(meta),
            has_more_shards: start + page.len() < shards.len(),
            shards: page,
            retention_period_hours: meta.retention_hours,
            stream_creation_timestamp_ms: meta.created_ms,
            shard_level_metrics: meta.shard_level_metrics.iter().cloned().collect(),
        })
    }

    pub fn describe_stream_summary(&self, stream: StreamRef) -> Result<StreamDescriptionSummary> {
        let route = self.stream_route(&stream)?;
        let meta = &route.meta;
        Ok(StreamDescriptionSummary {
            stream_name: meta.name.clone(),
            stream_arn: arn::stream_arn(&meta.name),
            stream_status: stream_status(meta),
            stream_mode: stream_mode(meta),
            retention_period_hours: meta.retention_hours,
            stream_creation_timestamp_ms: meta.created_ms,
            open_shard_count: meta.shards.iter().filter(|shard| shard.is_open()).count() as u32,
            consumer_count: meta.consumers.len() as u32,
            shard_level_metrics: meta.shard_level_metrics.iter().cloned().collect(),
        })
    }

    pub fn list_streams(&self, request: ListStreams) -> Result<ListStreamsOutput> {
        let limit = page_size(request.limit, LIST_STREAMS_DEFAULT, 10_000, "limit")?;
        let after = match (&request.next_token, &request.exclusive_start_stream_name) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid("NextToken and ExclusiveStartStreamName cannot be combined"))
            }
            (Some(token), None) => Some(decode_next_token(token, "streams", self.now_ms())?),
            (None, start) => start.clone(),
        };
        let routes = self.routes();
        let mut names: Vec<&String> = routes.streams.keys().collect();
        names.sort();
        let start = after.map_or(0, |after| names.partition_point(|name| name.as_str() <= after.as_str()));
        let page: Vec<&String> = names[start..].iter().take(limit).copied().collect();
        let has_more_streams = start + page.len() < names.len();
        let stream_summaries = page
            .iter()
            .map(|name| {
                let meta = &routes.streams[*name].meta;
                StreamSummary {
                    stream_name: meta.name.clone(),
                    stream_arn: arn::stream_arn(&meta.name),
                    stream_status: stream_status(meta),
                    stream_mode: stream_mode(meta),
                    stream_creation_timestamp_ms: meta.created_ms,
                }
            })
            .collect();
        let next_token = has_more_streams.then(|| encode_next_token(page.last().unwrap(), "streams", self.now_ms()));
        Ok(ListStreamsOutput {
            stream_names: page.into_iter().cloned().collect(),
            has_more_streams,
            next_token,
            stream_summaries,
        })
    }

    pub fn list_shards(&self, request: ListShards) -> Result<ListShardsOutput> {
        let now_ms = self.now_ms();
        let limit =
            page_size(request.max_results, LIST_SHARDS_MAX, 10_000, "maxResults")?.min(LIST_SHARDS_MAX as usize);
        let (route, after) = match &request.next_token {
            Some(token) => {
                if request.stream.stream_name.is_some()
                    || request.stream.stream_arn.is_some()
                    || request.exclusive_start_shard_id.is_some()
                {
                    return Err(ServiceError::invalid(
                        "NextToken cannot be combined with StreamName, StreamARN or ExclusiveStartShardId",
                    ));
                }
                let scoped = decode_next_token(token, "shards", now_ms)?;
                let (stream, after) =
                    scoped.split_once('\n').ok_or_else(|| ServiceError::invalid("Invalid NextToken"))?;
                let route =
                    self.stream_route(&StreamRef { stream_name: Some(stream.to_string()), stream_arn: None })?;
                (route, Some(after.to_string()))
            }
            None => (self.stream_route(&request.stream)?, request.exclusive_start_shard_id.clone()),
        };
        let meta = &route.meta;
        let mut shards: Vec<&ShardMeta> = meta.shards.iter().collect();
        shards.sort_by_key(|shard| shard.number);
        if let Some(filter) = &request.shard_filter {
            // Each filter keeps the shards that took records at a moment or over a span: the
            // trim horizon is the oldest retained moment, the tip is now.
            let trim_ms = (now_ms - meta.retention_ms()).max(meta.created_ms);
            let at = || filter.timestamp_ms.ok_or_else(|| ServiceError::invalid("ShardFilter needs a Timestamp"));
            match filter.filter_type {
                ShardFilterType::AfterShardId => {
                    let id = filter
                        .shard_id
                        .as_deref()
                        .ok_or_else(|| ServiceError::invalid("ShardFilter AFTER_SHARD_ID needs a ShardId"))?;
                    let number =
                        parse_shard_id(id).ok_or_else(|| ServiceError::invalid(format!("Invalid ShardId {id}")))?;
                    shards.retain(|shard| shard.number > number);
                }
                ShardFilterType::AtTimestamp => {
                    let at = at()?;
                    shards.retain(|shard| shard.open_during(at, at));
                }
                ShardFilterType::FromTimestamp => {
                    let at = at()?;
                    shards.retain(|shard| shard.open_during(at, now_ms));
                }
                ShardFilterType::AtLatest => shards.retain(|shard| shard.is_open()),
                ShardFilterType::AtTrimHorizon => shards.retain(|shard| shard.open_during(trim_ms, trim_ms)),
                ShardFilterType::FromTrimHorizon => shards.retain(|shard| shard.open_during(trim_ms, now_ms)),
            }
        }
        let start = match &after {
            Some(id) => {
                let number = parse_shard_id(id)
                    .ok_or_else(|| ServiceError::invalid(format!("Invalid ExclusiveStartShardId {id}")))?;
                shards.partition_point(|shard| shard.number <= number)
            }
            None => 0,
        };
        let page: Vec<Shard> = shards[start..].iter().take(limit).map(|shard| shard_model(shard, meta)).collect();
        let more = start + page.len() < shards.len();
        let next_token = more
            .then(|| encode_next_token(&format!("{}\n{}", meta.name, page.last().unwrap().shard_id), "shards", now_ms));
        Ok(ListShardsOutput { shards: page, next_token })
    }

    // -----------------------------------------------------------------------------------------
    // Data plane.

    pub async fn put_record(self: &Rc<Self>, request: PutRecord) -> Result<PutRecordOutput> {
        if let Some(ordering) = &request.sequence_number_for_ordering {
            // Per-shard order is arrival order already; the argument only has to be valid.
            SequenceNumber::parse(ordering)
                .map_err(|_| ServiceError::invalid(format!("Invalid SequenceNumberForOrdering {ordering}")))?;
        }
        let mut results = self.put_entries(&request.stream, vec![request.entry]).await?;
        results.pop().expect("one result per record")
    }

    pub async fn put_records(self: &Rc<Self>, request: PutRecords) -> Result<PutRecordsOutput> {
        if request.records.is_empty() || request.records.len() > PUT_RECORDS_COUNT_MAX {
            return Err(validation(
                "records",
                &format!("Member must have length between 1 and {PUT_RECORDS_COUNT_MAX}"),
            ));
        }
        let total: usize = request.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
        if total > PUT_RECORDS_BYTES_MAX {
            return Err(ServiceError::invalid(format!(
                "Records size {total} exceeds the PutRecords limit of {PUT_RECORDS_BYTES_MAX} bytes"
            )));
        }
        let records = self.put_entries(&request.stream, request.records).await?;
        let failed_record_count = records.iter().filter(|record| record.is_err()).count() as u32;
        Ok(PutRecordsOutput { failed_record_count, records })
    }

    /// Routes each record to its shard, appends on each shard's core (all cores at once), and
    /// returns per-record results in request order.
    async fn put_entries(
        self: &Rc<Self>,
        stream: &StreamRef,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordsResultEntry>> {
        let route = self.stream_route(stream)?;
        if matches!(route.meta.status, catalog::StreamStatus::Creating | catalog::StreamStatus::Deleting) {
            return Err(ServiceError::not_found(format!("Stream {} is not active", route.meta.name)));
        }
        let name = route.meta.name.clone();
        // (position in the request, hash key, record without its shard yet)
        let mut unrouted = Vec::with_capacity(entries.len());
        for (position, entry) in entries.into_iter().enumerate() {
            let key_chars = entry.partition_key.chars().count();
            if key_chars == 0 || key_chars > PARTITION_KEY_CHARS_MAX {
                return Err(validation("partitionKey", "Member must have length between 1 and 256"));
            }
            if entry.data.len() + entry.partition_key.len() > RECORD_BYTES_MAX {
                return Err(validation(
                    "data",
                    &format!("Member must have length less than or equal to {RECORD_BYTES_MAX}"),
                ));
            }
            let hash_key = match &entry.explicit_hash_key {
                Some(text) => HashKey::parse_decimal(text)
                    .map_err(|_| ServiceError::invalid(format!("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}")))?,
                None => HashKey::from_partition_key(&entry.partition_key),
            };
            let record =
                AppendRecord { shard_uid: 0, partition_key: Bytes::from(entry.partition_key), data: entry.data };
            unrouted.push((position, hash_key, record));
        }
        let mut results: Vec<Option<PutRecordsResultEntry>> = vec![None; unrouted.len()];
        // A record routed to a shard that a reshard closed meanwhile comes back unanswered and
        // is routed again with the newer routes, which send its key to a child.
        for _attempt in 0..PUT_ROUTING_ATTEMPTS_MAX {
            if unrouted.is_empty() {
                break;
            }
            let route = self.stream_route(&StreamRef { stream_name: Some(name.clone()), stream_arn: None })?;
            // Per core: the records' positions in the request, and the records with their shards.
            type CoreBatch = (Vec<(usize, HashKey)>, Vec<(ShardRoute, AppendRecord)>);
            let mut by_core: BTreeMap<usize, CoreBatch> = BTreeMap::new();
            for (position, hash_key, mut record) in unrouted.drain(..) {
                let shard = route
                    .shard_for(hash_key)
                    .ok_or_else(|| ServiceError::internal("no open shard covers the hash key"))?;
                record.shard_uid = shard.uid;
                let (positions, records) = by_core.entry(shard.core).or_default();
                positions.push((position, hash_key));
                records.push((shard, record));
            }
            let tasks: Vec<_> = by_core
                .into_iter()
                .map(|(core, (positions, records))| {
                    let this = self.clone();
                    let retry: Vec<AppendRecord> = records.iter().map(|(_, record)| record.clone()).collect();
                    let task = glommio::spawn_local(async move {
                        this.run_on(core, move |core| async move { core.append_admitted(records).await }).await
                    });
                    (positions, retry, task)
                })
                .collect();
            for (positions, retry, task) in tasks {
                match task.await {
                    Ok(outcomes) => {
                        for (((position, hash_key), record), outcome) in positions.into_iter().zip(retry).zip(outcomes)
                        {
                            match outcome {
                                Some(outcome) => results[position] = Some(outcome),
                                None => unrouted.push((position, hash_key, record)),
                            }
                        }
                    }
                    Err(error) => {
                        for (position, _) in positions {
                            results[position] = Some(Err(error.clone()));
                        }
                    }
                }
            }
        }
        for (position, _, _) in unrouted {
            results[position] = Some(Err(ServiceError::internal("the stream is resharding; retry")));
        }
        Ok(results.into_iter().map(|result| result.expect("every record has a result")).collect())
    }

    /// On the shards' core: admits each record against its shard's write quota, appends the
    /// admitted ones in one call, and answers per record; `None` for a record whose shard a
    /// reshard closed, which the caller routes again.
    async fn append_admitted(
        self: Rc<Self>,
        records: Vec<(ShardRoute, AppendRecord)>,
    ) -> Vec<Option<PutRecordsResultEntry>> {
        let now_ms = self.now_ms();
        let mut outcomes: Vec<Option<PutRecordsResultEntry>> = vec![None; records.len()];
        let mut admitted = Vec::with_capacity(records.len());
        let mut admitted_at = Vec::with_capacity(records.len());
        {
            let mut limits = self.shard_limits.borrow_mut();
            for (position, (shard, record)) in records.iter().enumerate() {
                if self.journal.is_closed(shard.uid) {
                    continue;
                }
                let bytes = record.data.len() + record.partition_key.len();
                self.note_demand(shard.uid, bytes as u64);
                match limits.get_mut(&shard.uid).map(|limit| limit.admit_write(now_ms, bytes as u64)) {
                    Some(true) => {
                        admitted.push(record.clone());
                        admitted_at.push(position);
                    }
                    Some(false) => {
                        outcomes[position] = Some(Err(ServiceError::throttled(
                            "Rate exceeded for shard in stream under account: the shard's write quota is 1 MiB/s and 1,000 records/s",
                        )))
                    }
                    None => outcomes[position] = Some(Err(ServiceError::internal("shard moved; retry"))),
                }
            }
        }
        if !admitted.is_empty() {
            match self.journal.append(admitted).await {
                Ok(acks) => {
                    for (position, Appended { sequence_number, .. }) in admitted_at.into_iter().zip(acks) {
                        let shard_id = catalog::shard_id(records[position].0.number);
                        outcomes[position] =
                            Some(Ok(PutRecordOutput { shard_id, sequence_number: sequence_number.to_string() }));
                    }
                }
                // Closed while the append waited for queue space: nothing was written.
                Err(sluice_engine::EngineError::ShardClosed(_)) => {}
                Err(error) => {
                    let error = ServiceError::from(error);
                    for position in admitted_at {
                        outcomes[position] = Some(Err(error.clone()));
                    }
                }
            }
        }
        outcomes
    }

    pub async fn get_shard_iterator(self: &Rc<Self>, request: GetShardIterator) -> Result<String> {
        let route = self.stream_route(&request.stream)?;
        let stream_name = route.meta.name.clone();
        let number =
            parse_shard_id(&request.shard_id).ok_or_else(|| shard_not_found(&request.shard_id, &stream_name))?;
        let shard = route.shard(number).ok_or_else(|| shard_not_found(&request.shard_id, &stream_name))?;
        let iterator_type =
            request.shard_iterator_type.ok_or_else(|| validation("shardIteratorType", "Member must not be null"))?;
        let position =
            start_position(iterator_type, request.starting_sequence_number.as_deref(), request.timestamp_ms, &shard)?;
        let record_index = self
            .run_on(shard.core, move |core| async move {
                let admitted = core
                    .shard_limits
                    .borrow_mut()
                    .get_mut(&shard.uid)
                    .map(|l| l.admit_get_shard_iterator(core.now_ms()));
                match admitted {
                    Some(true) => core.journal.resolve(shard.uid, position).map_err(ServiceError::from),
                    Some(false) => {
                        Err(ServiceError::throttled("Rate exceeded for GetShardIterator on shard: 5 calls/s"))
                    }
                    None => Err(ServiceError::internal("shard moved; retry")),
                }
            })
            .await??;
        let iterator = ShardIterator {
            stream_name,
            shard_uid: shard.uid,
            shard_number: shard.number,
            record_index,
            issued_ms: self.now_ms(),
        };
        Ok(shard_iterator::encode(&iterator, &self.shared.iterator_key))
    }

    pub async fn get_records(self: &Rc<Self>, request: GetRecords) -> Result<GetRecordsOutput> {
        let limit = match request.limit {
            None => GET_RECORDS_COUNT_MAX,
            Some(limit) if (1..=GET_RECORDS_COUNT_MAX as u32).contains(&limit) => limit as usize,
            Some(_) => {
                return Err(ServiceError::invalid(format!("Limit must be between 1 and {GET_RECORDS_COUNT_MAX}")))
            }
        };
        let now_ms = self.now_ms();
        let iterator =
            shard_iterator::decode(&request.shard_iterator, &self.shared.iterator_key, now_ms).map_err(|error| {
                match error {
                    IteratorError::Expired { .. } => ServiceError::new(
                        ErrorKind::ExpiredIterator,
                        "Iterator expired. The iterator was created more than 5 minutes ago",
                    ),
                    other => ServiceError::invalid(format!("Invalid ShardIterator: {other}")),
                }
            })?;
        let stream = StreamRef { stream_name: Some(iterator.stream_name.clone()), stream_arn: None };
        let route = self.stream_route(&stream)?;
        let shard = route
            .shard(iterator.shard_number)
            .filter(|shard| shard.uid == iterator.shard_uid)
            .ok_or_else(|| shard_not_found(&catalog::shard_id(iterator.shard_number), &iterator.stream_name))?;
        let from = iterator.record_index;
        let batch = self
            .run_on(shard.core, move |core| async move {
                let now_ms = core.now_ms();
                let admitted =
                    core.shard_limits.borrow_mut().get_mut(&shard.uid).map(|l| l.admit_get_records_call(now_ms));
                match admitted {
                    Some(true) => {}
                    Some(false) => {
                        return Err(ServiceError::throttled(
                            "Rate exceeded for shard: GetRecords allows 5 calls/s and 2 MiB/s per shard",
                        ))
                    }
                    None => return Err(ServiceError::internal("shard moved; retry")),
                }
                let batch = core.journal.read(shard.uid, from, limit, GET_RECORDS_BYTES_MAX).await?;
                let bytes: usize = batch.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
                if let Some(limits) = core.shard_limits.borrow_mut().get_mut(&shard.uid) {
                    limits.charge_read_bytes(core.now_ms(), bytes as u64);
                }
                Ok(batch)
            })
            .await??;
        let records = batch.records.into_iter().map(record_model).collect();
        // A closed shard read to its end has no next iterator; its children come instead.
        let drained = shard.ending_index.is_some_and(|end| batch.next_index >= end);
        if drained {
            return Ok(GetRecordsOutput {
                records,
                next_shard_iterator: None,
                millis_behind_latest: 0,
                child_shards: crate::reshard::child_shards(&route.meta, shard.number),
            });
        }
        let next = ShardIterator { record_index: batch.next_index, issued_ms: now_ms, ..iterator };
        Ok(GetRecordsOutput {
            records,
            next_shard_iterator: Some(shard_iterator::encode(&next, &self.shared.iterator_key)),
            millis_behind_latest: batch.millis_behind_latest,
            child_shards: Vec::new(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Retention and tags.

    pub async fn change_retention(self: &Rc<Self>, request: ChangeRetention, increase: bool) -> Result<()> {
        let name = resolve_stream(&request.stream)?;
        let hours = request
            .retention_period_hours
            .ok_or_else(|| validation("retentionPeriodHours", "Member must not be null"))?;
        if !(RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX).contains(&hours) {
            return Err(ServiceError::invalid(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({hours} hours) is out of range."
            )));
        }
        self.control(move |catalog, _| {
            let current = stream_mut(catalog, &name)?.retention_hours;
            if increase && hours < current {
                return Err(ServiceError::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
                )));
            }
            if !increase && hours > current {
                return Err(ServiceError::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
                )));
            }
            catalog.set_retention(&name, hours)?;
            Ok(())
        })
        .await
    }

    pub async fn add_tags(self: &Rc<Self>, request: AddTagsToStream) -> Result<()> {
        let name = resolve_stream(&request.stream)?;
        if request.tags.is_empty() {
            return Err(validation("tags", "Member must have length greater than or equal to 1"));
        }
        validate_tags(&request.tags)?;
        self.control(move |catalog, _| apply_tags(stream_mut(catalog, &name)?, &request.tags)).await
    }

    pub async fn remove_tags(self: &Rc<Self>, request: RemoveTagsFromStream) -> Result<()> {
        let name = resolve_stream(&request.stream)?;
        if request.tag_keys.is_empty() || request.tag_keys.len() > TAGS_PER_STREAM_MAX {
            return Err(validation("tagKeys", "Member must have length between 1 and 50"));
        }
        self.control(move |catalog, _| {
            let stream = stream_mut(catalog, &name)?;
            for key in &request.tag_keys {
                stream.tags.remove(key);
            }
            Ok(())
        })
        .await
    }

    pub fn list_tags(&self, request: ListTagsForStream) -> Result<ListTagsForStreamOutput> {
        let route = self.stream_route(&request.stream)?;
        let limit = page_size(request.limit, LIST_TAGS_MAX, LIST_TAGS_MAX, "limit")?;
        let tags = &route.meta.tags;
        let after: Vec<(&String, &String)> = match &request.exclusive_start_tag_key {
            Some(start) => {
                tags.range::<String, _>((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded)).collect()
            }
            None => tags.iter().collect(),
        };
        let page = after
            .iter()
            .take(limit)
            .map(|(key, value)| Tag { key: (*key).clone(), value: Some((*value).clone()) })
            .collect();
        Ok(ListTagsForStreamOutput { tags: page, has_more_tags: after.len() > limit })
    }

    pub fn describe_limits(&self) -> DescribeLimitsOutput {
        let routes = self.routes();
        let metas = || routes.streams.values().map(|route| &route.meta);
        DescribeLimitsOutput {
            shard_limit: SHARD_LIMIT,
            open_shard_count: metas().flat_map(|meta| &meta.shards).filter(|shard| shard.is_open()).count() as u32,
            on_demand_stream_count: metas().filter(|meta| meta.mode == CapacityMode::OnDemand).count() as u32,
            on_demand_stream_count_limit: ON_DEMAND_STREAM_LIMIT,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Enhanced fan-out consumers.

    pub async fn register_consumer(self: &Rc<Self>, stream_arn: String, consumer_name: String) -> Result<Consumer> {
        self.register_consumer_tagged(stream_arn, consumer_name, Vec::new()).await
    }

    /// RegisterStreamConsumer with the `Tags` the AWS API accepts.
    pub async fn register_consumer_tagged(
        self: &Rc<Self>,
        stream_arn: String,
        consumer_name: String,
        tags: Vec<Tag>,
    ) -> Result<Consumer> {
        let name = arn::parse_stream_arn(&stream_arn)?;
        if !catalog::is_valid_name(&consumer_name) {
            return Err(validation("consumerName", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"));
        }
        validate_tags(&tags)?;
        if tags.len() > TAGS_PER_STREAM_MAX {
            return Err(ServiceError::limit(format!("A consumer can have at most {TAGS_PER_STREAM_MAX} tags")));
        }
        self.control(move |catalog, now_ms| {
            let stream = stream_mut(catalog, &name)?;
            if stream.consumers.iter().any(|consumer| consumer.name == consumer_name) {
                return Err(ServiceError::in_use(format!("Consumer {consumer_name} already exists for stream {name}")));
            }
            if stream.consumers.len() >= CONSUMERS_PER_STREAM_MAX {
                return Err(ServiceError::limit(format!(
                    "A stream can have at most {CONSUMERS_PER_STREAM_MAX} registered consumers"
                )));
            }
            // Registration is immediate here, so the consumer is ACTIVE at once; AWS reports
            // CREATING for a few seconds first, which clients already poll through.
            let consumer = ConsumerMeta {
                name: consumer_name,
                created_ms: now_ms,
                status: catalog::StreamStatus::Active,
                tags: tags.into_iter().map(|tag| (tag.key, tag.value.unwrap_or_default())).collect(),
            };
            stream.consumers.push(consumer.clone());
            Ok(consumer_model(stream, &consumer))
        })
        .await
    }

    /// Finds a consumer by ARN, or by stream ARN and name: `(stream route, consumer)`.
    pub fn find_consumer(&self, consumer: &ConsumerRef) -> Result<(Arc<StreamRoute>, ConsumerMeta)> {
        let (stream_name, consumer_name, created_s) = match consumer {
            ConsumerRef { consumer_arn: Some(consumer_arn), .. } => {
                let (stream, name, created) = arn::parse_consumer_arn(consumer_arn)?;
                (stream, name, Some(created))
            }
            ConsumerRef { stream_arn: Some(stream_arn), consumer_name: Some(name), consumer_arn: None } => {
                (arn::parse_stream_arn(stream_arn)?, name.clone(), None)
            }
            _ => {
                return Err(ServiceError::invalid(
                    "Either ConsumerARN, or StreamARN and ConsumerName, must be provided",
                ))
            }
        };
        let not_found =
            || ServiceError::not_found(format!("Consumer {consumer_name} under stream {stream_name} not found"));
        let route = self.routes().streams.get(&stream_name).cloned().ok_or_else(not_found)?;
        let found = route
            .meta
            .consumers
            .iter()
            .find(|meta| {
                meta.name == consumer_name && created_s.is_none_or(|created| created == meta.created_ms / 1000)
            })
            .cloned()
            .ok_or_else(not_found)?;
        Ok((route, found))
    }

    pub fn describe_consumer(&self, consumer: ConsumerRef) -> Result<Consumer> {
        let (route, meta) = self.find_consumer(&consumer)?;
        Ok(consumer_model(&route.meta, &meta))
    }

    pub async fn deregister_consumer(self: &Rc<Self>, consumer: ConsumerRef) -> Result<()> {
        let (route, meta) = self.find_consumer(&consumer)?;
        let stream_name = route.meta.name.clone();
        self.control(move |catalog, _| {
            let stream = stream_mut(catalog, &stream_name)?;
            stream.consumers.retain(|existing| existing.name != meta.name);
            Ok(())
        })
        .await
    }

    pub fn list_consumers(&self, request: ListStreamConsumers) -> Result<ListStreamConsumersOutput> {
        let name = arn::parse_stream_arn(&request.stream_arn)?;
        let route = self.stream_route(&StreamRef { stream_name: Some(name.clone()), stream_arn: None })?;
        let limit = page_size(request.max_results, LIST_CONSUMERS_DEFAULT, 10_000, "maxResults")?;
        let mut consumers: Vec<&ConsumerMeta> = route.meta.consumers.iter().collect();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        let start = match &request.next_token {
            Some(token) => {
                let after = decode_next_token(token, &format!("consumers/{name}"), self.now_ms())?;
                consumers.partition_point(|consumer| consumer.name <= after)
            }
            None => 0,
        };
        let page: Vec<Consumer> =
            consumers[start..].iter().take(limit).map(|c| consumer_model(&route.meta, c)).collect();
        let next_token = (start + page.len() < consumers.len()).then(|| {
            encode_next_token(&page.last().unwrap().consumer_name, &format!("consumers/{name}"), self.now_ms())
        });
        Ok(ListStreamConsumersOutput { consumers: page, next_token })
    }
}

/// The shard-level metrics `ALL` stands for (Kinesis `MetricsName`, every value but `ALL`).
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// What a resource ARN names: a stream, or a consumer of one.
enum Resource {
    Stream(String),
    Consumer { stream: String, consumer: String, created_s: i64 },
}

fn parse_resource_arn(resource_arn: &str) -> Result<Resource> {
    if resource_arn.contains("/consumer/") {
        let (stream, consumer, created_s) = arn::parse_consumer_arn(resource_arn)?;
        return Ok(Resource::Consumer { stream, consumer, created_s });
    }
    arn::parse_stream_arn(resource_arn).map(Resource::Stream)
}

fn resource_tags<'c>(catalog: &'c mut Catalog, resource: &Resource) -> Result<&'c mut BTreeMap<String, String>> {
    match resource {
        Resource::Stream(name) => Ok(&mut stream_mut(catalog, name)?.tags),
        Resource::Consumer { stream, consumer, created_s } => {
            let not_found = || ServiceError::not_found(format!("Consumer {consumer} under stream {stream} not found"));
            let meta = catalog.streams.get_mut(stream).ok_or_else(not_found)?;
            let found = meta
                .consumers
                .iter_mut()
                .find(|meta| &meta.name == consumer && meta.created_ms / 1000 == *created_s)
                .ok_or_else(not_found)?;
            Ok(&mut found.tags)
        }
    }
}

fn metric_names(requested: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for metric in requested {
        if metric == "ALL" {
            names.extend(SHARD_LEVEL_METRICS.iter().map(|name| name.to_string()));
        } else if SHARD_LEVEL_METRICS.contains(&metric.as_str()) {
            names.push(metric.clone());
        } else {
            return Err(validation(
                "shardLevelMetrics",
                &format!("Member must satisfy enum value set: [{}, ALL]", SHARD_LEVEL_METRICS.join(", ")),
            ));
        }
    }
    if names.is_empty() {
        return Err(validation("shardLevelMetrics", "Member must have length greater than or equal to 1"));
    }
    Ok(names)
}

impl Core {
    // -----------------------------------------------------------------------------------------
    // Account and metadata operations: tags by ARN, enhanced monitoring, capacity mode.

    /// TagResource: adds or overwrites tags of a stream or a consumer.
    pub async fn tag_resource(self: &Rc<Self>, request: TagResource) -> Result<()> {
        let resource = parse_resource_arn(&request.resource_arn)?;
        if request.tags.is_empty() {
            return Err(validation("tags", "Member must have length greater than or equal to 1"));
        }
        validate_tags(&request.tags)?;
        self.control(move |catalog, _| {
            let tags = resource_tags(catalog, &resource)?;
            let mut merged = tags.clone();
            for tag in request.tags {
                merged.insert(tag.key, tag.value.unwrap_or_default());
            }
            if merged.len() > TAGS_PER_STREAM_MAX {
                return Err(ServiceError::limit(format!("A resource can have at most {TAGS_PER_STREAM_MAX} tags")));
            }
            *tags = merged;
            Ok(())
        })
        .await
    }

    pub async fn untag_resource(self: &Rc<Self>, request: UntagResource) -> Result<()> {
        let resource = parse_resource_arn(&request.resource_arn)?;
        if request.tag_keys.is_empty() {
            return Err(validation("tagKeys", "Member must have length greater than or equal to 1"));
        }
        self.control(move |catalog, _| {
            let tags = resource_tags(catalog, &resource)?;
            for key in &request.tag_keys {
                tags.remove(key);
            }
            Ok(())
        })
        .await
    }

    /// ListTagsForResource: every tag of a stream or a consumer, sorted by key.
    pub fn list_tags_for_resource(&self, resource_arn: &str) -> Result<Vec<Tag>> {
        let tags = match parse_resource_arn(resource_arn)? {
            Resource::Stream(name) => {
                self.stream_route(&StreamRef { stream_name: Some(name), stream_arn: None })?.meta.tags.clone()
            }
            Resource::Consumer { .. } => {
                let consumer = ConsumerRef { consumer_arn: Some(resource_arn.to_string()), ..Default::default() };
                self.find_consumer(&consumer)?.1.tags
            }
        };
        Ok(tags.into_iter().map(|(key, value)| Tag { key, value: Some(value) }).collect())
    }

    /// Enable- or DisableEnhancedMonitoring. Only records the setting (DescribeStream reports
    /// it); the metrics themselves are not produced yet.
    pub async fn set_enhanced_monitoring(
        self: &Rc<Self>,
        request: EnhancedMonitoring,
        enable: bool,
    ) -> Result<EnhancedMonitoringOutput> {
        let name = resolve_stream(&request.stream)?;
        let metrics = metric_names(&request.shard_level_metrics)?;
        self.control(move |catalog, _| {
            let stream = stream_mut(catalog, &name)?;
            if stream.status != catalog::StreamStatus::Active {
                return Err(ServiceError::in_use(format!("Stream {name} is not ACTIVE")));
            }
            let current: Vec<String> = stream.shard_level_metrics.iter().cloned().collect();
            for metric in metrics {
                if enable {
                    stream.shard_level_metrics.insert(metric);
                } else {
                    stream.shard_level_metrics.remove(&metric);
                }
            }
            Ok(EnhancedMonitoringOutput {
                stream_name: name.clone(),
                stream_arn: arn::stream_arn(&name),
                current_shard_level_metrics: current,
                desired_shard_level_metrics: stream.shard_level_metrics.iter().cloned().collect(),
            })
        })
        .await
    }

    /// UpdateStreamMode: PROVISIONED <-> ON_DEMAND, at most twice per rolling 24 hours. The
    /// shards stay as they are: on-demand scaling is not implemented yet.
    pub async fn update_stream_mode(self: &Rc<Self>, request: UpdateStreamMode) -> Result<()> {
        let name = arn::parse_stream_arn(&request.stream_arn)?;
        let mode = match request.stream_mode {
            StreamMode::Provisioned => CapacityMode::Provisioned,
            StreamMode::OnDemand => CapacityMode::OnDemand,
        };
        self.control(move |catalog, now_ms| {
            let on_demand = catalog.streams.values().filter(|s| s.mode == CapacityMode::OnDemand).count() as u32;
            let stream = stream_mut(catalog, &name)?;
            if stream.status != catalog::StreamStatus::Active {
                return Err(ServiceError::in_use(format!("Stream {name} is not ACTIVE")));
            }
            if stream.mode == mode {
                return Err(ServiceError::invalid(format!(
                    "Stream {name} is already in {} mode",
                    if mode == CapacityMode::OnDemand { "ON_DEMAND" } else { "PROVISIONED" }
                )));
            }
            stream.mode_changes_ms.retain(|&at_ms| now_ms - at_ms < STREAM_MODE_CHANGE_WINDOW_MS);
            if stream.mode_changes_ms.len() >= STREAM_MODE_CHANGES_PER_WINDOW_MAX {
                return Err(ServiceError::limit(format!(
                    "Stream {name} has already changed capacity mode {STREAM_MODE_CHANGES_PER_WINDOW_MAX} times in the last 24 hours"
                )));
            }
            if mode == CapacityMode::OnDemand && on_demand >= ON_DEMAND_STREAM_LIMIT {
                return Err(ServiceError::limit("On-demand stream limit reached"));
            }
            stream.mode = mode;
            stream.mode_changes_ms.push(now_ms);
            Ok(())
        })
        .await
    }

    pub fn describe_account_settings(&self) -> AccountSettings {
        AccountSettings { minimum_throughput_billing_commitment_enabled: false }
    }
}

/// Turns an iterator type and its arguments into an engine start position for `shard`.
pub fn start_position(
    iterator_type: ShardIteratorType,
    sequence_number: Option<&str>,
    timestamp_ms: Option<i64>,
    shard: &ShardRoute,
) -> Result<StartPosition> {
    let sequence = || -> Result<u64> {
        let text = sequence_number.ok_or_else(|| {
            ServiceError::invalid("StartingSequenceNumber is required for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER")
        })?;
        let parsed = SequenceNumber::parse(text).map_err(|_| {
            ServiceError::invalid(format!(
                "StartingSequenceNumber {text} used in GetShardIterator on shard {} is not valid",
                catalog::shard_id(shard.number)
            ))
        })?;
        if parsed.shard_prefix() != shard.seq_prefix {
            return Err(ServiceError::invalid(format!(
                "Invalid StartingSequenceNumber. It encodes a different shard than {}",
                catalog::shard_id(shard.number)
            )));
        }
        Ok(parsed.record_index())
    };
    Ok(match iterator_type {
        ShardIteratorType::TrimHorizon => StartPosition::TrimHorizon,
        ShardIteratorType::Latest => StartPosition::Latest,
        ShardIteratorType::AtSequenceNumber => StartPosition::AtIndex(sequence()?.max(FIRST_RECORD_INDEX)),
        ShardIteratorType::AfterSequenceNumber => StartPosition::AfterIndex(sequence()?),
        ShardIteratorType::AtTimestamp => StartPosition::AtTimestamp(
            timestamp_ms.ok_or_else(|| ServiceError::invalid("Timestamp is required for AT_TIMESTAMP"))?,
        ),
    })
}

pub fn record_model(record: sluice_engine::StoredRecord) -> Record {
    Record {
        sequence_number: record.sequence_number.to_string(),
        approximate_arrival_timestamp_ms: record.timestamp_ms,
        data: record.data,
        partition_key: String::from_utf8_lossy(&record.partition_key).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_parse_strictly() {
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        for bad in ["", "shardId-", "7", "shardId-x", "shardId--1", "shardId-99999999999999999999999"] {
            assert_eq!(parse_shard_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn next_tokens_round_trip_expire_and_stay_in_scope() {
        let token = encode_next_token("orders", "streams", 1_000);
        assert_eq!(decode_next_token(&token, "streams", 2_000).unwrap(), "orders");
        assert_eq!(
            decode_next_token(&token, "streams", 1_000 + NEXT_TOKEN_LIFETIME_MS + 1).unwrap_err().kind,
            ErrorKind::ExpiredNextToken
        );
        assert_eq!(decode_next_token(&token, "shards", 2_000).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(decode_next_token("%%%", "streams", 0).unwrap_err().kind, ErrorKind::InvalidArgument);
    }
}

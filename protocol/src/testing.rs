//! proptest strategies for every request and response of the model, for the codecs' round-trip
//! tests. Values respect the model's constraints (names match their patterns, numbers and
//! lengths are in range, ARNs are well formed), so a request survives even the AWS path's
//! shape checker; and they are canonical for every codec (counts a native frame always carries
//! are present, sequence numbers fit the native 128 bits, timestamps survive JSON's seconds).

use bytes::Bytes;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use sluice_model::*;

const PREFIX: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/";

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,24}"
}

fn stream_arn() -> impl Strategy<Value = StreamArn> {
    name().prop_map(|name| StreamArn::from(format!("{PREFIX}{name}")))
}

fn consumer_arn() -> impl Strategy<Value = ConsumerArn> {
    (name(), name(), 0..2_000_000_000i64).prop_map(|(stream, consumer, created)| {
        ConsumerArn::from(format!("{PREFIX}{stream}/consumer/{consumer}:{created}"))
    })
}

fn resource_arn() -> impl Strategy<Value = ResourceArn> {
    prop_oneof![
        stream_arn().prop_map(|arn| ResourceArn::from(arn.as_str())),
        consumer_arn().prop_map(|arn| ResourceArn::from(arn.as_str())),
    ]
}

fn shard_id() -> impl Strategy<Value = ShardId> {
    prop_oneof![any::<u32>().prop_map(ShardId::from_number), "[a-zA-Z0-9_.-]{1,40}".prop_map(ShardId::from)]
}

fn sequence_number() -> impl Strategy<Value = SequenceNumber> {
    any::<u128>().prop_map(SequenceNumber::new)
}

fn hash_key() -> impl Strategy<Value = HashKey> {
    any::<u128>().prop_map(HashKey)
}

/// Within 2096 either side of the epoch: exact through JSON's fractional seconds.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    (-4_000_000_000_000i64..4_000_000_000_000).prop_map(Timestamp::from_epoch_ms)
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{1,24}"
}

fn tags() -> impl Strategy<Value = TagMap> {
    btree_map("[a-zA-Z0-9 _.:/=+@-]{1,16}", "\\PC{0,16}", 1..4)
}

fn tag_keys() -> impl Strategy<Value = Vec<String>> {
    vec("[a-zA-Z0-9_.-]{1,16}", 1..5)
}

fn metrics() -> impl Strategy<Value = Vec<MetricsName>> {
    vec(select(MetricsName::ALL), 1..7)
}

fn page(max: i32) -> impl Strategy<Value = Option<i32>> {
    option::of(1..=max)
}

fn stream_mode() -> impl Strategy<Value = StreamModeDetails> {
    select(StreamMode::ALL).prop_map(StreamModeDetails::from)
}

fn starting_position() -> impl Strategy<Value = StartingPosition> {
    (select(ShardIteratorType::ALL), option::of(sequence_number()), option::of(timestamp()))
        .prop_map(|(r#type, sequence_number, timestamp)| StartingPosition { r#type, sequence_number, timestamp })
}

fn entry() -> impl Strategy<Value = PutRecordsRequestEntry> {
    (data(), option::of(hash_key()), option::of(text())).prop_map(|(data, explicit_hash_key, partition_key)| {
        PutRecordsRequestEntry { data, explicit_hash_key, partition_key }
    })
}

/// Any request, with a well-formed input.
pub fn request() -> BoxedStrategy<Request> {
    let lifecycle = prop_oneof![
        (option::of(name()), tags(), option::of(stream_arn())).prop_map(|(stream_name, tags, stream_arn)| {
            Request::from(AddTagsToStreamInput { stream_name, tags, stream_arn })
        }),
        (name(), option::of(1..10_000i32), option::of(stream_mode()), option::of(tags()), option::of(1024..=10240i32))
            .prop_map(|(stream_name, shard_count, stream_mode_details, tags, max_record_size_in_kib)| {
                Request::from(CreateStreamInput {
                    stream_name,
                    shard_count,
                    stream_mode_details,
                    tags,
                    max_record_size_in_kib,
                })
            }),
        (option::of(name()), any::<i32>(), option::of(stream_arn())).prop_map(|(stream_name, hours, stream_arn)| {
            Request::from(DecreaseStreamRetentionPeriodInput { stream_name, retention_period_hours: hours, stream_arn })
        }),
        (option::of(name()), any::<i32>(), option::of(stream_arn())).prop_map(|(stream_name, hours, stream_arn)| {
            Request::from(IncreaseStreamRetentionPeriodInput { stream_name, retention_period_hours: hours, stream_arn })
        }),
        (option::of(name()), option::of(any::<bool>()), option::of(stream_arn())).prop_map(
            |(stream_name, enforce_consumer_deletion, stream_arn)| {
                Request::from(DeleteStreamInput { stream_name, enforce_consumer_deletion, stream_arn })
            }
        ),
        (option::of(name()), page(10_000), option::of(shard_id()), option::of(stream_arn())).prop_map(
            |(stream_name, limit, exclusive_start_shard_id, stream_arn)| {
                Request::from(DescribeStreamInput { stream_name, limit, exclusive_start_shard_id, stream_arn })
            }
        ),
        (option::of(name()), option::of(stream_arn())).prop_map(|(stream_name, stream_arn)| Request::from(
            DescribeStreamSummaryInput { stream_name, stream_arn }
        )),
        (page(10_000), option::of(name()), option::of(text())).prop_map(
            |(limit, exclusive_start_stream_name, next_token)| {
                Request::from(ListStreamsInput { limit, exclusive_start_stream_name, next_token })
            }
        ),
        (
            option::of(name()),
            option::of(text()),
            option::of(shard_id()),
            page(10_000),
            option::of(timestamp()),
            option::of((select(ShardFilterType::ALL), option::of(shard_id()), option::of(timestamp()))),
            option::of(stream_arn()),
        )
            .prop_map(
                |(stream_name, next_token, exclusive_start_shard_id, max_results, created, filter, stream_arn)| {
                    Request::from(ListShardsInput {
                        stream_name,
                        next_token,
                        exclusive_start_shard_id,
                        max_results,
                        stream_creation_timestamp: created,
                        shard_filter: filter.map(|(r#type, shard_id, timestamp)| ShardFilter {
                            r#type,
                            shard_id,
                            timestamp,
                        }),
                        stream_arn,
                    })
                }
            ),
        Just(Request::from(DescribeLimitsInput {})),
        Just(Request::from(DescribeAccountSettingsInput {})),
    ];
    let data_plane = prop_oneof![
        (
            option::of(name()),
            data(),
            option::of(text()),
            option::of(hash_key()),
            option::of(sequence_number()),
            option::of(stream_arn())
        )
            .prop_map(|(stream_name, data, partition_key, explicit_hash_key, ordering, stream_arn)| {
                Request::from(PutRecordInput {
                    stream_name,
                    data,
                    partition_key,
                    explicit_hash_key,
                    sequence_number_for_ordering: ordering,
                    stream_arn,
                })
            }),
        (vec(entry(), 1..6), option::of(name()), option::of(stream_arn())).prop_map(
            |(records, stream_name, stream_arn)| Request::from(PutRecordsInput { records, stream_name, stream_arn })
        ),
        (
            option::of(name()),
            shard_id(),
            select(ShardIteratorType::ALL),
            option::of(sequence_number()),
            option::of(timestamp()),
            option::of(stream_arn())
        )
            .prop_map(|(stream_name, shard_id, kind, starting_sequence_number, timestamp, stream_arn)| {
                Request::from(GetShardIteratorInput {
                    stream_name,
                    shard_id,
                    shard_iterator_type: kind,
                    starting_sequence_number,
                    timestamp,
                    stream_arn,
                })
            }),
        ("[A-Za-z0-9_-]{1,64}", page(10_000), option::of(stream_arn())).prop_map(
            |(shard_iterator, limit, stream_arn)| Request::from(GetRecordsInput { shard_iterator, limit, stream_arn })
        ),
        (option::of(name()), shard_id(), hash_key(), option::of(stream_arn())).prop_map(
            |(stream_name, shard_to_split, new_starting_hash_key, stream_arn)| {
                Request::from(SplitShardInput { stream_name, shard_to_split, new_starting_hash_key, stream_arn })
            }
        ),
        (option::of(name()), shard_id(), shard_id(), option::of(stream_arn())).prop_map(
            |(stream_name, shard_to_merge, adjacent_shard_to_merge, stream_arn)| {
                Request::from(MergeShardsInput { stream_name, shard_to_merge, adjacent_shard_to_merge, stream_arn })
            }
        ),
        (option::of(name()), 1..20_000i32, option::of(stream_arn())).prop_map(|(stream_name, target, stream_arn)| {
            Request::from(UpdateShardCountInput {
                stream_name,
                target_shard_count: target,
                scaling_type: ScalingType::UniformScaling,
                stream_arn,
            })
        }),
    ];
    let metadata = prop_oneof![
        (option::of(name()), tag_keys(), option::of(stream_arn())).prop_map(|(stream_name, tag_keys, stream_arn)| {
            Request::from(RemoveTagsFromStreamInput { stream_name, tag_keys, stream_arn })
        }),
        (option::of(name()), option::of("[a-z]{1,12}"), page(50), option::of(stream_arn())).prop_map(
            |(stream_name, exclusive_start_tag_key, limit, stream_arn)| {
                Request::from(ListTagsForStreamInput { stream_name, exclusive_start_tag_key, limit, stream_arn })
            }
        ),
        (tags(), resource_arn())
            .prop_map(|(tags, resource_arn)| Request::from(TagResourceInput { tags, resource_arn })),
        (tag_keys(), resource_arn())
            .prop_map(|(tag_keys, resource_arn)| Request::from(UntagResourceInput { tag_keys, resource_arn })),
        resource_arn().prop_map(|resource_arn| Request::from(ListTagsForResourceInput { resource_arn })),
        (option::of(name()), metrics(), option::of(stream_arn())).prop_map(
            |(stream_name, shard_level_metrics, stream_arn)| {
                Request::from(EnableEnhancedMonitoringInput { stream_name, shard_level_metrics, stream_arn })
            }
        ),
        (option::of(name()), metrics(), option::of(stream_arn())).prop_map(
            |(stream_name, shard_level_metrics, stream_arn)| {
                Request::from(DisableEnhancedMonitoringInput { stream_name, shard_level_metrics, stream_arn })
            }
        ),
        (stream_arn(), stream_mode()).prop_map(|(stream_arn, stream_mode_details)| Request::from(
            UpdateStreamModeInput { stream_arn, stream_mode_details }
        )),
    ];
    let consumers = prop_oneof![
        (stream_arn(), name(), option::of(tags())).prop_map(|(stream_arn, consumer_name, tags)| Request::from(
            RegisterStreamConsumerInput { stream_arn, consumer_name, tags }
        )),
        (option::of(stream_arn()), option::of(name()), option::of(consumer_arn())).prop_map(
            |(stream_arn, consumer_name, consumer_arn)| {
                Request::from(DeregisterStreamConsumerInput { stream_arn, consumer_name, consumer_arn })
            }
        ),
        (option::of(stream_arn()), option::of(name()), option::of(consumer_arn())).prop_map(
            |(stream_arn, consumer_name, consumer_arn)| {
                Request::from(DescribeStreamConsumerInput { stream_arn, consumer_name, consumer_arn })
            }
        ),
        (stream_arn(), option::of(text()), page(10_000), option::of(timestamp())).prop_map(
            |(stream_arn, next_token, max_results, stream_creation_timestamp)| {
                Request::from(ListStreamConsumersInput {
                    stream_arn,
                    next_token,
                    max_results,
                    stream_creation_timestamp,
                })
            }
        ),
        (consumer_arn(), shard_id(), starting_position()).prop_map(|(consumer_arn, shard_id, starting_position)| {
            Request::from(SubscribeToShardInput { consumer_arn, shard_id, starting_position })
        }),
    ];
    prop_oneof![lifecycle, data_plane, metadata, consumers].boxed()
}

fn hash_key_range() -> impl Strategy<Value = HashKeyRange> {
    (hash_key(), hash_key())
        .prop_map(|(starting_hash_key, ending_hash_key)| HashKeyRange { starting_hash_key, ending_hash_key })
}

fn shard() -> impl Strategy<Value = Shard> {
    (
        shard_id(),
        option::of(shard_id()),
        option::of(shard_id()),
        hash_key_range(),
        sequence_number(),
        option::of(sequence_number()),
    )
        .prop_map(|(shard_id, parent_shard_id, adjacent_parent_shard_id, hash_key_range, start, end)| Shard {
            shard_id,
            parent_shard_id,
            adjacent_parent_shard_id,
            hash_key_range,
            sequence_number_range: SequenceNumberRange { starting_sequence_number: start, ending_sequence_number: end },
        })
}

fn child_shard() -> impl Strategy<Value = ChildShard> {
    (shard_id(), vec(shard_id(), 1..3), hash_key_range())
        .prop_map(|(shard_id, parent_shards, hash_key_range)| ChildShard { shard_id, parent_shards, hash_key_range })
}

fn record() -> impl Strategy<Value = Record> {
    (sequence_number(), option::of(timestamp()), data(), option::of(text()), option::of(select(EncryptionType::ALL)))
        .prop_map(|(sequence_number, approximate_arrival_timestamp, data, partition_key, encryption_type)| Record {
            sequence_number,
            approximate_arrival_timestamp,
            data,
            partition_key,
            encryption_type,
        })
}

fn enhanced() -> impl Strategy<Value = Vec<EnhancedMetrics>> {
    vec(metrics().prop_map(|shard_level_metrics| EnhancedMetrics { shard_level_metrics }), 0..2)
}

fn consumer() -> impl Strategy<Value = Consumer> {
    (name(), consumer_arn(), select(ConsumerStatus::ALL), timestamp()).prop_map(
        |(consumer_name, consumer_arn, consumer_status, consumer_creation_timestamp)| Consumer {
            consumer_name,
            consumer_arn,
            consumer_status,
            consumer_creation_timestamp,
        },
    )
}

fn tag() -> impl Strategy<Value = Tag> {
    ("[a-z]{1,12}", option::of("\\PC{0,12}")).prop_map(|(key, value)| Tag { key, value })
}

/// One event of a subscription.
pub fn event() -> BoxedStrategy<SubscribeToShardEvent> {
    (vec(record(), 0..4), sequence_number(), 0..i64::MAX, option::of(vec(child_shard(), 0..3)))
        .prop_map(|(records, continuation_sequence_number, millis_behind_latest, child_shards)| SubscribeToShardEvent {
            records,
            continuation_sequence_number,
            millis_behind_latest,
            child_shards,
        })
        .boxed()
}

/// Any response.
pub fn response() -> BoxedStrategy<Response> {
    let empty = select(vec![
        Response::AddTagsToStream(Empty {}),
        Response::CreateStream(Empty {}),
        Response::DecreaseStreamRetentionPeriod(Empty {}),
        Response::DeleteStream(Empty {}),
        Response::DeregisterStreamConsumer(Empty {}),
        Response::IncreaseStreamRetentionPeriod(Empty {}),
        Response::MergeShards(Empty {}),
        Response::RemoveTagsFromStream(Empty {}),
        Response::SplitShard(Empty {}),
        Response::SubscribeToShard(Empty {}),
        Response::TagResource(Empty {}),
        Response::UntagResource(Empty {}),
        Response::UpdateStreamMode(Empty {}),
    ]);
    let streams = prop_oneof![
        (
            name(),
            stream_arn(),
            select(StreamStatus::ALL),
            option::of(stream_mode()),
            vec(shard(), 0..3),
            any::<bool>(),
            any::<i32>(),
            timestamp(),
            enhanced(),
            option::of(select(EncryptionType::ALL)),
            option::of(text())
        )
            .prop_map(
                |(
                    stream_name,
                    stream_arn,
                    status,
                    mode,
                    shards,
                    more,
                    hours,
                    created,
                    enhanced_monitoring,
                    encryption_type,
                    key_id,
                )| {
                    Response::DescribeStream(DescribeStreamOutput {
                        stream_description: StreamDescription {
                            stream_name,
                            stream_arn,
                            stream_status: status,
                            stream_mode_details: mode,
                            shards,
                            has_more_shards: more,
                            retention_period_hours: hours,
                            stream_creation_timestamp: created,
                            enhanced_monitoring,
                            encryption_type,
                            key_id,
                        },
                    })
                }
            ),
        (
            name(),
            stream_arn(),
            select(StreamStatus::ALL),
            option::of(stream_mode()),
            any::<i32>(),
            timestamp(),
            enhanced(),
            any::<i32>(),
            option::of(any::<i32>()),
            option::of(1024..=10240i32)
        )
            .prop_map(
                |(stream_name, stream_arn, status, mode, hours, created, enhanced_monitoring, open, consumers, kib)| {
                    Response::DescribeStreamSummary(DescribeStreamSummaryOutput {
                        stream_description_summary: StreamDescriptionSummary {
                            stream_name,
                            stream_arn,
                            stream_status: status,
                            stream_mode_details: mode,
                            retention_period_hours: hours,
                            stream_creation_timestamp: created,
                            enhanced_monitoring,
                            encryption_type: Some(EncryptionType::None),
                            key_id: None,
                            open_shard_count: open,
                            consumer_count: consumers,
                            // The native schema has neither yet (the AWS codec's own
                            // strategy, `settings_response`, has both).
                            warm_throughput: None,
                            max_record_size_in_kib: kib,
                            record_distribution_strategy: None,
                        },
                    })
                }
            ),
        (
            vec(name(), 0..3),
            any::<bool>(),
            option::of(text()),
            vec(
                (name(), stream_arn(), select(StreamStatus::ALL), option::of(stream_mode()), option::of(timestamp())),
                0..3
            )
        )
            .prop_map(|(stream_names, has_more_streams, next_token, summaries)| {
                Response::ListStreams(ListStreamsOutput {
                    stream_names,
                    has_more_streams,
                    next_token,
                    stream_summaries: summaries
                        .into_iter()
                        .map(
                            |(
                                stream_name,
                                stream_arn,
                                stream_status,
                                stream_mode_details,
                                stream_creation_timestamp,
                            )| StreamSummary {
                                stream_name,
                                stream_arn,
                                stream_status,
                                stream_mode_details,
                                stream_creation_timestamp,
                            },
                        )
                        .collect(),
                })
            }),
        (vec(shard(), 0..4), option::of(text()))
            .prop_map(|(shards, next_token)| Response::ListShards(ListShardsOutput { shards, next_token })),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>()).prop_map(|(a, b, c, d)| {
            Response::DescribeLimits(DescribeLimitsOutput {
                shard_limit: a,
                open_shard_count: b,
                on_demand_stream_count: c,
                on_demand_stream_count_limit: d,
            })
        }),
        (option::of(name()), option::of(any::<i32>()), option::of(any::<i32>()), option::of(stream_arn())).prop_map(
            |(stream_name, current, target, stream_arn)| {
                // The native frame always carries both counts.
                Response::UpdateShardCount(UpdateShardCountOutput {
                    stream_name,
                    current_shard_count: Some(current.unwrap_or_default()),
                    target_shard_count: Some(target.unwrap_or_default()),
                    stream_arn,
                })
            }
        ),
        option::of((
            select(BillingCommitmentStatus::ALL),
            option::of(timestamp()),
            option::of(timestamp()),
            option::of(timestamp())
        ))
        .prop_map(|commitment| {
            Response::DescribeAccountSettings(DescribeAccountSettingsOutput {
                minimum_throughput_billing_commitment: commitment.map(
                    |(status, started_at, ended_at, earliest_allowed_end_at)| MinimumThroughputBillingCommitment {
                        status,
                        started_at,
                        ended_at,
                        earliest_allowed_end_at,
                    },
                ),
            })
        }),
    ];
    let data_plane = prop_oneof![
        (shard_id(), sequence_number(), option::of(select(EncryptionType::ALL))).prop_map(
            |(shard_id, sequence_number, encryption_type)| {
                Response::PutRecord(PutRecordOutput { shard_id, sequence_number, encryption_type })
            }
        ),
        (
            0..500i32,
            vec(
                prop_oneof![
                    (sequence_number(), shard_id()).prop_map(|(sequence_number, shard_id)| PutRecordsResultEntry {
                        sequence_number: Some(sequence_number),
                        shard_id: Some(shard_id),
                        ..Default::default()
                    }),
                    (select(vec![ErrorKind::ProvisionedThroughputExceeded, ErrorKind::InternalFailure]), text())
                        .prop_map(|(kind, message)| PutRecordsResultEntry {
                            error_code: Some(kind),
                            error_message: Some(message),
                            ..Default::default()
                        }),
                ],
                1..5
            ),
            option::of(select(EncryptionType::ALL))
        )
            .prop_map(|(failed, records, encryption_type)| {
                Response::PutRecords(PutRecordsOutput { failed_record_count: Some(failed), records, encryption_type })
            }),
        option::of("[A-Za-z0-9_-]{1,64}")
            .prop_map(|shard_iterator| Response::GetShardIterator(GetShardIteratorOutput { shard_iterator })),
        (
            vec(record(), 0..4),
            option::of("[A-Za-z0-9_-]{1,64}"),
            option::of(0..i64::MAX),
            option::of(vec(child_shard(), 0..3))
        )
            .prop_map(|(records, next_shard_iterator, millis_behind_latest, child_shards)| {
                Response::GetRecords(GetRecordsOutput {
                    records,
                    next_shard_iterator,
                    millis_behind_latest,
                    child_shards,
                })
            }),
    ];
    let metadata = prop_oneof![
        (vec(tag(), 0..4), any::<bool>()).prop_map(|(tags, has_more_tags)| Response::ListTagsForStream(
            ListTagsForStreamOutput { tags, has_more_tags }
        )),
        vec(tag(), 0..4).prop_map(|tags| Response::ListTagsForResource(ListTagsForResourceOutput { tags })),
        (option::of(name()), metrics(), metrics(), option::of(stream_arn())).prop_map(
            |(stream_name, current, desired, stream_arn)| {
                Response::EnableEnhancedMonitoring(EnhancedMonitoringOutput {
                    stream_name,
                    current_shard_level_metrics: current,
                    desired_shard_level_metrics: desired,
                    stream_arn,
                })
            }
        ),
        (option::of(name()), metrics(), metrics(), option::of(stream_arn())).prop_map(
            |(stream_name, current, desired, stream_arn)| {
                Response::DisableEnhancedMonitoring(EnhancedMonitoringOutput {
                    stream_name,
                    current_shard_level_metrics: current,
                    desired_shard_level_metrics: desired,
                    stream_arn,
                })
            }
        ),
        consumer().prop_map(|consumer| Response::RegisterStreamConsumer(RegisterStreamConsumerOutput { consumer })),
        (consumer(), stream_arn()).prop_map(|(consumer, stream_arn)| {
            Response::DescribeStreamConsumer(DescribeStreamConsumerOutput {
                consumer_description: ConsumerDescription {
                    consumer_name: consumer.consumer_name,
                    consumer_arn: consumer.consumer_arn,
                    consumer_status: consumer.consumer_status,
                    consumer_creation_timestamp: consumer.consumer_creation_timestamp,
                    stream_arn,
                },
            })
        }),
        (vec(consumer(), 0..3), option::of(text())).prop_map(|(consumers, next_token)| Response::ListStreamConsumers(
            ListStreamConsumersOutput { consumers, next_token }
        )),
    ];
    prop_oneof![empty, streams, data_plane, metadata].boxed()
}

fn application_arn() -> impl Strategy<Value = String> {
    (name(), name(), 0..2_000_000_000i64)
        .prop_map(|(stream, application, created)| format!("{PREFIX}{stream}/application/{application}:{created}"))
}

/// How a lease request names its application: by ARN, or by stream and name.
type Named = (Option<String>, Option<String>, Option<StreamArn>, Option<String>);

fn named() -> impl Strategy<Value = Named> {
    prop_oneof![
        application_arn().prop_map(|arn| (Some(arn), None, None, None)),
        (name(), name()).prop_map(|(stream, application)| (None, Some(stream), None, Some(application))),
        (stream_arn(), name()).prop_map(|(arn, application)| (None, None, Some(arn), Some(application))),
    ]
}

fn worker() -> impl Strategy<Value = String> {
    "\\PC{1,32}"
}

fn lease_key() -> impl Strategy<Value = String> {
    any::<u32>().prop_map(|n| ShardId::from_number(n).as_str().to_owned())
}

fn initial_position() -> impl Strategy<Value = InitialPosition> {
    prop_oneof![
        Just(InitialPosition { r#type: InitialPositionType::TrimHorizon, timestamp: None }),
        Just(InitialPosition { r#type: InitialPositionType::Latest, timestamp: None }),
        timestamp().prop_map(|t| InitialPosition { r#type: InitialPositionType::AtTimestamp, timestamp: Some(t) }),
    ]
}

/// Any request of Sluice's own operations (consumer-group leases, the routing table).
pub fn sluice_request() -> BoxedStrategy<Request> {
    let checkpoint = prop_oneof![Just("SHARD_END".to_owned()), any::<u128>().prop_map(|n| n.to_string())];
    prop_oneof![
        (option::of(name()), option::of(stream_arn())).prop_map(|(stream_name, stream_arn)| {
            Request::from(DescribeStreamRoutesInput { stream_name, stream_arn })
        }),
        (
            option::of(name()),
            option::of(stream_arn()),
            name(),
            option::of(initial_position()),
            option::of(1_000..=600_000i64)
        )
            .prop_map(
                |(stream_name, stream_arn, application_name, initial_position, lease_duration_millis)| {
                    Request::from(CreateApplicationInput {
                        stream_name,
                        stream_arn,
                        application_name,
                        initial_position,
                        lease_duration_millis,
                    })
                }
            ),
        named().prop_map(|(application_arn, stream_name, stream_arn, application_name)| Request::from(
            DescribeApplicationInput { application_arn, stream_name, stream_arn, application_name }
        )),
        named().prop_map(|(application_arn, stream_name, stream_arn, application_name)| Request::from(
            DeleteApplicationInput { application_arn, stream_name, stream_arn, application_name }
        )),
        (option::of(name()), option::of(stream_arn()), option::of(1..=100i32), option::of("[a-zA-Z0-9]{1,20}"))
            .prop_map(|(stream_name, stream_arn, max_results, next_token)| Request::from(ListApplicationsInput {
                stream_name,
                stream_arn,
                max_results,
                next_token
            })),
        (named(), option::of(1..=10_000i32), option::of("[a-zA-Z0-9]{1,20}")).prop_map(
            |((application_arn, stream_name, stream_arn, application_name), max_results, next_token)| {
                Request::from(ListLeasesInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    max_results,
                    next_token,
                })
            }
        ),
        (named(), lease_key(), worker(), 0..i64::MAX).prop_map(
            |((application_arn, stream_name, stream_arn, application_name), lease_key, worker_id, lease_counter)| {
                Request::from(TakeLeaseInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key,
                    worker_id,
                    lease_counter,
                })
            }
        ),
        (named(), lease_key(), worker(), 0..i64::MAX).prop_map(
            |((application_arn, stream_name, stream_arn, application_name), lease_key, worker_id, lease_counter)| {
                Request::from(RenewLeaseInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key,
                    worker_id,
                    lease_counter,
                })
            }
        ),
        (named(), lease_key(), worker(), 0..i64::MAX).prop_map(
            |((application_arn, stream_name, stream_arn, application_name), lease_key, worker_id, lease_counter)| {
                Request::from(ReleaseLeaseInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key,
                    worker_id,
                    lease_counter,
                })
            }
        ),
        (named(), lease_key(), worker(), worker(), 0..i64::MAX).prop_map(
            |(
                (application_arn, stream_name, stream_arn, application_name),
                lease_key,
                worker_id,
                lease_owner,
                lease_counter,
            )| {
                Request::from(StealLeaseInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key,
                    worker_id,
                    lease_owner,
                    lease_counter,
                })
            }
        ),
        (named(), lease_key(), worker(), 0..i64::MAX, checkpoint, option::of(0..i64::MAX)).prop_map(
            |(
                (application_arn, stream_name, stream_arn, application_name),
                lease_key,
                worker_id,
                lease_counter,
                checkpoint,
                checkpoint_sub_sequence_number,
            )| {
                Request::from(CheckpointLeaseInput {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key,
                    worker_id,
                    lease_counter,
                    checkpoint,
                    checkpoint_sub_sequence_number,
                })
            }
        ),
    ]
    .boxed()
}

fn lease() -> impl Strategy<Value = Lease> {
    (
        lease_key(),
        option::of((worker(), timestamp())),
        0..i64::MAX,
        "SHARD_END|TRIM_HORIZON|[1-9][0-9]{0,36}",
        0..i64::MAX,
        0..i64::MAX,
        vec(lease_key(), 0..3),
        vec(lease_key(), 0..3),
        hash_key_range(),
        any::<bool>(),
    )
        .prop_map(
            |(
                lease_key,
                owner,
                lease_counter,
                checkpoint,
                sub,
                switches,
                parent_shard_ids,
                child_shard_ids,
                hash_key_range,
                shard_closed,
            )| {
                Lease {
                    lease_key,
                    lease_owner: owner.as_ref().map(|(owner, _)| owner.clone()),
                    lease_counter,
                    lease_expiration_timestamp: owner.map(|(_, expires)| expires),
                    checkpoint,
                    checkpoint_sub_sequence_number: sub,
                    owner_switches_since_checkpoint: switches,
                    parent_shard_ids,
                    child_shard_ids,
                    hash_key_range,
                    shard_closed,
                }
            },
        )
}

fn application_description() -> impl Strategy<Value = ApplicationDescription> {
    (
        name(),
        application_arn(),
        select(ApplicationStatus::ALL),
        timestamp(),
        stream_arn(),
        initial_position(),
        1_000..=600_000i64,
        0..10_000i64,
    )
        .prop_map(
            |(
                application_name,
                application_arn,
                application_status,
                created,
                stream_arn,
                initial_position,
                lease_duration_millis,
                lease_count,
            )| {
                ApplicationDescription {
                    application_name,
                    application_arn,
                    application_status,
                    application_creation_timestamp: created,
                    stream_arn,
                    initial_position,
                    lease_duration_millis,
                    lease_count,
                }
            },
        )
}

/// A routing table: members with and without addresses, leaders known and not.
fn stream_routes() -> impl Strategy<Value = DescribeStreamRoutesOutput> {
    let node_id = || 0..=NODE_ID_MAX;
    let member = (node_id(), option::of("[0-9.]{1,15}:[0-9]{1,5}"))
        .prop_map(|(node_id, native_address)| RouteMember { node_id, native_address });
    let shard = (shard_id(), hash_key_range(), option::of(node_id()))
        .prop_map(|(shard_id, hash_key_range, leader_node_id)| ShardRoute { shard_id, hash_key_range, leader_node_id });
    (stream_arn(), timestamp(), node_id(), vec(member, 0..4), vec(shard, 0..6)).prop_map(
        |(stream_arn, stream_creation_timestamp, node_id, members, shards)| DescribeStreamRoutesOutput {
            stream_arn,
            stream_creation_timestamp,
            node_id,
            members,
            shards,
        },
    )
}

/// Any response of Sluice's own operations.
pub fn sluice_response() -> BoxedStrategy<Response> {
    prop_oneof![
        stream_routes().prop_map(Response::DescribeStreamRoutes),
        application_description()
            .prop_map(|d| Response::CreateApplication(ApplicationDescriptionOutput { application_description: d })),
        application_description()
            .prop_map(|d| Response::DescribeApplication(ApplicationDescriptionOutput { application_description: d })),
        Just(Response::DeleteApplication(Empty {})),
        (vec(application_description(), 0..3), option::of(text())).prop_map(|(descriptions, next_token)| {
            let applications = descriptions
                .into_iter()
                .map(|d| ApplicationSummary {
                    application_name: d.application_name,
                    application_arn: d.application_arn,
                    application_status: d.application_status,
                    application_creation_timestamp: d.application_creation_timestamp,
                    stream_arn: d.stream_arn,
                })
                .collect();
            Response::ListApplications(ListApplicationsOutput { applications, next_token })
        }),
        (vec(lease(), 0..3), option::of(text()))
            .prop_map(|(leases, next_token)| Response::ListLeases(ListLeasesOutput { leases, next_token })),
        lease().prop_map(|lease| Response::TakeLease(LeaseOutput { lease })),
        lease().prop_map(|lease| Response::RenewLease(LeaseOutput { lease })),
        lease().prop_map(|lease| Response::ReleaseLease(LeaseOutput { lease })),
        lease().prop_map(|lease| Response::StealLease(LeaseOutput { lease })),
        lease().prop_map(|lease| Response::CheckpointLease(LeaseOutput { lease })),
    ]
    .boxed()
}

/// Every operation has a strategy above: the lists are checked against [`Operation::ALL`].
#[test]
fn the_strategies_cover_every_operation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut requests, mut responses) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for _ in 0..3_000 {
        requests.insert(request().new_tree(&mut runner).unwrap().current().operation());
        responses.insert(response().new_tree(&mut runner).unwrap().current().operation());
        requests.insert(sluice_request().new_tree(&mut runner).unwrap().current().operation());
        responses.insert(sluice_response().new_tree(&mut runner).unwrap().current().operation());
        requests.insert(queue_request().new_tree(&mut runner).unwrap().current().operation());
        responses.insert(queue_response().new_tree(&mut runner).unwrap().current().operation());
        requests.insert(policy_request().new_tree(&mut runner).unwrap().current().operation());
        responses.insert(policy_response().new_tree(&mut runner).unwrap().current().operation());
        requests.insert(settings_request().new_tree(&mut runner).unwrap().current().operation());
        responses.insert(settings_response().new_tree(&mut runner).unwrap().current().operation());
    }
    assert_eq!(requests.len(), Operation::ALL.len(), "requests: {requests:?}");
    assert_eq!(responses.len(), Operation::ALL.len(), "responses: {responses:?}");
}

fn queue_arn() -> impl Strategy<Value = String> {
    any::<u64>().prop_map(|id| format!("arn:aws:kinesis:us-east-1:000000000000:queue/{id:016x}"))
}

fn handle() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,80}"
}

fn queue_attributes() -> impl Strategy<Value = QueueAttributes> {
    let dead_letter = prop_oneof![
        (1..=1_000i32).prop_map(|count| DeadLetterConfiguration {
            target_type: TargetType::BuiltIn,
            max_receive_count: Some(count)
        }),
        Just(DeadLetterConfiguration { target_type: TargetType::None, max_receive_count: None }),
    ];
    (option::of(0..=43_200i32), option::of(dead_letter)).prop_map(
        |(visibility_timeout_seconds, dead_letter_configuration)| QueueAttributes {
            visibility_timeout_seconds,
            dead_letter_configuration,
        },
    )
}

fn queue_stream_configuration() -> impl Strategy<Value = QueueStreamConfiguration> {
    let position = prop_oneof![
        Just(QueueStartingPosition { r#type: QueueStartingPositionType::TrimHorizon, timestamp: None }),
        Just(QueueStartingPosition { r#type: QueueStartingPositionType::Latest, timestamp: None }),
        timestamp()
            .prop_map(|t| QueueStartingPosition { r#type: QueueStartingPositionType::AtTimestamp, timestamp: Some(t) }),
    ];
    (stream_arn(), option::of(position))
        .prop_map(|(stream_arn, starting_position)| QueueStreamConfiguration { stream_arn, starting_position })
}

fn handles() -> impl Strategy<Value = Vec<ReceiptHandleEntry>> {
    vec(handle().prop_map(|receipt_handle| ReceiptHandleEntry { receipt_handle }), 1..=10)
}

fn visibility_entries() -> impl Strategy<Value = Vec<VisibilityEntry>> {
    vec(
        (handle(), 0..=43_200i32).prop_map(|(receipt_handle, visibility_timeout_seconds)| VisibilityEntry {
            receipt_handle,
            visibility_timeout_seconds,
        }),
        1..=10,
    )
}

/// Any request of the Kinesis queue operations (AWS JSON/CBOR only: no native tables yet).
pub fn queue_request() -> BoxedStrategy<Request> {
    let receive = || (queue_arn(), option::of(1..=10i32), option::of(1..=20i32), option::of(0..=43_200i32));
    prop_oneof![
        (name(), vec(queue_stream_configuration(), 1..3), option::of(queue_attributes()), option::of(tags())).prop_map(
            |(queue_name, stream_configuration_list, queue_attributes, tags)| {
                Request::from(CreateQueueInput { queue_name, stream_configuration_list, queue_attributes, tags })
            }
        ),
        queue_arn().prop_map(|queue_arn| Request::from(DescribeQueueInput { queue_arn })),
        queue_arn().prop_map(|queue_arn| Request::from(DeleteQueueInput { queue_arn })),
        (queue_arn(), queue_attributes())
            .prop_map(|(queue_arn, queue_attributes)| Request::from(UpdateQueueInput { queue_arn, queue_attributes })),
        (option::of(1..=10_000i32), option::of(text()), option::of(vec(stream_arn(), 1..3))).prop_map(
            |(max_results, next_token, streams)| {
                let stream_filter = streams.map(|arns| {
                    arns.into_iter()
                        .map(|stream_arn| QueueStreamFilter { stream_arn, stream_creation_timestamp: None })
                        .collect()
                });
                Request::from(ListQueuesInput { max_results, next_token, stream_filter })
            }
        ),
        receive().prop_map(|(queue_arn, limit, wait_time_seconds, visibility_timeout_seconds)| {
            Request::from(ReceiveQueueRecordsInput { queue_arn, limit, wait_time_seconds, visibility_timeout_seconds })
        }),
        receive().prop_map(|(queue_arn, limit, wait_time_seconds, visibility_timeout_seconds)| {
            Request::from(ReceiveDeadLetterQueueRecordsInput {
                queue_arn,
                limit,
                wait_time_seconds,
                visibility_timeout_seconds,
            })
        }),
        (queue_arn(), handles())
            .prop_map(|(queue_arn, entries)| Request::from(AcknowledgeQueueRecordsInput { queue_arn, entries })),
        (queue_arn(), handles()).prop_map(|(queue_arn, entries)| {
            Request::from(AcknowledgeDeadLetterQueueRecordsInput { queue_arn, entries })
        }),
        (queue_arn(), handles())
            .prop_map(|(queue_arn, entries)| Request::from(RestoreDeadLetterQueueRecordsInput { queue_arn, entries })),
        (queue_arn(), visibility_entries())
            .prop_map(|(queue_arn, entries)| Request::from(UpdateQueueRecordsVisibilityInput { queue_arn, entries })),
        (queue_arn(), visibility_entries()).prop_map(|(queue_arn, entries)| {
            Request::from(UpdateDeadLetterQueueRecordsVisibilityInput { queue_arn, entries })
        }),
    ]
    .boxed()
}

fn queue_description() -> impl Strategy<Value = QueueDescription> {
    (name(), queue_arn(), timestamp(), vec(queue_stream_configuration(), 1..3), option::of(queue_attributes()))
        .prop_map(|(queue_name, queue_arn, queue_creation_timestamp, stream_configuration_list, queue_attributes)| {
            QueueDescription {
                queue_name,
                queue_arn,
                queue_status: QueueStatus::Active,
                queue_creation_timestamp,
                stream_configuration_list,
                queue_attributes,
            }
        })
}

fn queue_record() -> impl Strategy<Value = QueueRecord> {
    (handle(), any::<u128>(), option::of(name()), vec(any::<u8>(), 0..64), timestamp(), timestamp(), 0..100i32)
        .prop_map(|(receipt_handle, id, partition_key, data, arrival, first, receive_count)| QueueRecord {
            receipt_handle,
            record_id: id.to_string(),
            partition_key,
            data: Bytes::from(data),
            approximate_arrival_timestamp: arrival,
            first_receive_timestamp: first,
            receive_count,
        })
}

fn entries_output() -> impl Strategy<Value = QueueEntriesOutput> {
    let failed = (handle(), select(vec!["InvalidArgumentException", "ResourceNotFoundException"]), option::of(text()))
        .prop_map(|(receipt_handle, code, error_message)| QueueEntryError {
            receipt_handle,
            error_code: code.to_owned(),
            error_message,
        });
    (vec(handle().prop_map(|receipt_handle| ReceiptHandleEntry { receipt_handle }), 0..4), vec(failed, 0..4))
        .prop_map(|(successful, failed)| QueueEntriesOutput { successful, failed })
}

/// Any response of the Kinesis queue operations.
pub fn queue_response() -> BoxedStrategy<Response> {
    let description = || queue_description().prop_map(|queue_description| QueueDescriptionOutput { queue_description });
    let records = || vec(queue_record(), 0..4).prop_map(|queue_records| QueueRecordsOutput { queue_records });
    prop_oneof![
        description().prop_map(Response::CreateQueue),
        description().prop_map(Response::DescribeQueue),
        description().prop_map(Response::UpdateQueue),
        Just(Response::DeleteQueue(Empty {})),
        (vec(queue_description(), 0..3), option::of(text())).prop_map(|(descriptions, next_token)| {
            let queue_summaries = descriptions
                .into_iter()
                .map(|d| QueueSummary {
                    queue_name: d.queue_name,
                    queue_arn: d.queue_arn,
                    queue_status: d.queue_status,
                    queue_creation_timestamp: d.queue_creation_timestamp,
                    streams: d
                        .stream_configuration_list
                        .into_iter()
                        .map(|c| QueueStreamIdentifier {
                            stream_arn: c.stream_arn,
                            stream_creation_timestamp: d.queue_creation_timestamp,
                        })
                        .collect(),
                })
                .collect();
            Response::ListQueues(ListQueuesOutput { queue_summaries, next_token })
        }),
        records().prop_map(Response::ReceiveQueueRecords),
        records().prop_map(Response::ReceiveDeadLetterQueueRecords),
        entries_output().prop_map(Response::AcknowledgeQueueRecords),
        entries_output().prop_map(Response::AcknowledgeDeadLetterQueueRecords),
        entries_output().prop_map(Response::RestoreDeadLetterQueueRecords),
        entries_output().prop_map(Response::UpdateQueueRecordsVisibility),
        entries_output().prop_map(Response::UpdateDeadLetterQueueRecordsVisibility),
    ]
    .boxed()
}

/// A policy document's text: any JSON-ish text (the codec carries it as an opaque string; the
/// server parses it).
fn policy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kinesis:*"}]}"#
                .to_string()
        ),
        text(),
    ]
}

/// Any request of the resource-policy operations.
pub fn policy_request() -> BoxedStrategy<Request> {
    let stream_id = || option::of("[a-z0-9]{20}-[a-z0-9]{3}");
    prop_oneof![
        (resource_arn(), policy_text(), stream_id()).prop_map(|(resource_arn, policy, stream_id)| {
            Request::from(PutResourcePolicyInput { resource_arn, policy, stream_id })
        }),
        (resource_arn(), stream_id())
            .prop_map(|(resource_arn, stream_id)| Request::from(GetResourcePolicyInput { resource_arn, stream_id })),
        (resource_arn(), stream_id())
            .prop_map(|(resource_arn, stream_id)| Request::from(DeleteResourcePolicyInput { resource_arn, stream_id })),
    ]
    .boxed()
}

fn warm_throughput() -> impl Strategy<Value = WarmThroughput> {
    (option::of(0..=10_240i32), option::of(0..=10_240i32))
        .prop_map(|(target_mi_bps, current_mi_bps)| WarmThroughput { target_mi_bps, current_mi_bps })
}

/// Any request of the stream and account settings, encryption included.
pub fn settings_request() -> BoxedStrategy<Request> {
    prop_oneof![
        (option::of(stream_arn()), 1024..=10_240i32).prop_map(|(stream_arn, max_record_size_in_kib)| {
            Request::from(UpdateMaxRecordSizeInput { stream_arn, max_record_size_in_kib })
        }),
        (option::of(stream_arn()), option::of(name()), 0..=10_240i32).prop_map(
            |(stream_arn, stream_name, warm_throughput_mi_bps)| {
                Request::from(UpdateStreamWarmThroughputInput { stream_arn, stream_name, warm_throughput_mi_bps })
            }
        ),
        (stream_arn(), select(RecordDistributionStrategy::ALL)).prop_map(
            |(stream_arn, record_distribution_strategy)| {
                Request::from(UpdateStreamRecordDistributionStrategyInput { stream_arn, record_distribution_strategy })
            }
        ),
        select(BillingCommitmentInputStatus::ALL).prop_map(|status| {
            Request::from(UpdateAccountSettingsInput {
                minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput { status },
            })
        }),
        (option::of(name()), option::of(stream_arn()), select(EncryptionType::ALL), "[a-zA-Z0-9/:_-]{1,64}").prop_map(
            |(stream_name, stream_arn, encryption_type, key_id)| {
                Request::from(StartStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn })
            }
        ),
        (option::of(name()), option::of(stream_arn()), select(EncryptionType::ALL), "[a-zA-Z0-9/:_-]{1,64}").prop_map(
            |(stream_name, stream_arn, encryption_type, key_id)| {
                Request::from(StopStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn })
            }
        ),
    ]
    .boxed()
}

/// Any response of the resource-policy operations.
pub fn policy_response() -> BoxedStrategy<Response> {
    prop_oneof![
        policy_text().prop_map(|policy| Response::GetResourcePolicy(GetResourcePolicyOutput { policy })),
        Just(Response::PutResourcePolicy(Empty {})),
        Just(Response::DeleteResourcePolicy(Empty {})),
    ]
    .boxed()
}

/// Any response of the stream and account settings, and a DescribeStreamSummary with the
/// members they set (warm throughput, record distribution).
pub fn settings_response() -> BoxedStrategy<Response> {
    prop_oneof![
        Just(Response::UpdateMaxRecordSize(Empty {})),
        Just(Response::UpdateStreamRecordDistributionStrategy(Empty {})),
        Just(Response::StartStreamEncryption(Empty {})),
        Just(Response::StopStreamEncryption(Empty {})),
        (option::of(stream_arn()), option::of(name()), option::of(warm_throughput())).prop_map(
            |(stream_arn, stream_name, warm_throughput)| {
                Response::UpdateStreamWarmThroughput(UpdateStreamWarmThroughputOutput {
                    stream_arn,
                    stream_name,
                    warm_throughput,
                })
            }
        ),
        option::of((select(BillingCommitmentStatus::ALL), option::of(timestamp()), option::of(timestamp()))).prop_map(
            |commitment| {
                Response::UpdateAccountSettings(UpdateAccountSettingsOutput {
                    minimum_throughput_billing_commitment: commitment.map(|(status, started_at, earliest)| {
                        MinimumThroughputBillingCommitment {
                            status,
                            started_at,
                            ended_at: None,
                            earliest_allowed_end_at: earliest,
                        }
                    }),
                })
            }
        ),
        (name(), stream_arn(), option::of(warm_throughput()), option::of(select(RecordDistributionStrategy::ALL)))
            .prop_map(|(stream_name, stream_arn, warm_throughput, record_distribution_strategy)| {
                Response::DescribeStreamSummary(DescribeStreamSummaryOutput {
                    stream_description_summary: StreamDescriptionSummary {
                        stream_name,
                        stream_arn,
                        stream_status: StreamStatus::Active,
                        stream_mode_details: Some(StreamModeDetails::from(StreamMode::OnDemand)),
                        retention_period_hours: 24,
                        stream_creation_timestamp: Timestamp::from_epoch_ms(1_700_000_000_000),
                        enhanced_monitoring: Vec::new(),
                        encryption_type: Some(EncryptionType::None),
                        key_id: None,
                        open_shard_count: 4,
                        consumer_count: Some(0),
                        warm_throughput,
                        max_record_size_in_kib: Some(10_240),
                        record_distribution_strategy,
                    },
                })
            }),
    ]
    .boxed()
}

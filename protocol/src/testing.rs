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
                            max_record_size_in_kib: kib,
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
    }
    assert_eq!(requests.len(), Operation::ALL.len(), "requests: {requests:?}");
    assert_eq!(responses.len(), Operation::ALL.len(), "responses: {responses:?}");
}

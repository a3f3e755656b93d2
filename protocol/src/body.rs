//! The link between the `RequestBody` / `ResponseBody` unions and their tables.
//!
//! flatc generates one `body_as_*` accessor per union member, which leaves a server to
//! compare tags and unwrap options. This module turns a decoded envelope into an enum to
//! `match` on exhaustively ([`RequestBodyRef`], [`ResponseBodyRef`]), and tells the encoders
//! which tag belongs to a table ([`RequestBodyTable`], [`ResponseBodyTable`]) so a body can
//! never be sent under the wrong tag. Both borrow the frame: nothing is copied.
//!
//! The member lists below must name every member of the unions in the schema; the test
//! `every_union_member_has_a_variant` fails when one is missing.

use crate::wire::{self, Request, RequestBody, Response, ResponseBody};

/// A request table that can be the body of a [`Request`]: ties the table type to its tag.
pub trait RequestBodyTable {
    /// The union tag of this table in `RequestBody`.
    const BODY_TYPE: RequestBody;
}

/// A response table that can be the body of a [`Response`]: ties the table type to its tag.
pub trait ResponseBodyTable {
    /// The union tag of this table in `ResponseBody`.
    const BODY_TYPE: ResponseBody;
}

/// Declares the body enum of one envelope, its constructor and the body-table trait impls
/// from one list of (variant, table, accessor) triples, so the three cannot disagree.
macro_rules! body_kinds {
    (
        $(#[$enum_meta:meta])*
        enum $ref_enum:ident for $envelope:ident, union $union:ident, trait $trait:ident {
            $( $variant:ident($table:ident) = $accessor:ident, )*
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum $ref_enum<'a> {
            $( $variant(wire::$table<'a>), )*
            /// No body, or a union tag this build does not know (a peer built from a newer
            /// schema). The tag is kept for the error message.
            Unknown($union),
        }

        impl<'a> $ref_enum<'a> {
            /// The body of a decoded envelope.
            pub fn of(envelope: &$envelope<'a>) -> Self {
                $(
                    if let Some(table) = envelope.$accessor() {
                        return Self::$variant(table);
                    }
                )*
                Self::Unknown(envelope.body_type())
            }
        }

        $(
            impl $trait for wire::$table<'_> {
                const BODY_TYPE: $union = $union::$table;
            }
        )*

        #[cfg(test)]
        impl $ref_enum<'_> {
            /// Every union tag that has a variant, for the completeness test.
            pub(crate) const KNOWN_TAGS: &'static [$union] = &[$( $union::$table, )*];
        }
    };
}

body_kinds! {
    /// The body of a [`Request`], borrowed from its frame.
    enum RequestBodyRef for Request, union RequestBody, trait RequestBodyTable {
        CreateStream(CreateStreamRequest) = body_as_create_stream_request,
        DeleteStream(DeleteStreamRequest) = body_as_delete_stream_request,
        DescribeStream(DescribeStreamRequest) = body_as_describe_stream_request,
        DescribeStreamSummary(DescribeStreamSummaryRequest) = body_as_describe_stream_summary_request,
        ListStreams(ListStreamsRequest) = body_as_list_streams_request,
        ListShards(ListShardsRequest) = body_as_list_shards_request,
        PutRecord(PutRecordRequest) = body_as_put_record_request,
        PutRecords(PutRecordsRequest) = body_as_put_records_request,
        GetShardIterator(GetShardIteratorRequest) = body_as_get_shard_iterator_request,
        GetRecords(GetRecordsRequest) = body_as_get_records_request,
        IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodRequest) = body_as_increase_stream_retention_period_request,
        DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodRequest) = body_as_decrease_stream_retention_period_request,
        AddTagsToStream(AddTagsToStreamRequest) = body_as_add_tags_to_stream_request,
        RemoveTagsFromStream(RemoveTagsFromStreamRequest) = body_as_remove_tags_from_stream_request,
        ListTagsForStream(ListTagsForStreamRequest) = body_as_list_tags_for_stream_request,
        DescribeLimits(DescribeLimitsRequest) = body_as_describe_limits_request,
        RegisterStreamConsumer(RegisterStreamConsumerRequest) = body_as_register_stream_consumer_request,
        DeregisterStreamConsumer(DeregisterStreamConsumerRequest) = body_as_deregister_stream_consumer_request,
        DescribeStreamConsumer(DescribeStreamConsumerRequest) = body_as_describe_stream_consumer_request,
        ListStreamConsumers(ListStreamConsumersRequest) = body_as_list_stream_consumers_request,
        SubscribeToShard(SubscribeToShardRequest) = body_as_subscribe_to_shard_request,
        SplitShard(SplitShardRequest) = body_as_split_shard_request,
        MergeShards(MergeShardsRequest) = body_as_merge_shards_request,
        UpdateShardCount(UpdateShardCountRequest) = body_as_update_shard_count_request,
        TagResource(TagResourceRequest) = body_as_tag_resource_request,
        UntagResource(UntagResourceRequest) = body_as_untag_resource_request,
        ListTagsForResource(ListTagsForResourceRequest) = body_as_list_tags_for_resource_request,
        EnableEnhancedMonitoring(EnableEnhancedMonitoringRequest) = body_as_enable_enhanced_monitoring_request,
        DisableEnhancedMonitoring(DisableEnhancedMonitoringRequest) = body_as_disable_enhanced_monitoring_request,
        UpdateStreamMode(UpdateStreamModeRequest) = body_as_update_stream_mode_request,
        DescribeAccountSettings(DescribeAccountSettingsRequest) = body_as_describe_account_settings_request,
        Hello(HelloRequest) = body_as_hello_request,
        Authenticate(AuthenticateRequest) = body_as_authenticate_request,
        CreateApplication(CreateApplicationRequest) = body_as_create_application_request,
        DescribeApplication(DescribeApplicationRequest) = body_as_describe_application_request,
        ListApplications(ListApplicationsRequest) = body_as_list_applications_request,
        DeleteApplication(DeleteApplicationRequest) = body_as_delete_application_request,
        ListLeases(ListLeasesRequest) = body_as_list_leases_request,
        TakeLease(TakeLeaseRequest) = body_as_take_lease_request,
        RenewLease(RenewLeaseRequest) = body_as_renew_lease_request,
        ReleaseLease(ReleaseLeaseRequest) = body_as_release_lease_request,
        StealLease(StealLeaseRequest) = body_as_steal_lease_request,
        CheckpointLease(CheckpointLeaseRequest) = body_as_checkpoint_lease_request,
        CreateDeliveryStream(CreateDeliveryStreamRequest) = body_as_create_delivery_stream_request,
        DeleteDeliveryStream(DeleteDeliveryStreamRequest) = body_as_delete_delivery_stream_request,
        DescribeDeliveryStream(DescribeDeliveryStreamRequest) = body_as_describe_delivery_stream_request,
        ListDeliveryStreams(ListDeliveryStreamsRequest) = body_as_list_delivery_streams_request,
        FirehosePutRecord(FirehosePutRecordRequest) = body_as_firehose_put_record_request,
        PutRecordBatch(PutRecordBatchRequest) = body_as_put_record_batch_request,
        UpdateDestination(UpdateDestinationRequest) = body_as_update_destination_request,
        TagDeliveryStream(TagDeliveryStreamRequest) = body_as_tag_delivery_stream_request,
        UntagDeliveryStream(UntagDeliveryStreamRequest) = body_as_untag_delivery_stream_request,
        ListTagsForDeliveryStream(ListTagsForDeliveryStreamRequest) = body_as_list_tags_for_delivery_stream_request,
        StartDeliveryStreamEncryption(StartDeliveryStreamEncryptionRequest) = body_as_start_delivery_stream_encryption_request,
        StopDeliveryStreamEncryption(StopDeliveryStreamEncryptionRequest) = body_as_stop_delivery_stream_encryption_request,
        DescribeStreamRoutes(DescribeStreamRoutesRequest) = body_as_describe_stream_routes_request,
        UpdateMaxRecordSize(UpdateMaxRecordSizeRequest) = body_as_update_max_record_size_request,
        UpdateStreamWarmThroughput(UpdateStreamWarmThroughputRequest) = body_as_update_stream_warm_throughput_request,
        UpdateStreamRecordDistributionStrategy(UpdateStreamRecordDistributionStrategyRequest) = body_as_update_stream_record_distribution_strategy_request,
        UpdateAccountSettings(UpdateAccountSettingsRequest) = body_as_update_account_settings_request,
        PutResourcePolicy(PutResourcePolicyRequest) = body_as_put_resource_policy_request,
        GetResourcePolicy(GetResourcePolicyRequest) = body_as_get_resource_policy_request,
        DeleteResourcePolicy(DeleteResourcePolicyRequest) = body_as_delete_resource_policy_request,
        StartStreamEncryption(StartStreamEncryptionRequest) = body_as_start_stream_encryption_request,
        StopStreamEncryption(StopStreamEncryptionRequest) = body_as_stop_stream_encryption_request,
        Forwarded(ForwardedRequest) = body_as_forwarded_request,
    }
}

body_kinds! {
    /// The body of a successful [`Response`], borrowed from its frame. An error response has
    /// no body (`Unknown(ResponseBody::NONE)`); read [`Response::error`] first.
    enum ResponseBodyRef for Response, union ResponseBody, trait ResponseBodyTable {
        CreateStream(CreateStreamResponse) = body_as_create_stream_response,
        DeleteStream(DeleteStreamResponse) = body_as_delete_stream_response,
        DescribeStream(DescribeStreamResponse) = body_as_describe_stream_response,
        DescribeStreamSummary(DescribeStreamSummaryResponse) = body_as_describe_stream_summary_response,
        ListStreams(ListStreamsResponse) = body_as_list_streams_response,
        ListShards(ListShardsResponse) = body_as_list_shards_response,
        PutRecord(PutRecordResponse) = body_as_put_record_response,
        PutRecords(PutRecordsResponse) = body_as_put_records_response,
        GetShardIterator(GetShardIteratorResponse) = body_as_get_shard_iterator_response,
        GetRecords(GetRecordsResponse) = body_as_get_records_response,
        IncreaseStreamRetentionPeriod(IncreaseStreamRetentionPeriodResponse) = body_as_increase_stream_retention_period_response,
        DecreaseStreamRetentionPeriod(DecreaseStreamRetentionPeriodResponse) = body_as_decrease_stream_retention_period_response,
        AddTagsToStream(AddTagsToStreamResponse) = body_as_add_tags_to_stream_response,
        RemoveTagsFromStream(RemoveTagsFromStreamResponse) = body_as_remove_tags_from_stream_response,
        ListTagsForStream(ListTagsForStreamResponse) = body_as_list_tags_for_stream_response,
        DescribeLimits(DescribeLimitsResponse) = body_as_describe_limits_response,
        RegisterStreamConsumer(RegisterStreamConsumerResponse) = body_as_register_stream_consumer_response,
        DeregisterStreamConsumer(DeregisterStreamConsumerResponse) = body_as_deregister_stream_consumer_response,
        DescribeStreamConsumer(DescribeStreamConsumerResponse) = body_as_describe_stream_consumer_response,
        ListStreamConsumers(ListStreamConsumersResponse) = body_as_list_stream_consumers_response,
        SubscribeToShard(SubscribeToShardResponse) = body_as_subscribe_to_shard_response,
        SubscribeToShardEvent(SubscribeToShardEvent) = body_as_subscribe_to_shard_event,
        SubscribeToShardEnd(SubscribeToShardEnd) = body_as_subscribe_to_shard_end,
        SplitShard(SplitShardResponse) = body_as_split_shard_response,
        MergeShards(MergeShardsResponse) = body_as_merge_shards_response,
        UpdateShardCount(UpdateShardCountResponse) = body_as_update_shard_count_response,
        TagResource(TagResourceResponse) = body_as_tag_resource_response,
        UntagResource(UntagResourceResponse) = body_as_untag_resource_response,
        ListTagsForResource(ListTagsForResourceResponse) = body_as_list_tags_for_resource_response,
        EnableEnhancedMonitoring(EnableEnhancedMonitoringResponse) = body_as_enable_enhanced_monitoring_response,
        DisableEnhancedMonitoring(DisableEnhancedMonitoringResponse) = body_as_disable_enhanced_monitoring_response,
        UpdateStreamMode(UpdateStreamModeResponse) = body_as_update_stream_mode_response,
        DescribeAccountSettings(DescribeAccountSettingsResponse) = body_as_describe_account_settings_response,
        Hello(HelloResponse) = body_as_hello_response,
        Authenticate(AuthenticateResponse) = body_as_authenticate_response,
        CreateApplication(CreateApplicationResponse) = body_as_create_application_response,
        DescribeApplication(DescribeApplicationResponse) = body_as_describe_application_response,
        ListApplications(ListApplicationsResponse) = body_as_list_applications_response,
        DeleteApplication(DeleteApplicationResponse) = body_as_delete_application_response,
        ListLeases(ListLeasesResponse) = body_as_list_leases_response,
        TakeLease(TakeLeaseResponse) = body_as_take_lease_response,
        RenewLease(RenewLeaseResponse) = body_as_renew_lease_response,
        ReleaseLease(ReleaseLeaseResponse) = body_as_release_lease_response,
        StealLease(StealLeaseResponse) = body_as_steal_lease_response,
        CheckpointLease(CheckpointLeaseResponse) = body_as_checkpoint_lease_response,
        CreateDeliveryStream(CreateDeliveryStreamResponse) = body_as_create_delivery_stream_response,
        DeleteDeliveryStream(DeleteDeliveryStreamResponse) = body_as_delete_delivery_stream_response,
        DescribeDeliveryStream(DescribeDeliveryStreamResponse) = body_as_describe_delivery_stream_response,
        ListDeliveryStreams(ListDeliveryStreamsResponse) = body_as_list_delivery_streams_response,
        FirehosePutRecord(FirehosePutRecordResponse) = body_as_firehose_put_record_response,
        PutRecordBatch(PutRecordBatchResponse) = body_as_put_record_batch_response,
        UpdateDestination(UpdateDestinationResponse) = body_as_update_destination_response,
        TagDeliveryStream(TagDeliveryStreamResponse) = body_as_tag_delivery_stream_response,
        UntagDeliveryStream(UntagDeliveryStreamResponse) = body_as_untag_delivery_stream_response,
        ListTagsForDeliveryStream(ListTagsForDeliveryStreamResponse) = body_as_list_tags_for_delivery_stream_response,
        StartDeliveryStreamEncryption(StartDeliveryStreamEncryptionResponse) = body_as_start_delivery_stream_encryption_response,
        StopDeliveryStreamEncryption(StopDeliveryStreamEncryptionResponse) = body_as_stop_delivery_stream_encryption_response,
        DescribeStreamRoutes(DescribeStreamRoutesResponse) = body_as_describe_stream_routes_response,
        UpdateMaxRecordSize(UpdateMaxRecordSizeResponse) = body_as_update_max_record_size_response,
        UpdateStreamWarmThroughput(UpdateStreamWarmThroughputResponse) = body_as_update_stream_warm_throughput_response,
        UpdateStreamRecordDistributionStrategy(UpdateStreamRecordDistributionStrategyResponse) = body_as_update_stream_record_distribution_strategy_response,
        UpdateAccountSettings(UpdateAccountSettingsResponse) = body_as_update_account_settings_response,
        PutResourcePolicy(PutResourcePolicyResponse) = body_as_put_resource_policy_response,
        GetResourcePolicy(GetResourcePolicyResponse) = body_as_get_resource_policy_response,
        DeleteResourcePolicy(DeleteResourcePolicyResponse) = body_as_delete_resource_policy_response,
        StartStreamEncryption(StartStreamEncryptionResponse) = body_as_start_stream_encryption_response,
        StopStreamEncryption(StopStreamEncryptionResponse) = body_as_stop_stream_encryption_response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_union_member_has_a_variant() {
        let request_tags: Vec<_> =
            RequestBody::ENUM_VALUES.iter().copied().filter(|tag| *tag != RequestBody::NONE).collect();
        assert_eq!(RequestBodyRef::KNOWN_TAGS, request_tags.as_slice());
        let response_tags: Vec<_> =
            ResponseBody::ENUM_VALUES.iter().copied().filter(|tag| *tag != ResponseBody::NONE).collect();
        assert_eq!(ResponseBodyRef::KNOWN_TAGS, response_tags.as_slice());
    }
}

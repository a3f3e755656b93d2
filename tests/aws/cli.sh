#!/usr/bin/env bash
# The AWS CLI (pip `awscli`) against sluiced at $SLUICE_ENDPOINT: the calls a shell user makes,
# each output checked. Run it through with-sluiced.sh. Prints "cli: N passed, M failed".
set -uo pipefail
export AWS_ACCESS_KEY_ID=sluice AWS_SECRET_ACCESS_KEY=sluice AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER="" AWS_MAX_ATTEMPTS=1
: "${SLUICE_ENDPOINT:?run through tests/aws/with-sluiced.sh}"
aws=(aws --endpoint-url "$SLUICE_ENDPOINT" --output text kinesis)
passed=0 failed=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL $1: expected [$2], got [$3]" >&2; fi
}

"${aws[@]}" create-stream --stream-name cli-orders --shard-count 2
check "create-stream" 0 $?
check "describe-stream-summary" "ACTIVE 2" \
    "$("${aws[@]}" describe-stream-summary --stream-name cli-orders \
        --query 'StreamDescriptionSummary.[StreamStatus, OpenShardCount]' | tr '\t' ' ')"
check "list-streams" "cli-orders" "$("${aws[@]}" list-streams --query 'StreamNames[0]')"
check "list-shards" "shardId-000000000000 shardId-000000000001" \
    "$("${aws[@]}" list-shards --stream-name cli-orders --query 'Shards[].ShardId' | tr '\t' ' ')"

# customer-17 hashes into the first shard.
put="$("${aws[@]}" put-record --stream-name cli-orders --partition-key customer-17 --data hello-sluice \
    --query '[ShardId, SequenceNumber]')"
read -r shard sequence <<<"$put"
check "put-record shard" "shardId-000000000000" "$shard"
[[ "$sequence" =~ ^[0-9]+$ ]]; check "put-record sequence number is decimal" 0 $?

iterator="$("${aws[@]}" get-shard-iterator --stream-name cli-orders --shard-id "$shard" \
    --shard-iterator-type AT_SEQUENCE_NUMBER --starting-sequence-number "$sequence" --query ShardIterator)"
records="$("${aws[@]}" get-records --shard-iterator "$iterator" --query 'Records[0].[SequenceNumber, PartitionKey, Data]')"
read -r got_sequence got_key got_data <<<"$records"
check "get-records sequence" "$sequence" "$got_sequence"
check "get-records key" "customer-17" "$got_key"
check "get-records data (base64 on the CLI)" "hello-sluice" "$(printf %s "$got_data" | base64 -d)"

check "describe-limits" "500" "$("${aws[@]}" describe-limits --query ShardLimit)"
error="$("${aws[@]}" describe-stream --stream-name nope 2>&1 >/dev/null)"
check "missing stream exit status" 255 "$("${aws[@]}" describe-stream --stream-name nope >/dev/null 2>&1; echo $?)"
[[ "$error" == *ResourceNotFoundException* ]]; check "missing stream error names ResourceNotFoundException" 0 $?

"${aws[@]}" delete-stream --stream-name cli-orders
check "delete-stream" 0 $?
check "list-streams after delete" "" "$("${aws[@]}" list-streams --query 'StreamNames[]')"

echo "cli: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]

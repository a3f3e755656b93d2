//! `sluice`: the command-line client of `sluiced`, with the commands, parameters and output
//! of `aws kinesis`, over the native protocol.
//!
//! ```text
//! sluice create-stream --stream-name orders --shard-count 2
//! sluice put-record --stream-name orders --partition-key k --data hello
//! sluice get-shard-iterator --stream-name orders --shard-id shardId-000000000000 \
//!     --shard-iterator-type TRIM_HORIZON
//! ```
//!
//! Exit status, as the AWS CLI (v1) has it: 0 on success, 255 when the service answered with
//! an error, a parameter value could not be used, or the connection failed, and 2 when the
//! command line itself does not parse.

mod cli {
    pub mod args;
    pub mod output;
}

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use sluice_client::{Client, ClientError};

use cli::args::{Call, Cli};
use cli::output;

/// The AWS CLI's exit status for any failure after the command line parsed.
const EXIT_FAILURE: u8 = 255;

/// Registered io_uring buffer memory for the CLI's executor. glommio registers 10 MiB by
/// default for DMA file I/O, which the CLI never does; the minimum keeps the CLI within a
/// non-root user's default RLIMIT_MEMLOCK without glommio's warning.
const CLI_IO_MEMORY_BYTES: usize = 64 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let call = match cli.command.to_call() {
        Ok(call) => call,
        Err(error) => return fail(&error.to_string()),
    };
    let executor = match glommio::LocalExecutorBuilder::default().name("sluice").io_memory(CLI_IO_MEMORY_BYTES).make() {
        Ok(executor) => executor,
        Err(error) => return fail(&format!("cannot start the I/O executor: {error}")),
    };
    let operation = call.operation();
    match executor.run(run(&cli.endpoint, call)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::Service { exception, message, .. }) => {
            fail(&output::service_error_message(operation, exception, &message))
        }
        Err(error) => fail(&error.to_string()),
    }
}

/// Prints a failure as the AWS CLI does (after an empty line, on stderr) and returns 255.
fn fail(message: &str) -> ExitCode {
    eprintln!("\n{message}");
    ExitCode::from(EXIT_FAILURE)
}

/// Prints a command's output. A closed stdout (`| head`) is not worth failing over.
fn print<T: Serialize>(value: &T) {
    let _ = writeln!(std::io::stdout().lock(), "{}", output::pretty_json(value));
}

async fn run(endpoint: &str, call: Call) -> Result<(), ClientError> {
    let client = Client::connect(endpoint).await?;
    match call {
        // Operations with an empty output print nothing, as the AWS CLI does.
        Call::CreateStream(request) => client.create_stream(&request).await?,
        Call::DeleteStream(request) => client.delete_stream(&request).await?,
        Call::DescribeStream(request) => print(&output::describe_stream(&client.describe_stream(&request).await?)),
        Call::DescribeStreamSummary(request) => {
            print(&output::describe_stream_summary(&client.describe_stream_summary(&request).await?))
        }
        Call::ListStreams(request) => print(&output::list_streams(&client.list_streams(&request).await?)),
        Call::ListShards(request) => print(&output::list_shards(&client.list_shards(&request).await?)),
        Call::PutRecord(request) => print(&output::put_record(&client.put_record(&request).await?)),
        Call::PutRecords(request) => print(&output::put_records(&client.put_records(&request).await?)),
        Call::GetShardIterator(request) => {
            print(&output::get_shard_iterator(&client.get_shard_iterator(&request).await?))
        }
        Call::GetRecords(request) => print(&output::get_records(&client.get_records(&request).await?)),
        Call::IncreaseStreamRetentionPeriod(request) => client.increase_stream_retention_period(&request).await?,
        Call::DecreaseStreamRetentionPeriod(request) => client.decrease_stream_retention_period(&request).await?,
        Call::AddTagsToStream(request) => client.add_tags_to_stream(&request).await?,
        Call::RemoveTagsFromStream(request) => client.remove_tags_from_stream(&request).await?,
        Call::ListTagsForStream(request) => {
            print(&output::list_tags_for_stream(&client.list_tags_for_stream(&request).await?))
        }
        Call::SplitShard(request) => client.split_shard(&request).await?,
        Call::MergeShards(request) => client.merge_shards(&request).await?,
        Call::UpdateShardCount(request) => {
            print(&output::update_shard_count(&client.update_shard_count(&request).await?))
        }
        Call::DescribeLimits => print(&output::describe_limits(&client.describe_limits().await?)),
        Call::RegisterStreamConsumer(request) => {
            print(&output::register_stream_consumer(&client.register_stream_consumer(&request).await?))
        }
        Call::DeregisterStreamConsumer(request) => client.deregister_stream_consumer(&request).await?,
        Call::DescribeStreamConsumer(request) => {
            print(&output::describe_stream_consumer(&client.describe_stream_consumer(&request).await?))
        }
        Call::ListStreamConsumers(request) => {
            print(&output::list_stream_consumers(&client.list_stream_consumers(&request).await?))
        }
        Call::SubscribeToShard { request, max_events } => {
            let mut subscription =
                client.subscribe_to_shard(&request.consumer_arn, &request.shard_id, request.starting_position).await?;
            let mut event_count: u64 = 0;
            while max_events.is_none_or(|max_events| event_count < max_events) {
                let Some(event) = subscription.next().await else { break };
                let line = output::json_line(&output::subscribe_to_shard_event(&event?));
                let mut stdout = std::io::stdout().lock();
                // A closed pipe (`| head`) ends the subscription quietly rather than failing.
                if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
                    break;
                }
                event_count += 1;
            }
        }
    }
    Ok(())
}

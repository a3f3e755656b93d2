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
    pub mod firehose;
    pub mod leases;
    pub mod output;
    pub mod pipe;
    pub mod queues;
    pub mod settings;
}

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use sluice_client::routed::{RoutedClient, RoutedConfig};
use sluice_client::{Client, ClientError, ConnectOptions, Encoding, Request, Response};

use cli::args::{Call, Cli, Command};
use cli::output;

/// The AWS CLI's exit status for any failure after the command line parsed.
const EXIT_FAILURE: u8 = 255;

/// Registered io_uring buffer memory for the CLI's executor. glommio registers 10 MiB by
/// default for DMA file I/O, which the CLI never does; the minimum keeps the CLI within a
/// non-root user's default RLIMIT_MEMLOCK without glommio's warning.
const CLI_IO_MEMORY_BYTES: usize = 64 * 1024;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let options = match connect_options(&cli) {
        Ok(options) => options,
        Err(error) => return fail(&format!("{error:#}")),
    };
    match &cli.command {
        Command::Produce(args) => {
            return match cli::pipe::produce(&cli.endpoint, &options, args) {
                Ok(0) => ExitCode::SUCCESS,
                Ok(failed) => fail(&format!("{failed} records were not put")),
                Err(error) => fail(&format!("{error:#}")),
            };
        }
        Command::Consume(args) => {
            let executor =
                match glommio::LocalExecutorBuilder::default().name("sluice").io_memory(CLI_IO_MEMORY_BYTES).make() {
                    Ok(executor) => executor,
                    Err(error) => return fail(&format!("cannot start the I/O executor: {error}")),
                };
            return match executor.run(cli::pipe::consume(&cli.endpoint, &options, args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("{error:#}")),
            };
        }
        _ => {}
    }
    let call = match cli.command.to_call() {
        Ok(call) => call,
        Err(error) => return fail(&error.to_string()),
    };
    let executor = match glommio::LocalExecutorBuilder::default().name("sluice").io_memory(CLI_IO_MEMORY_BYTES).make() {
        Ok(executor) => executor,
        Err(error) => return fail(&format!("cannot start the I/O executor: {error}")),
    };
    let operation = call.operation();
    if let Call::Firehose { operation, body, http } = call {
        // The native protocol unless HTTP is asked for: by `--http`, or by naming only the
        // HTTP endpoint (as the Firehose commands needed before they were native).
        let http = http || (given("http_endpoint") && !given("endpoint"));
        let answered = if http {
            executor.run(firehose(&cli, &options, operation, body))
        } else {
            executor.run(firehose_native(&cli, &options, operation, body))
        };
        return match answered {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err((exception, message))) => fail(&output::service_error_message(operation, &exception, &message)),
            Err(error) => fail(&error.to_string()),
        };
    }
    match executor.run(run(&cli, &options, call)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::Service(error)) => {
            fail(&output::service_error_message(operation, error.kind.exception_name(), &error.message))
        }
        Err(error) => fail(&error.to_string()),
    }
}

/// Prints a failure as the AWS CLI does (after an empty line, on stderr) and returns 255.
fn fail(message: &str) -> ExitCode {
    eprintln!("\n{message}");
    ExitCode::from(EXIT_FAILURE)
}

/// Credentials and region as the AWS CLI finds them (`--region` wins), and TLS if
/// `--ca-bundle` names a CA.
fn connect_options(cli: &Cli) -> anyhow::Result<ConnectOptions> {
    let mut options = ConnectOptions::from_environment_or_profile(cli.profile.as_deref())?;
    if let Some(region) = &cli.region {
        options.region.clone_from(region);
    }
    if let Some(bundle) = &cli.ca_bundle {
        options.tls = Some(sluice_client::tls::TlsOptions::from_ca_bundle(bundle)?);
    }
    Ok(options)
}

async fn run(cli: &Cli, options: &ConnectOptions, call: Call) -> Result<(), ClientError> {
    if let Call::Queue(request) = call {
        // Unfinished: queues over the native protocol (no flatbuffers tables yet); unsigned
        // HTTP, so a daemon with --credentials refuses these.
        let client = sluice_client::aws::HttpClient::connect(&cli.http_endpoint, Encoding::Json).await?;
        let response = client.call_request(&request).await?;
        print_answer(&output::pretty_json(&response));
        return Ok(());
    }
    if cli.command.route() == cli::pipe::Route::Direct {
        let config = RoutedConfig { options: options.clone(), ..RoutedConfig::new(vec![cli.endpoint.clone()]) };
        let client = RoutedClient::connect(config).await?;
        let response = match call.into_request() {
            Request::PutRecord(input) => Response::PutRecord(client.put_record(&input).await?),
            Request::PutRecords(input) => Response::PutRecords(client.put_records(&input).await?),
            request => unreachable!("only writes are routed, not {}", request.operation().name()),
        };
        print_answer(&output::pretty_json(&response));
        return Ok(());
    }
    let client = Client::connect_with(&cli.endpoint, options).await?;
    match call {
        Call::SubscribeToShard { request, max_events } => {
            let mut subscription = client.subscribe_to_shard(&request).await?;
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
        call => {
            let response = client.call_request(&call.into_request()).await?;
            print_answer(&output::pretty_json(&response));
        }
    }
    Ok(())
}

/// A Firehose command: its JSON body to the HTTP port, signed for `firehose` when credentials
/// are found; the answer printed as the AWS CLI prints it, or the error's exception and message.
async fn firehose(
    cli: &Cli,
    options: &ConnectOptions,
    operation: &str,
    body: serde_json::Value,
) -> Result<Result<(), (String, String)>, ClientError> {
    let client = sluice_client::aws::HttpClient::connect_with(&cli.http_endpoint, Encoding::Json, options).await?;
    let target = format!("{}{operation}", sluice_client::aws::FIREHOSE_TARGET_PREFIX);
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let (status, answer) = client.post(&target, Encoding::Json, body).await?;
    if status != http::StatusCode::OK {
        return Ok(Err(cli::firehose::error_of(status.as_u16(), &answer)));
    }
    match serde_json::from_slice::<serde_json::Value>(&answer) {
        Ok(value) => print_answer(&output::pretty_json(&value)),
        Err(_) => print_answer(&String::from_utf8_lossy(&answer)),
    }
    Ok(Ok(()))
}

/// A Firehose command over the native protocol: record data as raw bytes, the native
/// handshake when credentials are found; the answer printed as the HTTP API's would be.
async fn firehose_native(
    cli: &Cli,
    options: &ConnectOptions,
    operation: &str,
    body: serde_json::Value,
) -> Result<Result<(), (String, String)>, ClientError> {
    let request = match cli::firehose::native_request(operation, &body) {
        Ok(request) => request,
        Err(error) => return Ok(Err(("ParamValidation".to_owned(), error.to_string()))),
    };
    let client = Client::connect_with(&cli.endpoint, options).await?;
    match client.call_firehose(&request).await {
        Ok(response) => {
            print_answer(&output::pretty_json(&cli::firehose::answer_json(&response)));
            Ok(Ok(()))
        }
        Err(ClientError::Service(error)) => Ok(Err((error.kind.exception_name().to_owned(), error.message))),
        Err(error) => Err(error),
    }
}

/// Prints an answer. Operations whose output has no members print nothing, as the AWS CLI
/// does. A closed stdout (`| head`) is not worth failing over.
fn print_answer(text: &str) {
    if text != "{}" {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

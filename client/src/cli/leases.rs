//! `sluice`'s consumer-group commands: the applications of a stream and their leases, kept by
//! sluiced (docs/clients.md), over the native protocol like every other single call. They let
//! an operator see who holds which shard, how far each checkpoint got, and remove an
//! application whose workers are gone.

use clap::Args;
use sluice_client::*;

use super::args::{parse_timestamp, ParamError};

/// The application a command acts on: by ARN, or by its stream (name or ARN) and its name.
#[derive(Debug, Args)]
pub struct ApplicationArgs {
    #[arg(long, required_unless_present = "application_arn")]
    pub application_name: Option<String>,
    /// The stream's name (with --application-name).
    #[arg(long)]
    pub stream_name: Option<String>,
    /// The stream's ARN (with --application-name).
    #[arg(long)]
    pub stream_arn: Option<String>,
    /// The application's ARN (instead of the stream and --application-name).
    #[arg(long)]
    pub application_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateApplicationArgs {
    #[arg(long)]
    pub application_name: String,
    #[arg(long, required_unless_present = "stream_arn")]
    pub stream_name: Option<String>,
    #[arg(long)]
    pub stream_arn: Option<String>,
    /// Where workers start in the shards that exist now: TRIM_HORIZON, LATEST (the default)
    /// or AT_TIMESTAMP (with --timestamp).
    #[arg(long)]
    pub initial_position: Option<String>,
    /// With AT_TIMESTAMP: epoch seconds.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// How long a lease lasts without renewal (ms).
    #[arg(long)]
    pub lease_duration_millis: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ListApplicationsArgs {
    #[arg(long, required_unless_present = "stream_arn")]
    pub stream_name: Option<String>,
    #[arg(long)]
    pub stream_arn: Option<String>,
    #[arg(long)]
    pub max_results: Option<i32>,
    #[arg(long)]
    pub next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListLeasesArgs {
    #[command(flatten)]
    pub application: ApplicationArgs,
    #[arg(long)]
    pub max_results: Option<i32>,
    #[arg(long)]
    pub next_token: Option<String>,
}

impl ApplicationArgs {
    fn members(&self) -> (Option<String>, Option<String>, Option<StreamArn>, Option<String>) {
        (
            self.application_arn.clone(),
            self.stream_name.clone(),
            self.stream_arn.clone().map(StreamArn::from),
            self.application_name.clone(),
        )
    }
}

pub fn create_application(args: &CreateApplicationArgs) -> Result<Request, ParamError> {
    let initial_position = match args.initial_position.as_deref() {
        None => None,
        Some(spelling) => {
            let r#type = InitialPositionType::from_aws(spelling.trim()).ok_or_else(|| ParamError {
                parameter: "--initial-position",
                message: format!("Invalid choice {spelling:?}: expected TRIM_HORIZON, LATEST or AT_TIMESTAMP"),
            })?;
            let timestamp = args.timestamp.as_deref().map(|value| parse_timestamp("--timestamp", value)).transpose()?;
            Some(InitialPosition { r#type, timestamp })
        }
    };
    Ok(CreateApplicationInput {
        stream_name: args.stream_name.clone(),
        stream_arn: args.stream_arn.clone().map(StreamArn::from),
        application_name: args.application_name.clone(),
        initial_position,
        lease_duration_millis: args.lease_duration_millis,
    }
    .into())
}

pub fn describe_application(args: &ApplicationArgs) -> Request {
    let (application_arn, stream_name, stream_arn, application_name) = args.members();
    DescribeApplicationInput { application_arn, stream_name, stream_arn, application_name }.into()
}

pub fn delete_application(args: &ApplicationArgs) -> Request {
    let (application_arn, stream_name, stream_arn, application_name) = args.members();
    DeleteApplicationInput { application_arn, stream_name, stream_arn, application_name }.into()
}

pub fn list_applications(args: &ListApplicationsArgs) -> Request {
    ListApplicationsInput {
        stream_name: args.stream_name.clone(),
        stream_arn: args.stream_arn.clone().map(StreamArn::from),
        max_results: args.max_results,
        next_token: args.next_token.clone(),
    }
    .into()
}

pub fn list_leases(args: &ListLeasesArgs) -> Request {
    let (application_arn, stream_name, stream_arn, application_name) = args.application.members();
    ListLeasesInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
        max_results: args.max_results,
        next_token: args.next_token.clone(),
    }
    .into()
}

//! How the stream sink reaches AWS (or a secured sluiced): the credentials every request is
//! signed with, the region they are scoped to, and the roots HTTPS trusts.
//!
//! - **Credentials**, in the AWS agent's order (`AgentAWSCredentialsProviderChain`) as far as
//!   it goes without calls to AWS: `awsAccessKeyId` + `awsSecretAccessKey` from `agent.json`
//!   ("takes precedence over all other credential providers", its documentation), else the
//!   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else the
//!   profile `AWS_PROFILE` (or `default`) of the shared credentials and config files
//!   (`sluice_client::auth`, as botocore reads them). Requests over HTTP(S) are signed with
//!   SigV4 (service `kinesis` for PutRecords, `firehose` for PutRecordBatch); native
//!   connections authenticate with the same credentials (the native handshake).
//! - **Refused with a configuration error** rather than ignored: `assumeRoleARN` (it needs an
//!   STS AssumeRole call, which the agent does not make), a custom Java credentials provider
//!   (`userDefinedCredentialsProvider.classname`), one of the two key settings without the
//!   other, and an AWS endpoint with no credentials found at all (the AWS agent would then ask
//!   the instance metadata service, which the agent does not).
//! - **Trust**: HTTPS trusts the operating system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR`
//!   replace them, as for OpenSSL) plus `--ca-bundle FILE` or `AWS_CA_BUNDLE` (botocore's
//!   variable) if given.
//! - **Regions** are chosen with the endpoints (`endpoint::StreamEndpoint`).

use std::path::{Path, PathBuf};

use sluice_client::auth::{CredentialsError, SigningCredentials};
use sluice_client::tls::{TlsOptions, TrustError};
use sluice_client::ConnectOptions;

use crate::config::{AgentConfig, DestinationKind};
use crate::endpoint::{Protocol, SinkEndpoints, StreamEndpoint};

/// Where the credentials came from (for `check-config` and the start-up log; never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `awsAccessKeyId` / `awsSecretAccessKey`.
    Configuration,
    /// The environment or the shared files.
    Environment,
    /// None found: requests go unsigned (an open sluiced takes them).
    None,
}

/// The credentials and trust the sink's connections use.
#[derive(Debug, Clone)]
pub struct Access {
    pub credentials: Option<SigningCredentials>,
    pub source: CredentialSource,
    /// Built when an endpoint is `https://`.
    pub tls: Option<TlsOptions>,
    /// The extra CA bundle trusted, if any.
    pub ca_bundle: Option<PathBuf>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.credentials, &self.source) {
            (Some(credentials), CredentialSource::Configuration) => {
                write!(f, "signed as {} (agent.json)", credentials.access_key_id)?
            }
            (Some(credentials), _) => write!(f, "signed as {} (environment)", credentials.access_key_id)?,
            (None, _) => f.write_str("unsigned (no credentials found)")?,
        }
        if self.tls.is_some() {
            f.write_str(", HTTPS trusting the system's roots")?;
            if let Some(bundle) = &self.ca_bundle {
                write!(f, " and {}", bundle.display())?;
            }
        }
        Ok(())
    }
}

impl Access {
    /// How to connect to `endpoint`: these credentials, its region, TLS if it is `https://`.
    pub fn options(&self, endpoint: &StreamEndpoint) -> ConnectOptions {
        ConnectOptions {
            credentials: self.credentials.clone(),
            region: endpoint.region.clone(),
            tls: match endpoint.protocol {
                Protocol::Https => self.tls.clone(),
                Protocol::Native | Protocol::Http => None,
            },
        }
    }
}

/// Why the sink cannot be given credentials or trust.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{key}: not supported by sluice-agent: {reason}")]
    Unsupported { key: &'static str, reason: &'static str },
    #[error("{given} is set but {missing} is not")]
    Incomplete { given: &'static str, missing: &'static str },
    #[error("credentials from the environment: {0}")]
    Environment(#[from] CredentialsError),
    #[error("no credentials for {endpoint}: set awsAccessKeyId and awsSecretAccessKey, the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables, or a profile in ~/.aws/credentials (instance and container roles are not read)")]
    NoCredentials { endpoint: String },
    #[error("HTTPS trust: {0}")]
    Trust(#[from] TrustError),
}

/// The credentials and trust for `endpoints`. `ca_bundle`: `--ca-bundle`, else `AWS_CA_BUNDLE`.
pub fn resolve(
    config: &AgentConfig,
    endpoints: &SinkEndpoints,
    ca_bundle: Option<&Path>,
) -> Result<Access, AccessError> {
    let keys = &config.credentials;
    if keys.user_defined_provider.is_some() {
        return Err(AccessError::Unsupported {
            key: "userDefinedCredentialsProvider.classname",
            reason: "Java credential providers cannot be loaded; give the credentials with awsAccessKeyId and \
                     awsSecretAccessKey, the environment, or a profile",
        });
    }
    if keys.assume_role_arn.is_some() {
        return Err(AccessError::Unsupported {
            key: "assumeRoleARN",
            reason: "assuming a role needs an STS AssumeRole call, which sluice-agent does not make; give the role \
                     session's credentials through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or a \
                     profile with aws_session_token",
        });
    }
    let (credentials, source) = match (&keys.access_key_id, &keys.secret_access_key) {
        (Some(access_key_id), Some(secret)) => (
            Some(SigningCredentials {
                access_key_id: access_key_id.clone(),
                secret_access_key: sluice_client::auth::Secret::new(secret.clone()),
                session_token: None,
            }),
            CredentialSource::Configuration,
        ),
        (Some(_), None) => {
            return Err(AccessError::Incomplete { given: "awsAccessKeyId", missing: "awsSecretAccessKey" })
        }
        (None, Some(_)) => {
            return Err(AccessError::Incomplete { given: "awsSecretAccessKey", missing: "awsAccessKeyId" })
        }
        (None, None) => match ConnectOptions::from_environment()?.credentials {
            Some(credentials) => (Some(credentials), CredentialSource::Environment),
            None => (None, CredentialSource::None),
        },
    };
    // The endpoints flows ship to (the Kinesis one only if a flow names a stream).
    let streams = config.flows.iter().any(|flow| flow.destination.kind == DestinationKind::Stream);
    let all = streams.then_some(&endpoints.kinesis).into_iter().chain(endpoints.firehose.as_ref());
    if credentials.is_none() {
        if let Some(aws) = all.clone().find(|endpoint| endpoint.is_aws()) {
            return Err(AccessError::NoCredentials { endpoint: aws.to_string() });
        }
    }
    let ca_bundle = ca_bundle
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from));
    let tls = if all.clone().any(|endpoint| endpoint.protocol == Protocol::Https) {
        Some(TlsOptions::system_roots(ca_bundle.as_deref())?)
    } else {
        None
    };
    Ok(Access { credentials, source, tls, ca_bundle })
}

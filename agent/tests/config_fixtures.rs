//! Configurations written for the AWS Kinesis Agent (`tests/fixtures/`, sources in its
//! README) are accepted unchanged, with the warnings they deserve.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sluice_agent::config::{AgentConfig, DestinationKind, InitialPosition, PartitionKeyOption};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load(name: &str) -> AgentConfig {
    AgentConfig::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn warned_keys(config: &AgentConfig) -> Vec<&str> {
    config.warnings.iter().map(|w| w.key.as_str()).collect()
}

#[test]
fn documentation_examples_are_accepted() {
    let config = load("streams-configure-and-start.json");
    assert_eq!(config.flows.len(), 1);
    assert_eq!(config.flows[0].destination.kind, DestinationKind::Stream);
    assert_eq!(config.flows[0].destination.name, "yourkinesisstream");
    assert!(config.warnings.is_empty());

    let config = load("firehose-configure-and-start.json");
    assert_eq!(config.flows[0].destination.kind, DestinationKind::DeliveryStream);
    assert_eq!(config.flows[0].buffer.bytes, 4 * 1024 * 1024);

    let config = load("multiple-flows.json");
    assert_eq!(config.flows.len(), 2);
    assert_eq!(config.kinesis.endpoint.as_deref(), Some("https://your/kinesis/endpoint"));
    assert_eq!(config.firehose.endpoint.as_deref(), Some("https://your/firehose/endpoint"));
    assert_eq!(warned_keys(&config), ["cloudwatch.emitMetrics"]);

    let config = load("convert-apache-common-log.json");
    assert_eq!(config.flows[0].processing.len(), 1);

    let config = load("convert-multi-line-records.json");
    let flow = &config.flows[0];
    assert!(flow.multi_line_start.as_ref().unwrap().is_match("[SEQUENCE=1]"));
    assert_eq!(flow.processing.len(), 2);

    let config = load("logtojson-match-pattern.json");
    assert_eq!(config.flows[0].processing.len(), 1);
}

#[test]
fn repository_examples_are_accepted() {
    let config = load("repository-example.json");
    assert_eq!(config.flows.len(), 2);
    assert_eq!(config.checkpoint_file, PathBuf::from("/tmp/aws-kinesis-agent-checkpoints/main.log"));
    assert_eq!(config.credentials.access_key_id.as_deref(), Some("ACCESSKEY"));
    assert_eq!(config.flows[0].initial_position, InitialPosition::EndOfFile);
    assert_eq!(config.flows[1].initial_position, InitialPosition::StartOfFile);
    // The Java-only keys are named, not dropped silently.
    assert_eq!(
        warned_keys(&config),
        ["cloudwatch.emitMetrics", "cloudwatch.endpoint", "userDefinedCredentialsProvider.location",]
    );

    // Empty endpoints mean "not set".
    let config = load("repository-release.json");
    assert_eq!(config.kinesis.endpoint, None);
    assert_eq!(config.flows[0].partition_key, PartitionKeyOption::Random);
}

#[test]
fn every_flow_setting_at_its_bounds() {
    let config = load("all-flow-settings.json");
    assert_eq!(config.credentials.assume_role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/agent"));
    assert_eq!(config.sts_endpoint.as_deref(), Some("sts.us-east-1.amazonaws.com"));
    let web = &config.flows[0];
    assert_eq!(web.partition_key, PartitionKeyOption::Deterministic);
    assert_eq!(web.buffer.age, Duration::from_secs(1));
    let csv = &config.flows[1];
    assert_eq!(csv.buffer.age, Duration::from_secs(900));
    assert_eq!((csv.buffer.records, csv.buffer.bytes), (1, 1));
    assert_eq!(csv.skip_header_lines, 1);
    assert_eq!(csv.truncated_record_terminator, b"...\n");
    assert_eq!(warned_keys(&config), ["cloudwatch.emitMetrics", "cloudwatch.endpoint"]);
}

#[test]
fn check_config_names_ignored_keys() {
    // It names a Java credentials provider, which cannot be loaded: refused (not ignored), after
    // printing what the configuration means; with the file sink it runs.
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-agent"))
        .args(["check-config", "--config"])
        .arg(fixture("repository-example.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("userDefinedCredentialsProvider.classname: not supported by sluice-agent"),
        "{output:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-agent"))
        .args(["check-config", "--config"])
        .arg(fixture("repository-example.json"))
        .arg("--sink-file")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("warning: userDefinedCredentialsProvider.location"), "{stdout}");
    assert!(stdout.contains("flow kinesis:aws-kinesis-agent-test1:/tmp/aws-kinesis-agent-test1.log*"), "{stdout}");

    let bad = dir.path().join("agent.json");
    std::fs::write(&bad, r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"ADDEC2METADATA"}]}]}"#).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_sluice-agent")).args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ADDEC2METADATA"), "{stderr}");
}

/// `check-config` of an AWS agent's configuration with an empty environment (no AWS variables,
/// a HOME without `~/.aws`), trusting a generated root through `SSL_CERT_FILE`.
fn check_aws(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let root = rcgen::CertificateParams::new(vec!["root.test".to_string()]).unwrap().self_signed(&key).unwrap();
    let roots = home.path().join("roots.pem");
    std::fs::write(&roots, root.pem()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-agent"));
    command.args(["check-config", "--config"]).arg(fixture(name)).env_clear().env("HOME", home.path());
    command.env("SSL_CERT_FILE", &roots).envs(env.iter().copied());
    command.output().unwrap()
}

#[test]
fn aws_defaults_credentials_and_refusals() {
    // No endpoint: the AWS agent's default, AWS's regional endpoint, over HTTPS; no
    // credentials anywhere is an error for AWS (never unsigned requests to AWS).
    let output = check_aws("streams-configure-and-start.json", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no credentials for https://kinesis.us-east-1.amazonaws.com:443"), "{stderr}");
    // From the environment, with its region.
    let output = check_aws(
        "streams-configure-and-start.json",
        &[("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00001"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_REGION", "eu-west-1")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains(
            "sink: PutRecords to https://kinesis.eu-west-1.amazonaws.com:443 (region eu-west-1), signed as \
             AKIAENVIRONMENT00001 (environment), HTTPS trusting the system's roots"
        ),
        "{stdout}"
    );
    // From a profile of the shared config file.
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("config");
    std::fs::write(
        &config,
        "[profile ship]\nregion = ap-south-1\naws_access_key_id = AKIAPROFILE000000001\naws_secret_access_key = s\n",
    )
    .unwrap();
    let output = check_aws(
        "firehose-configure-and-start.json",
        &[("AWS_CONFIG_FILE", config.to_str().unwrap()), ("AWS_PROFILE", "ship")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("PutRecordBatch to https://firehose.ap-south-1.amazonaws.com:443"), "{stdout}");
    assert!(stdout.contains("signed as AKIAPROFILE000000001 (environment)"), "{stdout}");
    // The keys of agent.json over the environment's, the region from the endpoint's host name
    // (written as the AWS agent's documentation writes it, without a scheme).
    let written = files.path().join("agent.json");
    std::fs::write(
        &written,
        r#"{"kinesis.endpoint": "kinesis.us-west-2.amazonaws.com", "awsAccessKeyId": "AKIACONFIGURATION001",
            "awsSecretAccessKey": "s", "flows": [{"filePattern": "/tmp/app.log*", "kinesisStream": "s"}]}"#,
    )
    .unwrap();
    let output = check_aws(
        written.to_str().unwrap(),
        &[("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00001"), ("AWS_SECRET_ACCESS_KEY", "s")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("https://kinesis.us-west-2.amazonaws.com:443 (region us-west-2), signed as AKIACONFIGURATION001 (agent.json)"),
        "{stdout}"
    );
    // One key without the other is refused.
    std::fs::write(
        &written,
        r#"{"awsAccessKeyId": "AKIA1", "flows": [{"filePattern": "/tmp/a", "kinesisStream": "s"}]}"#,
    )
    .unwrap();
    let output = check_aws(written.to_str().unwrap(), &[]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("awsAccessKeyId is set but awsSecretAccessKey is not"),
        "{output:?}"
    );
    // assumeRoleARN needs an STS call: refused with the reason, not ignored.
    let output = check_aws("all-flow-settings.json", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("assumeRoleARN: not supported by sluice-agent: assuming a role needs an STS"), "{stderr}");
}

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
        [
            "cloudwatch.emitMetrics",
            "cloudwatch.endpoint",
            "userDefinedCredentialsProvider.classname",
            "userDefinedCredentialsProvider.location",
        ]
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
    // Its kinesis.endpoint is AWS's (https): this build cannot ship there, and says so after
    // printing what the configuration means; with the file sink it runs.
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-agent"))
        .args(["check-config", "--config"])
        .arg(fixture("repository-example.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("https endpoints (AWS itself) need TLS and SigV4"),
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
    assert!(stdout.contains("warning: userDefinedCredentialsProvider.classname"), "{stdout}");
    assert!(stdout.contains("flow kinesis:aws-kinesis-agent-test1:/tmp/aws-kinesis-agent-test1.log*"), "{stdout}");

    let bad = dir.path().join("agent.json");
    std::fs::write(&bad, r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"ADDEC2METADATA"}]}]}"#).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_sluice-agent")).args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ADDEC2METADATA"), "{stderr}");
}

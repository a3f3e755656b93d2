//! Where the agent ships: the endpoints of `agent.json` (`kinesis.endpoint`,
//! `firehose.endpoint`, their regions), AWS's regional defaults without them, and the
//! protocol each speaks.

/// The region when neither the configuration, the endpoint nor the environment names one: the
/// AWS agent's (its documentation: "The default AWS Region is us-east-1").
pub const REGION_DEFAULT: &str = "us-east-1";

/// sluiced's native port (`sluiced --listen`), for a `sluice://host` endpoint without one.
pub const NATIVE_PORT_DEFAULT: u16 = 4568;

/// Which protocol carries PutRecords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// sluiced's native protocol (flatbuffers frames over TCP).
    Native,
    /// The AWS JSON 1.1 API over HTTP/1.1.
    Http,
    /// The same over TLS: AWS itself, or a sluiced with `--tls-cert`.
    Https,
}

/// Where the stream sink sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEndpoint {
    pub protocol: Protocol,
    /// `host:port`.
    pub address: String,
    /// The region requests are signed for: `kinesis.region` / `firehose.region`, else the
    /// region of an AWS host name, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1.
    pub region: String,
    /// `kinesis.route: direct` (a Sluice setting): records go to their shards' leaders in a
    /// sluiced cluster, learned from `address` (DescribeStreamRoutes), instead of through
    /// `address`, which forwards them. Native protocol only.
    pub routed: bool,
}

impl std::fmt::Display for StreamEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.protocol {
            Protocol::Native if self.routed => write!(f, "sluice://{} (routed to the leaders)", self.address),
            Protocol::Native => write!(f, "sluice://{}", self.address),
            Protocol::Http => write!(f, "http://{}", self.address),
            Protocol::Https => write!(f, "https://{}", self.address),
        }
    }
}

/// Why `kinesis.endpoint` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {endpoint:?}: {reason}")]
pub struct EndpointError {
    /// `kinesis.endpoint` or `firehose.endpoint`.
    pub key: &'static str,
    pub endpoint: String,
    pub reason: String,
}

/// `address`'s host (without the port; an IPv6 literal keeps its brackets).
fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => address,
    }
}

/// Reads an endpoint setting: `sluice://host[:port]` or a bare `host:port` (sluiced's native
/// protocol), `http://host[:port]`, `https://host[:port]`, or a bare host name (HTTPS, as the
/// AWS agent's SDK reads `kinesis.us-west-2.amazonaws.com`). No path.
fn parse_address(key: &'static str, text: &str) -> Result<(Protocol, String), EndpointError> {
    let error = |reason: &str| EndpointError { key, endpoint: text.into(), reason: reason.into() };
    let (protocol, rest, default_port) = if let Some(rest) = text.strip_prefix("sluice://") {
        (Protocol::Native, rest, NATIVE_PORT_DEFAULT)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (Protocol::Http, rest, 80)
    } else if let Some(rest) = text.strip_prefix("https://") {
        (Protocol::Https, rest, 443)
    } else if text.contains("://") {
        return Err(error(
            "the scheme must be https:// (AWS, or sluiced with TLS), http:// (the AWS JSON API without TLS) or \
             sluice:// (sluiced's native protocol)",
        ));
    } else if host_of(text) != text {
        (Protocol::Native, text, NATIVE_PORT_DEFAULT)
    } else {
        (Protocol::Https, text, 443)
    };
    let address = rest.strip_suffix('/').unwrap_or(rest);
    if address.is_empty() || address.contains('/') || host_of(address).is_empty() {
        return Err(error("expected a host and optionally :port after the scheme (no path)"));
    }
    let address = if host_of(address) == address { format!("{address}:{default_port}") } else { address.to_owned() };
    Ok((protocol, address))
}

impl StreamEndpoint {
    fn new(protocol: Protocol, address: String, region: Option<&str>) -> StreamEndpoint {
        let region =
            region.map(str::to_owned).or_else(|| region_of_host(host_of(&address))).unwrap_or_else(environment_region);
        StreamEndpoint { protocol, address, region, routed: false }
    }

    /// Whether this is one of AWS's own endpoints (credentials are then required).
    pub fn is_aws(&self) -> bool {
        is_aws_host(host_of(&self.address))
    }

    /// Reads `kinesis.endpoint` (see `parse_address`) with `kinesis.region`. None means the
    /// AWS agent's default: the Kinesis endpoint of the region (`kinesis.region`, else
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1) over HTTPS.
    pub fn parse(endpoint: Option<&str>, region: Option<&str>) -> Result<StreamEndpoint, EndpointError> {
        let Some(text) = endpoint else {
            let region = region.map(str::to_owned).unwrap_or_else(environment_region);
            let address = format!("{}:443", regional_host("kinesis", &region));
            return Ok(StreamEndpoint { protocol: Protocol::Https, address, region, routed: false });
        };
        let (protocol, address) = parse_address("kinesis.endpoint", text)?;
        Ok(StreamEndpoint::new(protocol, address, region))
    }

    /// Applies `kinesis.route`: `DIRECT` (native endpoints only) or `ANY` (the default), in
    /// either case (the file's other values are upper case, the CLI's `--route` lower).
    pub fn with_route(self, route: Option<&str>) -> Result<StreamEndpoint, EndpointError> {
        let error =
            |reason: String| EndpointError { key: "kinesis.route", endpoint: route.unwrap_or_default().into(), reason };
        match route.map(str::to_ascii_lowercase).as_deref() {
            None | Some("any") => Ok(StreamEndpoint { routed: false, ..self }),
            Some("direct") if self.protocol == Protocol::Native => Ok(StreamEndpoint { routed: true, ..self }),
            Some("direct") => Err(error(format!(
                "direct routing needs sluiced's native protocol (sluice://host:port), which tells the shards' \
                 leaders; kinesis.endpoint is {self}"
            ))),
            Some(_) => Err(error("must be DIRECT (to each shard's leader) or ANY (through the endpoint)".into())),
        }
    }

    /// Reads `firehose.endpoint` (with `firehose.region`) for `deliveryStream` flows: HTTP or
    /// HTTPS (Firehose's API is JSON over HTTP only; sluiced serves it on its `--http-listen`
    /// port). Without one: `kinesis`'s endpoint if that is a non-AWS HTTP(S) endpoint (sluiced
    /// serves both APIs on one port); an error if `kinesis` is sluiced's native port; else the
    /// AWS agent's default, the Firehose endpoint of the region over HTTPS.
    pub fn parse_firehose(
        endpoint: Option<&str>,
        region: Option<&str>,
        kinesis: &StreamEndpoint,
    ) -> Result<StreamEndpoint, EndpointError> {
        let Some(text) = endpoint else {
            return match kinesis.protocol {
                Protocol::Http | Protocol::Https if !kinesis.is_aws() => Ok(kinesis.clone()),
                Protocol::Native => Err(EndpointError {
                    key: "firehose.endpoint",
                    endpoint: String::new(),
                    reason: format!(
                        "deliveryStream flows need it (http(s)://host:port: Firehose's API is served over HTTP only, \
                         on sluiced's --http-listen port); kinesis.endpoint {kinesis} is sluiced's native protocol"
                    ),
                }),
                Protocol::Http | Protocol::Https => {
                    let region = region.map(str::to_owned).unwrap_or_else(environment_region);
                    let address = format!("{}:443", regional_host("firehose", &region));
                    Ok(StreamEndpoint { protocol: Protocol::Https, address, region, routed: false })
                }
            };
        };
        let (protocol, address) = parse_address("firehose.endpoint", text)?;
        if protocol == Protocol::Native {
            return Err(EndpointError {
                key: "firehose.endpoint",
                endpoint: text.into(),
                reason: "must be http(s)://host[:port]: Firehose's API is served over HTTP only (sluiced's \
                         --http-listen)"
                    .into(),
            });
        }
        Ok(StreamEndpoint::new(protocol, address, region))
    }
}

/// Where the stream sink sends: streams to `kinesis`, delivery streams to `firehose` (present
/// when a flow names a delivery stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkEndpoints {
    pub kinesis: StreamEndpoint,
    pub firehose: Option<StreamEndpoint>,
}

impl std::fmt::Display for SinkEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PutRecords to {}", self.kinesis)?;
        if let Some(firehose) = &self.firehose {
            write!(f, ", PutRecordBatch to {firehose}")?;
        }
        Ok(())
    }
}

/// The region of an AWS host name (`kinesis.eu-west-1.amazonaws.com`,
/// `firehose-fips.us-gov-west-1.amazonaws.com`, `vpce-0a1b.kinesis.us-east-2.vpce.amazonaws.com`,
/// `kinesis.cn-north-1.amazonaws.com.cn`): its first label shaped like a region. `None` for
/// other hosts.
pub fn region_of_host(host: &str) -> Option<String> {
    if !is_aws_host(host) {
        return None;
    }
    host.split('.').find(|label| looks_like_region(label)).map(str::to_owned)
}

/// Whether `host` is one of AWS's service domains.
pub fn is_aws_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"].iter().any(|suffix| host.ends_with(suffix))
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `cn-north-1`, `us-iso-east-1`: two letters,
/// words, a number.
fn looks_like_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The region from the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
/// `region` in `~/.aws/config`), else [`REGION_DEFAULT`].
pub fn environment_region() -> String {
    sluice_client::auth::region_from_environment().unwrap_or_else(|| REGION_DEFAULT.to_owned())
}

/// A service's regional endpoint host (`kinesis.eu-west-1.amazonaws.com`; China's regions
/// under `amazonaws.com.cn`).
pub fn regional_host(service: &str, region: &str) -> String {
    if region.starts_with("cn-") {
        format!("{service}.{region}.amazonaws.com.cn")
    } else {
        format!("{service}.{region}.amazonaws.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_from_aws_host_names_only() {
        assert_eq!(region_of_host("kinesis.eu-west-1.amazonaws.com").as_deref(), Some("eu-west-1"));
        assert_eq!(region_of_host("firehose-fips.us-gov-west-1.amazonaws.com").as_deref(), Some("us-gov-west-1"));
        assert_eq!(region_of_host("vpce-0a1b-2c.kinesis.us-east-2.vpce.amazonaws.com").as_deref(), Some("us-east-2"));
        assert_eq!(region_of_host("kinesis.cn-north-1.amazonaws.com.cn").as_deref(), Some("cn-north-1"));
        assert_eq!(region_of_host("kinesis.us-east-1.api.aws").as_deref(), Some("us-east-1"));
        assert_eq!(region_of_host("kinesis.amazonaws.com"), None);
        assert_eq!(region_of_host("sluiced.eu-west-1.example.com"), None);
        assert_eq!(region_of_host("127.0.0.1"), None);
        assert_eq!(regional_host("firehose", "cn-northwest-1"), "firehose.cn-northwest-1.amazonaws.com.cn");
        assert_eq!(regional_host("kinesis", "ap-south-1"), "kinesis.ap-south-1.amazonaws.com");
    }
}

//! A call relayed to the member that runs it, over HTTP, as it came: the membership calls to
//! the catalog's leader (`admin`), and the queue operations to the delivery state's leader
//! (the native protocol, which forwards the other operations, does not carry queues).
//!
//! The request goes to the member's `--http-listen` (from `--peers`' `/http@`) with every
//! header it came with but the connection's own, so its SigV4 signature, which covers its
//! `Host` header and not the address it is sent to, still holds; over TLS when this node
//! forwards over TLS (`--cluster-ca-bundle`). It is marked with `x-sluice-forwarded-by` (this
//! node's id), and a node never relays a marked call again. It also carries the client as this
//! node saw it (`x-sluice-relayed-for`: its address and transport) and, with a cluster secret,
//! this node's proof of that (`x-sluice-relay-proof`: `ClusterSecret::relay_proof` over it,
//! the marker and the call's signed headers, so that it holds for this call alone). The member
//! authorizes the call again, with the client's address as `aws:SourceIp` and its transport
//! as `aws:SecureTransport` when the proof holds, and with this node's address and link
//! otherwise (without a secret nothing tells a member from a client setting those headers);
//! its answer (status, content type and body) goes back to the client as it is. Failures are
//! retriable InternalFailures.
//!
//! Each core keeps the connections of relays answered whole alive, a few per member, for the
//! next relays to that member (a connection each cost a TCP, and with member TLS a TLS,
//! handshake per call). A relay never retries on another connection: a queue call may have
//! changed the state before its connection failed, and the client's retry decides.

use crate::limits::{
    FORWARD_ANSWER_WAIT_MS, FORWARD_CONNECT_TIMEOUT_MS, QUEUE_RECEIVE_READ_BYTES_MAX, RELAY_CONNECTION_IDLE_MS,
    RELAY_IDLE_CONNECTIONS_PER_MEMBER_MAX,
};
use crate::ops::node::Node;
use crate::runtime::Members;
use bytes::Bytes;
use futures_lite::future;
use glommio::net::TcpStream;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use sluice_hyper_glommio::client_handshake;
use sluice_model::limits::QUEUE_WAIT_TIME_S_MAX;
use sluice_model::KinesisError;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marks a call a member relayed (its value: the member's id); a node does not relay such a
/// call again.
pub const FORWARDED_BY: &str = "x-sluice-forwarded-by";

/// The relayed call's client as the relaying member saw it: `IP tls` or `IP plain` (`-` for
/// no address).
pub const RELAYED_FOR: &str = "x-sluice-relayed-for";

/// The relaying member's proof of [`RELAYED_FOR`], with a cluster secret.
pub const RELAY_PROOF: &str = "x-sluice-relay-proof";

/// The headers of the call a relay proof covers besides the marker and the client: its
/// signature (which covers its date, target and body) and what it names.
const RELAY_PROOF_COVERS: [&str; 3] = ["authorization", "x-amz-date", "x-amz-target"];

/// A call's client: where it came from (`aws:SourceIp`) and whether over TLS
/// (`aws:SecureTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub source_ip: Option<IpAddr>,
    pub secure: bool,
}

impl Client {
    fn header_value(&self) -> String {
        let address = self.source_ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        format!("{address} {}", if self.secure { "tls" } else { "plain" })
    }

    fn parse(value: &str) -> Option<Client> {
        let (address, transport) = value.split_once(' ')?;
        let source_ip = match address {
            "-" => None,
            address => Some(address.parse().ok()?),
        };
        let secure = match transport {
            "tls" => true,
            "plain" => false,
            _ => return None,
        };
        Some(Client { source_ip, secure })
    }
}

/// What a relay proof covers of a call relayed by member `forwarded_by` for `relayed_for`.
fn vouched<'a>(head: &'a Request<()>, forwarded_by: &'a str, relayed_for: &'a str) -> Vec<&'a str> {
    let signed = RELAY_PROOF_COVERS
        .iter()
        .map(|name| head.headers().get(*name).and_then(|value| value.to_str().ok()).unwrap_or(""));
    [forwarded_by, relayed_for].into_iter().chain(signed).collect()
}

/// The client of a call another member relayed here, if that member proved it
/// (`x-sluice-relay-proof`, with this cluster's secret); `None` for any other call, and for a
/// claim without a valid proof (the caller is then the connection's own peer).
pub fn vouched_client(node: &Node, head: &Request<()>) -> Option<Client> {
    vouched_by(node.shared.config.security.members.as_deref()?, head)
}

/// [`vouched_client`] with the cluster's `members`.
fn vouched_by(members: &Members, head: &Request<()>) -> Option<Client> {
    let header = |name: &str| head.headers().get(name).and_then(|value| value.to_str().ok());
    let (forwarded_by, relayed_for, proof) = (header(FORWARDED_BY)?, header(RELAYED_FOR)?, header(RELAY_PROOF)?);
    let member: u64 = forwarded_by.parse().ok()?;
    let proved = members.secret.verify_relay_proof(member, &vouched(head, forwarded_by, relayed_for), proof);
    if !proved {
        // Debug: a client may send these headers at will.
        tracing::debug!(member, "a relayed call's proof of its client does not hold; its peer is taken as its client");
        return None;
    }
    Client::parse(relayed_for)
}

/// What member `node_id` adds to a call it relays for `client`: the marker, the client, and
/// with the cluster's `members` (its secret) the proof of both.
fn relay_headers(
    members: Option<&Members>,
    node_id: u64,
    head: &Request<()>,
    client: Client,
) -> Vec<(&'static str, String)> {
    let (forwarded_by, relayed_for) = (node_id.to_string(), client.header_value());
    let proof = members.map(|members| members.secret.relay_proof(node_id, &vouched(head, &forwarded_by, &relayed_for)));
    let mut headers = vec![(FORWARDED_BY, forwarded_by), (RELAYED_FOR, relayed_for)];
    headers.extend(proof.map(|proof| (RELAY_PROOF, proof)));
    headers
}

/// Largest answer a relayed queue call's member may send: a receive's records (at most
/// `QUEUE_RECEIVE_READ_BYTES_MAX` of them, base64 in JSON: 4/3 of it) with room for the rest.
pub const QUEUE_ANSWER_BYTES_MAX: usize = 2 * QUEUE_RECEIVE_READ_BYTES_MAX;

/// How long a relayed queue call may take: a receive's longest wait, and the usual margin.
pub const QUEUE_ANSWER_WAIT_MS: u64 = QUEUE_WAIT_TIME_S_MAX as u64 * 1000 + FORWARD_ANSWER_WAIT_MS;

/// The member's answer: its status, content type and body.
pub struct Relayed {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

/// Whether another member relayed this call here.
pub fn relayed_here(head: &Request<()>) -> bool {
    head.headers().contains_key(FORWARDED_BY)
}

/// Member `member`'s HTTP address, when it is another member and `--peers` gives one.
pub fn http_address(node: &Node, member: u64) -> Option<SocketAddr> {
    let config = node.shared.config.cluster.as_ref()?;
    if member == config.node_id {
        return None;
    }
    crate::ops::cluster::members(node).get(&member)?.http
}

/// How much of an answer a relay waits for, and how long.
pub struct AnswerBounds {
    pub bytes_max: usize,
    pub wait_ms: u64,
}

/// Sends the call to member `member` at `http` (which leads `what`, for the error messages:
/// "the catalog") and returns its answer.
pub async fn relay(
    node: &Node,
    (member, http): (u64, SocketAddr),
    what: &str,
    (head, body, client): (&Request<()>, &Bytes, Client),
    bounds: AnswerBounds,
) -> Result<Relayed, KinesisError> {
    let failed = |why: String| {
        KinesisError::internal(format!(
            "This node does not lead {what}, and forwarding the call to node {member} ({http}) failed: {why}; retry"
        ))
    };
    let metrics = &node.metrics;
    metrics.forwarded_requests.set(metrics.forwarded_requests.get() + 1);
    let mut sender = match idle_connection(http) {
        Some(sender) => sender,
        None => connect(node, http).await.map_err(failed)?,
    };
    let mut request = Request::builder().method(Method::POST).uri("/");
    // Every header as it came (the signed ones with them), but the connection's own, and what
    // only this node may say of the call: the body goes whole, with its length.
    let dropped = [header::CONNECTION, header::TRANSFER_ENCODING, header::CONTENT_LENGTH];
    for (name, value) in head.headers() {
        if !dropped.contains(name) && name != RELAYED_FOR && name != RELAY_PROOF {
            request = request.header(name, value);
        }
    }
    let node_id = node.shared.config.cluster.as_ref().map(|config| config.node_id).unwrap_or_default();
    for (name, value) in relay_headers(node.shared.config.security.members.as_deref(), node_id, head, client) {
        request = request.header(name, value);
    }
    let request = request
        .header(header::CONTENT_LENGTH, body.len())
        .body(Full::new(body.clone()))
        .map_err(|error| failed(format!("the request: {error}")))?;
    let wait = Duration::from_millis(bounds.wait_ms);
    let exchange = async {
        let answer = sender.send_request(request).await.map_err(|error| failed(format!("send: {error}")))?;
        let status = answer.status();
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let body = Limited::new(answer.into_body(), bounds.bytes_max)
            .collect()
            .await
            .map_err(|error| failed(format!("its answer: {error}")))?
            .to_bytes();
        Ok(Relayed { status, content_type, body })
    };
    let answer = match future::or(async { Some(exchange.await) }, sleep_none(wait)).await {
        Some(answer) => answer,
        None => Err(failed(format!("no answer within {} ms", bounds.wait_ms))),
    };
    // Answered whole: the connection serves the next relay to this member.
    if answer.is_ok() {
        keep_idle(http, sender);
    }
    answer
}

type Sender = SendRequest<Full<Bytes>>;

thread_local! {
    /// This core's kept-alive connections to members' HTTP ports, idle, by address, each with
    /// when it went idle (most recent last).
    static IDLE: RefCell<HashMap<SocketAddr, Vec<(Instant, Sender)>>> = RefCell::default();
}

/// An idle connection to `http` that can take a request now, if this core keeps one: the
/// most recently used (a connection idle for [`RELAY_CONNECTION_IDLE_MS`], closed by the
/// member, or not ready is dropped).
fn idle_connection(http: SocketAddr) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let senders = idle.get_mut(&http)?;
        let fresh = Duration::from_millis(RELAY_CONNECTION_IDLE_MS);
        while let Some((since, sender)) = senders.pop() {
            if since.elapsed() < fresh && !sender.is_closed() && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    })
}

/// Keeps `sender`'s connection to `http` for the next relay, unless the member closed it or
/// this core keeps [`RELAY_IDLE_CONNECTIONS_PER_MEMBER_MAX`] idle ones to it already.
fn keep_idle(http: SocketAddr, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let senders = idle.entry(http).or_default();
        if senders.len() < RELAY_IDLE_CONNECTIONS_PER_MEMBER_MAX {
            senders.push((Instant::now(), sender));
        }
    });
}

/// A new connection to the member at `http`, over TLS when this node forwards over TLS.
async fn connect(node: &Node, http: SocketAddr) -> Result<Sender, String> {
    let timeout = Duration::from_millis(FORWARD_CONNECT_TIMEOUT_MS);
    let stream = TcpStream::connect_timeout(http, timeout).await.map_err(|error| format!("connect: {error}"))?;
    let _ = stream.set_nodelay(true);
    let sender = match &node.shared.config.security.member_tls {
        None => client_handshake(stream).await,
        Some(config) => {
            // The member's certificate must name the address it is reached at; ALPN as any
            // HTTPS client.
            let mut config = sluice_security::tls::ClientConfig::clone(config);
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let host = http.ip().to_string();
            let connected = sluice_security::tls::connect(Arc::new(config), &host, stream);
            match future::or(async { Some(connected.await) }, sleep_none(timeout)).await {
                Some(Ok((stream, _))) => client_handshake(stream).await,
                Some(Err(error)) => return Err(format!("TLS: {error}")),
                None => return Err(format!("no TLS handshake within {FORWARD_CONNECT_TIMEOUT_MS} ms")),
            }
        }
    };
    sender.map_err(|error| format!("HTTP handshake: {error}"))
}

async fn sleep_none<T>(duration: Duration) -> Option<T> {
    glommio::timer::sleep(duration).await;
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_security::members::ClusterSecret;

    fn members(secret: &str, node_id: u64) -> Members {
        let secret = ClusterSecret::parse(secret).unwrap();
        let store = secret.store([1, 2, 3]).unwrap();
        Members { node_id, secret, store }
    }

    /// A signed call as a client sent it, with `extra` headers.
    fn call(extra: &[(&str, String)]) -> Request<()> {
        let mut head = Request::builder()
            .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/kinesis/aws4_request, ...")
            .header("x-amz-date", "20261205T010000Z")
            .header("x-amz-target", "Kinesis_20131202.ReceiveQueueRecords");
        for (name, value) in extra {
            head = head.header(*name, value);
        }
        head.body(()).unwrap()
    }

    #[test]
    fn the_member_a_call_reaches_believes_the_client_its_relaying_member_proved() {
        const SECRET: &str = "0123456789abcdef0123456789abcdef";
        let client = Client { source_ip: Some("203.0.113.7".parse().unwrap()), secure: false };
        let (relaying, leader) = (members(SECRET, 2), members(SECRET, 1));
        let headers = relay_headers(Some(&relaying), 2, &call(&[]), client);
        assert_eq!(vouched_by(&leader, &call(&headers)), Some(client));
        // No address, over TLS.
        let unknown = Client { source_ip: None, secure: true };
        assert_eq!(vouched_by(&leader, &call(&relay_headers(Some(&relaying), 2, &call(&[]), unknown))), Some(unknown));
        // Another cluster's member, or none (no secret: no proof), is not believed.
        let stranger = members(&SECRET.replace('0', "1"), 2);
        assert_eq!(vouched_by(&leader, &call(&relay_headers(Some(&stranger), 2, &call(&[]), client))), None);
        assert_eq!(vouched_by(&leader, &call(&relay_headers(None, 2, &call(&[]), client))), None);
        // The proof holds for its call alone: not with another signature, nor another client.
        let mut other_call = call(&headers);
        other_call.headers_mut().insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 other"));
        assert_eq!(vouched_by(&leader, &other_call), None);
        let mut other_client = call(&headers);
        other_client.headers_mut().insert(RELAYED_FOR, HeaderValue::from_static("198.51.100.1 plain"));
        assert_eq!(vouched_by(&leader, &other_client), None);
    }
}

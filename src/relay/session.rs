//! One SMTP session of the relay (the server side, over Stalwart's `smtp-proto`): ESMTP
//! with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and STARTTLS, RFC 5321
//! timeouts, and at the end of each message the flow, the next hop, and only then the
//! answer.
//!
//! What the client hears after its message (README "As an SMTP relay"):
//! - 250 once the next hop accepted every delivery the verdicts call for;
//! - 451 when the next hop is down or answers 4xx, or the flow did not finish
//!   (`--on-error tempfail`, the default): the client's server keeps the message and
//!   retries. There is no queue here to lose it from;
//! - the next hop's own 5xx when it refuses the message;
//! - 550 5.7.1 with the bounce text when a verdict bounced every recipient;
//! - 250 for a message every recipient of which was dropped: accepted, not relayed.

use super::next_hop::{Delivery, HopError, NextHop};
use crate::pipeline::Pipeline;
use crate::transport::JUNK_HEADER;
use crate::transport::delivery::{DeliveryPlan, reply_text};
use crate::transport::dsn::partial_bounce;
use crate::transport::rewrite::{NotRewritten, rewrite};
use crate::transport::serve::{ConnectionBox, Stopping};
use crate::workmail::directory::CachedDirectory;
use crate::workmail::redact;
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{
    Error as ProtoError, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_SMTPUTF8, Request,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;
use workmail_flow_core::{Direction, Envelope};

/// RFC 5321 4.5.3.2.7: a server waits at least 5 minutes for the next command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// RFC 5321 4.5.3.2.5-6: 3 minutes for each block of data.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(180);
/// Received fields past which a message is taken to be looping (Postfix's
/// `hopcount_limit` is 50).
pub const MAX_HOPS: usize = 50;

/// What an internal error becomes (`--on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// 451: the client retries.
    TempFail,
    /// The original goes on with the verdicts decided so far and the fail-closed actions
    /// of security stages.
    Accept,
}

/// The relay's settings and the flow it runs.
pub struct Relay {
    pub pipeline: Arc<Pipeline>,
    pub directory: Option<Arc<CachedDirectory>>,
    pub direction: Direction,
    /// The name in the greeting, EHLO, Received fields and bounces.
    pub hostname: String,
    /// The largest message accepted (SIZE), in bytes.
    pub max_size: usize,
    /// Recipients per message at most (RFC 5321 asks for at least 100).
    pub max_recipients: usize,
    /// STARTTLS for clients, when a certificate was given.
    pub tls: Option<TlsAcceptor>,
    pub next_hop: NextHop,
    pub on_error: OnError,
    /// How long the stages may take for one message.
    pub budget: Duration,
    /// The timeouts for the client's commands and data blocks.
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

/// One message being received.
struct Transaction {
    from: String,
    eight_bit: bool,
    utf8: bool,
    recipients: Vec<String>,
}

/// What a session knows across its transactions.
struct State {
    id: String,
    peer: String,
    helo: Option<String>,
    tls: bool,
    tx: Option<Transaction>,
    /// Messages received in this session so far (each one's id is `<session>.<n>`).
    messages: u64,
}

/// How a conversation on one stream ended.
enum Next {
    Close,
    StartTls,
}

static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// Serves one client connection.
pub async fn serve_connection(
    conn: Box<dyn ConnectionBox>,
    peer: String,
    relay: Arc<Relay>,
    stopping: Stopping,
) {
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let mut state = State {
        id: format!("{:x}-{n}", std::process::id()),
        peer,
        helo: None,
        tls: false,
        tx: None,
        messages: 0,
    };
    let span = tracing::info_span!("smtp", session = %state.id);
    session(conn, &mut state, &relay, &stopping)
        .instrument(span)
        .await;
}

async fn session(
    mut conn: Box<dyn ConnectionBox>,
    state: &mut State,
    relay: &Arc<Relay>,
    stopping: &Stopping,
) {
    tracing::info!(peer = %state.peer, "connected");
    let greeting = format!("220 {} ESMTP workmail-flow relay\r\n", relay.hostname);
    if conn.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    match converse(&mut conn, relay, state, stopping).await {
        Ok(Next::StartTls) => {
            let Some(acceptor) = relay.tls.clone() else {
                return;
            };
            match acceptor.accept(conn).await {
                Ok(mut tls) => {
                    state.tls = true;
                    state.helo = None;
                    state.tx = None;
                    if let Err(e) = converse(&mut tls, relay, state, stopping).await {
                        tracing::info!(error = %e, "session ended");
                    }
                    let _ = tls.shutdown().await;
                }
                Err(e) => tracing::warn!(error = %e, "TLS handshake failed"),
            }
        }
        Ok(Next::Close) => {}
        Err(e) => tracing::info!(error = %e, "session ended"),
    }
    tracing::info!("disconnected");
}

/// The answer to a connection the relay cannot take now (at the session cap, or
/// stopping): 421, and the connection closes (RFC 5321 3.8).
pub async fn refuse(mut conn: Box<dyn ConnectionBox>, hostname: Arc<str>) {
    let line = format!("421 4.3.2 {hostname} Service not available, try again later\r\n");
    let _ = conn.write_all(line.as_bytes()).await;
    let _ = conn.shutdown().await;
}

async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    limit: Duration,
) -> std::io::Result<usize> {
    match tokio::time::timeout(limit, stream.read(buf)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client sent nothing within the timeout",
        )),
    }
}

/// The conversation on one stream until QUIT, close, or STARTTLS.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    relay: &Relay,
    state: &mut State,
    stopping: &Stopping,
) -> std::io::Result<Next> {
    let mut receiver = RequestReceiver::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        if pending.is_empty() {
            // Replies to pipelined commands go out together, once the input runs dry.
            if !out.is_empty() {
                stream.write_all(&out).await?;
                stream.flush().await?;
                out.clear();
            }
            let n = match read_some(stream, &mut chunk, relay.command_timeout).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let line = "421 4.4.2 Timeout waiting for a command, closing\r\n";
                    let _ = stream.write_all(line.as_bytes()).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(Next::Close);
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        let mut iter = pending.iter();
        let parsed = receiver.ingest(&mut iter).map(|r| r.into_owned());
        let used = pending.len() - iter.as_slice().len();
        pending.drain(..used);
        let request = match parsed {
            Ok(r) => r,
            Err(ProtoError::NeedsMoreData { .. }) => continue,
            Err(e) => {
                out.extend_from_slice(protocol_error(&e).as_bytes());
                continue;
            }
        };
        match request {
            Request::Ehlo { host } => {
                state.helo = Some(host);
                state.tx = None;
                let mut lines = vec![
                    format!(
                        "{} Hello {}",
                        relay.hostname,
                        reply_text(state.helo.as_deref().unwrap_or(""))
                    ),
                    "PIPELINING".to_string(),
                    format!("SIZE {}", relay.max_size),
                    "8BITMIME".to_string(),
                    "SMTPUTF8".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if relay.tls.is_some() && !state.tls {
                    lines.push("STARTTLS".to_string());
                }
                for (i, line) in lines.iter().enumerate() {
                    let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                    out.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
                }
            }
            Request::Helo { host } => {
                state.helo = Some(host);
                state.tx = None;
                out.extend_from_slice(format!("250 {}\r\n", relay.hostname).as_bytes());
            }
            Request::StartTls => {
                if relay.tls.is_none() || state.tls {
                    out.extend_from_slice(b"502 5.5.1 STARTTLS not available\r\n");
                } else {
                    out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                    stream.write_all(&out).await?;
                    stream.flush().await?;
                    // RFC 3207 5: anything pipelined after STARTTLS is discarded.
                    return Ok(Next::StartTls);
                }
            }
            Request::Mail { from } => {
                if stopping.is_set() {
                    out.extend_from_slice(b"421 4.3.2 Shutting down, try again later\r\n");
                    stream.write_all(&out).await?;
                    return Ok(Next::Close);
                }
                let reply = if state.helo.is_none() {
                    "503 5.5.1 Send EHLO first\r\n"
                } else if state.tx.is_some() {
                    "503 5.5.1 A transaction is already under way\r\n"
                } else if from.size > relay.max_size && from.size != usize::MAX {
                    "552 5.3.4 Message size exceeds the fixed limit\r\n"
                } else if from.flags & MAIL_BODY_BINARYMIME != 0 {
                    "555 5.5.4 BODY=BINARYMIME is not supported\r\n"
                } else {
                    state.tx = Some(Transaction {
                        from: from.address,
                        eight_bit: from.flags & MAIL_BODY_8BITMIME != 0,
                        utf8: from.flags & MAIL_SMTPUTF8 != 0,
                        recipients: Vec::new(),
                    });
                    "250 2.1.0 Ok\r\n"
                };
                out.extend_from_slice(reply.as_bytes());
            }
            Request::Rcpt { to } => {
                let reply = match &mut state.tx {
                    None => "503 5.5.1 Send MAIL first\r\n",
                    Some(tx) if tx.recipients.len() >= relay.max_recipients => {
                        "452 4.5.3 Too many recipients\r\n"
                    }
                    Some(_) if to.address.is_empty() => "501 5.1.3 Bad recipient address\r\n",
                    Some(tx) => {
                        tx.recipients.push(to.address);
                        "250 2.1.5 Ok\r\n"
                    }
                };
                out.extend_from_slice(reply.as_bytes());
            }
            Request::Data => {
                let ready = match &state.tx {
                    None => Some("503 5.5.1 Send MAIL first\r\n"),
                    Some(tx) if tx.recipients.is_empty() => {
                        Some("554 5.5.1 No valid recipients\r\n")
                    }
                    Some(_) => None,
                };
                if let Some(reply) = ready {
                    out.extend_from_slice(reply.as_bytes());
                    continue;
                }
                out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                stream.write_all(&out).await?;
                stream.flush().await?;
                out.clear();
                let (message, too_big) =
                    receive_data(stream, &mut pending, &mut chunk, relay).await?;
                let tx = state.tx.take().expect("checked above");
                state.messages += 1;
                let id = format!("{}.{}", state.id, state.messages);
                let reply = if too_big {
                    tracing::warn!(message = %id, max_size = relay.max_size, "message over the size limit: 552");
                    "552 5.3.4 Message size exceeds the fixed limit\r\n".to_string()
                } else {
                    finish_message(relay, state, &id, tx, message).await
                };
                out.extend_from_slice(reply.as_bytes());
            }
            Request::Rset => {
                state.tx = None;
                out.extend_from_slice(b"250 2.0.0 Ok\r\n");
            }
            Request::Noop { .. } => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
            Request::Quit => {
                out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                stream.write_all(&out).await?;
                stream.flush().await?;
                return Ok(Next::Close);
            }
            Request::Vrfy { .. } => {
                out.extend_from_slice(b"252 2.5.0 Cannot verify, but will relay\r\n")
            }
            Request::Help { .. } => {
                out.extend_from_slice(b"214 2.0.0 See RFC 5321; this is a relay\r\n")
            }
            Request::Bdat { .. } => out.extend_from_slice(b"502 5.5.1 CHUNKING is not offered\r\n"),
            Request::Auth { .. } => {
                out.extend_from_slice(b"502 5.5.1 No AUTH here: restrict clients by network\r\n")
            }
            _ => out.extend_from_slice(b"502 5.5.1 Command not implemented\r\n"),
        }
    }
}

/// The reply to a command line smtp-proto could not read.
fn protocol_error(e: &ProtoError) -> String {
    match e {
        ProtoError::UnknownCommand => "500 5.5.1 Command unrecognized\r\n".into(),
        ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax\r\n".into(),
        ProtoError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax\r\n".into(),
        ProtoError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
        ProtoError::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}\r\n")
        }
        ProtoError::UnsupportedParameter { param } => {
            format!("555 5.5.4 Unsupported parameter {}\r\n", reply_text(param))
        }
        ProtoError::ResponseTooLong => "500 5.5.6 Line too long\r\n".into(),
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}

/// The message after DATA, dot-unstuffed, up to `.`; `true` when it passed the size
/// limit (the rest is read and thrown away, and the client hears 552).
async fn receive_data<S: AsyncRead + Unpin>(
    stream: &mut S,
    pending: &mut Vec<u8>,
    chunk: &mut [u8],
    relay: &Relay,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut data = DataReceiver::new();
    let mut message = Vec::new();
    let mut too_big = false;
    loop {
        let mut iter = pending.iter();
        let done = data.ingest(&mut iter, &mut message);
        let used = pending.len() - iter.as_slice().len();
        pending.drain(..used);
        if message.len() > relay.max_size {
            too_big = true;
            message.clear();
        }
        if done {
            return Ok((message, too_big));
        }
        let n = read_some(stream, chunk, relay.data_timeout).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client closed the connection during DATA",
            ));
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// The trace field RFC 5321 4.4 asks every relay to add on top.
fn received_field(relay: &Relay, state: &State, id: &str) -> String {
    let helo = state.helo.as_deref().map(reply_text).unwrap_or_default();
    let with = if state.tls { "ESMTPS" } else { "ESMTP" };
    let ip = state
        .peer
        .rsplit_once(':')
        .map_or(state.peer.as_str(), |(ip, _)| ip)
        .trim_matches(|c| c == '[' || c == ']');
    format!(
        "Received: from {helo} ([{ip}])\r\n\tby {} (workmail-flow relay) with {with} id {id};\r\n\t{}\r\n",
        relay.hostname,
        httpdate::fmt_http_date(SystemTime::now())
    )
}

/// Runs the flow over one message, delivers what the verdicts say, and returns the reply
/// for the client.
async fn finish_message(
    relay: &Relay,
    state: &State,
    id: &str,
    tx: Transaction,
    body: Vec<u8>,
) -> String {
    // RFC 5321 6.3: a message that has passed this many relays is looping.
    let (fields, _) = workmail_flow_core::header_field::read_header_block(&body);
    let hops = fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("Received"))
        .count();
    if hops >= MAX_HOPS {
        tracing::warn!(message = %id, hops, "mail loop: refused");
        return format!("554 5.4.6 Too many hops ({hops} Received fields): a mail loop\r\n");
    }
    let mut raw = received_field(relay, state, id).into_bytes();
    raw.extend_from_slice(&body);
    drop(body);
    let full = relay.pipeline.log_addresses;
    tracing::info!(
        message = %id,
        from = %redact::address(&tx.from, full),
        recipients = %redact::addresses(&tx.recipients, full),
        bytes = raw.len(),
        "received"
    );
    let envelope = Envelope {
        direction: relay.direction,
        mail_from: (!tx.from.is_empty()).then(|| tx.from.clone()),
        recipients: tx.recipients.clone(),
        message_id: id.to_string(),
        invocation_id: id.to_string(),
        ..Envelope::from_message(&raw, relay.direction)
    };
    let original_header_end = memchr::memmem::find(&raw, b"\r\n\r\n").map_or(raw.len(), |i| i + 2);
    let original_header = raw[..original_header_end].to_vec();
    // `--on-error accept` delivers the original when the flow does not finish; the flow's
    // thread owns the message, so a copy is kept for that case only.
    let kept = (relay.on_error == OnError::Accept).then(|| raw.clone());
    let (message, plan) = match rewrite(
        &relay.pipeline,
        relay.directory.as_deref(),
        raw,
        envelope,
        relay.budget,
    )
    .await
    {
        Ok(rw) => {
            tracing::info!(message = %id, outcome = %rw.summary, delivery = %rw.plan.summary(), "flow");
            (rw.message, rw.plan)
        }
        Err(NotRewritten::CutShort { plan, .. }) if kept.is_some() => {
            tracing::warn!(message = %id, "on_error = accept: the original goes on with the verdicts decided so far");
            (kept.unwrap_or_default(), plan)
        }
        Err(not) => {
            tracing::error!(message = %id, error = %not, "the flow did not finish; 451");
            return "451 4.3.0 Message could not be processed; try again later\r\n".into();
        }
    };
    deliver(relay, id, &tx, &message, &original_header, &plan).await
}

/// Hands the message to the next hop as `plan` says, and says how that went.
async fn deliver(
    relay: &Relay,
    id: &str,
    tx: &Transaction,
    message: &[u8],
    original_header: &[u8],
    plan: &DeliveryPlan,
) -> String {
    if let Some(text) = plan.all_bounced() {
        tracing::info!(message = %id, "every recipient bounced: 550");
        return format!("550 5.7.1 {}\r\n", reply_text(text));
    }
    let junked: Vec<u8>;
    let mut deliveries = Vec::new();
    if !plan.deliver.is_empty() {
        deliveries.push(Delivery {
            from: &tx.from,
            recipients: &plan.deliver,
            eight_bit: tx.eight_bit,
            utf8: tx.utf8,
            message,
        });
    }
    if !plan.junk.is_empty() {
        let (name, value) = JUNK_HEADER;
        let mut m = format!("{name}: {value}\r\n").into_bytes();
        m.extend_from_slice(message);
        junked = m;
        deliveries.push(Delivery {
            from: &tx.from,
            recipients: &plan.junk,
            eight_bit: tx.eight_bit,
            utf8: tx.utf8,
            message: &junked,
        });
    }
    let sender = [tx.from.clone()];
    let dsn;
    if !plan.bounced.is_empty() && !tx.from.is_empty() {
        dsn = partial_bounce(
            &relay.hostname,
            &tx.from,
            &plan.bounced,
            original_header,
            SystemTime::now(),
        );
        deliveries.push(Delivery {
            from: "",
            recipients: &sender,
            eight_bit: false,
            utf8: tx.utf8,
            message: &dsn,
        });
    }
    if deliveries.is_empty() {
        tracing::info!(message = %id, dropped = plan.dropped.len(), "every recipient dropped: accepted, not relayed");
        return "250 2.0.0 Ok: accepted and not relayed (dropped by policy)\r\n".into();
    }
    match relay.next_hop.deliver(&deliveries).await {
        Ok(accepted) => {
            let refused: Vec<(String, String)> = accepted
                .iter()
                .flat_map(|a| a.refused.iter())
                .map(|(r, reply)| {
                    let [a, b, c] = reply.esc;
                    let status = if a == 0 {
                        reply.code.to_string()
                    } else {
                        format!("{} {a}.{b}.{c}", reply.code)
                    };
                    (
                        r.clone(),
                        format!("{} (the next hop said {status})", reply.message),
                    )
                })
                .collect();
            if !refused.is_empty() && !tx.from.is_empty() {
                tracing::warn!(message = %id, refused = refused.len(), "the next hop refused some recipients; telling the sender");
                let dsn = partial_bounce(
                    &relay.hostname,
                    &tx.from,
                    &refused,
                    original_header,
                    SystemTime::now(),
                );
                let notice = [Delivery {
                    from: "",
                    recipients: &sender,
                    eight_bit: false,
                    utf8: tx.utf8,
                    message: &dsn,
                }];
                if let Err(e) = relay.next_hop.deliver(&notice).await {
                    tracing::error!(message = %id, error = %e, "the notification for refused recipients was not delivered");
                }
            }
            let hop = accepted
                .first()
                .map(|a| reply_text(&a.reply.message))
                .unwrap_or_default();
            tracing::info!(message = %id, deliveries = deliveries.len(), "relayed");
            format!("250 2.0.0 Ok: relayed ({hop})\r\n")
        }
        Err(HopError::Rejected(r)) => {
            tracing::warn!(message = %id, code = r.code, "the next hop refused the message; passing its reply back");
            let [a, b, c] = r.esc;
            if a == 5 {
                format!("{} {a}.{b}.{c} {}\r\n", r.code, reply_text(&r.message))
            } else {
                format!("{} 5.0.0 {}\r\n", r.code, reply_text(&r.message))
            }
        }
        Err(HopError::Unavailable(why)) => {
            tracing::warn!(message = %id, reason = %why, "the next hop did not take the message; 451");
            "451 4.4.1 Next hop unavailable; try again later\r\n".into()
        }
    }
}

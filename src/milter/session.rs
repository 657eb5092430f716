//! One milter connection: negotiation, the envelope and message as the MTA streams them,
//! and at the end of each message the flow's result said in milter replies.
//!
//! What each outcome becomes (README "As a milter"):
//! - every recipient bounced: `550 5.7.1 <text>` (`SMFIR_REPLYCODE`);
//! - every recipient dropped: discard;
//! - some bounced or dropped: those recipients removed, the rest get the message;
//! - junk for any recipient: the junk header added (or the message quarantined with
//!   `--junk quarantine`); a milter cannot split one message, so every recipient left
//!   gets the marked copy;
//! - a rewrite: header edits by occurrence and position, and a body replacement when
//!   the body changed;
//! - the flow did not finish (a panic, the time budget, the directory down): tempfail,
//!   so the MTA answers 4xx and the sender retries. With `--on-error accept` the
//!   original is accepted with the verdicts decided so far plus what security stages
//!   ask for when their change is lost (a strip that fails closed bounces), never
//!   unchanged past a security stage; a directory that is down is tempfail either way.

use super::codec::{self, Command, Reply, action, protocol};
use super::header_diff;
use crate::pipeline::Pipeline;
use crate::transport::JUNK_HEADER;
use crate::transport::delivery::{DeliveryPlan, reply_text};
use crate::transport::rewrite::{NotRewritten, rewrite};
use crate::workmail::directory::CachedDirectory;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use workmail_flow_core::{Direction, Envelope};

/// What MOVE_TO_JUNK becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JunkMode {
    /// The junk header is added (the mailbox server files the message as junk).
    Header,
    /// The MTA holds the message in its quarantine (Postfix's hold queue).
    Quarantine,
}

/// What an internal error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Tempfail: the sender retries later.
    TempFail,
    /// Accept the original with the verdicts decided so far and the fail-closed actions
    /// of security stages.
    Accept,
}

/// The milter's settings and the flow it runs.
pub struct Milter {
    pub pipeline: Arc<Pipeline>,
    pub directory: Option<Arc<CachedDirectory>>,
    pub direction: Direction,
    pub junk: JunkMode,
    pub on_error: OnError,
    /// How long the stages may take for one message.
    pub budget: Duration,
    /// How long the MTA may stay silent before the connection is closed.
    pub idle_timeout: Duration,
}

/// The actions this milter asks for.
const WANTED_ACTIONS: u32 = action::ADD_HEADERS
    | action::CHANGE_HEADERS
    | action::CHANGE_BODY
    | action::DELETE_RCPT
    | action::QUARANTINE;

/// One message as it arrives.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    recipients: Vec<String>,
    /// The recipients as the MTA gave them (angle brackets included), for removal.
    recipients_raw: Vec<String>,
    header: Vec<u8>,
    body: Vec<u8>,
    queue_id: String,
}

/// An address without its angle brackets; `None` for the null sender.
fn bare(arg: &str) -> Option<String> {
    let a = arg.trim();
    let a = a.strip_prefix('<').unwrap_or(a);
    let a = a.strip_suffix('>').unwrap_or(a);
    (!a.is_empty()).then(|| a.to_string())
}

/// Serves one MTA connection until it quits or closes.
pub async fn serve_connection<S>(mut stream: S, milter: Arc<Milter>) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut leading_space = false;
    let mut actions = 0u32;
    // Postfix (its `v` macro says so) keeps its own Received field above the header it
    // sends and counts it in insert positions.
    let mut hidden_above = 0u32;
    let mut tx = Transaction::default();
    loop {
        let (command, used) = loop {
            match codec::decode(&buf) {
                Ok(Some(decoded)) => break decoded,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "closing the milter connection");
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            }
            let n = match tokio::time::timeout(milter.idle_timeout, stream.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => {
                    tracing::warn!("the MTA went silent; closing the milter connection");
                    return Ok(());
                }
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..used);
        let replies: Vec<Reply> = match command {
            Command::Negotiate {
                version,
                actions: offered,
                protocol: offered_protocol,
            } => {
                if version < 2 {
                    tracing::error!(version, "the MTA speaks a milter version before 2");
                    return Ok(());
                }
                actions = offered & WANTED_ACTIONS;
                leading_space = offered_protocol & protocol::HEADER_LEADING_SPACE != 0;
                let wanted_protocol =
                    offered_protocol & (protocol::HEADER_LEADING_SPACE | protocol::NO_UNKNOWN);
                vec![Reply::Negotiate {
                    version: version.min(codec::VERSION),
                    actions,
                    protocol: wanted_protocol,
                }]
            }
            Command::Macros { pairs, .. } => {
                for (name, value) in &pairs {
                    match name.as_str() {
                        "i" => tx.queue_id = value.clone(),
                        "v" if value.starts_with("Postfix") => hidden_above = 1,
                        _ => {}
                    }
                }
                Vec::new()
            }
            Command::Connect { .. } | Command::Helo(_) | Command::Data | Command::Unknown(_) => {
                vec![Reply::Continue]
            }
            Command::MailFrom(args) => {
                let queue_id = std::mem::take(&mut tx.queue_id);
                tx = Transaction {
                    mail_from: args.first().and_then(|a| bare(a)),
                    queue_id,
                    ..Transaction::default()
                };
                vec![Reply::Continue]
            }
            Command::Recipient(args) => {
                if let Some(first) = args.first() {
                    if let Some(addr) = bare(first) {
                        tx.recipients.push(addr);
                    }
                    tx.recipients_raw.push(first.clone());
                }
                vec![Reply::Continue]
            }
            Command::Header { name, value } => {
                tx.header.extend_from_slice(&name);
                tx.header.push(b':');
                if !leading_space {
                    tx.header.push(b' ');
                }
                push_crlf_lines(&mut tx.header, &value);
                tx.header.extend_from_slice(b"\r\n");
                vec![Reply::Continue]
            }
            Command::EndOfHeader => vec![Reply::Continue],
            Command::Body(chunk) => {
                tx.body.extend_from_slice(&chunk);
                vec![Reply::Continue]
            }
            Command::EndOfBody(last) => {
                tx.body.extend_from_slice(&last);
                let message = std::mem::take(&mut tx);
                end_of_message(&milter, message, actions, leading_space, hidden_above).await
            }
            Command::Abort => {
                tx = Transaction::default();
                Vec::new()
            }
            Command::Quit => return Ok(()),
            Command::QuitNewConnection => {
                tx = Transaction::default();
                Vec::new()
            }
        };
        for r in &replies {
            stream.write_all(&r.encode()).await?;
        }
        if !replies.is_empty() {
            stream.flush().await?;
        }
    }
}

/// `value` with its `\n` line breaks as CRLF (a bare CR stays as it is).
fn push_crlf_lines(out: &mut Vec<u8>, value: &[u8]) {
    for (i, &b) in value.iter().enumerate() {
        if b == b'\n' && (i == 0 || value[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
}

/// The replies for one whole message.
async fn end_of_message(
    milter: &Milter,
    tx: Transaction,
    actions: u32,
    leading_space: bool,
    hidden_above: u32,
) -> Vec<Reply> {
    let header_len = tx.header.len();
    if tracing::enabled!(tracing::Level::DEBUG) {
        let names: Vec<String> = header_diff::fields(&tx.header)
            .into_iter()
            .map(|f| f.name)
            .collect();
        tracing::debug!(queue_id = %tx.queue_id, fields = %names.join(","), body_bytes = tx.body.len(), "the MTA's message");
    }
    let mut raw = tx.header;
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(&tx.body);
    drop(tx.body);
    let envelope = Envelope {
        direction: milter.direction,
        mail_from: tx.mail_from.clone(),
        recipients: tx.recipients.clone(),
        message_id: tx.queue_id.clone(),
        invocation_id: tx.queue_id.clone(),
        ..Envelope::from_message(&raw, milter.direction)
    };
    let original_header = raw[..header_len].to_vec();
    // The flow's thread takes the message; a digest of the body is enough to tell
    // whether the rewrite changed it, without a second copy of a 40 MB body.
    let original_body = BodyDigest::of(&raw[header_len + 2..]);
    let recipients = tx.recipients.clone();
    let result = rewrite(
        &milter.pipeline,
        milter.directory.as_deref(),
        raw,
        envelope,
        milter.budget,
    )
    .await;
    let raw_of = |addr: &str| -> String {
        recipients
            .iter()
            .position(|r| r == addr)
            .and_then(|i| tx.recipients_raw.get(i).cloned())
            .unwrap_or_else(|| format!("<{addr}>"))
    };
    let (plan, edits) = match result {
        Ok(rw) => {
            tracing::info!(queue_id = %tx.queue_id, outcome = %rw.summary, delivery = %rw.plan.summary(), "milter message");
            let edits = if rw.changed {
                match content_replies(
                    &original_header,
                    original_body,
                    &rw.message,
                    actions,
                    leading_space,
                    hidden_above,
                ) {
                    Ok(edits) => edits,
                    Err(why) => {
                        tracing::error!(reason = %why, "cannot hand the rewrite back as milter actions");
                        return error_reply(milter, None, actions, leading_space, &raw_of);
                    }
                }
            } else {
                Vec::new()
            };
            (rw.plan, edits)
        }
        Err(not) => {
            tracing::error!(queue_id = %tx.queue_id, error = %not, "the flow did not finish");
            return error_reply(milter, Some(not), actions, leading_space, &raw_of);
        }
    };
    verdict_replies(milter, &plan, edits, actions, leading_space, &raw_of)
}

/// The answer when the flow did not finish, or its result cannot be handed back.
fn error_reply(
    milter: &Milter,
    not: Option<NotRewritten>,
    actions: u32,
    leading_space: bool,
    raw_of: &dyn Fn(&str) -> String,
) -> Vec<Reply> {
    match not {
        Some(NotRewritten::CutShort { plan, .. }) if milter.on_error == OnError::Accept => {
            tracing::warn!(
                "on_error = accept: the original goes on with the verdicts decided so far"
            );
            verdict_replies(milter, &plan, Vec::new(), actions, leading_space, raw_of)
        }
        _ => vec![Reply::TempFail],
    }
}

/// The verdicts as milter replies, after the content edits.
fn verdict_replies(
    milter: &Milter,
    plan: &DeliveryPlan,
    mut edits: Vec<Reply>,
    actions: u32,
    leading_space: bool,
    raw_of: &dyn Fn(&str) -> String,
) -> Vec<Reply> {
    if let Some(text) = plan.all_bounced() {
        return vec![Reply::ReplyCode(format!("550 5.7.1 {}", reply_text(text)))];
    }
    if plan.nothing_to_deliver() {
        return vec![Reply::Discard];
    }
    let gone: Vec<&String> = plan
        .dropped
        .iter()
        .chain(plan.bounced.iter().map(|(r, _)| r))
        .collect();
    if !gone.is_empty() {
        if actions & action::DELETE_RCPT == 0 {
            tracing::error!("the MTA does not let this milter remove recipients");
            return vec![Reply::TempFail];
        }
        for r in gone {
            edits.push(Reply::DeleteRecipient(raw_of(r)));
        }
    }
    if !plan.junk.is_empty() {
        match milter.junk {
            JunkMode::Header if actions & action::ADD_HEADERS != 0 => {
                let (name, value) = JUNK_HEADER;
                let value = if leading_space {
                    format!(" {value}")
                } else {
                    value.to_string()
                };
                edits.push(Reply::InsertHeader {
                    index: 0,
                    name: name.to_string(),
                    value: value.into_bytes(),
                });
            }
            JunkMode::Quarantine if actions & action::QUARANTINE != 0 => {
                edits.push(Reply::Quarantine("workmail-flow: MOVE_TO_JUNK".into()));
            }
            _ => {
                tracing::error!("the MTA does not allow the action the junk verdict needs");
                return vec![Reply::TempFail];
            }
        }
    }
    edits.push(Reply::Accept);
    edits
}

/// A body's length and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BodyDigest(usize, [u8; 32]);

impl BodyDigest {
    fn of(body: &[u8]) -> BodyDigest {
        use sha2::Digest;
        BodyDigest(body.len(), sha2::Sha256::digest(body).into())
    }
}

/// The header and body replies that turn the original into `rewritten`.
fn content_replies(
    original_header: &[u8],
    original_body: BodyDigest,
    rewritten: &[u8],
    actions: u32,
    leading_space: bool,
    hidden_above: u32,
) -> Result<Vec<Reply>, String> {
    let split = memchr::memmem::find(rewritten, b"\r\n\r\n")
        .map(|i| (i + 2, i + 4))
        .ok_or("the rewrite has no end of header")?;
    let (new_header, new_body) = (&rewritten[..split.0], &rewritten[split.1..]);
    let mut out = header_diff::replies(
        &header_diff::fields(original_header),
        &header_diff::fields(new_header),
        leading_space,
        hidden_above,
    );
    let needs = |r: &Reply| match r {
        Reply::AddHeader { .. } | Reply::InsertHeader { .. } => action::ADD_HEADERS,
        Reply::ChangeHeader { .. } => action::CHANGE_HEADERS,
        _ => 0,
    };
    if let Some(r) = out.iter().find(|r| actions & needs(r) != needs(r)) {
        return Err(format!("the MTA does not allow {r:?}"));
    }
    if BodyDigest::of(new_body) != original_body {
        if actions & action::CHANGE_BODY == 0 {
            return Err("the MTA does not let this milter replace the body".into());
        }
        out.extend(codec::replace_body(new_body));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_angle_brackets_and_the_null_sender_is_none() {
        assert_eq!(bare("<a@x.example>"), Some("a@x.example".into()));
        assert_eq!(bare("<>"), None);
        assert_eq!(bare("b@y"), Some("b@y".into()));
    }

    #[test]
    fn folded_values_are_rebuilt_with_crlf() {
        let mut out = Vec::new();
        push_crlf_lines(&mut out, b" a\n\tb");
        assert_eq!(out, b" a\r\n\tb");
    }

    #[test]
    fn a_body_only_change_is_a_body_replacement_and_no_header_edit() {
        let r = content_replies(
            b"Subject: s\r\n",
            BodyDigest::of(b"old\r\n"),
            b"Subject: s\r\n\r\nnew\r\n",
            WANTED_ACTIONS,
            true,
            1,
        )
        .unwrap();
        assert_eq!(r, vec![Reply::ReplaceBody(b"new\r\n".to_vec())]);
        assert!(
            content_replies(
                b"Subject: s\r\n",
                BodyDigest::of(b"old\r\n"),
                b"Subject: s\r\n\r\nnew\r\n",
                0,
                true,
                1
            )
            .is_err()
        );
    }
}

//! The relay's client side: one SMTP transaction per delivery to the next hop, over
//! Stalwart's `mail-send`, with STARTTLS as `--next-hop-tls` says. The relay answers its
//! own client only after this returns, so a message is never accepted that the next hop
//! did not take.

use mail_send::SmtpClient;
use smtp_proto::{EXT_8BIT_MIME, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS, EhloResponse, Response};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

/// `--next-hop-tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopTls {
    /// STARTTLS with a certificate the system's roots (or `--next-hop-ca`) verify;
    /// a next hop without it is not used (451).
    Required,
    /// STARTTLS when offered, without verifying the certificate (RFC 7435); plain text
    /// when not offered.
    Opportunistic,
    /// Plain text only.
    None,
}

impl HopTls {
    pub fn parse(s: &str) -> Option<HopTls> {
        match s {
            "required" => Some(HopTls::Required),
            "opportunistic" => Some(HopTls::Opportunistic),
            "none" => Some(HopTls::None),
            _ => None,
        }
    }
}

/// Where and how the relay delivers.
pub struct NextHop {
    /// `HOST:PORT` as given.
    pub address: String,
    /// The host part, for the certificate's name.
    pub host: String,
    pub tls: HopTls,
    /// Verifies the next hop's certificate (`Required`).
    pub verified: TlsConnector,
    /// Accepts any certificate (`Opportunistic`).
    pub unverified: TlsConnector,
    /// The name the relay gives in EHLO.
    pub helo: String,
    /// Each command's time limit (RFC 5321 4.5.3.2 gives 2 to 10 minutes; one value).
    pub timeout: Duration,
    /// SMTP AUTH for the next hop (user, password), sent only over TLS.
    pub auth: Option<(String, String)>,
}

/// Why a delivery did not happen.
#[derive(Debug)]
pub enum HopError {
    /// The next hop could not be reached or said 4xx: the relay answers 451 and the
    /// sender's server retries.
    Unavailable(String),
    /// The next hop refused the message for good (5xx): its reply is passed back.
    Rejected(Response<String>),
}

impl std::fmt::Display for HopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HopError::Unavailable(why) => write!(f, "next hop unavailable: {why}"),
            HopError::Rejected(r) => write!(f, "next hop refused: {} {}", r.code, r.message),
        }
    }
}

/// One message for the next hop.
pub struct Delivery<'a> {
    /// MAIL FROM (empty for the null sender).
    pub from: &'a str,
    pub recipients: &'a [String],
    /// The client declared `BODY=8BITMIME`.
    pub eight_bit: bool,
    /// The client declared `SMTPUTF8`.
    pub utf8: bool,
    /// The message, as it goes on the wire before dot-stuffing.
    pub message: &'a [u8],
}

/// What the next hop said about each recipient of a delivery it took.
#[derive(Debug)]
pub struct Accepted {
    /// Its final reply to the message.
    pub reply: Response<String>,
    /// Recipients it refused for good, with its reply; the others got the message.
    pub refused: Vec<(String, Response<String>)>,
}

fn unavailable(e: impl std::fmt::Display) -> HopError {
    HopError::Unavailable(e.to_string())
}

impl NextHop {
    /// Delivers each of `deliveries` in one connection, in order. The first failure
    /// stops the rest.
    pub async fn deliver(&self, deliveries: &[Delivery<'_>]) -> Result<Vec<Accepted>, HopError> {
        let addr: SocketAddr = tokio::net::lookup_host(&self.address)
            .await
            .map_err(|e| unavailable(format!("cannot resolve {}: {e}", self.address)))?
            .next()
            .ok_or_else(|| unavailable(format!("{} resolves to no address", self.address)))?;
        let mut client = SmtpClient::connect(addr, self.timeout)
            .await
            .map_err(|e| unavailable(format!("cannot connect to {}: {e:?}", self.address)))?;
        let greeting = client
            .read()
            .await
            .map_err(|e| unavailable(format!("{e:?}")))?;
        if greeting.code != 220 {
            return Err(refusal(greeting));
        }
        let ehlo = client
            .ehlo(&self.helo)
            .await
            .map_err(|e| ehlo_error(e, "EHLO"))?;
        let offers_tls = ehlo.has_capability(EXT_START_TLS);
        let connector = match (self.tls, offers_tls) {
            (HopTls::None, _) | (HopTls::Opportunistic, false) => None,
            (HopTls::Required, false) => {
                return Err(unavailable(format!(
                    "{} does not offer STARTTLS and --next-hop-tls is required",
                    self.address
                )));
            }
            (HopTls::Required, true) => Some(&self.verified),
            (HopTls::Opportunistic, true) => Some(&self.unverified),
        };
        if connector.is_none() && self.auth.is_some() {
            return Err(unavailable(format!(
                "{} offers no STARTTLS, and credentials are never sent in plain text",
                self.address
            )));
        }
        match connector {
            None => transact_all(client, ehlo, &self.helo, None, deliveries).await,
            Some(connector) => {
                let client = client.start_tls(connector, &self.host).await.map_err(|e| {
                    unavailable(format!("STARTTLS with {} failed: {e:?}", self.address))
                })?;
                transact_all(client, ehlo, &self.helo, Some(&self.auth), deliveries).await
            }
        }
    }
}

/// A reply that is not what the step needs: 5xx is the next hop's refusal, anything
/// else means try later.
fn refusal(r: Response<String>) -> HopError {
    if (500..600).contains(&r.code) {
        HopError::Rejected(r)
    } else {
        HopError::Unavailable(format!("{} {}", r.code, r.message))
    }
}

fn ehlo_error(e: mail_send::Error, step: &str) -> HopError {
    match e {
        mail_send::Error::UnexpectedReply(r) => refusal(r),
        other => unavailable(format!("{step}: {other:?}")),
    }
}

/// The transactions on a connection past EHLO; `tls` is set after STARTTLS, with the
/// credentials to log in with, if any.
async fn transact_all<T: AsyncRead + AsyncWrite + Unpin>(
    mut client: SmtpClient<T>,
    ehlo: EhloResponse<String>,
    helo: &str,
    tls: Option<&Option<(String, String)>>,
    deliveries: &[Delivery<'_>],
) -> Result<Vec<Accepted>, HopError> {
    // After STARTTLS the server forgets what it said (RFC 3207): ask again.
    let ehlo = if tls.is_some() {
        client
            .ehlo(helo)
            .await
            .map_err(|e| ehlo_error(e, "EHLO after STARTTLS"))?
    } else {
        ehlo
    };
    if let Some(Some((user, password))) = tls {
        let credentials = mail_send::Credentials::new(user.as_str(), password.as_str());
        if let Err(e) = client.authenticate(&credentials, &ehlo).await {
            // Credentials the next hop refuses are the relay's problem, not the sender's:
            // 451, so the mail waits in the sender's queue until they are fixed.
            return Err(match e {
                mail_send::Error::AuthenticationFailed(r)
                | mail_send::Error::UnexpectedReply(r) => {
                    unavailable(format!("AUTH refused: {} {}", r.code, r.message))
                }
                other => unavailable(format!("AUTH: {other:?}")),
            });
        }
    }
    let mut done = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        if i > 0 {
            let r = cmd(&mut client, "RSET\r\n".into()).await?;
            if r.code != 250 {
                return Err(refusal(r));
            }
        }
        done.push(transact(&mut client, &ehlo, d).await?);
    }
    let _ = client.cmd(b"QUIT\r\n").await;
    Ok(done)
}

async fn cmd<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    line: String,
) -> Result<Response<String>, HopError> {
    client
        .cmd(line.as_bytes())
        .await
        .map_err(|e| unavailable(format!("{}: {e:?}", line.trim_end())))
}

async fn transact<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    ehlo: &EhloResponse<String>,
    d: &Delivery<'_>,
) -> Result<Accepted, HopError> {
    let mut params = String::new();
    if ehlo.has_capability(EXT_SIZE) {
        params.push_str(&format!(" SIZE={}", d.message.len()));
    }
    if d.eight_bit && ehlo.has_capability(EXT_8BIT_MIME) {
        params.push_str(" BODY=8BITMIME");
    }
    if d.utf8 {
        if !ehlo.has_capability(EXT_SMTP_UTF8) {
            // RFC 6531 3.4: a message that needs SMTPUTF8 is not downgraded.
            return Err(HopError::Rejected(Response::new(
                550,
                5,
                6,
                7,
                "the next hop does not support SMTPUTF8".to_string(),
            )));
        }
        params.push_str(" SMTPUTF8");
    }
    let r = cmd(client, format!("MAIL FROM:<{}>{params}\r\n", d.from)).await?;
    if r.code != 250 {
        return Err(refusal(r));
    }
    let mut refused = Vec::new();
    for rcpt in d.recipients {
        let r = cmd(client, format!("RCPT TO:<{rcpt}>\r\n")).await?;
        match r.code {
            250 | 251 => {}
            500..=599 => refused.push((rcpt.clone(), r)),
            // A recipient to try later: the whole message is tried later, so that
            // nobody gets it twice.
            _ => return Err(refusal(r)),
        }
    }
    if refused.len() == d.recipients.len() {
        let (_, first) = refused.swap_remove(0);
        return Err(HopError::Rejected(first));
    }
    let r = cmd(client, "DATA\r\n".into()).await?;
    if r.code != 354 {
        return Err(refusal(r));
    }
    // mail-send ends the data with CRLF.CRLF; a message that already ends in CRLF would
    // gain an empty line, so that last CRLF is left to it.
    let body = d.message.strip_suffix(b"\r\n").unwrap_or(d.message);
    let reply = tokio::time::timeout(client.timeout, async {
        client
            .write_message(body)
            .await
            .map_err(mail_send::Error::Io)?;
        client.read().await
    })
    .await
    .map_err(|_| unavailable("timed out sending the message"))?
    .map_err(|e| unavailable(format!("sending the message: {e:?}")))?;
    if !(200..300).contains(&reply.code) {
        return Err(refusal(reply));
    }
    Ok(Accepted { reply, refused })
}

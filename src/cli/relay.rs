//! `workmail-flow relay`: serves the flow as an SMTP relay (smart host).

use super::server::ServerArgs;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::relay::next_hop::{HopTls, NextHop};
use crate::relay::session::{
    COMMAND_TIMEOUT, DATA_TIMEOUT, OnError, Relay, refuse, serve_connection,
};
use crate::relay::tls;
use crate::stage::StageRegistry;
use crate::transport::serve::{ListenAddr, Listener, Task, serve};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serve the flow as an SMTP relay (a smart host).
///
/// Each message is rewritten and handed to the next hop, and the client hears 250 only
/// once the next hop has taken it.
///
/// Next hop down or 4xx: the client hears 451 and retries. Next hop 5xx: its reply is
/// passed back. Every recipient bounced: 550 with the bounce text. Every recipient
/// dropped: 250, not relayed. Some bounced: relayed to the others and the sender gets a
/// delivery status notification. Junk: relayed with X-Spam-Flag: YES.
///
/// Example:
///   workmail-flow relay --config flow.toml --listen 0.0.0.0:2525 \
///     --next-hop smtp.example.net:25 --tls-cert cert.pem --tls-key key.pem
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RelayArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where to listen for SMTP clients: HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Where rewritten messages go: HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub next_hop: String,
    /// The certificate chain (PEM) offered to clients with STARTTLS; with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS to the next hop: `required` (STARTTLS with a verified certificate, else
    /// 451), `opportunistic` (STARTTLS when offered, unverified), or `none`.
    #[arg(long, value_parser = ["required", "opportunistic", "none"], default_value = "opportunistic")]
    pub next_hop_tls: String,
    /// A CA certificate (PEM) the next hop's certificate may chain to, besides the
    /// system's roots (`--next-hop-tls required`).
    #[arg(long, value_name = "PEM")]
    pub next_hop_ca: Option<PathBuf>,
    /// The relay's host name in its greeting, EHLO, Received fields and bounces;
    /// default the machine's.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Log in to the next hop with SMTP AUTH as this user (over TLS only), with the
    /// password from the WORKMAIL_FLOW_NEXT_HOP_PASSWORD environment variable (SES's SMTP
    /// endpoint, a provider's smart host).
    #[arg(long, value_name = "USER")]
    pub next_hop_user: Option<String>,
    /// The largest message accepted, in bytes (advertised as SIZE).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_size: usize,
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn run(args: &RelayArgs, registry: &StageRegistry) -> u8 {
    crate::workmail::lambda::init_logging(crate::workmail::lambda::LogTo::Stderr);
    let hop_tls = HopTls::parse(&args.next_hop_tls).unwrap_or(HopTls::Opportunistic);
    let Some((hop_host, _)) = args.next_hop.rsplit_once(':') else {
        eprintln!("error: --next-hop {}: not HOST:PORT", args.next_hop);
        return EXIT_USAGE;
    };
    let hop_host = hop_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let acceptor = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match tls::acceptor(cert, key) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("error: --tls-cert/--tls-key: {e}");
                return EXIT_USAGE;
            }
        },
        _ => None,
    };
    let verified = match tls::verified_connector(args.next_hop_ca.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: --next-hop-ca: {e}");
            return EXIT_USAGE;
        }
    };
    let auth = match &args.next_hop_user {
        None => None,
        Some(user) => match std::env::var("WORKMAIL_FLOW_NEXT_HOP_PASSWORD") {
            Ok(password) if !password.is_empty() => Some((user.clone(), password)),
            _ => {
                eprintln!(
                    "error: --next-hop-user {user}: set WORKMAIL_FLOW_NEXT_HOP_PASSWORD to its password"
                );
                return EXIT_USAGE;
            }
        },
    };
    if auth.is_some() && hop_tls == HopTls::None {
        eprintln!("error: --next-hop-user needs TLS to the next hop, not --next-hop-tls none");
        return EXIT_USAGE;
    }
    let hostname = args.hostname.clone().unwrap_or_else(machine_name);
    let runtime = match super::runtime(true) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let loaded = match args.server.load(registry).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        };
        let listener = match Listener::bind(&ListenAddr::parse(&args.listen), 0o660).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --listen {}: {e}", args.listen);
                return EXIT_USAGE;
            }
        };
        let relay = Arc::new(Relay {
            pipeline: loaded.pipeline,
            directory: loaded.directory,
            direction: loaded.direction,
            hostname: hostname.clone(),
            max_size: args.max_size,
            max_recipients: 1000,
            tls: acceptor,
            next_hop: NextHop {
                address: args.next_hop.clone(),
                host: hop_host,
                tls: hop_tls,
                verified,
                unverified: tls::unverified_connector(),
                helo: hostname.clone(),
                timeout: Duration::from_secs(300),
                auth,
            },
            on_error: if args.server.accept_on_error() {
                OnError::Accept
            } else {
                OnError::TempFail
            },
            budget: args.server.budget(),
            command_timeout: COMMAND_TIMEOUT,
            data_timeout: DATA_TIMEOUT,
        });
        tracing::info!(listen = %listener.local_addr(), next_hop = %args.next_hop, stages = relay.pipeline.len(), "relay listening");
        eprintln!("relay listening on {}", listener.local_addr());
        let name: Arc<str> = Arc::from(hostname.as_str());
        let session = move |conn, peer, stopping| -> Task {
            Box::pin(serve_connection(conn, peer, Arc::clone(&relay), stopping))
        };
        let refuse = move |conn| -> Task { Box::pin(refuse(conn, Arc::clone(&name))) };
        match serve(listener, args.server.serve_options(), session, refuse).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_FAILED
            }
        }
    })
}

//! `workmail-flow milter`: serves the flow to Postfix or Sendmail over the milter
//! protocol.

use super::server::ServerArgs;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::milter::session::{JunkMode, Milter, OnError, serve_connection};
use crate::stage::StageRegistry;
use crate::transport::serve::{ListenAddr, Listener, Task, serve};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Serve the flow as a milter to Postfix, Sendmail or Stalwart.
///
/// The milter protocol, version 6.
/// Each message's envelope, header and body stream in; at its end the flow runs and the
/// result goes back as milter actions: header edits, a body replacement, removed
/// recipients, reject (every recipient bounced), discard (every recipient dropped), and
/// the junk header or quarantine. When the flow does not finish the MTA is told to
/// tempfail (see --on-error).
///
/// Example (Postfix main.cf: smtpd_milters = inet:127.0.0.1:8891):
///   workmail-flow milter --config /etc/workmail-flow/flow.toml --listen 127.0.0.1:8891
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MilterArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where to listen: HOST:PORT, or unix:PATH for a Unix socket.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// What MOVE_TO_JUNK becomes: `header` (X-Spam-Flag: YES added on top, for the
    /// mailbox server to file as junk) or `quarantine` (the MTA holds the message;
    /// Postfix's hold queue).
    #[arg(long, value_parser = ["header", "quarantine"], default_value = "header")]
    pub junk: String,
    /// The permissions of a unix:PATH socket, in octal: the MTA's user or group needs
    /// write permission to connect (Postfix's smtpd runs as `postfix`).
    #[arg(long, value_name = "OCTAL", default_value = "660", value_parser = parse_mode)]
    pub socket_mode: u32,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s}: not an octal mode such as 660"))
}

pub fn run(args: &MilterArgs, registry: &StageRegistry) -> u8 {
    crate::workmail::lambda::init_logging(crate::workmail::lambda::LogTo::Stderr);
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
        let listener = match Listener::bind(&ListenAddr::parse(&args.listen), args.socket_mode).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --listen {}: {e}", args.listen);
                return EXIT_USAGE;
            }
        };
        let milter = Arc::new(Milter {
            pipeline: loaded.pipeline,
            directory: loaded.directory,
            direction: loaded.direction,
            junk: if args.junk == "quarantine" {
                JunkMode::Quarantine
            } else {
                JunkMode::Header
            },
            on_error: if args.server.accept_on_error() {
                OnError::Accept
            } else {
                OnError::TempFail
            },
            budget: args.server.budget(),
            idle_timeout: Duration::from_secs(600),
        });
        tracing::info!(listen = %listener.local_addr(), stages = milter.pipeline.len(), "milter listening");
        eprintln!("milter listening on {}", listener.local_addr());
        let session = move |conn, _peer, _stopping| -> Task {
            let milter = Arc::clone(&milter);
            Box::pin(async move {
                if let Err(e) = serve_connection(conn, milter).await {
                    tracing::info!(error = %e, "milter connection ended");
                }
            })
        };
        // A milter over the cap is closed: the MTA applies its milter_default_action.
        let refuse = |_conn| -> Task { Box::pin(async {}) };
        match serve(listener, args.server.serve_options(), session, refuse).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_FAILED
            }
        }
    })
}

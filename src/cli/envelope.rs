//! The envelope options `replay` and `explain` share: a WorkMail event, or the direction
//! and addresses given as flags (default: from the message's own From, To and Cc).

use crate::event::{Direction, Envelope, WorkMailEvent};
use crate::pipeline::Pipeline;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct EnvelopeArgs {
    /// A WorkMail event (JSON) giving the envelope of every message.
    #[arg(long, value_name = "EVENT.json", conflicts_with_all = ["direction", "sender", "recipient"])]
    pub event: Option<PathBuf>,
    /// The direction when there is no event.
    #[arg(long, value_parser = ["inbound", "outbound"])]
    pub direction: Option<String>,
    /// The envelope sender (MAIL FROM) when there is no event.
    #[arg(long, value_name = "ADDR")]
    pub sender: Option<String>,
    /// An envelope recipient when there is no event; repeat for several.
    #[arg(long, value_name = "ADDR")]
    pub recipient: Vec<String>,
}

/// Where the envelope of each message comes from.
pub enum EnvelopeSource {
    Event(Envelope),
    Flags {
        direction: Direction,
        sender: Option<String>,
        recipients: Vec<String>,
    },
}

impl EnvelopeSource {
    /// Reads the event file, if one was given; errors name the file.
    pub fn from_args(args: &EnvelopeArgs) -> Result<EnvelopeSource, String> {
        if let Some(path) = &args.event {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            let event: WorkMailEvent = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a WorkMail event: {e}", path.display()))?;
            return Ok(EnvelopeSource::Event(Envelope::from(&event)));
        }
        Ok(EnvelopeSource::Flags {
            direction: args
                .direction
                .as_deref()
                .and_then(Direction::parse)
                .unwrap_or_default(),
            sender: args.sender.clone(),
            recipients: args.recipient.clone(),
        })
    }

    pub fn for_message(&self, raw: &[u8]) -> Envelope {
        match self {
            EnvelopeSource::Event(e) => e.clone(),
            EnvelopeSource::Flags {
                direction,
                sender,
                recipients,
            } => {
                let mut env = Envelope::from_message(raw, *direction);
                if sender.is_some() {
                    env.mail_from = sender.clone();
                }
                if !recipients.is_empty() {
                    env.recipients = recipients.clone();
                }
                env
            }
        }
    }
}

/// Loads the flow config and the envelope source a command needs, printing what is
/// wrong and giving the usage exit code when either cannot be had.
pub fn load_flow(config: &Path, args: &EnvelopeArgs) -> Result<(Pipeline, EnvelopeSource), u8> {
    let pipeline = crate::config::load(config).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    let envelopes = EnvelopeSource::from_args(args).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    Ok((pipeline, envelopes))
}

//! The envelope options `replay` and `explain` share: a WorkMail event, or the direction
//! and addresses given as flags (default: from the message's own From, To and Cc).

use crate::pipeline::Pipeline;
use crate::workmail::event::{Direction, Envelope, WorkMailEvent};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct EnvelopeArgs {
    /// A WorkMail event (JSON) giving the envelope of every message.
    #[arg(long, value_name = "EVENT.json", conflicts_with_all = ["direction", "sender", "recipient", "events"])]
    pub event: Option<PathBuf>,
    /// A folder of WorkMail events: each message takes DIR/<its file name without
    /// extension>.json when there is one (samples/events for the samples), else the
    /// flags below or its own From, To and Cc.
    #[arg(long, value_name = "DIR")]
    pub events: Option<PathBuf>,
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
pub struct EnvelopeSource {
    base: Base,
    /// `--events DIR`: a message's own event, when DIR has one.
    events: Option<PathBuf>,
}

enum Base {
    Event(Envelope),
    Flags {
        direction: Direction,
        sender: Option<String>,
        recipients: Vec<String>,
    },
}

fn read_event(path: &Path) -> Result<Envelope, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let event: WorkMailEvent = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a WorkMail event: {e}", path.display()))?;
    if let Some(p) = event.address_problems().first() {
        return Err(format!("{}: {p}", path.display()));
    }
    Ok(Envelope::from(&event))
}

impl EnvelopeSource {
    /// Reads the event file, if one was given; errors name the file.
    pub fn from_args(args: &EnvelopeArgs) -> Result<EnvelopeSource, String> {
        if let Some(dir) = &args.events
            && !dir.is_dir()
        {
            return Err(format!("{}: --events must name a folder", dir.display()));
        }
        // MAIL FROM may be empty (a bounce's null sender); a recipient may not.
        if let Some(s) = args.sender.as_deref().filter(|s| !s.is_empty())
            && let Some(p) = crate::workmail::event::address_problem(s)
        {
            return Err(format!("--sender {s:?}: {p}"));
        }
        for r in &args.recipient {
            if let Some(p) = crate::workmail::event::address_problem(r) {
                return Err(format!("--recipient {r:?}: {p}"));
            }
        }
        let base = match &args.event {
            Some(path) => Base::Event(read_event(path)?),
            None => Base::Flags {
                direction: args
                    .direction
                    .as_deref()
                    .and_then(Direction::parse)
                    .unwrap_or_default(),
                sender: args.sender.clone(),
                recipients: args.recipient.clone(),
            },
        };
        Ok(EnvelopeSource {
            base,
            events: args.events.clone(),
        })
    }

    /// The envelope of the message read from `input` (`None`: stdin); an error names
    /// the event file that cannot be read.
    pub fn for_message(&self, input: Option<&Path>, raw: &[u8]) -> Result<Envelope, String> {
        if let (Some(dir), Some(stem)) = (&self.events, input.and_then(|p| p.file_stem())) {
            let path = dir.join(stem).with_extension("json");
            if path.exists() {
                return read_event(&path);
            }
        }
        Ok(match &self.base {
            Base::Event(e) => e.clone(),
            Base::Flags {
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
        })
    }
}

/// Loads the flow config and the envelope source a command needs, printing what is
/// wrong and giving the usage exit code when either cannot be had.
pub fn load_flow(
    config: &Path,
    args: &EnvelopeArgs,
    registry: &crate::stage::StageRegistry,
) -> Result<(Pipeline, EnvelopeSource), u8> {
    let pipeline = crate::config::load_with(config, registry).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    let envelopes = EnvelopeSource::from_args(args).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    Ok((pipeline, envelopes))
}

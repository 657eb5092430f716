//! The envelope options `replay` and `explain` share: a WorkMail event, or the direction
//! and addresses given as flags (default: from the message's own From, To and Cc).

use crate::pipeline::Pipeline;
use crate::workmail::event::{Direction, Envelope, WorkMailEvent};
use clap::Args;
use std::path::{Path, PathBuf};
use workmail_flow_core::config::DirectorySource;
use workmail_flow_core::envelope::{DirectoryNeeds, DirectoryView, FileDirectory};

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
    /// A directory file (TOML `[[user]]` tables) the stages' `sender.*` placeholders and
    /// group conditions read, instead of the config's `[directory]`.
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
}

/// Where the envelope of each message comes from.
pub struct EnvelopeSource {
    base: Base,
    /// `--events DIR`: a message's own event, when DIR has one.
    events: Option<PathBuf>,
    people: People,
}

/// Where the envelope's directory answers come from.
enum People {
    /// No stage reads the directory.
    NotNeeded,
    /// A directory file: `--directory FILE`, or the config's `source = "file"`.
    File(FileDirectory, DirectoryNeeds),
    /// The stages read the directory but none can be read here (the config's is
    /// WorkMail's): they run as if it were down; the reason.
    Unavailable(String),
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
    /// Reads the event file, if one was given, and the directory `pipeline`'s stages
    /// read; errors name the file.
    pub fn for_pipeline(
        args: &EnvelopeArgs,
        pipeline: Option<&Pipeline>,
    ) -> Result<EnvelopeSource, String> {
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
        let needs = pipeline.map(Pipeline::directory_needs).unwrap_or_default();
        let settings = pipeline.and_then(|p| p.directory.as_ref());
        let file = match (&args.directory, settings.map(|s| &s.source)) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(DirectorySource::File { path })) => Some(path.clone()),
            _ => None,
        };
        let people = match file {
            Some(path) => {
                let dir = FileDirectory::load(&path).map_err(|e| e.to_string())?;
                People::File(dir, needs)
            }
            None if !needs.any() => People::NotNeeded,
            None => {
                let why = match settings {
                    Some(_) => {
                        "the config's directory is WorkMail's; pass --directory FILE to use a file here"
                    }
                    None => "the config has no [directory]; pass --directory FILE",
                };
                eprintln!(
                    "warning: the stages read the directory, but {why}: they run as if it were unavailable"
                );
                People::Unavailable(why.to_string())
            }
        };
        Ok(EnvelopeSource {
            base,
            events: args.events.clone(),
            people,
        })
    }

    /// Fills the envelope's directory answers for the message `raw`.
    fn with_people(&self, mut envelope: Envelope, raw: &[u8]) -> Envelope {
        envelope.directory = match &self.people {
            People::NotNeeded => DirectoryView::default(),
            People::File(dir, needs) => dir.view_for(raw, &envelope, *needs),
            People::Unavailable(why) => DirectoryView::unavailable(why.clone()),
        };
        envelope
    }

    /// The envelope of the message read from `input` (`None`: stdin); an error names
    /// the event file that cannot be read.
    pub fn for_message(&self, input: Option<&Path>, raw: &[u8]) -> Result<Envelope, String> {
        self.base_for_message(input, raw)
            .map(|e| self.with_people(e, raw))
    }

    fn base_for_message(&self, input: Option<&Path>, raw: &[u8]) -> Result<Envelope, String> {
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
    let envelopes = EnvelopeSource::for_pipeline(args, Some(&pipeline)).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    Ok((pipeline, envelopes))
}

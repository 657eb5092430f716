//! `workmail-flow replay`: runs a config over saved messages, or as a filter in a pipe.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::event::{Direction, Envelope, WorkMailEvent};
use crate::pipeline::Pipeline;
use clap::Args;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Run a flow config over saved messages and write the results.
///
/// Each INPUT is rewritten to OUT/<its file name> (an identical copy when nothing
/// changed), with one line per message saying what happened. `-` as the only INPUT reads
/// a message from stdin and writes the result to stdout (reports go to stderr), so it can
/// sit in a mail server's pipe.
///
/// Without --event the envelope comes from the message's From, To and Cc, and the
/// direction from --direction (default inbound).
///
/// Examples:
///   workmail-flow replay --config samples/flow.toml --out out samples/*.eml
///   workmail-flow replay --config flow.toml - < in.eml > out.eml
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The flow config (TOML with [[stage]] tables).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// A WorkMail event (JSON) giving the envelope for every input.
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
    /// Where results are written; required unless the input is `-`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Messages to replay, or `-` for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

/// Where the envelope of each message comes from.
enum EnvelopeSource {
    Event(Envelope),
    Flags {
        direction: Direction,
        sender: Option<String>,
        recipients: Vec<String>,
    },
}

impl EnvelopeSource {
    fn for_message(&self, raw: &[u8]) -> Envelope {
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

pub fn run(args: &ReplayArgs) -> u8 {
    let pipeline = match crate::config::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let envelopes = match envelope_source(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let stdin_mode = args.inputs.len() == 1 && args.inputs[0] == Path::new("-");
    if stdin_mode {
        return filter_stdin(&pipeline, &envelopes);
    }
    if args.inputs.iter().any(|i| i == Path::new("-")) {
        eprintln!("error: `-` reads stdin and must be the only input");
        return EXIT_USAGE;
    }
    let Some(out_dir) = &args.out else {
        eprintln!("error: --out DIR is required unless the input is `-`");
        return EXIT_USAGE;
    };
    if let Err(e) = std::fs::create_dir_all(out_dir) {
        eprintln!("error: {}: cannot create: {e}", out_dir.display());
        return EXIT_USAGE;
    }
    let mut code = EXIT_OK;
    let mut written = std::collections::HashSet::new();
    for input in &args.inputs {
        // Two inputs with one file name would overwrite each other's result.
        if let Some(name) = input.file_name()
            && !written.insert(name.to_os_string())
        {
            println!(
                "{}: failed: {} is already written by an earlier input with the same file name",
                input.display(),
                out_dir.join(name).display()
            );
            code = EXIT_FAILED;
            continue;
        }
        match replay_file(&pipeline, &envelopes, input, out_dir) {
            Ok(line) => println!("{}: {line}", input.display()),
            Err(e) => {
                println!("{}: failed: {e}", input.display());
                code = EXIT_FAILED;
            }
        }
    }
    code
}

fn envelope_source(args: &ReplayArgs) -> Result<EnvelopeSource, String> {
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

fn replay_file(
    pipeline: &Pipeline,
    envelopes: &EnvelopeSource,
    input: &Path,
    out_dir: &Path,
) -> Result<String, String> {
    let raw = std::fs::read(input).map_err(|e| format!("cannot read: {e}"))?;
    let name = input
        .file_name()
        .ok_or_else(|| "input has no file name".to_string())?;
    let envelope = envelopes.for_message(&raw);
    let result = pipeline.run(&raw, &envelope);
    let out_path = out_dir.join(name);
    let mut file = std::fs::File::create(&out_path)
        .map_err(|e| format!("{}: cannot create: {e}", out_path.display()))?;
    result
        .output
        .write_to(&mut file)
        .map_err(|e| format!("{}: cannot write: {e}", out_path.display()))?;
    Ok(result.summary())
}

fn filter_stdin(pipeline: &Pipeline, envelopes: &EnvelopeSource) -> u8 {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut raw) {
        eprintln!("error: stdin: cannot read: {e}");
        return EXIT_FAILED;
    }
    let envelope = envelopes.for_message(&raw);
    let result = pipeline.run(&raw, &envelope);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = result
        .output
        .write_to(&mut stdout)
        .and_then(|_| stdout.flush())
    {
        eprintln!("error: stdout: cannot write: {e}");
        return EXIT_FAILED;
    }
    eprintln!("-: {}", result.summary());
    EXIT_OK
}

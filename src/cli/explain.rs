//! `workmail-flow explain`: what a flow would do to one message, part by part, without
//! writing anything (see `crate::explain` for the output).

use super::envelope::{EnvelopeArgs, load_flow};
use super::{EXIT_OK, EXIT_USAGE};
use crate::explain::{self, TreeStyle};
use clap::Args;
use std::path::PathBuf;

/// Show a message's MIME tree and what each stage of a flow would do to each part, and why.
///
/// One part a line, indented by depth: number, content type, charset, transfer
/// encoding, size, disposition, file names. Under each part: its place in the message
/// (body, attachment, inside an attached message, inside a signature) and every stage's
/// decision about it ("disclaimer here (last text/html of the body)", "stripped:
/// extension exe", "left alone: inside multipart/signed"). Then each stage's decisions
/// about the message as a whole (headers stamped, subject tagged, verdicts, conditions
/// that were false) and the outcome: changed, unchanged, or kept original with the
/// reason. Nothing is written; the flow runs exactly as `replay` runs it.
///
/// Examples:
///   workmail-flow explain --config samples/flow.toml samples/attachment.eml
///   workmail-flow explain --config flow.toml --direction outbound --ascii in.eml | less
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExplainArgs {
    /// The flow config (TOML with [[stage]] tables).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// Draw the tree with ASCII characters only.
    #[arg(long)]
    pub ascii: bool,
    /// The message to explain.
    #[arg(value_name = "MESSAGE")]
    pub message: PathBuf,
}

pub fn run(args: &ExplainArgs, registry: &crate::stage::StageRegistry) -> u8 {
    let (pipeline, envelopes) = match load_flow(&args.config, &args.envelope, registry) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let raw = match std::fs::read(&args.message) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", args.message.display());
            return EXIT_USAGE;
        }
    };
    let envelope = match envelopes.for_message(Some(&args.message), &raw) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let result = pipeline.run(&raw, &envelope);
    let style = if args.ascii {
        TreeStyle::Ascii
    } else {
        TreeStyle::Unicode
    };
    print!(
        "{}",
        explain::render(
            &args.message.display().to_string(),
            &raw,
            &envelope,
            &result,
            style
        )
    );
    EXIT_OK
}

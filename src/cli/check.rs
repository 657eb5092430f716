//! `workmail-flow check`: holds messages to WorkMail's content rules.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::rules;
use clap::Args;
use std::path::PathBuf;

/// Check messages against WorkMail's content rules for updated messages.
///
/// Prints every violation with its line or field. With --original, required fields are
/// those the original had, identity and trace fields must be unchanged, and a file
/// identical to the original passes (nothing would be put back).
///
/// Example:
///   workmail-flow check --original in/message.eml out/message.eml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// The message before any rewrite, to compare against.
    #[arg(long, value_name = "ORIG")]
    pub original: Option<PathBuf>,
    /// Messages to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &CheckArgs) -> u8 {
    let original = match &args.original {
        Some(p) => match std::fs::read(p) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: {}: cannot read: {e}", p.display());
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let mut code = EXIT_OK;
    for file in &args.files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: cannot read: {e}", file.display());
                return EXIT_USAGE;
            }
        };
        let violations = rules::check(&bytes, original.as_deref());
        if violations.is_empty() {
            println!("{}: ok", file.display());
        } else {
            code = EXIT_FAILED;
            for v in violations {
                println!("{}: {v}", file.display());
            }
        }
    }
    code
}

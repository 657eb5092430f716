//! `workmail-flow replay`: runs a config over saved messages, or as a filter in a pipe.
//!
//! Output, for files: one line per message on stdout (`path: outcome | stage: decisions
//! …`), its diff under it with `--diff`, and a last line counting the outcomes:
//! `summary: 40 processed: 31 changed, 6 unchanged, 2 kept original, 1 failed`. Both on
//! stdout, so `> report.txt` keeps them together and `tail -1` gives the counts. On a
//! terminal, with more than [`PROGRESS_MIN_INPUTS`] inputs, a progress bar is drawn on
//! stderr; piped or redirected stderr gets none (no escape codes in logs).
//!
//! For `-` (stdin): stdout is the message and nothing else; the line and the diff go to
//! stderr, and there is no summary line (there is one message).

use super::batch;
use super::envelope::{EnvelopeArgs, EnvelopeSource, load_flow};
use super::mailbox::{MboxFormat, Source};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::pipeline::{Outcome, Pipeline};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// Above this many inputs, a terminal gets a progress bar.
pub const PROGRESS_MIN_INPUTS: usize = 20;

/// Run a flow config over saved messages and write the results.
///
/// Each INPUT is rewritten to OUT/<its file name> (an identical copy when nothing
/// changed), with one line per message saying what happened, and a summary line at the
/// end: processed, changed, unchanged, kept original (a change that could not meet
/// WorkMail's content rules, so the original goes on), failed (could not be read or
/// written). Exit code 1 when any failed.
///
/// --diff prints, under each message's line, a unified diff of its header fields and of
/// the decoded text of each part that changed (message content: for your terminal, not
/// for logs).
///
/// `-` as the only INPUT reads a message from stdin and writes the result to stdout, so
/// it can sit in a mail server's pipe; the report line and any diff go to stderr.
///
/// Without --event the envelope comes from the message's From, To and Cc, and the
/// direction from --direction (default inbound).
///
/// Examples:
///   workmail-flow replay --config samples/flow.toml --out out samples/*.eml
///   workmail-flow replay --config samples/flow.toml --out out --diff samples/plain.eml
///   workmail-flow replay --config flow.toml - < in.eml > out.eml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The flow config (TOML with [[stage]] tables).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// Where results are written; required unless the input is `-`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print a unified diff of the headers and of each changed part's decoded text.
    #[arg(long)]
    pub diff: bool,
    /// With `-`: write what each envelope recipient gets to FILE, one line each:
    /// ACTION, a tab, the recipient, a tab, the bounce text (empty unless BOUNCE). The
    /// Postfix filter reads it to enforce the verdicts.
    #[arg(long, value_name = "FILE")]
    pub actions: Option<PathBuf>,
    /// Write a dry-run report: one JSON record per message (outcome, each stage's
    /// decisions, ambiguities, repairs, sizes) and a summary of the counts.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// How `>From ` lines are quoted in mbox inputs and outputs.
    #[arg(long = "mbox-format", value_enum, default_value_t = MboxFormat::Mboxrd)]
    pub mbox_format: MboxFormat,
    /// Messages processed at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Messages to replay: .eml files, folders (recursively), Maildirs, mbox files,
    /// .zip archives, s3://bucket/prefix; or `-` for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

/// How the messages of one run ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub changed: usize,
    pub unchanged: usize,
    pub kept_original: usize,
    pub not_a_message: usize,
    pub failed: usize,
}

impl Tally {
    pub(crate) fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Changed => self.changed += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::KeptOriginal(_) => self.kept_original += 1,
            Outcome::NotAMessage(_) => self.not_a_message += 1,
        }
    }

    pub fn processed(&self) -> usize {
        self.changed + self.unchanged + self.kept_original + self.not_a_message + self.failed
    }

    /// `summary: 4 processed: 2 changed, 1 unchanged, 1 kept original, 0 failed`, and
    /// `, 1 not a message` when there was any.
    pub fn line(&self) -> String {
        let mut line = format!(
            "summary: {} processed: {} changed, {} unchanged, {} kept original, {} failed",
            self.processed(),
            self.changed,
            self.unchanged,
            self.kept_original,
            self.failed
        );
        if self.not_a_message > 0 {
            line.push_str(&format!(", {} not a message", self.not_a_message));
        }
        line
    }
}

pub fn run(args: &ReplayArgs, registry: &crate::stage::StageRegistry) -> u8 {
    let (pipeline, envelopes) = match load_flow(&args.config, &args.envelope, registry) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let stdin_mode = args.inputs.len() == 1 && args.inputs[0] == Path::new("-");
    if stdin_mode {
        return filter_stdin(&pipeline, &envelopes, args.diff, args.actions.as_deref());
    }
    if args.actions.is_some() {
        eprintln!("error: --actions is for `-` (one message on stdin)");
        return EXIT_USAGE;
    }
    if args.inputs.iter().any(|i| i == Path::new("-")) {
        eprintln!("error: `-` reads stdin and must be the only input");
        return EXIT_USAGE;
    }
    let Some(out_dir) = &args.out else {
        eprintln!("error: --out DIR is required unless the input is `-`");
        return EXIT_USAGE;
    };
    let mut sources = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        match Source::detect(input) {
            Ok(s) => sources.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if let Some(problem) = batch::overwrite_problem(out_dir, &sources) {
        eprintln!("error: {problem}");
        return EXIT_USAGE;
    }
    let mut loaded = Vec::with_capacity(sources.len());
    for source in sources {
        match source.items(args.mbox_format, &s3_objects) {
            Ok(items) => loaded.push((source, items)),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(out_dir) {
        eprintln!("error: {}: cannot create: {e}", out_dir.display());
        return EXIT_USAGE;
    }
    let total: usize = loaded.iter().map(|(_, items)| items.len()).sum();
    let progress = progress_bar(total);
    // Lines go to stdout; with a bar on the same terminal, each is printed with the bar
    // cleared and then redrawn, so they do not tear.
    let say = |text: &str| match &progress {
        Some(bar) => bar.suspend(|| stdout_line(text)),
        None => stdout_line(text),
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runner = batch::Batch {
        pipeline: &pipeline,
        envelopes: &envelopes,
        out_dir,
        diff: args.diff,
        mbox: args.mbox_format,
        jobs,
    };
    let (tally, summary, records) = runner.run(&loaded, progress.as_ref(), &say);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    // The decision table is for the person at the terminal; stdout keeps its contract of
    // one line per message and the summary line last.
    eprint!("{}", summary.table());
    if let Some(path) = &args.report
        && let Err(e) = batch::write_report(path, &args.config, &summary, &records)
    {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    stdout_line(&tally.line());
    if tally.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Writes a report line. A closed stdout (`replay ... | head`) is not an error: the
/// results are still written under `--out`, so the run goes on rather than panic.
fn stdout_line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Every object under `s3://bucket/prefix`, through the SDK (credentials, Region and
/// `AWS_ENDPOINT_URL_S3` from the environment, as the function has them).
fn s3_objects(bucket: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let runtime =
        super::runtime(false).map_err(|_| "cannot start the async runtime".to_string())?;
    runtime.block_on(async {
        let conf = crate::workmail::aws::sdk_config().await;
        if conf.region().is_none() {
            return Err(format!(
                "s3://{bucket}: {}",
                crate::workmail::aws::NO_REGION
            ));
        }
        let client = crate::workmail::aws::AwsStore::new(&conf, None).s3;
        let mut keys = Vec::new();
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "s3://{bucket}/{prefix}: cannot list: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes = crate::workmail::aws::read_object(&client, bucket, &key, None).await?;
            out.push((key, bytes));
        }
        Ok(out)
    })
}

/// A bar on stderr, only when stderr is a terminal and the run is long enough to want
/// one: piped or redirected output stays free of escape codes.
fn progress_bar(inputs: usize) -> Option<ProgressBar> {
    if inputs <= PROGRESS_MIN_INPUTS || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(inputs as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {eta} left") {
        bar.set_style(style);
    }
    Some(bar)
}

/// One line per envelope recipient: the action, the recipient, the bounce text.
fn actions_table(result: &crate::pipeline::RunResult<'_>, recipients: &[String]) -> String {
    let mut out = String::new();
    for r in recipients {
        let action = result.actions.for_recipient(r);
        let text = match &action {
            crate::actions::Action::Bounce { message } => message.as_str(),
            _ => "",
        };
        out.push_str(&format!("{}\t{r}\t{text}\n", action.type_name()));
    }
    out
}

fn filter_stdin(
    pipeline: &Pipeline,
    envelopes: &EnvelopeSource,
    diff: bool,
    actions: Option<&Path>,
) -> u8 {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut raw) {
        eprintln!("error: stdin: cannot read: {e}");
        return EXIT_FAILED;
    }
    let envelope = match envelopes.for_message(None, &raw) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let result = pipeline.run(&raw, &envelope);
    if let Some(path) = actions
        && let Err(e) = std::fs::write(path, actions_table(&result, &envelope.recipients))
    {
        eprintln!("error: {}: cannot write: {e}", path.display());
        return EXIT_FAILED;
    }
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
    if diff {
        // stdout is the message: the diff goes to stderr.
        let text = crate::diff::unified("-", &raw, &result.output.to_vec());
        if !text.is_empty() {
            eprint!("{text}");
        }
    }
    EXIT_OK
}

//! `replay` over files, folders, Maildirs, mbox files, zips and S3 prefixes (see
//! [`super::mailbox`]): every message through the flow on every core, each result
//! written in its input's form under `--out`, one report line per message in input
//! order, the summary table, and the `--report` file.
//!
//! Nothing is overwritten: `--out` may not be an input, lie inside one, or be where an
//! input's results would land on the input itself, and two results may not share a path.

use super::envelope::EnvelopeSource;
use super::mailbox::{Item, MboxFormat, Source};
use super::replay::Tally;
use super::report::{MessageRecord, Report, Summary};
use crate::pipeline::{Outcome, Pipeline};
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// What one run needs besides the messages.
pub struct Batch<'a> {
    pub pipeline: &'a Pipeline,
    pub envelopes: &'a EnvelopeSource,
    pub out_dir: &'a Path,
    pub diff: bool,
    pub mbox: MboxFormat,
    /// How many messages at once (every core by default).
    pub jobs: usize,
}

/// One message's result, as a worker hands it back.
struct Done {
    line: String,
    diff: Option<String>,
    outcome: Option<Outcome>,
    record: MessageRecord,
    /// The output, kept for a container (mbox, zip) written at the end; files are
    /// written by the worker.
    kept: Option<Vec<u8>>,
}

/// Why `--out` would overwrite an input, if it would.
pub fn overwrite_problem(out_dir: &Path, sources: &[Source]) -> Option<String> {
    let out = super::mailbox::resolved(out_dir);
    let mut names = HashSet::new();
    for s in sources {
        // Single files with one name are caught per message (the later one fails).
        if !matches!(s, Source::File(_)) && !names.insert(s.out_name()) {
            return Some(format!(
                "two inputs would both write {}; replay them into different --out folders",
                out_dir.join(s.out_name()).display()
            ));
        }
        let Some(input) = s.local_path() else {
            continue;
        };
        let input = super::mailbox::resolved(input);
        let target = out.join(s.out_name());
        if out == input || out.starts_with(&input) {
            return Some(format!(
                "--out {} is inside the input {}: its results would be written into it",
                out_dir.display(),
                input.display()
            ));
        }
        if target == input || input.starts_with(&target) {
            return Some(format!(
                "--out {}: the results of {} would overwrite it; choose another folder",
                out_dir.display(),
                input.display()
            ));
        }
    }
    None
}

impl Batch<'_> {
    /// Runs every item of `sources`; returns the tally, the summary and the records.
    pub fn run(
        &self,
        sources: &[(Source, Vec<Item>)],
        progress: Option<&ProgressBar>,
        say: &(dyn Fn(&str) + Sync),
    ) -> (Tally, Summary, Vec<MessageRecord>) {
        let work: Vec<(usize, &Item)> = sources
            .iter()
            .enumerate()
            .flat_map(|(si, (_, items))| items.iter().map(move |i| (si, i)))
            .collect();
        // Two results for one path would overwrite each other: the later one fails.
        let mut taken = HashSet::new();
        let clash: Vec<bool> = work
            .iter()
            .map(|(si, item)| {
                !sources[*si].0.is_container() && !taken.insert(self.out_dir.join(&item.out_path))
            })
            .collect();
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel::<(usize, Done)>();
        let mut tally = Tally::default();
        let mut summary = Summary::default();
        let mut records = Vec::with_capacity(work.len());
        let mut kept: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.clamp(1, work.len().max(1)) {
                let tx = tx.clone();
                let (work, next, clash) = (&work, &next, &clash);
                scope.spawn(move || {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some((si, item)) = work.get(n) else {
                            break;
                        };
                        let done = if clash[n] {
                            let why = format!(
                                "{} is already written by an earlier input with the same name",
                                self.out_dir.join(&item.out_path).display()
                            );
                            failed(item, &why)
                        } else {
                            self.one(&sources[*si].0, item)
                        };
                        if tx.send((n, done)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Lines in input order, whatever order the workers finish in.
            let mut waiting: BTreeMap<usize, Done> = BTreeMap::new();
            let mut printed = 0;
            for (n, done) in rx {
                if let Some(bar) = progress {
                    bar.inc(1);
                }
                waiting.insert(n, done);
                while let Some(done) = waiting.remove(&printed) {
                    say(&done.line);
                    if let Some(d) = done.diff.filter(|d| !d.is_empty()) {
                        say(d.trim_end_matches('\n'));
                    }
                    match &done.outcome {
                        Some(o) => tally.count(o),
                        None => tally.failed += 1,
                    }
                    summary.add(&done.record);
                    records.push(done.record);
                    if let Some(bytes) = done.kept {
                        let (si, _) = work[printed];
                        kept.entry(si).or_default().push((printed, bytes));
                    }
                    printed += 1;
                }
            }
        });
        // Containers: each written whole, in input order.
        for (si, outputs) in kept {
            let (source, _) = &sources[si];
            if let Err(e) = self.write_container(source, &work, outputs) {
                say(&format!("{}: failed: {e}", source.out_name().display()));
                tally.failed += 1;
            }
        }
        (tally, summary, records)
    }

    fn one(&self, source: &Source, item: &Item) -> Done {
        let raw = match item.read() {
            Ok(r) => r,
            Err(e) => return failed(item, &e),
        };
        let envelope = match self.envelopes.for_message(item.path(), &raw) {
            Ok(e) => e,
            Err(e) => {
                let mut done = failed(item, &e);
                // A container is written whole: the message goes in as it was.
                if source.is_container() {
                    done.kept = Some(raw);
                }
                return done;
            }
        };
        let result = self.pipeline.run(&raw, &envelope);
        let record = MessageRecord::of(&item.label, raw.len(), &result);
        let diff = self
            .diff
            .then(|| crate::diff::unified(&item.label, &raw, &result.output.to_vec()));
        let mut kept = None;
        if source.is_container() {
            kept = Some(result.output.to_vec());
        } else {
            let path = self.out_dir.join(&item.out_path);
            let write = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = std::fs::File::create(&path)?;
                result.output.write_to(&mut f)
            };
            if let Err(e) = write() {
                return failed(item, &format!("{}: cannot write: {e}", path.display()));
            }
        }
        Done {
            line: format!("{}: {}", item.label, result.summary()),
            diff,
            outcome: Some(result.outcome.clone()),
            record,
            kept,
        }
    }

    fn write_container(
        &self,
        source: &Source,
        work: &[(usize, &Item)],
        outputs: Vec<(usize, Vec<u8>)>,
    ) -> Result<(), String> {
        let path = self.out_dir.join(source.out_name());
        match source {
            Source::Mbox(_) => {
                let mut out = Vec::new();
                for (n, bytes) in &outputs {
                    let item = work[*n].1;
                    super::mailbox::write_mbox_message(
                        &mut out,
                        item.from_line.as_deref(),
                        bytes,
                        self.mbox,
                    )
                    .map_err(|e| e.to_string())?;
                }
                std::fs::write(&path, out)
                    .map_err(|e| format!("{}: cannot write: {e}", path.display()))
            }
            Source::Zip(_) => {
                let entries: Vec<(PathBuf, Vec<u8>)> = outputs
                    .into_iter()
                    .map(|(n, bytes)| (work[n].1.out_path.clone(), bytes))
                    .collect();
                super::mailbox::write_zip(&path, &entries)
            }
            _ => Ok(()),
        }
    }
}

fn failed(item: &Item, why: &str) -> Done {
    Done {
        line: format!("{}: failed: {why}", item.label),
        diff: None,
        outcome: None,
        record: MessageRecord::failed(&item.label, why),
        kept: None,
    }
}

/// Writes the `--report` file.
pub fn write_report(
    path: &Path,
    config: &Path,
    summary: &Summary,
    records: &[MessageRecord],
) -> Result<(), String> {
    let report = Report {
        config: config.display().to_string(),
        summary,
        messages: records,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

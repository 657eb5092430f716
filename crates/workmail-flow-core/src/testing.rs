//! Helpers for testing a stage in a few lines: run it over a message with an envelope and
//! look at the output bytes, its report and the delivery actions.
//!
//! A stage runs here exactly as in a pipeline (its edits applied, the content rules
//! checked and repaired, the original kept if they fail), so what a test sees is what
//! WorkMail would get.
//!
//! ```
//! use workmail_flow_core::stages::stamp_header;
//! use workmail_flow_core::testing;
//!
//! let stage = testing::build_stage(stamp_header::build, r#"
//!     name = "X-Checked"
//!     value = "yes"
//! "#).unwrap();
//! let run = testing::run(&stage, b"Subject: hi\r\n\r\nbody\r\n", &testing::inbound(
//!     "alice@partner.example",
//!     &["bob@corp.example"],
//! ));
//! assert!(run.report().changed);
//! assert_eq!(run.header("X-Checked"), ["yes"]);
//! assert_eq!(run.text(), "Subject: hi\r\nX-Checked: yes\r\n\r\nbody\r\n");
//! ```
//!
//! Helpers panic with a clear message where a test could not go on (an unreadable file),
//! and return `Result` where the error is what a test may want to check (config keys).

use crate::config::ConfigError;
use crate::config::{KeyError, StageKeys};
use crate::envelope::{Direction, Envelope};
use crate::flow::load;
use crate::flow::pipeline::{Outcome, Pipeline, RunResult, StageRecord, StageRef, run_stages};
use crate::message::edit::Edits;
use crate::message::mime_tree::MimeTree;
use crate::stage::actions::{Actions, Response};
use crate::stage::conditions::{Conditions, header_values};
use crate::stage::{Stage, StageRegistry, StageReport};
use std::path::Path;

/// What one run produced, owned so a test can keep it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The message that would be delivered (the original when nothing changed).
    pub output: Vec<u8>,
    pub outcome: Outcome,
    /// Each stage's report, in order.
    pub stages: Vec<StageRecord>,
    /// Re-encodings the content rules asked for.
    pub repairs: Vec<String>,
    /// The delivery actions decided.
    pub actions: Actions,
    /// A stage set `stop`.
    pub stopped: bool,
    summary: String,
}

impl Run {
    fn from_result(r: RunResult<'_>) -> Run {
        Run {
            summary: r.summary(),
            output: r.output.to_vec(),
            outcome: r.outcome,
            stages: r.stages,
            repairs: r.repairs,
            actions: r.actions,
            stopped: r.stopped,
        }
    }

    /// The first stage's report: the stage under test for [`run`].
    ///
    /// Panics when no stage ran (the message could not be parsed at all).
    pub fn report(&self) -> &StageReport {
        match self.stages.first() {
            Some(s) => &s.report,
            None => panic!("no stage ran: {:?}", self.outcome),
        }
    }

    /// The output as text (invalid UTF-8 replaced), for `contains` checks.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// The output's top-level fields of that name, unfolded and RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Vec<String> {
        match MimeTree::parse(&self.output) {
            Ok(tree) => header_values(&tree, &Edits::new(), name),
            Err(e) => panic!("the output is not a message: {e}"),
        }
    }

    /// The response WorkMail would read.
    pub fn response(&self) -> Response {
        self.actions.to_response()
    }

    /// The response as WorkMail would read it, as JSON.
    pub fn response_json(&self) -> serde_json::Value {
        serde_json::to_value(self.response()).expect("a response always serializes")
    }

    /// One line: the outcome, every stage's decisions and the response, exactly as
    /// `replay` prints it.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// Runs one stage, with no conditions, over `raw`.
pub fn run(stage: &dyn Stage, raw: &[u8], envelope: &Envelope) -> Run {
    let conditions = Conditions::none();
    let stages = [StageRef {
        label: "stage 1 (under test)",
        conditions: &conditions,
        stage,
    }];
    Run::from_result(run_stages(
        &stages,
        raw,
        envelope,
        &crate::flow::pipeline::Progress::default(),
    ))
}

/// Runs one stage over the message in an .eml file.
///
/// Panics when the file cannot be read, naming it.
pub fn run_file(stage: &dyn Stage, path: impl AsRef<Path>, envelope: &Envelope) -> Run {
    let path = path.as_ref();
    let raw =
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    run(stage, &raw, envelope)
}

/// Runs a whole pipeline (for stages with `when`/`unless`, or several together).
pub fn run_pipeline(pipeline: &Pipeline, raw: &[u8], envelope: &Envelope) -> Run {
    Run::from_result(pipeline.run(raw, envelope))
}

/// Builds a pipeline from config text, as `config::load_with` would from a file named
/// `test.toml` in the current folder.
pub fn config(text: &str, registry: &StageRegistry) -> Result<Pipeline, ConfigError> {
    load::parse(text, Path::new("test.toml"), Path::new("."), registry)
}

/// Builds one stage from its keys written as TOML (without `type`), checking for unknown
/// keys as the config loader does. File keys resolve against the current folder.
pub fn build_stage<F>(build: F, keys: &str) -> Result<Box<dyn Stage>, KeyError>
where
    F: Fn(&mut StageKeys) -> Result<Box<dyn Stage>, KeyError>,
{
    let table: toml::Table = keys
        .parse()
        .map_err(|e: toml::de::Error| KeyError::new("(toml)", e.to_string()))?;
    let mut keys = StageKeys::new(table, Path::new("."));
    let stage = build(&mut keys)?;
    keys.finish()?;
    Ok(stage)
}

/// An envelope: the direction, the envelope sender (MAIL FROM) and the recipients.
pub fn envelope(direction: Direction, sender: &str, recipients: &[&str]) -> Envelope {
    Envelope {
        direction,
        mail_from: (!sender.is_empty()).then(|| sender.to_string()),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        message_id: "test".to_string(),
        ..Envelope::default()
    }
}

/// An inbound envelope.
pub fn inbound(sender: &str, recipients: &[&str]) -> Envelope {
    envelope(Direction::Inbound, sender, recipients)
}

/// An outbound envelope.
pub fn outbound(sender: &str, recipients: &[&str]) -> Envelope {
    envelope(Direction::Outbound, sender, recipients)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::stamp_header;

    const MSG: &[u8] = b"From: a@x.example\r\nSubject: hi\r\n\r\nbody\r\n";

    fn stamp() -> Box<dyn Stage> {
        build_stage(stamp_header::build, "name = \"X-T\"\nvalue = \"v\"").unwrap()
    }

    #[test]
    fn run_returns_the_output_report_and_decoded_headers() {
        let r = run(&stamp(), MSG, &inbound("a@x.example", &["b@y.example"]));
        assert_eq!(r.outcome, Outcome::Changed);
        assert_eq!(r.report().summary(), "added X-T");
        assert_eq!(r.header("x-t"), ["v"]);
        assert!(r.text().contains("Subject: hi\r\nX-T: v\r\n"));
        assert!(!r.stopped);
    }

    #[test]
    fn run_applies_the_content_rules_like_the_pipeline() {
        let mut long = b"From: a@x.example\r\nSubject: hi\r\n\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1200));
        long.extend(b"\r\n");
        let r = run(&stamp(), &long, &inbound("a@x.example", &[]));
        assert_eq!(r.outcome, Outcome::Changed, "{}", r.summary());
        assert_eq!(r.repairs.len(), 1, "the long body line is re-encoded");
        assert!(crate::rules::long_lines(&r.output).is_empty());
    }

    #[test]
    fn build_stage_reports_unknown_and_bad_keys() {
        let e = build_stage(
            stamp_header::build,
            "name = \"X-T\"\nvalue = \"v\"\nvalu = 1",
        )
        .err()
        .unwrap();
        assert_eq!(e.key, "valu");
        let e = build_stage(stamp_header::build, "name = ").err().unwrap();
        assert_eq!(e.key, "(toml)");
    }

    #[test]
    fn run_file_reads_an_eml_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("wf-testing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.eml");
        std::fs::write(&path, MSG).unwrap();
        let r = run_file(&stamp(), &path, &inbound("a@x.example", &[]));
        assert_eq!(r.header("X-T"), ["v"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = std::panic::catch_unwind(|| {
            run_file(&stamp(), "/nonexistent/m.eml", &inbound("", &[]))
        })
        .unwrap_err();
        let msg = missing.downcast_ref::<String>().unwrap();
        assert!(msg.starts_with("/nonexistent/m.eml: cannot read"), "{msg}");
    }

    #[test]
    fn envelopes_are_built_from_direction_sender_and_recipients() {
        let e = outbound("a@corp.example", &["b@x.example", "c@y.example"]);
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.mail_from.as_deref(), Some("a@corp.example"));
        assert_eq!(e.recipients, ["b@x.example", "c@y.example"]);
        assert_eq!(
            inbound("", &[]).mail_from,
            None,
            "empty means a null sender"
        );
    }

    #[test]
    fn a_config_with_conditions_runs_through_run_pipeline() {
        let p = config(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-T\"\nvalue = \"v\"\nwhen = { direction = \"outbound\" }\n",
            &StageRegistry::builtin(),
        )
        .unwrap();
        let r = run_pipeline(&p, MSG, &inbound("a@x.example", &[]));
        assert_eq!(r.output, MSG);
        assert_eq!(
            r.report().summary(),
            "skipped: condition when.direction is outbound, message is inbound"
        );
        let r = run_pipeline(&p, MSG, &outbound("a@x.example", &[]));
        assert_eq!(r.header("X-T"), ["v"]);
    }

    #[test]
    fn the_response_json_is_what_workmail_reads() {
        let r = run(&stamp(), MSG, &inbound("a@x.example", &[]));
        assert_eq!(
            r.response_json(),
            serde_json::json!({"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]})
        );
    }
}

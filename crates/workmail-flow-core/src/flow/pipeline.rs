//! The pipeline: parse once, run the stages in order, apply their edits, hold the result
//! to WorkMail's content rules (repairing what can be repaired) and say what happened.
//! Whatever goes wrong inside, the answer is a message: the rewritten one, or the
//! original unchanged with the reason.

use crate::config::DirectorySettings;
use crate::envelope::DirectoryNeeds;
use crate::envelope::Envelope;
use crate::message::edit::Output;
use crate::message::mime_tree::{MimeTree, PartId};
use crate::rules;
use crate::rules::limits;
use crate::stage::actions::Actions;
use crate::stage::conditions::Conditions;
use crate::stage::{Stage, StageContext, StageReport};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// A stage as configured: its label in reports (`stage 2 (disclaimer)`), its `when` and
/// `unless` conditions, and the stage.
pub struct ConfiguredStage {
    pub label: String,
    pub stage_type: String,
    pub conditions: Conditions,
    pub stage: Box<dyn Stage>,
}

/// What the run loop needs of a stage; borrowed, so one stage can be run without a
/// pipeline owning it (see [`crate::testing`]).
pub(crate) struct StageRef<'s> {
    pub label: &'s str,
    pub conditions: &'s Conditions,
    pub stage: &'s dyn Stage,
}

/// The stages of one config, in order.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<ConfiguredStage>,
    /// Logs may show full envelope addresses (config `log_addresses = true`); by
    /// default they show the domain and a hash of the local part.
    pub log_addresses: bool,
    /// The config's `[directory]`: where the transport looks people up before a run.
    pub directory: Option<DirectorySettings>,
}

/// What became of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No stage changed anything: the original goes on as it is.
    Unchanged,
    /// The message was rewritten and passes the content rules.
    Changed,
    /// Stages asked for a change, but the result could not be made to pass the content
    /// rules (or could not be built): the original goes on unchanged.
    KeptOriginal(String),
    /// The input is not a message at all (a picture, an archive, plain notes; see
    /// [`crate::message::sniff`]): no stage ran, and it goes on unchanged. The reason.
    NotAMessage(String),
}

/// One stage's report with its label.
#[derive(Debug, Clone)]
pub struct StageRecord {
    pub label: String,
    pub report: StageReport,
    /// How long the stage ran (zero when it did not run).
    pub duration: std::time::Duration,
}

/// Everything a run produced, with the message to deliver as an [`Output`].
pub type RunResult<'a> = RunOf<Output<'a>>;

/// Everything a run produced. `O` is how the message to deliver is held: an [`Output`]
/// borrowing the original, or an [`crate::message::edit::OutputPlan`] that does not, so a run on
/// another thread can hand its result back with the message it owns (see
/// [`RunOf::map_output`]).
pub struct RunOf<O> {
    /// The message to deliver: the rewrite, or the original unchanged.
    pub output: O,
    pub outcome: Outcome,
    pub stages: Vec<StageRecord>,
    /// Re-encodings made to satisfy the content rules.
    pub repairs: Vec<String>,
    pub actions: Actions,
    /// The answer for when the rewrite does not reach the recipients after all
    /// (WorkMail rejects it or freezes the message, the deadline passes): `actions` plus
    /// what security stages asked for in that case ([`crate::stage::FailClosed`]).
    /// Equal to `actions` unless the outcome is `Changed`.
    pub fallback: Actions,
    /// What readers could read two ways in the message (see
    /// [`crate::message::structure::Finding`]), in words.
    pub findings: Vec<String>,
    /// Why security stages asked to fail closed if their change is not delivered
    /// ([`crate::stage::FailClosed`]); `fallback` carries their actions.
    pub fail_closed: Vec<String>,
    /// What had to give for the response to fit WorkMail's limits (see
    /// [`Actions::fit`]), in words; empty when nothing did.
    pub fitted: Vec<String>,
    /// A stage set `stop`, so the stages after it did not run.
    pub stopped: bool,
    /// The parts whose header or body the delivered output changes (stages' edits and
    /// repairs), by id in the original's tree; empty unless the outcome is `Changed`.
    /// Every other part that is not an ancestor of one of these is byte-identical.
    pub touched: Vec<PartId>,
}

impl<O> RunOf<O> {
    /// The same result with the message held another way.
    pub fn map_output<P>(self, f: impl FnOnce(O) -> P) -> RunOf<P> {
        RunOf {
            output: f(self.output),
            outcome: self.outcome,
            stages: self.stages,
            repairs: self.repairs,
            actions: self.actions,
            fallback: self.fallback,
            findings: self.findings,
            fail_closed: self.fail_closed,
            fitted: self.fitted,
            stopped: self.stopped,
            touched: self.touched,
        }
    }

    pub fn is_changed(&self) -> bool {
        self.outcome == Outcome::Changed
    }

    /// One line: the outcome, every stage's decisions, repairs, and the delivery response
    /// when a stage decided one.
    pub fn summary(&self) -> String {
        let head = match &self.outcome {
            Outcome::Unchanged => "unchanged".to_string(),
            Outcome::Changed => "changed".to_string(),
            Outcome::KeptOriginal(why) => format!("kept original ({why})"),
            Outcome::NotAMessage(why) => format!("not a message ({why})"),
        };
        let mut parts = vec![head];
        for s in &self.stages {
            parts.push(format!("{}: {}", s.label, s.report.summary()));
        }
        if !self.repairs.is_empty() {
            parts.push(format!("repaired: {}", self.repairs.join("; ")));
        }
        if !self.findings.is_empty() {
            parts.push(format!("ambiguous: {}", self.findings.join("; ")));
        }
        if !self.is_changed() && !self.fail_closed.is_empty() {
            parts.push(format!(
                "failed closed, the rewrite not being delivered: {}",
                self.fail_closed.join("; ")
            ));
        }
        if !self.fitted.is_empty() {
            parts.push(format!(
                "response fitted to WorkMail's limits: {}",
                self.fitted.join("; ")
            ));
        }
        if !self.actions.entries().is_empty() {
            parts.push(format!("response: {}", self.actions.describe()));
        }
        parts.join(" | ")
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|s| &s.label))
            .finish()
    }
}

impl Pipeline {
    pub fn new(stages: Vec<ConfiguredStage>) -> Pipeline {
        Pipeline {
            stages,
            log_addresses: false,
            directory: None,
        }
    }

    /// A pipeline from stages built in code (tests, custom handlers).
    pub fn from_stages(stages: Vec<(String, Box<dyn Stage>)>) -> Pipeline {
        Pipeline::new(
            stages
                .into_iter()
                .enumerate()
                .map(|(i, (t, stage))| ConfiguredStage {
                    label: format!("stage {} ({t})", i + 1),
                    stage_type: t,
                    conditions: Conditions::none(),
                    stage,
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Whether any stage can change a message's bytes (see [`Stage::changes_message`]).
    pub fn changes_messages(&self) -> bool {
        self.stages.iter().any(|s| s.stage.changes_message())
    }

    pub fn stages(&self) -> &[ConfiguredStage] {
        &self.stages
    }

    /// Which addresses the directory must be asked about before a run: what the stages'
    /// templates and conditions read.
    pub fn directory_needs(&self) -> DirectoryNeeds {
        self.stages.iter().fold(DirectoryNeeds::default(), |n, s| {
            n.union(s.conditions.directory_needs())
                .union(s.stage.directory_needs())
        })
    }

    /// Runs every stage over `raw`.
    pub fn run<'a>(&self, raw: &'a [u8], envelope: &Envelope) -> RunResult<'a> {
        self.run_watched(raw, envelope, &Progress::default())
    }

    /// Runs every stage over `raw`, keeping `progress` up to date with what to answer if
    /// the run is cut short, so a handler that races the run against a deadline can
    /// answer without waiting for it.
    pub fn run_watched<'a>(
        &self,
        raw: &'a [u8],
        envelope: &Envelope,
        progress: &Progress,
    ) -> RunResult<'a> {
        let stages: Vec<StageRef<'_>> = self
            .stages
            .iter()
            .map(|s| StageRef {
                label: &s.label,
                conditions: &s.conditions,
                stage: s.stage.as_ref(),
            })
            .collect();
        run_stages(&stages, raw, envelope, progress)
    }
}

/// What the security stages in `rest` (the one about to run first) ask for if the run
/// stops before they have checked the message ([`Stage::on_failure`]), each for the
/// recipients its conditions select as things stand; a stage whose conditions do not
/// hold now asks for nothing. `cx.scope` is the first stage's, and is left as it was.
fn unchecked_fail_closed(
    rest: &[StageRef<'_>],
    tree: &MimeTree<'_>,
    cx: &mut StageContext<'_>,
    envelope: &Envelope,
) -> Vec<crate::stage::FailClosed> {
    let own_scope = cx.scope.clone();
    let mut out = Vec::new();
    for (j, s) in rest.iter().enumerate() {
        let scope = if j == 0 {
            own_scope.clone()
        } else {
            match s.conditions.evaluate(tree, &cx.edits, envelope) {
                Ok(scope) => scope,
                Err(_) => continue,
            }
        };
        cx.scope = scope.clone();
        if let Some(action) = s.stage.on_failure(tree, cx) {
            out.push(crate::stage::FailClosed {
                action,
                scope,
                reason: format!("{} did not check the message", s.label),
            });
        }
    }
    cx.scope = own_scope;
    out
}

/// What to answer if a run is cut short now: the step it is in, the delivery actions
/// decided so far, and what the stage running now asks for should it not finish (a
/// security stage fails closed, see [`Stage::on_failure`]). The run updates it before
/// every stage; a handler reads it when the deadline comes first.
#[derive(Debug, Default)]
pub struct Progress {
    now: Mutex<CutShort>,
}

/// See [`Progress`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutShort {
    /// The step under way, in words for the logs: `parsing`, `stage 2 (disclaimer)`,
    /// `applying the edits`.
    pub step: String,
    /// The answer that holds if the run stops here (the original is delivered).
    pub answer: Actions,
    /// Why security stages fail closed in that case, for the logs.
    pub fail_closed: Vec<String>,
}

impl Progress {
    fn set(&self, step: &str, answer: &Actions, fail_closed: &[crate::stage::FailClosed]) {
        let mut answer = answer.clone();
        for f in fail_closed {
            answer.set(f.action.clone(), f.scope.clone());
        }
        let now = CutShort {
            step: step.to_string(),
            answer,
            fail_closed: fail_closed.iter().map(|f| f.reason.clone()).collect(),
        };
        // A poisoned lock only means a reader panicked; the value is still whole.
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// The answer if the run were cut short now.
    pub fn snapshot(&self) -> CutShort {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The run itself: each stage whose conditions hold looks, decides and queues edits and
/// actions; a stage whose conditions fail, or that comes after one that set `stop`, gets
/// a report saying so. Then the edits are applied and held to the content rules.
pub(crate) fn run_stages<'a>(
    stages: &[StageRef<'_>],
    raw: &'a [u8],
    envelope: &Envelope,
    progress: &Progress,
) -> RunResult<'a> {
    progress.set("parsing", &Actions::default(), &[]);
    let unchanged = |outcome: Outcome| RunResult {
        output: Output::unchanged(raw),
        outcome,
        stages: Vec::new(),
        repairs: Vec::new(),
        actions: Actions::default(),
        fallback: Actions::default(),
        stopped: false,
        touched: Vec::new(),
        findings: Vec::new(),
        fail_closed: Vec::new(),
        fitted: Vec::new(),
    };
    if let Some(why) = crate::message::sniff::not_a_message(raw) {
        // No reader finds a header, so none finds an attachment or a part either:
        // there is nothing for a stage to check or to hide (and a transport always puts
        // its own trace field first, so a sender cannot make mail look like this).
        return unchanged(Outcome::NotAMessage(why));
    }
    if stages.is_empty() {
        return unchanged(Outcome::Unchanged);
    }
    let tree = match MimeTree::parse(raw) {
        Ok(t) => t,
        Err(e) => return unchanged(Outcome::KeptOriginal(format!("cannot parse: {e}"))),
    };
    let findings: Vec<String> = tree.findings().iter().map(ToString::to_string).collect();
    // Over a limit the message goes on unchanged, but its verdicts still count: they
    // change no bytes, and a bounce rule must not be dodged by 501 attachments.
    let over_limit = limits::check_size(raw)
        .and_then(|()| limits::check_tree(&tree))
        .err()
        .map(|e| e.to_string());
    let mut cx = StageContext::new(envelope);
    let mut records = Vec::with_capacity(stages.len());
    let mut stopped_by: Option<&str> = None;
    let mut panicked: Option<String> = None;
    for (i, s) in stages.iter().enumerate() {
        if let Some(by) = stopped_by {
            records.push(StageRecord {
                label: s.label.to_string(),
                report: StageReport::unchanged(format!(
                    "not run: {by} stopped the stages after it"
                )),
                duration: Default::default(),
            });
            continue;
        }
        match s.conditions.evaluate(&tree, &cx.edits, envelope) {
            Ok(scope) => cx.scope = scope,
            Err(skipped) => {
                records.push(StageRecord {
                    label: s.label.to_string(),
                    report: StageReport::unchanged(skipped.to_string()),
                    duration: Default::default(),
                });
                continue;
            }
        }
        // Should the run stop here (the deadline, a panic), this stage and every
        // security stage after it have not checked the message: they fail closed.
        let unchecked = unchecked_fail_closed(&stages[i..], &tree, &mut cx, envelope);
        let mut if_cut = cx.if_not_delivered.clone();
        if_cut.extend(unchecked.iter().cloned());
        progress.set(s.label, &cx.actions, &if_cut);
        let started = std::time::Instant::now();
        let report = match catch_unwind(AssertUnwindSafe(|| s.stage.run(&tree, &mut cx))) {
            Ok(r) => r,
            Err(_) => {
                records.push(StageRecord {
                    label: s.label.to_string(),
                    report: StageReport::unchanged("stage panicked; its changes are discarded"),
                    duration: started.elapsed(),
                });
                panicked = Some(format!("{} panicked", s.label));
                cx.if_not_delivered.extend(unchecked);
                break;
            }
        };
        records.push(StageRecord {
            label: s.label.to_string(),
            report,
            duration: started.elapsed(),
        });
        if cx.stop {
            stopped_by = Some(s.label);
        }
    }
    let stopped = cx.stop;
    progress.set("applying the edits", &cx.actions, &cx.if_not_delivered);
    let mut fallback = cx.actions.clone();
    for f in &cx.if_not_delivered {
        fallback.set(f.action.clone(), f.scope.clone());
    }
    let (actions, mut fitted) = cx.actions.fit(envelope);
    let (fallback, fallback_fitted) = fallback.fit(envelope);
    for note in fallback_fitted {
        if !fitted.contains(&note) {
            fitted.push(note);
        }
    }
    let base = RunResult {
        output: Output::unchanged(raw),
        outcome: Outcome::Unchanged,
        stages: records,
        repairs: Vec::new(),
        actions,
        fallback,
        fitted,
        stopped,
        touched: Vec::new(),
        findings,
        fail_closed: cx
            .if_not_delivered
            .iter()
            .map(|f| f.reason.clone())
            .collect(),
    };
    // The original goes on: the answer is the fallback, so a security stage whose
    // change is not delivered fails closed.
    let kept = |why: String, base: RunResult<'a>| RunResult {
        outcome: Outcome::KeptOriginal(why),
        actions: base.fallback.clone(),
        ..base
    };
    if let Some(why) = panicked {
        return kept(why, base);
    }
    if cx.edits.is_empty() {
        return base;
    }
    if let Some(why) = over_limit {
        return kept(why, base);
    }
    if tree.header_is_ambiguous(0) {
        // The message starts with a line of white space: some readers read no header at
        // all, others a header. A field put at the top would take that line as its own
        // continuation, and readers would parse the message differently; a second pass
        // would then find a header and change it again (found by fuzzing). Verdicts
        // still stand.
        return kept(
            "readers disagree on where the header is (the first line starts with white space)"
                .to_string(),
            base,
        );
    }
    let mut edits = cx.edits;
    let repairs = match rules::repair(&tree, &mut edits) {
        Ok(r) => r,
        Err(e) => return kept(format!("content rules: {e}"), base),
    };
    let touched = edits.touched_parts();
    let output = match edits.into_output(&tree) {
        Ok(o) => o,
        Err(e) => return kept(format!("cannot apply edits: {e}"), base),
    };
    if output.is_unchanged() {
        return RunResult { repairs, ..base };
    }
    let violations = rules::check_chunks(&output.slices(), Some(raw));
    if let Some(v) = violations.first() {
        let more = match violations.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return kept(format!("content rules: {v}{more}"), base);
    }
    RunResult {
        output,
        outcome: Outcome::Changed,
        repairs,
        touched,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use crate::stage::StageRegistry;
    use crate::testing::{self, inbound, outbound};

    const MSG: &[u8] = b"From: a@partner.example\r\nSubject: hi\r\n\r\nbody\r\n";

    fn pipeline(text: &str) -> super::Pipeline {
        testing::config(text, &StageRegistry::builtin()).unwrap()
    }

    #[test]
    fn a_message_that_trips_the_parsers_debug_assertion_still_gets_its_verdict() {
        let p = pipeline("[[stage]]\ntype = \"verdict\"\naction = \"drop\"\n");
        let raw = crate::message::mime_tree::TRIPS_PARSER_DEBUG_ASSERT;
        let r = testing::run_pipeline(&p, raw, &inbound("a@x.example", &[]));
        assert_eq!(r.output, raw);
        assert_eq!(r.outcome, super::Outcome::Unchanged);
        assert_eq!(r.response_json()["actions"][0]["action"]["type"], "DROP");
    }

    #[test]
    fn a_message_whose_header_the_parser_cannot_read_is_kept_but_its_verdict_stands() {
        let p = pipeline(concat!(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n",
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\n",
        ));
        // A first line of blanks: mail-parser takes it for the end of an empty header.
        let raw = b"  \r\nFrom: a@partner.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let r = testing::run_pipeline(&p, raw, &inbound("a@partner.example", &[]));
        assert_eq!(r.output, raw);
        assert_eq!(
            r.outcome,
            super::Outcome::KeptOriginal(
                "readers disagree on where the header is (the first line starts with white space)"
                    .into()
            )
        );
        assert_eq!(r.response_json()["actions"][0]["action"]["type"], "DROP");
    }

    /// A security stage that panics on every message and fails closed with a drop.
    struct Broken;

    impl crate::stage::Stage for Broken {
        fn run(
            &self,
            _: &crate::message::mime_tree::MimeTree<'_>,
            _: &mut crate::stage::StageContext<'_>,
        ) -> crate::stage::StageReport {
            panic!("cannot check")
        }

        fn on_failure(
            &self,
            _: &crate::message::mime_tree::MimeTree<'_>,
            _: &crate::stage::StageContext<'_>,
        ) -> Option<crate::stage::actions::Action> {
            Some(crate::stage::actions::Action::Drop)
        }
    }

    #[test]
    fn a_security_stage_that_panics_fails_closed_as_it_says() {
        let p = super::Pipeline::from_stages(vec![("broken".into(), Box::new(Broken))]);
        let r = testing::run_pipeline(&p, MSG, &inbound("a@partner.example", &["b@x.example"]));
        assert_eq!(r.output, MSG);
        assert_eq!(r.response_json()["actions"][0]["action"]["type"], "DROP");
        assert!(
            r.summary().contains("did not check the message"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn a_false_condition_skips_the_stage_and_reports_which() {
        let p = pipeline(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\nwhen = { direction = \"inbound\" }\n",
        );
        let r = testing::run_pipeline(&p, MSG, &outbound("a@corp.example", &["b@x.example"]));
        assert_eq!(r.output, MSG);
        assert_eq!(
            r.summary(),
            "unchanged | stage 1 (stamp_header): skipped: condition when.direction is inbound, message is outbound"
        );
    }

    #[test]
    fn stop_leaves_later_stages_out_and_says_so() {
        let p = pipeline(concat!(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n",
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nstop = true\n",
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-B\"\nvalue = \"1\"\n",
        ));
        let r = testing::run_pipeline(&p, MSG, &inbound("a@partner.example", &["b@x.example"]));
        assert!(r.stopped);
        assert_eq!(r.header("X-A"), ["1"], "edits before the stop stand");
        assert!(r.header("X-B").is_empty());
        assert_eq!(
            r.stages[2].report.summary(),
            "not run: stage 2 (verdict) stopped the stages after it"
        );
    }

    #[test]
    fn a_skipped_stage_with_stop_does_not_stop_the_others() {
        let p = pipeline(concat!(
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nstop = true\nwhen = { sender = \"*@spam.example\" }\n",
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-B\"\nvalue = \"1\"\n",
        ));
        let r = testing::run_pipeline(&p, MSG, &inbound("a@partner.example", &["b@x.example"]));
        assert!(!r.stopped);
        assert_eq!(r.header("X-B"), ["1"]);
    }

    #[test]
    fn each_stage_gets_the_scope_of_its_own_conditions() {
        let p = pipeline(concat!(
            "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nwhen = { recipient = \"*@a.example\" }\n",
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { recipient = \"*@b.example\" }\n",
        ));
        let r = testing::run_pipeline(
            &p,
            MSG,
            &inbound(
                "x@partner.example",
                &["p@a.example", "q@b.example", "r@c.example"],
            ),
        );
        assert_eq!(
            r.response_json(),
            serde_json::json!({"actions":[
                {"action":{"type":"BOUNCE","parameters":{"bounceMessage":"Message blocked by policy"}},"recipients":["p@a.example"]},
                {"action":{"type":"DROP"},"recipients":["q@b.example"]},
                {"action":{"type":"DEFAULT"},"allRecipients":true}
            ]})
        );
    }
}

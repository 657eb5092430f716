//! The `Stage` trait every rewrite implements, what a stage sees and returns, and the
//! registry that maps config `type` names to stage builders.
//!
//! A stage is synchronous and does no I/O: it looks at the parsed message and the
//! envelope, queues edits and delivery actions in its [`StageContext`], and returns a
//! [`StageReport`] saying what it decided and why. Only handlers await.
//!
//! # Writing your own stage
//!
//! A stage is a struct holding its checked config, a `build` function that reads its
//! keys, and one `run` method. This one adds `X-Partner: yes` when the envelope sender
//! is in a configured domain:
//!
//! ```
//! use workmail_flow_core::edit::HeaderOp;
//! use workmail_flow_core::mime_tree::MimeTree;
//! use workmail_flow_core::{KeyError, Stage, StageContext, StageKeys, StageRegistry, StageReport};
//!
//! pub struct PartnerTag {
//!     domain: String,
//! }
//!
//! /// Reads the stage's keys; every error names its key, and unknown keys are refused
//! /// for you after `build` returns.
//! pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
//!     let domain = keys.string("domain")?.to_ascii_lowercase();
//!     if domain.contains('@') {
//!         return Err(KeyError::new("domain", "a domain, without @"));
//!     }
//!     Ok(Box::new(PartnerTag { domain }))
//! }
//!
//! impl Stage for PartnerTag {
//!     fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
//!         let from = cx.envelope.mail_from.as_deref().unwrap_or("").to_ascii_lowercase();
//!         if !from.ends_with(&format!("@{}", self.domain)) {
//!             // Reports say why, in words for an admin, never the address itself.
//!             return StageReport::unchanged("sender is not a partner");
//!         }
//!         if !cx.edits.pending_values(mail, 0, "X-Partner").is_empty() {
//!             return StageReport::unchanged("X-Partner already present");
//!         }
//!         // Queue the edit; the pipeline splices it in and leaves every other byte alone.
//!         cx.edits.header(0, HeaderOp::Add { name: "X-Partner".into(), value: "yes".into() });
//!         StageReport::changed("added X-Partner")
//!     }
//! }
//!
//! // Register it so a config can say `type = "partner_tag"`, next to the built-ins.
//! let mut registry = StageRegistry::builtin();
//! registry.register("partner_tag", build);
//!
//! // Load a config that uses it (`flow::load_with(path, &registry)` reads a file).
//! let dir = std::env::temp_dir().join(format!("partner-tag-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("flow.toml");
//! std::fs::write(&path, r#"
//!     [[stage]]
//!     type = "partner_tag"
//!     domain = "partner.example"
//!     when = { direction = "inbound" }
//! "#).unwrap();
//! let pipeline = workmail_flow_core::flow::load_with(&path, &registry).unwrap();
//!
//! // Test it in a few lines with `workmail_flow_core::testing`.
//! use workmail_flow_core::testing;
//! let envelope = testing::inbound("alice@partner.example", &["bob@corp.example"]);
//! let run = testing::run_pipeline(&pipeline, b"Subject: hi\r\n\r\nbody\r\n", &envelope);
//! assert_eq!(run.header("X-Partner"), ["yes"]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! A stage that decides about single parts (which one takes a disclaimer, which
//! attachment goes) records those decisions with [`StageReport::note_about_part`], so
//! `workmail-flow explain` shows each on its part's line of the MIME tree.
//!
//! Every stage gets `when` and `unless` conditions for free (they are read before
//! `build` sees the table, so those two key names are reserved), and the recipients they
//! select are in [`StageContext::scope`]. `docs/custom-stages.md` walks through a
//! complete example, `handlers/keyword_flag.rs`.

use crate::config::{KeyError, StageKeys};
use crate::envelope::DirectoryNeeds;
use crate::envelope::Envelope;
use crate::message::edit::Edits;
use crate::message::mime_tree::{MimeTree, PartId};
use crate::stage::actions::{Action, Actions, Scope};
use std::collections::BTreeMap;

/// A rewrite step. Implementations must be cheap to call and must not panic on odd mail
/// (the pipeline catches a panic and keeps the original, but a report is better).
pub trait Stage: Send + Sync {
    /// Looks at `mail` and queues what should change in `cx`.
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport;

    /// Whether this stage can ever change a message's bytes. A flow whose stages all say
    /// no (verdicts only) needs no upload bucket; the Lambda checks this at start-up.
    fn changes_message(&self) -> bool {
        true
    }

    /// What to answer if this stage cannot do its job on a message (it panicked): a
    /// security stage fails closed as its config says; others (the default) let the
    /// original through unchanged.
    fn on_failure(&self, _mail: &MimeTree<'_>, _cx: &StageContext<'_>) -> Option<Action> {
        None
    }

    /// Which addresses the directory must be asked about before this stage runs (its
    /// templates read `sender.*`); the stage then finds them in the envelope's
    /// [`crate::envelope::DirectoryView`]. Conditions add their own needs.
    fn directory_needs(&self) -> DirectoryNeeds {
        DirectoryNeeds::default()
    }
}

/// What a stage can read and change while it runs.
pub struct StageContext<'e> {
    /// The transport's view of the message.
    pub envelope: &'e Envelope,
    /// Edits queued by this and earlier stages.
    pub edits: Edits,
    /// Delivery actions decided so far.
    pub actions: Actions,
    /// Set by a stage to stop the stages after it.
    pub stop: bool,
    /// The recipients this stage applies to, as its `when.recipient` and
    /// `unless.recipient` conditions selected them: `Scope::All` when it has none. The
    /// pipeline sets it before each stage; a stage that decides delivery (like
    /// `verdict`) passes it to [`Actions::set`].
    pub scope: Scope,
    /// Actions that apply only if the rewrite does not reach the recipients (it is kept
    /// back by a limit or the content rules, WorkMail rejects it, the deadline passes):
    /// a security stage that removed something fails closed this way.
    pub if_not_delivered: Vec<FailClosed>,
}

/// A delivery action a stage asks for in case its changes are not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailClosed {
    pub action: Action,
    pub scope: Scope,
    /// Why, for the report and the logs.
    pub reason: String,
}

impl<'e> StageContext<'e> {
    pub fn new(envelope: &'e Envelope) -> StageContext<'e> {
        StageContext {
            envelope,
            edits: Edits::new(),
            actions: Actions::default(),
            stop: false,
            scope: Scope::All,
            if_not_delivered: Vec::new(),
        }
    }
}

/// A boxed stage is a stage, so a builder's `Box<dyn Stage>` can be passed wherever a
/// `&dyn Stage` is expected (for instance to [`crate::testing::run`]).
impl<S: Stage + ?Sized> Stage for Box<S> {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        (**self).run(mail, cx)
    }

    fn changes_message(&self) -> bool {
        (**self).changes_message()
    }

    fn on_failure(&self, mail: &MimeTree<'_>, cx: &StageContext<'_>) -> Option<Action> {
        (**self).on_failure(mail, cx)
    }

    fn directory_needs(&self) -> DirectoryNeeds {
        (**self).directory_needs()
    }
}

/// What a stage did: whether it queued a change, and every decision with its reason,
/// in words an administrator can read (never message text or full addresses).
///
/// `decisions` is the whole story in one list (what `replay` prints and the logs carry).
/// `parts` pins decisions about single parts to the part they concern, so
/// `workmail-flow explain` can show them on that part's line of the MIME tree; a part note
/// may repeat a decision (see [`PartNote::decision`]) or add detail the one-line summary
/// leaves out (why a candidate part was not chosen).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageReport {
    pub changed: bool,
    pub decisions: Vec<String>,
    pub parts: Vec<PartNote>,
}

/// What a stage decided about one part, in a few words that read well next to the part
/// (`stripped: extension exe`). Like decisions, never message text, file names or
/// addresses: the part line already shows what the part is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartNote {
    pub part: PartId,
    pub note: String,
    /// The stage queued a change to this part.
    pub changed: bool,
    /// The index in [`StageReport::decisions`] of the decision this note restates, if
    /// any: a report that shows part notes on their parts can leave that decision out of
    /// its message-level lines.
    pub decision: Option<usize>,
}

impl StageReport {
    /// The stage queued a change.
    pub fn changed(decision: impl Into<String>) -> StageReport {
        StageReport {
            changed: true,
            decisions: vec![decision.into()],
            parts: Vec::new(),
        }
    }

    /// The stage left the message alone, and why.
    pub fn unchanged(reason: impl Into<String>) -> StageReport {
        StageReport {
            changed: false,
            decisions: vec![reason.into()],
            parts: Vec::new(),
        }
    }

    /// Adds a decision; `changed` marks whether it queued a change.
    pub fn note(&mut self, decision: impl Into<String>, changed: bool) {
        self.changed |= changed;
        self.decisions.push(decision.into());
    }

    /// Adds a note about one part that is not in the summary (detail only `explain`
    /// shows); `changed` marks whether the stage queued a change to it.
    pub fn note_part(&mut self, part: PartId, note: impl Into<String>, changed: bool) {
        self.changed |= changed;
        self.parts.push(PartNote {
            part,
            note: note.into(),
            changed,
            decision: None,
        });
    }

    /// Adds a decision about one part: `decision` goes into the summary as [`note`]
    /// would put it, and `part_note` says the same in a few words on the part's line.
    ///
    /// [`note`]: StageReport::note
    pub fn note_about_part(
        &mut self,
        part: PartId,
        decision: impl Into<String>,
        part_note: impl Into<String>,
        changed: bool,
    ) {
        self.note(decision, changed);
        self.parts.push(PartNote {
            part,
            note: part_note.into(),
            changed,
            decision: Some(self.decisions.len() - 1),
        });
    }

    /// The notes about one part, in the order the stage made them.
    pub fn notes_for(&self, part: PartId) -> impl Iterator<Item = &PartNote> {
        self.parts.iter().filter(move |n| n.part == part)
    }

    /// The decisions no part note restates: what the stage decided about the message as
    /// a whole.
    pub fn message_decisions(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.parts.iter().any(|n| n.decision == Some(*i)))
            .map(|(_, d)| d.as_str())
    }

    pub fn summary(&self) -> String {
        self.decisions.join("; ")
    }
}

/// Builds a stage from its keys.
pub type StageBuilder =
    Box<dyn Fn(&mut StageKeys) -> Result<Box<dyn Stage>, KeyError> + Send + Sync>;

/// The stage types a config may name. `builtin()` holds this crate's; add your own with
/// [`StageRegistry::register`] before loading a config.
pub struct StageRegistry {
    builders: BTreeMap<String, StageBuilder>,
}

impl StageRegistry {
    pub fn empty() -> StageRegistry {
        StageRegistry {
            builders: BTreeMap::new(),
        }
    }

    /// Makes `type = "<name>"` build a stage with `build`. A later registration under the
    /// same name replaces the earlier one.
    pub fn register<F>(&mut self, name: &str, build: F) -> &mut Self
    where
        F: Fn(&mut StageKeys) -> Result<Box<dyn Stage>, KeyError> + Send + Sync + 'static,
    {
        self.builders.insert(name.to_string(), Box::new(build));
        self
    }

    pub fn get(&self, name: &str) -> Option<&StageBuilder> {
        self.builders.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.builders.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_about_a_part_stays_in_the_summary_and_leaves_the_message_level_list() {
        let mut r = StageReport::default();
        r.note("added X-A", true);
        r.note_about_part(
            3,
            "stripped part 3 (application/x-msdownload): extension exe",
            "stripped: extension exe",
            true,
        );
        assert_eq!(
            r.summary(),
            "added X-A; stripped part 3 (application/x-msdownload): extension exe"
        );
        assert_eq!(r.message_decisions().collect::<Vec<_>>(), ["added X-A"]);
        let notes: Vec<&str> = r.notes_for(3).map(|n| n.note.as_str()).collect();
        assert_eq!(notes, ["stripped: extension exe"]);
        assert!(r.notes_for(2).next().is_none());
    }

    #[test]
    fn a_part_note_alone_adds_detail_without_touching_the_summary() {
        let mut r = StageReport::unchanged("nothing to do");
        r.note_part(1, "not chosen: a later text/plain part takes it", false);
        assert_eq!(r.summary(), "nothing to do");
        assert!(!r.changed);
        r.note_part(2, "rewritten", true);
        assert!(r.changed, "a changed part note marks the report changed");
        assert_eq!(r.message_decisions().count(), 1);
    }
}

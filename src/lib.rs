//! workmail-flow: byte-exact email rewriting for Amazon WorkMail message-flow Lambdas and
//! mail-server pipes.
//!
//! This crate is the WorkMail transport ([`workmail`]: the event, the handler, the Lambda
//! glue, the S3 store, the emulator), the mail-server transports ([`relay`], an SMTP
//! smart host, and [`milter`], with what they share in [`transport`]) and the command
//! line ([`cli`]). The engine they run,
//! free of any transport, is the `workmail-flow-core` crate, re-exported here at the
//! paths it always had (`workmail_flow::mime_tree`, `workmail_flow::Pipeline`, ...); a
//! crate that only holds stages can depend on the engine alone (docs/architecture.md).
//!
//! A flow is a list of stages read from a TOML config ([`config::load`]). Each stage
//! looks at the parsed message ([`mime_tree::MimeTree`]) and its [`Envelope`], queues
//! edits and delivery actions, and reports what it did; the [`Pipeline`] splices the
//! edits into the original bytes, holds the result to WorkMail's content rules and keeps
//! the original whenever they cannot be met.
//!
//! ```
//! use workmail_flow::{Direction, Envelope, StageRegistry};
//!
//! let pipeline = workmail_flow::testing::config(r#"
//!     [[stage]]
//!     type = "verdict"
//!     action = "bounce"
//!     message = "Mail to {{ recipients }} is not accepted"
//!     when = { direction = "inbound", recipient = "*@closed.example" }
//! "#, &StageRegistry::builtin()).unwrap();
//! let envelope = Envelope {
//!     direction: Direction::Inbound,
//!     mail_from: Some("alice@partner.example".into()),
//!     recipients: vec!["old@closed.example".into(), "bob@corp.example".into()],
//!     ..Envelope::default()
//! };
//! let raw = b"From: alice@partner.example\r\nSubject: hi\r\n\r\nbody\r\n";
//! let result = pipeline.run(raw, &envelope);
//! assert_eq!(result.output.to_vec(), raw, "a verdict never changes the message");
//! let response = serde_json::to_string(&result.actions.to_response()).unwrap();
//! assert!(response.contains(r#""recipients":["old@closed.example"]"#));
//! ```
//!
//! Your own stages implement [`Stage`] and are registered in a [`StageRegistry`] under
//! the name a config's `type` uses; [`stage`] shows a complete one and [`testing`]
//! tests one in a few lines.
//!
//! With the built-in stages, a config's stages run over a message parsed once; the output
//! is the original's bytes plus the edits, held to WorkMail's content rules:
//!
//! ```
//! use std::path::Path;
//! use workmail_flow::{config, Direction, Envelope, Outcome, StageRegistry};
//!
//! let flow = "[[stage]]\ntype = \"stamp_header\"\nname = \"X-Scanned\"\nvalue = \"yes\"\n";
//! let pipeline = config::parse(flow, Path::new("flow.toml"), Path::new("."), &StageRegistry::builtin())?;
//! let raw = b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nHello\r\n";
//! let result = pipeline.run(raw, &Envelope::from_message(raw, Direction::Inbound));
//! assert_eq!(result.outcome, Outcome::Changed);
//! assert_eq!(
//!     result.output.to_vec(),
//!     b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\nX-Scanned: yes\r\n\r\nHello\r\n"
//! );
//! # Ok::<(), workmail_flow::ConfigError>(())
//! ```

pub mod cli;
pub mod milter;
pub mod relay;
pub mod transport;
pub mod workmail;

// The engine, at the paths this crate always had (`workmail_flow::mime_tree`, ...).
pub use workmail_flow_core::{
    actions, auth_results, conditions, diff, edit, envelope, explain, flow, header_field, limits,
    message, mime_tree, newline, params, pipeline, rules, sniff, stage, stages, structure,
    template, text_edit, transfer,
};
// The WorkMail transport, at the same kind of path.
pub use workmail::{aws, emulator, event, handler, lambda, metrics, redact, store};

pub use config::{ConfigError, load as load_config};
pub use event::WorkMailEvent;
pub use workmail_flow_core::{
    Direction, Envelope, FailClosed, KeyError, Outcome, PartNote, Pipeline, RunResult, Stage,
    StageContext, StageKeys, StageRegistry, StageReport,
};

/// Reading a flow config: the engine's key reader and errors ([`workmail_flow_core::config`])
/// and its loader ([`workmail_flow_core::flow::load`]), under the one path they always had.
pub mod config {
    pub use workmail_flow_core::config::*;
    pub use workmail_flow_core::flow::load::*;
}

/// The engine's test helpers ([`workmail_flow_core::testing`]), plus one for WorkMail
/// events.
pub mod testing {
    pub use workmail_flow_core::testing::*;

    use crate::{Envelope, WorkMailEvent};

    /// The envelope of a WorkMail event given as JSON.
    pub fn envelope_from_event(json: &str) -> Result<Envelope, serde_json::Error> {
        let event: WorkMailEvent = serde_json::from_str(json)?;
        Ok(Envelope::from(&event))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::Direction;

        #[test]
        fn envelopes_are_built_from_a_workmail_event() {
            let e = envelope_from_event(
                r#"{"messageId":"m","flowDirection":"OUTBOUND","envelope":{"mailFrom":{"address":"a@b"},"recipients":[]}}"#,
            )
            .unwrap();
            assert_eq!(e.direction, Direction::Outbound);
        }
    }
}

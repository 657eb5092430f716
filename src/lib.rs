//! workmail-flow: byte-exact email rewriting for Amazon WorkMail message-flow Lambdas and
//! mail-server pipes.
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

pub mod actions;
pub mod auth_results;
pub mod conditions;
pub mod config;
pub mod diff;
pub mod edit;
pub mod event;
pub mod explain;
pub mod header_field;
pub mod limits;
pub mod mime_tree;
pub mod newline;
pub mod params;
pub mod pipeline;
pub mod rules;
pub mod sniff;
pub mod stage;
pub mod stages;
pub mod structure;
pub mod transfer;

pub use config::{ConfigError, load as load_config};
pub use event::{Direction, Envelope, WorkMailEvent};
pub use pipeline::{Outcome, Pipeline, RunResult};
pub use stage::{
    FailClosed, KeyError, PartNote, Stage, StageContext, StageKeys, StageRegistry, StageReport,
};
pub mod aws;
pub mod cli;
pub mod emulator;
pub mod handler;
pub mod lambda;
pub mod metrics;
pub mod redact;
pub mod store;
pub mod template;
pub mod testing;
pub mod text_edit;

//! workmail-flow-core: the engine of workmail-flow, free of any transport. It reads a
//! message as the RFCs and mainstream readers do, runs a config's stages over it, splices
//! their edits into the original bytes and answers with delivery actions. WorkMail's
//! Lambda, the pipe filter and the command line live in the `workmail-flow` crate, which
//! re-exports this one; a custom stage and its tests need only this crate.
//!
//! ```
//! use workmail_flow_core::{Direction, Envelope, StageRegistry};
//!
//! let pipeline = workmail_flow_core::testing::config(r#"
//!     [[stage]]
//!     type = "stamp_header"
//!     name = "X-Scanned"
//!     value = "yes"
//! "#, &StageRegistry::builtin()).unwrap();
//! let raw = b"From: a@example.com\r\n\r\nHello\r\n";
//! let result = pipeline.run(raw, &Envelope::from_message(raw, Direction::Inbound));
//! assert_eq!(result.output.to_vec(), b"From: a@example.com\r\nX-Scanned: yes\r\n\r\nHello\r\n");
//! ```
//!
//! The parts, bottom to top; each uses only those above it in this list
//! (docs/architecture.md draws it):
//!
//! - [`message`]: reading and editing one message, byte-exact.
//! - [`config`]: a stage's config table read key by key, and config errors.
//! - [`envelope`]: who the message is from and for, and what the directory says
//!   about them.
//! - [`rules`]: WorkMail's content rules and the reading limits.
//! - [`stage`]: what a stage is and sees: the trait, its context and report, the
//!   registry, delivery actions, `when`/`unless` conditions, templates.
//! - [`stages`]: the built-in stages and the registry that holds them.
//! - [`flow`]: the pipeline that runs a config's stages, and the config loader.
//! - [`view`]: a run as a person reads it: `explain`'s tree, unified diffs.
//! - [`testing`]: helpers to test a stage or a config in a few lines.

pub mod config;
pub mod envelope;
pub mod flow;
pub mod message;
pub mod rules;
pub mod stage;
pub mod stages;
pub mod testing;
pub mod view;

// The flat paths a stage's code writes (`workmail_flow_core::mime_tree::MimeTree`), the
// same as under `workmail_flow::`, so a stage moves between the two crates unchanged.
pub use flow::pipeline;
pub use message::{
    auth_results, edit, header_field, mime_tree, newline, params, sniff, structure, text_edit,
    transfer,
};
pub use rules::limits;
pub use stage::{actions, conditions, template};
pub use view::{diff, explain};

pub use config::{ConfigError, KeyError, StageKeys};
pub use envelope::{Direction, Envelope};
pub use flow::load::load as load_config;
pub use pipeline::{Outcome, Pipeline, RunResult};
pub use stage::{FailClosed, PartNote, Stage, StageContext, StageRegistry, StageReport};

//! workmail-flow: byte-exact email rewriting for Amazon WorkMail message-flow Lambdas and
//! mail-server pipes.
//!
//! A config's stages run over a message parsed once; the output is the original's bytes
//! plus the edits, held to WorkMail's content rules:
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
pub mod config;
pub mod edit;
pub mod event;
pub mod header_field;
pub mod mime_tree;
pub mod newline;
pub mod pipeline;
pub mod rules;
pub mod stage;
pub mod stages;
pub mod transfer;

pub use config::{ConfigError, load as load_config};
pub use event::{Direction, Envelope, WorkMailEvent};
pub use pipeline::{Outcome, Pipeline, RunResult};
pub use stage::{KeyError, Stage, StageContext, StageKeys, StageRegistry, StageReport};
pub mod cli;
pub mod handler;
pub mod store;
pub mod template;
pub mod text_edit;

//! workmail-flow: byte-exact email rewriting for Amazon WorkMail message-flow Lambdas and
//! mail-server pipes.

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
pub mod template;
pub mod text_edit;

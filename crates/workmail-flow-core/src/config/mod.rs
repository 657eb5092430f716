//! Reading config: one stage's table key by key ([`StageKeys`]), the `[directory]` table,
//! and the errors that name the file, the stage and the key. Uses nothing else of this crate, so stages and
//! conditions read their keys here; the loader that builds a pipeline is [`crate::flow::load`].

pub mod directory;
mod error;
mod keys;

pub use directory::{DirectorySettings, DirectorySource, OnError};
pub use error::ConfigError;
pub use keys::{KeyError, StageKeys, did_you_mean, unknown_with_hint};

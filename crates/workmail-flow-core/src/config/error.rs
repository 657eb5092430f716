//! The error a flow config that cannot be used gives: it names the file, the stage
//! (1-based, with its type) and the key.

use std::path::PathBuf;

/// A config that cannot be used. The message names the file, the stage (1-based, with
/// its type) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: key `{key}`: {problem}")]
    TopLevel {
        file: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{file}: stage {index} ({stage_type}): key `{key}`: {problem}")]
    Stage {
        file: PathBuf,
        index: usize,
        stage_type: String,
        key: String,
        problem: String,
    },
}

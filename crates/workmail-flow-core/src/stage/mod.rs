//! What a stage is and what it sees: the `Stage` trait, its context and report, the
//! registry of stage types, delivery actions, `when`/`unless` conditions and templates.
//! Uses `message`, `rules` and `config`; the built-in stages and the pipeline build on it.

pub mod actions;
mod api;
pub mod conditions;
pub mod template;

pub use crate::config::{KeyError, StageKeys, did_you_mean, unknown_with_hint};
pub use api::*;

//! A run as a person reads it: `explain`'s MIME tree with each stage's decisions, and
//! unified diffs of what changed. Uses `message` and `flow`; nothing calls into it but
//! the command line and tests.

pub mod diff;
pub mod explain;

//! What every output must satisfy before it leaves: WorkMail's content rules (checked
//! and, where safe, fixed) and the limits that bound how much a message is read.
//! Uses `message` only.

mod content;
pub mod limits;

pub use content::*;

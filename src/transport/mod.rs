//! What the SMTP relay (`relay/`) and the milter (`milter/`) share: running a flow over
//! one message received from a mail server, what each recipient gets from the verdicts,
//! and the delivery status notification for recipients a verdict bounced.
//! Uses the engine and the WorkMail part's directory and stage runner; `relay/`,
//! `milter/` and the command line build on it.

pub mod delivery;
pub mod dsn;
pub mod rewrite;
pub mod serve;

/// The field a MOVE_TO_JUNK verdict adds on top of the message for the mailbox server to
/// file it as junk, as the pipe filter does (`X-Spam-Flag: YES`): the name and the value.
pub const JUNK_HEADER: (&str, &str) = ("X-Spam-Flag", "YES");

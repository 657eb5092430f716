//! `workmail-flow milter`: the flow as a Sendmail/Postfix milter (protocol version 6).
//! The MTA streams each message's envelope, header and body; at the end of the message
//! the flow runs over the rebuilt message and the difference goes back as milter
//! actions: header edits, a body replacement, removed recipients, and the verdicts.
//! Uses the engine, the shared transport part (`transport/`) and the WorkMail part's
//! directory; the command line builds on it.

pub mod codec;
pub mod header_diff;
pub mod session;

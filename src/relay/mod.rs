//! `workmail-flow relay`: the flow as an SMTP relay (a smart host). A mail service
//! (Microsoft 365's outbound connector, Google Workspace's routing, SES Mail Manager,
//! Postfix's relayhost) sends each message here; the flow runs over it, the result goes
//! to the next hop, and only when the next hop has taken it does the client hear 250.
//! Uses the engine, the shared transport part (`transport/`) and the WorkMail part's
//! directory; the command line builds on it.

pub mod next_hop;
pub mod session;
pub mod tls;

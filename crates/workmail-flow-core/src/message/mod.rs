//! Reading and editing one message, byte-exact: the structure scan, fields, parameters,
//! transfer encodings, the parsed tree, queued edits and their splice, and the envelope.
//! Uses nothing else of this crate; every other part builds on it.

pub mod auth_results;
pub mod edit;
pub mod header_field;
pub mod mime_tree;
pub mod newline;
pub mod params;
pub mod sniff;
pub mod structure;
pub mod text_edit;
pub mod transfer;

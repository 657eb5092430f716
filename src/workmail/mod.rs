//! The WorkMail transport: the event, the handler that fetches, rewrites and puts back a
//! message, the directory lookups, the Lambda glue, the S3 store, the local emulator,
//! metrics and log redaction.
//! Uses the engine (`workmail_flow_core`) and the AWS SDK; the command line builds on it.

pub mod aws;
pub mod directory;
pub mod emulator;
pub mod emulator_directory;
pub mod event;
pub mod fault_file;
pub mod handler;
pub mod lambda;
pub mod metrics;
pub mod redact;
pub mod store;

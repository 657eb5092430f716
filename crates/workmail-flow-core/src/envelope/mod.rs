//! Who a message is from and for: the transport-neutral envelope every stage sees, and
//! what the organization's directory says about those people. Uses `config` only (its
//! "did you mean"); transports fill it, stages and conditions read it.

pub mod directory;
pub mod directory_file;
mod transport;

pub use directory::{DirectoryNeeds, DirectoryView, Person};
pub use directory_file::FileDirectory;
pub use transport::{Direction, Envelope, address_problem};

//! Where messages come from and go back to, behind two small traits: fetching the raw
//! message, and storing a rewrite and putting it back. The handler takes them as
//! parameters, so tests run the same handler code as production with a folder or memory
//! in place of WorkMail and S3 (see `aws.rs` for the real one).

use crate::edit::Output;
use std::future::Future;
use std::path::PathBuf;

/// What went wrong talking to the message store, sorted by what the handler must do
/// about it (see the README's failure table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such message (WorkMail keeps in-transit messages about a day). Error result.
    #[error("message not found: {0}")]
    NotFound(String),
    /// The message cannot be updated, usually because it was redirected. Deliver as is.
    #[error("message frozen: {0}")]
    Frozen(String),
    /// WorkMail refused the new content; its reason. Deliver the original.
    #[error("message rejected: {0}")]
    Rejected(String),
    /// WorkMail cannot read the uploaded object. Error result.
    #[error("invalid content location: {0}")]
    InvalidContentLocation(String),
    /// Throttling, a 5xx or a network fault after the SDK's own retries. Error result,
    /// so WorkMail retries the invocation later.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Anything else a retry cannot fix (access denied, no such bucket). Error result:
    /// WorkMail retries, then applies the rule's fallback action.
    #[error("{0}")]
    Other(String),
}

/// Reads a message's raw MIME (WorkMail's GetRawMessageContent).
pub trait MessageSource: Send + Sync {
    fn fetch(&self, message_id: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}

/// Stores a rewritten message and hands it back (upload to S3, then
/// PutRawMessageContent). `invocation_id` makes a retry write the same object.
pub trait MessageSink: Send + Sync {
    fn replace(
        &self,
        message_id: &str,
        invocation_id: &str,
        output: &Output<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes what a `replace` cut short (by the deadline) left behind: an incomplete
    /// multipart upload would otherwise stay, and be billed, until a lifecycle rule
    /// removes it. Returns how many it removed; a store with nothing to clean up keeps
    /// this default.
    fn abandon(
        &self,
        _message_id: &str,
        _invocation_id: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        async { Ok(0) }
    }
}

/// A folder of messages: `DIR/<messageId>.eml` in, `DIR/<messageId>.updated` out. For
/// local runs without any server.
#[derive(Debug, Clone)]
pub struct FolderStore {
    pub dir: PathBuf,
}

impl MessageSource for FolderStore {
    async fn fetch(&self, message_id: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(format!("{message_id}.eml"));
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(path.display().to_string()),
            _ => StoreError::Other(format!("{}: {e}", path.display())),
        })
    }
}

impl MessageSink for FolderStore {
    async fn replace(
        &self,
        message_id: &str,
        _invocation_id: &str,
        output: &Output<'_>,
    ) -> Result<(), StoreError> {
        let path = self.dir.join(format!("{message_id}.updated"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&path)?;
            output.write_to(&mut f)
        };
        write().map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))
    }
}

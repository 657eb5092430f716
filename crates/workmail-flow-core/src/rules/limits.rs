//! What the pipeline takes on, and what it leaves alone with a clear reason: a message
//! over WorkMail's size, with more attachments than WorkMail allows, or nested deeper
//! than any real mail is. WorkMail never sends such a message (see WORKMAIL.md, "Sizes"),
//! so one that arrives anyway (through `replay` in a mail server's pipe, or crafted to
//! make a filter slow) is delivered unchanged and the reason is logged, before any stage
//! spends time or memory on it. No stage runs on it, verdicts included: a limit is a
//! refusal to look, not a judgement of the content.

use crate::message::mime_tree::{MimeTree, PartId, PartKind};
use std::fmt;

/// WorkMail's largest message: about 29 MB of content, 40 MB as MIME. Counted in MiB, so
/// that a message WorkMail accepted is never refused here.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;

/// WorkMail's most attachments in one message.
pub const MAX_ATTACHMENTS: usize = 500;

/// The deepest part, counting multiparts and attached messages (the top level is 0).
/// The parser itself has no limit on multipart nesting (it keeps its own stack) and
/// opens at most 3 base64-encoded attached messages inside each other, leaving deeper
/// ones as opaque bytes. Real mail stays under 20: a forward of a forward of a
/// signed message with alternatives is about 8.
pub const MAX_DEPTH: usize = 100;

/// The limit a message is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    Size { bytes: usize },
    Attachments { count: usize },
    Depth { depth: usize },
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::Size { bytes } => write!(
                f,
                "message is {bytes} bytes, over the limit of {MAX_MESSAGE_BYTES}"
            ),
            Exceeded::Attachments { count } => write!(
                f,
                "message has {count} attachments, over the limit of {MAX_ATTACHMENTS}"
            ),
            Exceeded::Depth { depth } => write!(
                f,
                "message nests parts {depth} deep, over the limit of {MAX_DEPTH}"
            ),
        }
    }
}

/// Checked before parsing: the size alone.
pub fn check_size(raw: &[u8]) -> Result<(), Exceeded> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(Exceeded::Size { bytes: raw.len() });
    }
    Ok(())
}

/// Checked on the parsed tree: nesting depth, and attachments counted as a mail client
/// lists them: every single part of the message itself that is not body text (RFC
/// 8621's text and HTML body lists), with an attached message as one attachment however
/// many parts it holds (the corpus has a forward holding 3,038 parts).
pub fn check_tree(tree: &MimeTree<'_>) -> Result<(), Exceeded> {
    let depth = tree.parts().iter().map(|p| p.depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(Exceeded::Depth { depth });
    }
    let body: std::collections::HashSet<PartId> = tree
        .text_body()
        .iter()
        .chain(tree.html_body())
        .copied()
        .collect();
    let count = tree
        .parts()
        .iter()
        .filter(|p| !p.in_attached_message && !matches!(p.kind, PartKind::Multipart(_)))
        .filter(|p| !body.contains(&p.id))
        .count();
    if count > MAX_ATTACHMENTS {
        return Err(Exceeded::Attachments { count });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_exactly_the_limit_passes_and_one_byte_more_does_not() {
        let raw = vec![b'a'; MAX_MESSAGE_BYTES];
        assert_eq!(check_size(&raw), Ok(()));
        let raw = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            check_size(&raw),
            Err(Exceeded::Size {
                bytes: MAX_MESSAGE_BYTES + 1
            })
        );
    }

    fn mixed(leaves: usize) -> Vec<u8> {
        let mut m = b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n".to_vec();
        for i in 0..leaves {
            m.extend_from_slice(
                format!(
                    "--b\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\nx\r\n"
                )
                .as_bytes(),
            );
        }
        m.extend_from_slice(b"--b--\r\n");
        m
    }

    #[test]
    fn body_text_is_not_an_attachment_and_the_limit_itself_passes() {
        let raw = mixed(MAX_ATTACHMENTS);
        let tree = MimeTree::parse(&raw).unwrap();
        assert_eq!(check_tree(&tree), Ok(()));
        let raw = mixed(MAX_ATTACHMENTS + 1);
        let tree = MimeTree::parse(&raw).unwrap();
        assert_eq!(
            check_tree(&tree),
            Err(Exceeded::Attachments {
                count: MAX_ATTACHMENTS + 1
            })
        );
    }

    #[test]
    fn the_reason_names_the_count_and_the_limit() {
        assert_eq!(
            Exceeded::Attachments { count: 501 }.to_string(),
            "message has 501 attachments, over the limit of 500"
        );
    }
}

//! The stages this crate ships, one module each.

pub mod disclaimer;
pub mod stamp_header;
pub mod strip_attachments;
pub mod subject_tag;
pub mod verdict;

use crate::stage::StageRegistry;

/// Registers every built-in stage under its config name.
pub fn register_builtin(r: &mut StageRegistry) {
    r.register("disclaimer", disclaimer::build);
    r.register("stamp_header", stamp_header::build);
    r.register("verdict", verdict::build);
    r.register("subject_tag", subject_tag::build);
    r.register("strip_attachments", strip_attachments::build);
}

//! The stages this crate ships, one module each, and the registry that holds them.
//! Uses `message`, `rules`, `config` and `stage`; only the pipeline's loader, transports
//! and tests reach in here.

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

impl StageRegistry {
    /// Every stage this crate ships. Assembled here, beside the stages, so the registry
    /// type in [`crate::stage`] knows no stage.
    pub fn builtin() -> StageRegistry {
        let mut r = StageRegistry::empty();
        register_builtin(&mut r);
        r
    }
}

//! The stages this crate ships, one module each.

pub mod disclaimer;
pub mod stamp_header;
pub mod verdict;

use crate::stage::StageRegistry;

/// Registers every built-in stage under its config name.
pub fn register_builtin(r: &mut StageRegistry) {
    r.register("disclaimer", disclaimer::build);
    r.register("stamp_header", stamp_header::build);
    r.register("verdict", verdict::build);
}

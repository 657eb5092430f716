//! The emulator's fault counter files: a file beside the messages holding a number says
//! how many more requests fail a given way (`{id}.throttle`, `directory.throttle`, ...).

use std::path::Path;

/// Takes one from a fault counter file (a number, 1 when it holds none); true while it
/// had any left. No file, no fault.
pub fn take(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let left: u64 = text.trim().parse().unwrap_or(1);
    if left == 0 {
        return false;
    }
    let _ = std::fs::write(path, (left - 1).to_string());
    true
}

//! The invariants every fuzz target asserts, on the full config (`benches/full.toml`):
//!
//! - nothing panics: not the parser, a stage, the editor or the content rules (the
//!   pipeline catches panics and keeps the original, but libFuzzer's panic hook turns
//!   even a caught one into a crash, so each is found and fixed rather than hidden);
//! - a changed message passes the content rules against its input (`rules::check`);
//! - an unchanged or kept message is the input, byte for byte;
//! - a second pass over a changed message changes nothing (see [`second_pass_changed`]).

use std::path::Path;
use std::sync::OnceLock;
use workmail_flow::{Direction, Envelope, Outcome, Pipeline, StageRegistry, config, rules};

const FULL: &str = include_str!("../../benches/full.toml");

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        config::parse(
            FULL,
            Path::new("benches/full.toml"),
            Path::new("."),
            &StageRegistry::builtin(),
        )
        .expect("benches/full.toml loads")
    })
}

pub fn check_message(raw: &[u8], direction: Direction) {
    let p = pipeline();
    let r = p.run(raw, &Envelope::from_message(raw, direction));
    let out = r.output.to_vec();
    match &r.outcome {
        Outcome::Changed => {
            let v = rules::check(&out, Some(raw));
            assert!(
                v.is_empty(),
                "a changed message breaks the content rules: {v:?}; {}",
                r.summary()
            );
            let r2 = p.run(&out, &Envelope::from_message(&out, direction));
            if r2.output.to_vec() != out {
                second_pass_changed(raw, &r2.summary());
            }
        }
        Outcome::Unchanged | Outcome::KeptOriginal(_) => {
            assert!(
                out == raw,
                "an unchanged outcome with different bytes: {}",
                r.summary()
            );
        }
    }
    // The content rules on any bytes, alone.
    let _ = rules::check(raw, None);
}

/// A second pass that changes the output again. On malformed mail this is known to
/// happen (the first pass's edit changes how the parser reads a broken structure), so by
/// default the input is kept in `artifacts/second_pass/` for review and the fuzzer goes
/// on looking for panics and rule violations; `WMF_FUZZ_STRICT=1` makes it a crash.
fn second_pass_changed(raw: &[u8], summary: &str) {
    use std::hash::{Hash, Hasher};
    if std::env::var_os("WMF_FUZZ_STRICT").is_some() {
        panic!("a second pass changed the output: {summary}");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/second_pass");
    let _ = std::fs::create_dir_all(&dir);
    let count = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    if count < 500 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        raw.hash(&mut h);
        let _ = std::fs::write(dir.join(format!("{:016x}.eml", h.finish())), raw);
    }
}

/// The direction from the first byte, so both get explored.
#[allow(dead_code)] // used by arbitrary_bytes only
pub fn direction(data: &[u8]) -> Direction {
    match data.first() {
        Some(b) if b & 1 == 1 => Direction::Outbound,
        _ => Direction::Inbound,
    }
}

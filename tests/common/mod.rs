//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod moto;
pub mod runtime_api;
pub mod s3_faults;
pub mod smtp;
pub mod tricks;
pub mod world;

use std::path::{Path, PathBuf};

/// The shared real-world corpus: `../shared/corpus` beside the repository, or
/// `WORKMAIL_FLOW_CORPUS`. Missing is a failure, not a skip: these tests are the proof
/// that real mail survives.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("WORKMAIL_FLOW_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set WORKMAIL_FLOW_CORPUS)",
        dir.display()
    );
    dir
}

/// Every message the corpus's INDEX.tsv lists (.eml, .msg, .txt and .mbox files alike),
/// in its order, with its path relative to the corpus.
pub fn corpus_messages() -> Vec<(String, Vec<u8>)> {
    let root = corpus_dir();
    let index = std::fs::read_to_string(root.join("INDEX.tsv")).expect("corpus INDEX.tsv");
    let messages: Vec<(String, Vec<u8>)> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|p| !p.is_empty())
        .map(|rel| {
            let bytes =
                std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("corpus file {rel}: {e}"));
            (rel.to_string(), bytes)
        })
        .collect();
    assert!(
        messages.len() > 300,
        "expected the whole corpus, found {} messages",
        messages.len()
    );
    messages
}

/// The envelope of a test case folder: its `event.json` when there is one, else the
/// message's own From/To/Cc, inbound.
pub fn case_envelope(case: &Path, raw: &[u8]) -> workmail_flow::Envelope {
    use workmail_flow::{Direction, Envelope, WorkMailEvent};
    let event = case.join("event.json");
    if event.exists() {
        let e: WorkMailEvent =
            serde_json::from_str(&std::fs::read_to_string(&event).unwrap()).unwrap();
        Envelope::from(&e)
    } else {
        Envelope::from_message(raw, Direction::Inbound)
    }
}

//! Mutations of real messages (seed with `fuzz/seed_corpus.sh`) through the full config,
//! each also with its line endings turned to CRLF and to LF: mail arrives both ways, and
//! the editor must keep whichever a message has.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use workmail_flow::Direction;

fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if !(b == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
            v.push(b);
        }
    }
    v
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let lf = to_lf(raw);
    let mut v = Vec::with_capacity(lf.len() + lf.len() / 40);
    for b in lf {
        if b == b'\n' {
            v.push(b'\r');
        }
        v.push(b);
    }
    v
}

fuzz_target!(|data: &[u8]| {
    common::check_message(data, Direction::Inbound);
    let lf = to_lf(data);
    if lf != data {
        common::check_message(&lf, Direction::Inbound);
    }
    let crlf = to_crlf(data);
    if crlf != data {
        common::check_message(&crlf, Direction::Outbound);
    }
});

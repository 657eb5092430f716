#!/usr/bin/env bash
# What a custom stage costs to build: a fresh crate holding one stage (the keyword flag
# of handlers/keyword_flag.rs, without its command line) and its unit test, built and
# tested from a clean target folder against the package you name.
#
#   benches/stage_build_cost.sh ENGINE_DIR PACKAGE
#
#   # against the engine alone (the crate a stage author depends on)
#   benches/stage_build_cost.sh crates/workmail-flow-core workmail-flow-core
#   # against the whole framework (SDK, Lambda runtime, CLI), as before the split
#   benches/stage_build_cost.sh . workmail-flow
#
# The stage's source names the dependency `workmail_flow` either way, so the same code
# builds against both. The repository's Cargo.lock is copied in, so both builds use the
# versions CI uses. Prints the wall time of `cargo test` (build plus the test run) and
# the number of crates compiled. Crate sources already downloaded are not counted.
set -euo pipefail

engine_dir=$(cd "${1:?ENGINE_DIR}" && pwd)
package=${2:?PACKAGE}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<EOF
[package]
name = "keyword-flag-stage"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[dependencies]
workmail_flow = { package = "$package", path = "$engine_dir" }

[profile.dev.package.mail-parser]
debug-assertions = false

[workspace]
EOF
cp "$here/Cargo.lock" "$work/Cargo.lock"

cat >"$work/src/lib.rs" <<'EOF'
//! One custom stage: adds `X-Priority-Flag: urgent` when a keyword is a word of the subject.

use workmail_flow::conditions::header_values;
use workmail_flow::edit::HeaderOp;
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{KeyError, Stage, StageContext, StageKeys, StageRegistry, StageReport};

pub struct KeywordFlag {
    keywords: Vec<String>,
}

pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let keywords = keys.string_list("keywords")?;
    if keywords.is_empty() {
        return Err(KeyError::new("keywords", "is required: words to look for"));
    }
    Ok(Box::new(KeywordFlag {
        keywords: keywords.iter().map(|k| k.to_lowercase()).collect(),
    }))
}

impl Stage for KeywordFlag {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        let Some(subject) = mail.message().subject() else {
            return StageReport::unchanged("no Subject");
        };
        let subject = subject.to_lowercase();
        if !subject
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| self.keywords.iter().any(|k| k == w))
        {
            return StageReport::unchanged("no keyword in the subject");
        }
        if header_values(mail, &cx.edits, "X-Priority-Flag").contains(&"urgent".to_string()) {
            return StageReport::unchanged("X-Priority-Flag already present");
        }
        cx.edits.header(
            0,
            HeaderOp::Add {
                name: "X-Priority-Flag".into(),
                value: "urgent".into(),
            },
        );
        StageReport::changed("added X-Priority-Flag: keyword in the subject")
    }
}

pub fn registry() -> StageRegistry {
    let mut registry = StageRegistry::builtin();
    registry.register("keyword_flag", build);
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use workmail_flow::testing;

    #[test]
    fn a_keyword_in_the_subject_adds_the_flag_once() {
        let stage = testing::build_stage(build, r#"keywords = ["urgent"]"#).unwrap();
        let envelope = testing::inbound("alice@partner.example", &["bob@corp.example"]);
        let raw = b"From: alice@partner.example\r\nSubject: URGENT: down\r\n\r\nbody\r\n";
        let run = testing::run(&stage, raw, &envelope);
        assert_eq!(run.header("X-Priority-Flag"), ["urgent"]);
        let again = testing::run(&stage, &run.output, &envelope);
        assert_eq!(again.output, run.output);
    }
}
EOF

cd "$work"
start=$(date +%s.%N)
cargo test --quiet 2>"$work/build.log" >"$work/test.log" || {
    cat "$work/build.log" "$work/test.log" >&2
    exit 1
}
end=$(date +%s.%N)
crates=$(find "$work/target/debug/deps" -name '*.rlib' | sed 's/-[0-9a-f]*\.rlib$//' | sort -u | wc -l)
grep -q '1 passed' "$work/test.log" || {
    cat "$work/test.log" >&2
    exit 1
}
printf '%s: cargo test from clean in %.1f s, %d library crates compiled\n' \
    "$package" "$(python3 -c "print($end - $start)")" "$crates"

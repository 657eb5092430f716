//! Example of a custom stage: `keyword_flag` adds a header (by default
//! `X-Priority-Flag: urgent`) when a keyword appears as a word in the subject.
//!
//! Keys: `keywords` (required, single words, matched case-insensitively as whole words
//! of the decoded subject), `header` = "X-Priority-Flag", `value` = "urgent". Like every
//! stage it also takes `when` and `unless`.
//!
//! `main` is the whole `workmail-flow` command line with a registry that knows the stage
//! (`workmail_flow::cli::main_with`), so every subcommand takes configs that use it:
//!
//! ```text
//! cargo run --example keyword_flag -- explain --config handlers/keyword_flag.toml samples/plain.eml
//! cargo run --example keyword_flag -- replay --config handlers/keyword_flag.toml - < message.eml > out.eml
//! ```
//!
//! A Lambda handler uses the same registry; only where the message comes from changes.

use workmail_flow::conditions::header_values;
use workmail_flow::edit::HeaderOp;
use workmail_flow::header_field;
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{KeyError, Stage, StageContext, StageKeys, StageRegistry, StageReport};

/// The stage, its keys checked at load.
pub struct KeywordFlag {
    keywords: Vec<String>,
    header: String,
    value: String,
}

/// Builds the stage from its config keys; every error names the key.
pub fn build(keys: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
    let keywords = keys.string_list("keywords")?;
    if keywords.is_empty() {
        return Err(KeyError::new("keywords", "is required: words to look for"));
    }
    if let Some(k) = keywords
        .iter()
        .find(|k| k.is_empty() || !k.chars().all(char::is_alphanumeric))
    {
        return Err(KeyError::new(
            "keywords",
            format!("{k:?} is not a single word"),
        ));
    }
    let header = keys
        .opt_string("header")?
        .unwrap_or_else(|| "X-Priority-Flag".into());
    header_field::check_name(&header).map_err(|e| KeyError::new("header", e.to_string()))?;
    if header_field::is_protected(&header) {
        return Err(KeyError::new(
            "header",
            format!("{header} is an identity or trace field"),
        ));
    }
    let value = keys.opt_string("value")?.unwrap_or_else(|| "urgent".into());
    header_field::check_value(&value).map_err(|e| KeyError::new("value", e.to_string()))?;
    let keywords = keywords.iter().map(|k| k.to_lowercase()).collect();
    Ok(Box::new(KeywordFlag {
        keywords,
        header,
        value,
    }))
}

impl Stage for KeywordFlag {
    fn run(&self, mail: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        // The parser's subject is already RFC 2047-decoded and unfolded.
        let Some(subject) = mail.message().subject() else {
            return StageReport::unchanged("no Subject");
        };
        let subject = subject.to_lowercase();
        let mut words = subject.split(|c: char| !c.is_alphanumeric());
        if !words.any(|w| self.keywords.iter().any(|k| k == w)) {
            // Say why, never quote the subject: reports end up in logs.
            return StageReport::unchanged("no keyword in the subject");
        }
        // A second pass over our own output must change nothing: compare with the
        // field as earlier stages left it, decoded (a non-ASCII value is stored encoded).
        if header_values(mail, &cx.edits, &self.header).contains(&self.value) {
            return StageReport::unchanged(format!("{} already present", self.header));
        }
        cx.edits.header(
            0,
            HeaderOp::Add {
                name: self.header.clone(),
                value: self.value.clone(),
            },
        );
        StageReport::changed(format!("added {}: keyword in the subject", self.header))
    }
}

/// The built-in stages plus this one, so a config can say `type = "keyword_flag"`.
pub fn registry() -> StageRegistry {
    let mut registry = StageRegistry::builtin();
    registry.register("keyword_flag", build);
    registry
}

/// The whole `workmail-flow` command line, with this stage registered: `explain`,
/// `replay`, `invoke` and the rest take configs that use `keyword_flag`.
fn main() -> std::process::ExitCode {
    workmail_flow::cli::main_with(registry())
}

#[cfg(test)]
mod tests {
    use super::*;
    use workmail_flow::{Envelope, testing};

    fn stage() -> Box<dyn Stage> {
        testing::build_stage(build, r#"keywords = ["urgent", "asap"]"#).unwrap()
    }

    fn envelope() -> Envelope {
        testing::inbound("alice@partner.example", &["bob@corp.example"])
    }

    #[test]
    fn a_keyword_in_the_subject_adds_the_flag_once() {
        let raw = b"From: alice@partner.example\r\nSubject: URGENT: server down\r\n\r\nbody\r\n";
        let run = testing::run(&stage(), raw, &envelope());
        assert_eq!(run.header("X-Priority-Flag"), ["urgent"]);
        assert_eq!(
            run.report().summary(),
            "added X-Priority-Flag: keyword in the subject"
        );
        let again = testing::run(&stage(), &run.output, &envelope());
        assert_eq!(again.output, run.output, "{}", again.report().summary());
    }

    #[test]
    fn a_non_ascii_value_is_encoded_and_still_added_only_once() {
        let stage =
            testing::build_stage(build, "keywords = [\"urgent\"]\nvalue = \"dringend ⚠\"").unwrap();
        let raw = b"From: a@x.example\r\nSubject: urgent\r\n\r\nb\r\n";
        let run = testing::run(&stage, raw, &envelope());
        assert!(
            run.text().contains("X-Priority-Flag: =?UTF-8?"),
            "{}",
            run.text()
        );
        assert_eq!(run.header("X-Priority-Flag"), ["dringend ⚠"]);
        let again = testing::run(&stage, &run.output, &envelope());
        assert_eq!(again.output, run.output, "{}", again.report().summary());
    }

    #[test]
    fn an_encoded_subject_is_matched_after_decoding() {
        let raw = b"From: a@x.example\r\nSubject: =?UTF-8?Q?Bitte_ASAP_pr=C3=BCfen?=\r\n\r\nb\r\n";
        assert!(testing::run(&stage(), raw, &envelope()).report().changed);
    }

    #[test]
    fn a_keyword_inside_another_word_or_a_missing_subject_changes_nothing() {
        for raw in [
            &b"From: a@x.example\r\nSubject: non-urgently yours\r\n\r\nb\r\n"[..],
            &b"From: a@x.example\r\n\r\nurgent\r\n"[..],
        ] {
            let run = testing::run(&stage(), raw, &envelope());
            assert_eq!(run.output, raw);
            assert!(!run.report().changed, "{}", run.report().summary());
        }
    }

    #[test]
    fn the_sample_message_replays_unchanged_through_the_shipped_config() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/handlers/keyword_flag.toml");
        let pipeline = workmail_flow::config::load_with(config.as_ref(), &registry()).unwrap();
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/plain.eml");
        let raw = std::fs::read(sample).unwrap();
        let run = testing::run_pipeline(&pipeline, &raw, &envelope());
        assert_eq!(run.output, raw);
        assert_eq!(run.report().summary(), "no keyword in the subject");
    }

    #[test]
    fn bad_keys_are_config_errors_naming_the_key() {
        let key = |keys: &str| testing::build_stage(build, keys).err().unwrap().key;
        assert_eq!(key(""), "keywords");
        assert_eq!(key(r#"keywords = ["two words"]"#), "keywords");
        assert_eq!(
            key(r#"keywords = ["x"]
header = "Received""#),
            "header"
        );
        assert_eq!(
            key(r#"keywords = ["x"]
value = "a\nb""#),
            "value"
        );
        assert_eq!(
            key(r#"keywords = ["x"]
colour = "red""#),
            "colour"
        );
    }
}

//! Reading a flow config: raw TOML first, then each `[[stage]]` built into a
//! [`Pipeline`] through the registry, with errors that name the file, the stage and the
//! key.

use crate::config::{ConfigError, DirectorySettings, StageKeys};
use crate::flow::pipeline::{ConfiguredStage, Pipeline};
use crate::stage::StageRegistry;
use crate::stage::conditions::Conditions;
use std::path::Path;

/// Top-level keys a config may hold.
const TOP_LEVEL_KEYS: &[&str] = &["stage", "log_addresses", "trusted_authserv_id", "directory"];

/// Loads and validates a config file with the built-in stages.
pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
    load_with(path, &StageRegistry::builtin())
}

/// Loads and validates a config file with the stages of `registry`.
pub fn load_with(path: &Path, registry: &StageRegistry) -> Result<Pipeline, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, path, base, registry)
}

/// Validates config text; `file` is used in messages, `base_dir` for relative paths.
pub fn parse(
    text: &str,
    file: &Path,
    base_dir: &Path,
    registry: &StageRegistry,
) -> Result<Pipeline, ConfigError> {
    let top: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_path_buf(),
            // toml's message shows the line and a caret under the column: keep its layout.
            message: e.to_string().trim_end().to_string(),
        })?;
    let top_err = |key: &str, problem: String| ConfigError::TopLevel {
        file: file.to_path_buf(),
        key: key.to_string(),
        problem,
    };
    if let Some(k) = top.keys().find(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
        return Err(top_err(
            k,
            format!(
                "unknown key{} (a config holds [[stage]] tables, [directory], log_addresses and trusted_authserv_id)",
                crate::config::did_you_mean(k, TOP_LEVEL_KEYS.iter().copied())
            ),
        ));
    }
    let log_addresses = match top.get("log_addresses") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(top_err("log_addresses", "must be true or false".into())),
    };
    // Whose Authentication-Results `authenticated_sender` believes: one id or a list.
    let trusted: Vec<String> = match top.get("trusted_authserv_id") {
        None => vec![crate::message::auth_results::DEFAULT_TRUSTED_AUTHSERV_ID.to_string()],
        Some(toml::Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
        Some(toml::Value::Array(items))
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
        {
            items
                .iter()
                .filter_map(|i| i.as_str().map(|s| s.trim().to_string()))
                .collect()
        }
        Some(_) => {
            return Err(top_err(
                "trusted_authserv_id",
                "must be an authserv-id such as \"amazonses.com\", or a list of them".into(),
            ));
        }
    };
    let directory = top
        .get("directory")
        .map(|v| DirectorySettings::parse(v, base_dir))
        .transpose()
        .map_err(|e| top_err(&e.key, e.problem))?;
    let tables = match top.get("stage") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(top_err(
                "stage",
                "must be an array of tables: write [[stage]]".into(),
            ));
        }
    };
    let mut stages = Vec::with_capacity(tables.len());
    for (i, item) in tables.into_iter().enumerate() {
        let index = i + 1;
        let stage_err = |stage_type: &str, key: &str, problem: String| ConfigError::Stage {
            file: file.to_path_buf(),
            index,
            stage_type: stage_type.to_string(),
            key: key.to_string(),
            problem,
        };
        let toml::Value::Table(mut table) = item else {
            return Err(stage_err("?", "stage", "must be a table".into()));
        };
        let stage_type = match table.remove("type") {
            Some(toml::Value::String(t)) => t,
            Some(_) => return Err(stage_err("?", "type", "must be a string".into())),
            None => {
                return Err(stage_err(
                    "?",
                    "type",
                    "is required: the stage's type".into(),
                ));
            }
        };
        let Some(builder) = registry.get(&stage_type) else {
            let known: Vec<&str> = registry.names().collect();
            return Err(stage_err(
                &stage_type,
                "type",
                crate::config::unknown_with_hint(
                    "unknown stage type",
                    &stage_type,
                    &known,
                    "known types",
                ),
            ));
        };
        // `when` and `unless` belong to every stage: read here, so no builder sees them
        // and no stage can mistake them for its own keys.
        let when = table.remove("when");
        let unless = table.remove("unless");
        let conditions = Conditions::parse(when.as_ref(), unless.as_ref(), &trusted)
            .map_err(|e| stage_err(&stage_type, &e.key, e.problem.clone()))?;
        let mut keys = StageKeys::new(table, base_dir);
        let stage = builder(&mut keys).map_err(|e| match keys.mistyped(&e.key) {
            // `nmae = "X"` makes `name` "missing": name the key that was mistyped.
            Some(typed) => stage_err(
                &stage_type,
                &typed,
                format!("unknown key for this stage; did you mean `{}`?", e.key),
            ),
            None => stage_err(&stage_type, &e.key, e.problem.clone()),
        })?;
        keys.finish()
            .map_err(|e| stage_err(&stage_type, &e.key, e.problem.clone()))?;
        stages.push(ConfiguredStage {
            label: format!("stage {index} ({stage_type})"),
            stage_type,
            conditions,
            stage,
        });
    }
    // A stage that reads the directory with none configured would never see anyone:
    // its group conditions would quietly never match. Say so where the admin looks.
    if directory.is_none()
        && let Some((index, s)) = stages
            .iter()
            .enumerate()
            .find(|(_, s)| s.conditions.directory_needs().any() || s.stage.directory_needs().any())
    {
        return Err(ConfigError::Stage {
            file: file.to_path_buf(),
            index: index + 1,
            stage_type: s.stage_type.clone(),
            key: s.conditions.directory_key().unwrap_or("sender.*").into(),
            problem: "reads the directory (a sender_group, recipient_group or sender_in_directory condition, or a sender.* placeholder), but the config has no [directory]: add one (source = \"workmail\" or \"file\")".into(),
        });
    }
    let mut pipeline = Pipeline::new(stages);
    pipeline.log_addresses = log_addresses;
    pipeline.directory = directory;
    Ok(pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_that_reads_the_directory_needs_a_directory_section() {
        let e = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-F\"\nvalue = \"1\"\nwhen = { sender_group = \"finance\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("flow.toml: stage 1 (stamp_header): key `when`: reads the directory"),
            "{e}"
        );
        assert!(e.contains("no [directory]"), "{e}");
        let e = load_str(
            "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nmessage = \"{{ sender.display_name }} may not\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stage 1 (verdict)") && e.contains("no [directory]"),
            "{e}"
        );
        let ok = load_str(
            "[directory]\nsource = \"file\"\npath = \"people.toml\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-F\"\nvalue = \"1\"\nwhen = { sender_group = \"finance\" }\n",
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    fn load_str(text: &str) -> Result<Pipeline, ConfigError> {
        parse(
            text,
            Path::new("flow.toml"),
            Path::new("."),
            &StageRegistry::builtin(),
        )
    }

    #[test]
    fn a_mistyped_key_or_type_is_named_as_unknown_with_the_closest_valid_one() {
        let registry = StageRegistry::builtin();
        let load = |text: &str| {
            parse(text, Path::new("f.toml"), Path::new("."), &registry)
                .err()
                .unwrap()
                .to_string()
        };
        let e = load("[[stage]]\ntype = \"stamp_header\"\nnmae = \"X-A\"\nvalue = \"1\"\n");
        assert!(
            e.contains("key `nmae`: unknown key for this stage; did you mean `name`?"),
            "{e}"
        );
        let e =
            load("[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\nvalu = 2\n");
        assert!(
            e.contains("key `valu`: unknown key for this stage; did you mean `value`?"),
            "{e}"
        );
        let e = load("[[stage]]\ntype = \"stamp_heder\"\n");
        assert!(
            e.contains("did you mean `stamp_header`? Known types:"),
            "{e}"
        );
        let e = load(
            "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { directon = \"inbound\" }\n",
        );
        assert!(
            e.contains("`when.directon`: unknown condition key; did you mean `direction`?"),
            "{e}"
        );
        let e = load("log_adresses = true\n");
        assert!(e.contains("did you mean `log_addresses`?"), "{e}");
        // Nothing close: no suggestion.
        let e = load("[[stage]]\ntype = \"frobnicate\"\n");
        assert!(
            !e.contains("did you mean") && e.contains("known types:"),
            "{e}"
        );
    }

    #[test]
    fn a_toml_syntax_error_keeps_its_line_and_caret() {
        let e = parse(
            "[[stage]]\ntype = \"stamp_header\nname = 1\n",
            Path::new("f.toml"),
            Path::new("."),
            &StageRegistry::builtin(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("f.toml: not valid TOML: TOML parse error at line 2"),
            "{e}"
        );
        assert!(e.contains("\n2 | type = \"stamp_header\n"), "{e}");
        assert!(e.contains('^'), "{e}");
    }

    #[test]
    fn trusted_authserv_id_takes_one_id_or_a_list_and_refuses_anything_else() {
        let registry = StageRegistry::builtin();
        let load = |text: &str| parse(text, Path::new("f.toml"), Path::new("."), &registry);
        assert!(load("trusted_authserv_id = \"mx.corp.example\"\n").is_ok());
        assert!(load("trusted_authserv_id = [\"amazonses.com\", \"mx.corp.example\"]\n").is_ok());
        for bad in [
            "trusted_authserv_id = \"\"",
            "trusted_authserv_id = []",
            "trusted_authserv_id = 3",
        ] {
            let e = load(bad).err().unwrap().to_string();
            assert!(
                e.contains("f.toml") && e.contains("trusted_authserv_id"),
                "{e}"
            );
        }
    }

    #[test]
    fn an_empty_file_means_no_stages() {
        assert_eq!(load_str("").unwrap().len(), 0);
    }

    #[test]
    fn stages_are_built_in_order() {
        let p = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-B\"\nmode = \"remove\"\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn an_unknown_type_names_the_file_stage_and_key() {
        let e = load_str("[[stage]]\ntype = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("flow.toml: stage 1 (nope): key `type`: unknown stage type"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_names_the_file_stage_and_key() {
        let e = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\nvalu = \"2\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "flow.toml: stage 1 (stamp_header): key `valu`: unknown key for this stage; did you mean `value`?"
        );
    }

    #[test]
    fn a_forbidden_header_is_a_load_error_naming_the_key() {
        let e =
            load_str("[[stage]]\ntype = \"stamp_header\"\nname = \"Received\"\nvalue = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.starts_with("flow.toml: stage 1 (stamp_header): key `name`: Received is an identity"),
            "{e}"
        );
    }

    #[test]
    fn conditions_are_read_for_any_stage_type() {
        let p = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\nwhen = { direction = \"outbound\" }\nunless = { sender = \"*@corp.example\" }\n",
        )
        .unwrap();
        assert!(!p.stages()[0].conditions.is_empty());
    }

    #[test]
    fn condition_errors_name_the_file_stage_and_dotted_key() {
        let e = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\nwhen = { sendr = \"*\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "flow.toml: stage 1 (stamp_header): key `when.sendr`: unknown condition key"
            ),
            "{e}"
        );
        let e = load_str(
            "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n[stage.unless]\nheader = { name = \"Subject\", matches = \"[\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("flow.toml: stage 1 (stamp_header): key `unless.header.matches`: not a valid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_and_bad_toml_and_unknown_top_level_keys_are_errors() {
        let e = load_str("[[stage]]\ntype = \"stamp_header\"\nname = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `name`: must be a string, found integer"),
            "{e}"
        );
        assert!(matches!(
            load_str("[[stage]\n"),
            Err(ConfigError::Syntax { .. })
        ));
        let e = load_str("stages = []\n").unwrap_err().to_string();
        assert!(e.contains("key `stages`: unknown key"), "{e}");
    }
}

//! One stage's table read key by key, and the error that names the key: what every
//! stage's `build` and the `when`/`unless` reader use, so each config mistake is reported
//! with its key and, for a slip of the keyboard, the key that was meant.

use std::path::{Path, PathBuf};

/// A config problem inside one stage's table: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {problem}")]
pub struct KeyError {
    pub key: String,
    pub problem: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> KeyError {
        KeyError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// One stage's keys from the config, read one by one so every error names its key, and
/// checked at the end for keys nobody read (typos).
pub struct StageKeys {
    table: toml::Table,
    used: Vec<String>,
    base_dir: PathBuf,
}

impl StageKeys {
    /// `base_dir` is the config file's folder; file keys are relative to it.
    pub fn new(table: toml::Table, base_dir: &Path) -> StageKeys {
        StageKeys {
            table,
            used: Vec::new(),
            base_dir: base_dir.to_path_buf(),
        }
    }

    fn take(&mut self, key: &str) -> Option<&toml::Value> {
        self.used.push(key.to_string());
        self.table.get(key)
    }

    /// A string the stage cannot do without.
    pub fn string(&mut self, key: &str) -> Result<String, KeyError> {
        self.opt_string(key)?
            .ok_or_else(|| KeyError::new(key, "is required (a string)"))
    }

    pub fn opt_string(&mut self, key: &str) -> Result<Option<String>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(KeyError::new(
                key,
                format!("must be a string, found {}", v.type_str()),
            )),
        }
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, KeyError> {
        match self.take(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(KeyError::new(
                key,
                format!("must be true or false, found {}", v.type_str()),
            )),
        }
    }

    pub fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(v) => Err(KeyError::new(
                key,
                format!("must be a whole number of 0 or more, found {v}"),
            )),
        }
    }

    /// A list of strings; a single string counts as a list of one.
    pub fn string_list(&mut self, key: &str) -> Result<Vec<String>, KeyError> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(KeyError::new(
                        key,
                        format!("must list strings, found {}", other.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(KeyError::new(
                key,
                format!("must be a list of strings, found {}", v.type_str()),
            )),
        }
    }

    /// A table (such as `when = { ... }`).
    pub fn opt_table(&mut self, key: &str) -> Result<Option<toml::Table>, KeyError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t.clone())),
            Some(v) => Err(KeyError::new(
                key,
                format!("must be a table, found {}", v.type_str()),
            )),
        }
    }

    /// A path, resolved against the config file's folder.
    pub fn opt_path(&mut self, key: &str) -> Result<Option<PathBuf>, KeyError> {
        Ok(self.opt_string(key)?.map(|p| self.base_dir.join(p)))
    }

    /// The config file's folder.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Errors on the first key no one read, with the closest key the stage reads.
    pub fn finish(self) -> Result<(), KeyError> {
        match self.table.keys().find(|k| !self.used.contains(k)) {
            Some(k) => Err(KeyError::new(
                k.clone(),
                format!(
                    "unknown key for this stage{}",
                    did_you_mean(k, self.used.iter().map(String::as_str))
                ),
            )),
            None => Ok(()),
        }
    }

    /// A key nobody has read that looks like a mistyped `wanted` (a required key found
    /// missing): the key the user meant to write, to name instead of "is required".
    pub fn mistyped(&self, wanted: &str) -> Option<String> {
        self.table
            .keys()
            .filter(|k| !self.used.contains(k))
            .find(|k| close(k, wanted))
            .cloned()
    }
}

/// Whether `typed` is near enough to `known` to be a slip of the keyboard.
fn close(typed: &str, known: &str) -> bool {
    let distance =
        strsim::damerau_levenshtein(&typed.to_ascii_lowercase(), &known.to_ascii_lowercase());
    distance <= 2.max(known.len() / 4) && distance < known.len()
}

/// `; did you mean `x`?` for the closest of `known` to `typed`, or nothing.
pub fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    known
        .into_iter()
        .filter(|k| close(typed, k))
        .min_by_key(|k| strsim::damerau_levenshtein(typed, k))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// `unknown stage type; did you mean `x`? Known types: a, b` (or `...; known types: a,
/// b` when nothing is close).
pub fn unknown_with_hint(what: &str, typed: &str, known: &[&str], list: &str) -> String {
    let hint = did_you_mean(typed, known.iter().copied());
    let names = known.join(", ");
    if hint.is_empty() {
        format!("{what}; {list}: {names}")
    } else {
        let mut list = list.to_string();
        if let Some(first) = list.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        format!("{what}{hint} {list}: {names}")
    }
}

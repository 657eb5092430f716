//! The `[directory]` table of a flow config: where the organization's directory comes
//! from, how long answers are kept, and what happens when it cannot be asked.
//!
//! ```toml
//! [directory]
//! source = "workmail"            # or "file"
//! organization_id = "m-0123456789abcdef0123456789abcdef"
//! # path = "people.toml"         # for source = "file", relative to the config
//! cache_seconds = 300
//! on_error = "retry"             # or "skip"
//! ```
//!
//! `on_error` defaults to `retry`: when a lookup fails (throttled, the API down), the
//! function returns an error and WorkMail retries the message with backoff, so no
//! message goes out without the signature or the group rule it should have had. `skip`
//! runs the stages as if nobody were in the directory (no `sender.*` values, group
//! conditions match no one) and logs why; choose it when a missing signature is better
//! than a delay and no group condition guards a policy.

use super::KeyError;
use std::path::{Path, PathBuf};

/// Where directory answers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySource {
    /// WorkMail's API (DescribeEntity, DescribeUser, ListGroupsForEntity) for this
    /// organization.
    WorkMail { organization_id: String },
    /// A TOML file of `[[user]]` tables (see `envelope::directory_file`).
    File { path: PathBuf },
}

/// What a failed lookup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Return an error so WorkMail retries the message (the default).
    #[default]
    Retry,
    /// Run the stages without directory data.
    Skip,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Retry => "retry",
            OnError::Skip => "skip",
        }
    }
}

/// The `[directory]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySettings {
    pub source: DirectorySource,
    /// How long a warm container keeps an answer (found or not found); errors are
    /// never kept.
    pub cache_seconds: u64,
    /// The most answers kept; the oldest go first.
    pub cache_entries: usize,
    /// The most lookups in flight at once for one message.
    pub max_parallel: usize,
    pub on_error: OnError,
}

const KEYS: &[&str] = &[
    "source",
    "organization_id",
    "path",
    "cache_seconds",
    "cache_entries",
    "max_parallel",
    "on_error",
];

impl DirectorySettings {
    /// A file directory with the defaults, for `--directory FILE`.
    pub fn file(path: PathBuf) -> DirectorySettings {
        DirectorySettings {
            source: DirectorySource::File { path },
            cache_seconds: 300,
            cache_entries: 10_000,
            max_parallel: 8,
            on_error: OnError::Retry,
        }
    }

    /// Reads the table; errors name the key as `directory.<key>`. Relative paths are
    /// taken from `base_dir` (the config's folder).
    pub fn parse(value: &toml::Value, base_dir: &Path) -> Result<DirectorySettings, KeyError> {
        let key = |k: &str| format!("directory.{k}");
        let toml::Value::Table(t) = value else {
            return Err(KeyError::new(
                "directory",
                "must be a table: write [directory]",
            ));
        };
        if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(KeyError::new(
                key(k),
                super::unknown_with_hint("unknown key", k, KEYS, "known"),
            ));
        }
        let string = |k: &str| -> Result<Option<String>, KeyError> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().into())),
                Some(_) => Err(KeyError::new(key(k), "must be a non-empty string")),
            }
        };
        let number = |k: &str, default: u64, min: u64, max: u64| -> Result<u64, KeyError> {
            match t.get(k) {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if (min as i64..=max as i64).contains(n) => {
                    Ok(*n as u64)
                }
                Some(_) => Err(KeyError::new(
                    key(k),
                    format!("must be a whole number from {min} to {max}"),
                )),
            }
        };
        let source = match string("source")?.as_deref() {
            Some("workmail") => {
                let id = string("organization_id")?.ok_or_else(|| {
                    KeyError::new(
                        key("organization_id"),
                        "is required with source = \"workmail\" (the organization's id, m-...)",
                    )
                })?;
                if !id.starts_with("m-") || !id[2..].bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(KeyError::new(
                        key("organization_id"),
                        format!("{id:?} is not a WorkMail organization id (m- and 32 hex digits)"),
                    ));
                }
                DirectorySource::WorkMail {
                    organization_id: id,
                }
            }
            Some("file") => {
                let path = string("path")?.ok_or_else(|| {
                    KeyError::new(key("path"), "is required with source = \"file\"")
                })?;
                DirectorySource::File {
                    path: base_dir.join(path),
                }
            }
            Some(other) => {
                return Err(KeyError::new(
                    key("source"),
                    format!("{other:?} is not one of workmail, file"),
                ));
            }
            None => {
                return Err(KeyError::new(
                    key("source"),
                    "is required: \"workmail\" or \"file\"",
                ));
            }
        };
        let on_error = match string("on_error")?.as_deref() {
            None | Some("retry") => OnError::Retry,
            Some("skip") => OnError::Skip,
            Some(other) => {
                return Err(KeyError::new(
                    key("on_error"),
                    format!("{other:?} is not one of retry, skip"),
                ));
            }
        };
        Ok(DirectorySettings {
            source,
            cache_seconds: number("cache_seconds", 300, 0, 86_400)?,
            cache_entries: number("cache_entries", 10_000, 1, 1_000_000)? as usize,
            max_parallel: number("max_parallel", 8, 1, 64)? as usize,
            on_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DirectorySettings, KeyError> {
        let t: toml::Table = text.parse().unwrap();
        DirectorySettings::parse(&t["directory"], Path::new("/etc/flow"))
    }

    #[test]
    fn a_workmail_directory_defaults_to_retry_and_five_minutes() {
        let d = parse("[directory]\nsource = \"workmail\"\norganization_id = \"m-0123456789abcdef0123456789abcdef\"\n").unwrap();
        assert_eq!(d.on_error, OnError::Retry);
        assert_eq!(d.cache_seconds, 300);
        assert_eq!(
            d.source,
            DirectorySource::WorkMail {
                organization_id: "m-0123456789abcdef0123456789abcdef".into()
            }
        );
    }

    #[test]
    fn a_file_directory_is_relative_to_the_config_and_mistakes_name_the_key() {
        let d =
            parse("[directory]\nsource = \"file\"\npath = \"people.toml\"\non_error = \"skip\"\n")
                .unwrap();
        assert_eq!(
            d.source,
            DirectorySource::File {
                path: "/etc/flow/people.toml".into()
            }
        );
        assert_eq!(d.on_error, OnError::Skip);
        let e = parse("[directory]\nsource = \"file\"\n").unwrap_err();
        assert_eq!(e.key, "directory.path");
        let e =
            parse("[directory]\nsource = \"workmail\"\norganization_id = \"corp\"\n").unwrap_err();
        assert_eq!(e.key, "directory.organization_id");
        let e =
            parse("[directory]\nsource = \"file\"\npath = \"p\"\ncache_second = 5\n").unwrap_err();
        assert!(e.problem.contains("did you mean `cache_seconds`"), "{e}");
        let e = parse("[directory]\nsource = \"file\"\npath = \"p\"\non_error = \"ignore\"\n")
            .unwrap_err();
        assert_eq!(e.key, "directory.on_error");
    }
}

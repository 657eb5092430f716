//! A directory kept in a TOML file, for replay, the pipe filter, the emulator and tests:
//! one `[[user]]` table per person, with `email`, `aliases`, `groups` and the attributes
//! WorkMail's DescribeUser returns, in snake_case.
//!
//! ```toml
//! [[user]]
//! email = "alice@corp.example"
//! aliases = ["a.smith@corp.example"]
//! display_name = "Alice Smith"
//! job_title = "Head of Finance"
//! telephone = "+44 20 7946 0000"
//! groups = ["finance", "managers"]
//! ```

use super::directory::{ATTRIBUTES, DirectoryNeeds, DirectoryView, Person, addresses_to_look_up};
use super::transport::Envelope;
use crate::config::did_you_mean;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A directory file that cannot be used; names the file, the user (1-based) and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryFileError {
    #[error("{file}: cannot read: {problem}")]
    Read { file: PathBuf, problem: String },
    #[error("{file}: not valid TOML: {problem}")]
    Syntax { file: PathBuf, problem: String },
    #[error("{file}: {problem}")]
    TopLevel { file: PathBuf, problem: String },
    #[error("{file}: user {index}: key `{key}`: {problem}")]
    User {
        file: PathBuf,
        index: usize,
        key: String,
        problem: String,
    },
}

/// Every user of a directory file, found by any of their addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDirectory {
    /// Lower-case address (primary or alias) → index into `users`.
    by_address: BTreeMap<String, usize>,
    users: Vec<Person>,
}

impl FileDirectory {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<FileDirectory, DirectoryFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| DirectoryFileError::Read {
            file: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        FileDirectory::parse(&text, path)
    }

    /// Reads directory text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<FileDirectory, DirectoryFileError> {
        let file = path.to_path_buf();
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| DirectoryFileError::Syntax {
                    file: file.clone(),
                    problem: e.to_string(),
                })?;
        if let Some(k) = table.keys().find(|k| *k != "user") {
            return Err(DirectoryFileError::TopLevel {
                file,
                problem: format!(
                    "unknown key `{k}`{}; a directory file holds `[[user]]` tables",
                    did_you_mean(k, ["user"])
                ),
            });
        }
        let users = match table.get("user") {
            None => &Vec::new(),
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(DirectoryFileError::TopLevel {
                    file,
                    problem: "`user` must be `[[user]]` tables".into(),
                });
            }
        };
        let mut dir = FileDirectory::default();
        for (i, value) in users.iter().enumerate() {
            let index = i + 1;
            let err = |key: &str, problem: String| DirectoryFileError::User {
                file: file.clone(),
                index,
                key: key.to_string(),
                problem,
            };
            let toml::Value::Table(t) = value else {
                return Err(err("user", "must be a table".into()));
            };
            let person = read_user(t).map_err(|(k, p)| err(&k, p))?;
            for address in std::iter::once(&person.email).chain(&person.aliases) {
                let key = address.to_ascii_lowercase();
                if let Some(&other) = dir.by_address.get(&key) {
                    return Err(err(
                        if *address == person.email {
                            "email"
                        } else {
                            "aliases"
                        },
                        format!("{address} is already user {}'s", other + 1),
                    ));
                }
                dir.by_address.insert(key, dir.users.len());
            }
            dir.users.push(person);
        }
        Ok(dir)
    }

    /// The user `address` belongs to (primary or alias, any case).
    pub fn lookup(&self, address: &str) -> Option<&Person> {
        self.by_address
            .get(&address.to_ascii_lowercase())
            .map(|&i| &self.users[i])
    }

    pub fn users(&self) -> &[Person] {
        &self.users
    }

    /// What this directory says about the addresses `needs` asks for in one message.
    pub fn view_for(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        needs: DirectoryNeeds,
    ) -> DirectoryView {
        if !needs.any() {
            return DirectoryView::default();
        }
        DirectoryView::consulted(
            addresses_to_look_up(raw, envelope, needs)
                .into_iter()
                .map(|a| {
                    let found = self.lookup(&a).cloned();
                    (a, found)
                }),
        )
    }
}

/// One `[[user]]` table, or the key that is wrong and why.
fn read_user(t: &toml::Table) -> Result<Person, (String, String)> {
    let string = |key: &str, v: &toml::Value| -> Result<String, (String, String)> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| (key.to_string(), "must be a string".to_string()))
    };
    let list = |key: &str, v: &toml::Value| -> Result<Vec<String>, (String, String)> {
        let bad = || (key.to_string(), "must be a list of strings".to_string());
        v.as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    };
    let mut person = Person::default();
    for (key, value) in t {
        match key.as_str() {
            "email" => person.email = string(key, value)?,
            "aliases" => person.aliases = list(key, value)?,
            "groups" => person.groups = list(key, value)?,
            k if ATTRIBUTES.contains(&k) => {
                person.attributes.insert(k.to_string(), string(key, value)?);
            }
            k => {
                let known = ATTRIBUTES.iter().copied().chain(["aliases", "groups"]);
                return Err((
                    k.to_string(),
                    format!("unknown key{}", did_you_mean(k, known)),
                ));
            }
        }
    }
    for (key, address) in std::iter::once(("email", &person.email))
        .chain(person.aliases.iter().map(|a| ("aliases", a)))
    {
        if let Some(problem) = super::address_problem(address) {
            return Err((key.to_string(), format!("{address:?} {problem}")));
        }
    }
    Ok(person)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileDirectory, String> {
        FileDirectory::parse(text, Path::new("people.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn users_are_found_by_primary_address_or_alias_in_any_case() {
        let d = parse(
            "[[user]]\nemail = \"alice@corp.example\"\naliases = [\"a.smith@corp.example\"]\ndisplay_name = \"Alice Smith\"\ngroups = [\"finance\"]\n",
        )
        .unwrap();
        let a = d.lookup("A.Smith@CORP.example").unwrap();
        assert_eq!(a.attribute("display_name"), Some("Alice Smith"));
        assert_eq!(a.groups, ["finance"]);
        assert!(d.lookup("bob@corp.example").is_none());
    }

    #[test]
    fn mistakes_name_the_file_the_user_and_the_key() {
        let e = parse("[[user]]\nemail = \"a@corp.example\"\njob_tittle = \"CFO\"\n").unwrap_err();
        assert_eq!(
            e,
            "people.toml: user 1: key `job_tittle`: unknown key; did you mean `job_title`?"
        );
        let e = parse("[[user]]\nemail = \"a@corp.example\"\n[[user]]\nemail = \"b@corp.example\"\naliases = [\"A@corp.example\"]\n").unwrap_err();
        assert_eq!(
            e,
            "people.toml: user 2: key `aliases`: A@corp.example is already user 1's"
        );
        let e = parse("[[user]]\nemail = \"not an address\"\n").unwrap_err();
        assert!(e.starts_with("people.toml: user 1: key `email`:"), "{e}");
        let e = parse("[[users]]\nemail = \"a@corp.example\"\n").unwrap_err();
        assert!(
            e.contains("unknown key `users`; did you mean `user`?"),
            "{e}"
        );
        let e = parse("[[user]]\nemail = \"a@corp.example\"\ngroups = \"finance\"\n").unwrap_err();
        assert!(e.contains("key `groups`: must be a list of strings"), "{e}");
    }
}

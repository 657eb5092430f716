//! The emulator's stand-in for WorkMail's directory API (`emulate --directory FILE`):
//! the three calls the function makes, in the JSON 1.1 protocol the SDK speaks
//! (`POST /` with `X-Amz-Target: WorkMailService.<Operation>`), answered from a
//! directory file.
//!
//! | call | answers |
//! |---|---|
//! | DescribeEntity (`Email`) | `EntityId`, `Name`, `Type` = USER; EntityNotFoundException for an unknown address |
//! | DescribeUser (`UserId`) | the user's attributes as DescribeUser names them (`DisplayName`, `JobTitle`, `ZipCode`...) |
//! | ListGroupsForEntity (`EntityId`) | `Groups` (`GroupId`, `GroupName`), two per page with `NextToken`, so clients page as with a real organization |
//!
//! Errors use the protocol's shape (`{"__type": ..., "Message": ...}`, HTTP 400) so the
//! SDK maps them to its typed errors. Faults, with files in the messages folder:
//! `directory.throttle` (the next N calls answer ThrottlingException) and
//! `directory.unavailable` (the next N answer 503). Every call is appended to
//! `directory-requests.log` there (operation and request body), so tests can see what
//! the SDK sent.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use workmail_flow_core::envelope::{FileDirectory, Person};

type Reply = Response<Full<Bytes>>;

/// The JSON 1.1 target prefix of WorkMail's API.
pub const TARGET_PREFIX: &str = "WorkMailService.";
/// Groups per ListGroupsForEntity page when the request gives no MaxResults.
const PAGE: usize = 2;

fn json_reply(status: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(
            json!({ "__type": code, "Message": message }).to_string(),
        )))
        .expect("static response parts are valid")
}

/// The directory the emulator serves.
pub struct EmulatedDirectory {
    directory: FileDirectory,
    /// The messages folder: fault files and the request log.
    dir: PathBuf,
}

impl EmulatedDirectory {
    pub fn new(directory: FileDirectory, dir: &Path) -> EmulatedDirectory {
        EmulatedDirectory {
            directory,
            dir: dir.to_path_buf(),
        }
    }

    fn take_fault(&self, name: &str) -> bool {
        crate::workmail::fault_file::take(&self.dir.join(name))
    }

    fn log(&self, operation: &str, body: &[u8]) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("directory-requests.log"))
        {
            let _ = writeln!(f, "{operation} {}", String::from_utf8_lossy(body).trim());
        }
    }

    /// The user with entity id `id` (`u-<n>`, 1-based in the file's order).
    fn user(&self, id: &str) -> Option<&Person> {
        let n: usize = id.strip_prefix("u-")?.parse().ok()?;
        self.directory.users().get(n.checked_sub(1)?)
    }

    fn entity_id(&self, person: &Person) -> String {
        let n = self
            .directory
            .users()
            .iter()
            .position(|p| p == person)
            .unwrap_or(0);
        format!("u-{}", n + 1)
    }

    /// Answers one call; `operation` is what follows `WorkMailService.`.
    pub fn respond(&self, operation: &str, body: &[u8]) -> Reply {
        self.log(operation, body);
        if self.take_fault("directory.throttle") {
            return error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded (injected)",
            );
        }
        if self.take_fault("directory.unavailable") {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "service unavailable (injected)",
            );
        }
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the body is not JSON",
            );
        };
        let field = |k: &str| req.get(k).and_then(Value::as_str);
        match field("OrganizationId") {
            Some(org) if org.starts_with("m-") => {}
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "OrganizationNotFoundException",
                    "The organization could not be found.",
                );
            }
        }
        let not_found = || {
            error(
                StatusCode::BAD_REQUEST,
                "EntityNotFoundException",
                "The identifier supplied for the user, group, or resource does not exist in your organization.",
            )
        };
        match operation {
            "DescribeEntity" => {
                let Some(person) = field("Email").and_then(|e| self.directory.lookup(e)) else {
                    return not_found();
                };
                json_reply(
                    StatusCode::OK,
                    json!({
                        "EntityId": self.entity_id(person),
                        "Name": person.email.split('@').next().unwrap_or(""),
                        "Type": "USER",
                    }),
                )
            }
            "DescribeUser" => {
                let Some(person) = field("UserId").and_then(|id| self.user(id)) else {
                    return not_found();
                };
                let mut out = json!({
                    "UserId": self.entity_id(person),
                    "Name": person.email.split('@').next().unwrap_or(""),
                    "Email": person.email,
                    "State": "ENABLED",
                    "UserRole": "USER",
                });
                for (ours, theirs) in [
                    ("display_name", "DisplayName"),
                    ("first_name", "FirstName"),
                    ("last_name", "LastName"),
                    ("initials", "Initials"),
                    ("job_title", "JobTitle"),
                    ("department", "Department"),
                    ("company", "Company"),
                    ("office", "Office"),
                    ("telephone", "Telephone"),
                    ("street", "Street"),
                    ("city", "City"),
                    ("zip_code", "ZipCode"),
                    ("country", "Country"),
                ] {
                    if let Some(v) = person.attribute(ours) {
                        out[theirs] = json!(v);
                    }
                }
                json_reply(StatusCode::OK, out)
            }
            "ListGroupsForEntity" => {
                let Some(person) = field("EntityId").and_then(|id| self.user(id)) else {
                    return not_found();
                };
                let page = req
                    .get("MaxResults")
                    .and_then(Value::as_u64)
                    .map_or(PAGE, |n| n.max(1) as usize);
                let start: usize = field("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
                let groups: Vec<Value> = person
                    .groups
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(page)
                    .map(|(i, g)| json!({ "GroupId": format!("g-{}", i + 1), "GroupName": g }))
                    .collect();
                let mut out = json!({ "Groups": groups });
                if start + page < person.groups.len() {
                    out["NextToken"] = json!((start + page).to_string());
                }
                json_reply(StatusCode::OK, out)
            }
            other => error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!("{other} is not emulated"),
            ),
        }
    }
}

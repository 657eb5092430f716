//! A local stand-in for WorkMail's Message Flow API, so saved messages can go through the
//! real function (and the real AWS SDK) on a laptop or in tests.
//!
//! - `GET /messages/{id}` answers `DIR/{id}.updated` if a put was accepted, else
//!   `DIR/{id}.eml` (WorkMail also returns the new content after an update).
//! - `POST /messages/{id}` reads the referenced S3 object, holds it to the content rules
//!   as WorkMail does, and writes what it accepts to `DIR/{id}.updated`.
//!
//! Errors use the service's shapes (`x-amzn-errortype` and a JSON `message`), so the SDK
//! maps them to its typed errors. Faults can be injected per message for testing how a
//! function copes, with files beside the message:
//!
//! | file | effect |
//! |---|---|
//! | `{id}.frozen` | POST answers MessageFrozen |
//! | `{id}.reject` | POST answers MessageRejected with the file's text as the reason |
//! | `{id}.throttle` | the next N requests (N = the file's number) answer ThrottlingException |
//! | `{id}.unavailable` | the next N requests answer 503 ServiceUnavailable |
//! | `{id}.delay-ms` | GET waits that many milliseconds first |
//! | `{id}.put-delay-ms` | POST waits that many milliseconds first (a put that times out after the upload) |
//! | `{id}.put-throttle` | the next N POSTs answer ThrottlingException (GETs are served) |
//! | `{id}.put-unavailable` | the next N POSTs answer 503 ServiceUnavailable (GETs are served) |
//!
//! With a directory file ([`Emulator::with_directory`], `emulate --directory FILE`) it
//! also answers WorkMail's directory API, the calls `[directory] source = "workmail"`
//! makes (see [`crate::workmail::emulator_directory`]).

use crate::mime_tree::MimeTree;
use crate::rules;
use crate::workmail::emulator_directory::{EmulatedDirectory, TARGET_PREFIX};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use workmail_flow_core::envelope::FileDirectory;

/// The emulator's state: the message folder and an S3 client to read uploads with.
pub struct Emulator {
    dir: PathBuf,
    s3: aws_sdk_s3::Client,
    directory: Option<EmulatedDirectory>,
}

#[derive(serde::Deserialize)]
struct PutBody {
    content: PutContent,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutContent {
    s3_reference: S3Ref,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Ref {
    bucket: String,
    key: String,
    #[serde(default)]
    object_version: Option<String>,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

/// An error in the service's restJson1 shape.
fn service_error(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// WorkMail's message ids: 1 to 120 characters of `[a-z0-9-]` (anything else could
/// escape the folder).
fn valid_message_id(id: &str) -> bool {
    (1..=120).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Emulator {
    pub fn new(dir: impl Into<PathBuf>, s3: aws_sdk_s3::Client) -> Emulator {
        Emulator {
            dir: dir.into(),
            s3,
            directory: None,
        }
    }

    /// Also serves WorkMail's directory API from `directory`.
    pub fn with_directory(mut self, directory: FileDirectory) -> Emulator {
        self.directory = Some(EmulatedDirectory::new(directory, &self.dir));
        self
    }

    /// Answers a request that names a WorkMail API operation in `X-Amz-Target`.
    pub fn respond_to_target(&self, target: &str, body: &[u8]) -> Reply {
        match (&self.directory, target.strip_prefix(TARGET_PREFIX)) {
            (Some(d), Some(operation)) => d.respond(operation, body),
            (None, Some(_)) => service_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "the emulator serves WorkMail's directory API only with --directory FILE",
            ),
            (_, None) => service_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "unknown X-Amz-Target",
            ),
        }
    }

    fn file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Takes one from the fault counter file `{id}.{ext}`; true while it had any left.
    fn take_fault(&self, id: &str, ext: &str) -> bool {
        crate::workmail::fault_file::take(&self.file(id, ext))
    }

    fn injected_fault(&self, id: &str, method: &Method) -> Option<Reply> {
        let put = *method == Method::POST;
        if self.take_fault(id, "throttle") || (put && self.take_fault(id, "put-throttle")) {
            return Some(service_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "rate exceeded (injected)",
            ));
        }
        if self.take_fault(id, "unavailable") || (put && self.take_fault(id, "put-unavailable")) {
            return Some(service_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "service unavailable (injected)",
            ));
        }
        None
    }

    /// Answers one request.
    pub async fn respond(&self, method: &Method, path: &str, body: &[u8]) -> Reply {
        let Some(id) = path.strip_prefix("/messages/") else {
            return service_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "unknown path",
            );
        };
        if !valid_message_id(id) {
            return service_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "messageId must match [a-z0-9-]{1,120}",
            );
        }
        if *method == Method::POST {
            self.delay(id, "put-delay-ms").await;
        }
        if let Some(fault) = self.injected_fault(id, method) {
            return fault;
        }
        match *method {
            Method::GET => self.get(id).await,
            Method::POST => self.post(id, body).await,
            _ => service_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnknownOperationException",
                "use GET or POST",
            ),
        }
    }

    /// Waits as long as the fault file `{id}.{ext}` says, if there is one.
    async fn delay(&self, id: &str, ext: &str) {
        if let Ok(ms) = std::fs::read_to_string(self.file(id, ext)) {
            let ms = ms.trim().parse().unwrap_or(0);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    async fn get(&self, id: &str) -> Reply {
        self.delay(id, "delay-ms").await;
        let updated = std::fs::read(self.file(id, "updated"));
        match updated.or_else(|_| std::fs::read(self.file(id, "eml"))) {
            Ok(bytes) => reply(StatusCode::OK, bytes, "message/rfc822"),
            Err(_) => not_found(id),
        }
    }

    async fn post(&self, id: &str, body: &[u8]) -> Reply {
        let Ok(original) = std::fs::read(self.file(id, "eml")) else {
            return not_found(id);
        };
        let reference = match serde_json::from_slice::<PutBody>(body) {
            Ok(b) => b.content.s3_reference,
            Err(e) => {
                return service_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    &format!("bad request body: {e}"),
                );
            }
        };
        if self.file(id, "frozen").exists() {
            return service_error(
                StatusCode::BAD_REQUEST,
                "MessageFrozen",
                "the message was redirected and cannot be updated (injected)",
            );
        }
        if let Ok(reason) = std::fs::read_to_string(self.file(id, "reject")) {
            return service_error(StatusCode::BAD_REQUEST, "MessageRejected", reason.trim());
        }
        let new = match crate::workmail::aws::read_object(
            &self.s3,
            &reference.bucket,
            &reference.key,
            reference.object_version.clone(),
        )
        .await
        {
            Ok(b) => b,
            Err(why) => {
                return service_error(StatusCode::BAD_REQUEST, "InvalidContentLocation", &why);
            }
        };
        if let Some(reason) = content_rule_problem(&new, &original) {
            return service_error(StatusCode::BAD_REQUEST, "MessageRejected", &reason);
        }
        if let Err(e) = std::fs::write(self.file(id, "updated"), &new) {
            return service_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                &e.to_string(),
            );
        }
        reply(StatusCode::OK, Bytes::new(), "application/json")
    }
}

fn not_found(id: &str) -> Reply {
    service_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("message {id} not found"),
    )
}

/// What WorkMail would refuse in new content, as its reason.
pub fn content_rule_problem(new: &[u8], original: &[u8]) -> Option<String> {
    if MimeTree::parse(new).is_err() {
        return Some("the new content is not a well-formed MIME message".into());
    }
    let violations = rules::check(new, Some(original));
    if violations.is_empty() {
        return None;
    }
    Some(
        violations
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Serves requests on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, emulator: Arc<Emulator>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let emulator = emulator.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let target = parts
                        .headers
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let resp = match &target {
                        Some(t) => emulator.respond_to_target(t, &body),
                        None => {
                            emulator
                                .respond(&parts.method, parts.uri.path(), &body)
                                .await
                        }
                    };
                    eprintln!(
                        "emulator: {} {}{} -> {}",
                        parts.method,
                        parts.uri.path(),
                        target.map(|t| format!(" {t}")).unwrap_or_default(),
                        resp.status().as_u16()
                    );
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// An S3 client for the emulator: `endpoint` if given (path-style, as local servers
/// need), else the environment's.
pub fn s3_client(conf: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(conf);
    if let Some(url) = endpoint {
        b = b.endpoint_url(url).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Whether a folder holds at least one message to serve.
pub fn has_messages(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_outside_workmails_pattern_are_refused() {
        assert!(valid_message_id("d1234567-8e90-1f23"));
        assert!(!valid_message_id("../etc/passwd"));
        assert!(!valid_message_id("ABC"));
        assert!(!valid_message_id(""));
    }

    #[test]
    fn the_content_rule_check_names_the_violation() {
        let orig = b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n";
        let changed =
            b"From: b@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n";
        let why = content_rule_problem(changed, orig).unwrap();
        assert!(why.contains("field From"), "{why}");
        assert_eq!(content_rule_problem(orig, orig), None);
    }
}

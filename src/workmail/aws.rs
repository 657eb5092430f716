//! The real message store: WorkMail's Message Flow API for the raw message, S3 for the
//! rewrite. Endpoints come from the SDK's standard variables (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW`), so the same binary talks to AWS or to
//! loopback servers in tests.

use crate::edit::Output;
use crate::workmail::store::{MessageSink, MessageSource, StoreError};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_workmailmessageflow::config::http::HttpResponse;
use aws_sdk_workmailmessageflow::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_workmailmessageflow::operation::get_raw_message_content::GetRawMessageContentError;
use aws_sdk_workmailmessageflow::operation::put_raw_message_content::PutRawMessageContentError;
use aws_sdk_workmailmessageflow::types::{RawMessageContent, S3Reference};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where rewritten messages are uploaded: bucket and key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    /// Prefix of every key, `workmail-flow/` by default.
    pub prefix: String,
}

/// The longest key S3Reference accepts.
pub const MAX_KEY_LEN: usize = 1024;

/// Writes `id` into a key segment so that two different ids never give the same
/// segment: WorkMail's own characters (`a-z`, `0-9`, `-`) stand for themselves, and
/// every other byte becomes `X` and two upper-case hex digits (`.` is `X2E`, `A` is
/// `X41`, `/` is `X2F`). Upper case appears only in escapes, so the mapping reads back
/// one way, and a segment never holds a `/` of the id's own.
fn escape_id(id: &str, out: &mut String) {
    for b in id.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("X{b:02X}"));
        }
    }
}

impl Upload {
    pub const DEFAULT_PREFIX: &'static str = "workmail-flow/";

    /// `<prefix><messageId>/<invocationId>`, each id escaped so that every key fits
    /// WorkMail's pattern (`[a-zA-Z0-9-/]`: no dots, no underscores) and different ids
    /// never share a key (see `escape_id`). A key past S3Reference's 1,024 characters
    /// becomes `<prefix>h-<SHA-256 of both ids>`, which no escaped pair can equal (it has
    /// no `/` after the prefix). The same event always gives the same key, so a retry
    /// overwrites rather than duplicates.
    pub fn key(&self, message_id: &str, invocation_id: &str) -> String {
        let mut key = self.prefix.clone();
        escape_id(message_id, &mut key);
        key.push('/');
        escape_id(invocation_id, &mut key);
        if key.len() <= MAX_KEY_LEN {
            return key;
        }
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(message_id.as_bytes());
        h.update([0]);
        h.update(invocation_id.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("{}h-{hex}", self.prefix)
    }
}

/// WorkMail and S3 clients with the upload target.
#[derive(Debug, Clone)]
pub struct AwsStore {
    pub workmail: aws_sdk_workmailmessageflow::Client,
    pub s3: aws_sdk_s3::Client,
    /// `None` when no stage can change a message (nothing is ever uploaded).
    pub upload: Option<Upload>,
    /// Multipart uploads under way, key to upload id, so one the deadline cut can be
    /// aborted ([`MessageSink::abandon`]).
    in_flight: Arc<Mutex<HashMap<String, String>>>,
}

/// The SDK configuration from the environment (credentials, Region, endpoints, retries).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A whole S3 object (a given version when `version` is set); the error names the object.
pub async fn read_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<String>,
) -> Result<Vec<u8>, String> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    let bytes = got
        .body
        .collect()
        .await
        .map_err(|e| format!("cannot read s3://{bucket}/{key}: {e}"))?;
    Ok(bytes.into_bytes().to_vec())
}

/// The message a command gives when the environment names no AWS Region: without one
/// every call fails with an error that reads like a permissions problem.
pub const NO_REGION: &str = "no AWS Region: set AWS_REGION (for a local S3 server any Region works, e.g. AWS_REGION=us-east-1)";

impl AwsStore {
    /// Clients from an SDK config. `WORKMAIL_FLOW_S3_PATH_STYLE=true` forces path-style
    /// S3 addressing, which local S3 servers on `localhost` need (an IP endpoint such as
    /// `http://127.0.0.1:PORT` gets it anyway).
    pub fn new(conf: &SdkConfig, upload: Option<Upload>) -> AwsStore {
        let path_style = std::env::var("WORKMAIL_FLOW_S3_PATH_STYLE")
            .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        let s3_conf = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(path_style)
            .build();
        AwsStore {
            workmail: aws_sdk_workmailmessageflow::Client::new(conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            upload,
            in_flight: Arc::default(),
        }
    }

    /// A store over clients built elsewhere (tests point them at loopback servers).
    pub fn from_clients(
        workmail: aws_sdk_workmailmessageflow::Client,
        s3: aws_sdk_s3::Client,
        upload: Option<Upload>,
    ) -> AwsStore {
        AwsStore {
            workmail,
            s3,
            upload,
            in_flight: Arc::default(),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn abort(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unmodeled(&e))
    }
}

/// Sorts an SDK failure that is not one of the operation's modeled errors: throttling,
/// a 5xx and network faults are transient (the SDK has already retried them).
fn unmodeled<E>(e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("")),
        None => error_chain(e),
    };
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient(text)
        }
        SdkError::ServiceError(_) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            let throttled = e.code().is_some_and(|c| {
                c.contains("Throttl") || c == "TooManyRequestsException" || c == "SlowDown"
            });
            if status >= 500 || status == 429 || throttled {
                StoreError::Transient(text)
            } else {
                StoreError::Other(text)
            }
        }
        _ => StoreError::Other(text),
    }
}

/// An error with its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl MessageSource for AwsStore {
    async fn fetch(&self, message_id: &str) -> Result<Vec<u8>, StoreError> {
        let out = self
            .workmail
            .get_raw_message_content()
            .message_id(message_id)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(GetRawMessageContentError::ResourceNotFoundException(x)) => {
                    StoreError::NotFound(x.message().unwrap_or(message_id).to_string())
                }
                _ => unmodeled(&e),
            })?;
        // Read the body chunk by chunk into one buffer sized from Content-Length:
        // collecting the chunks first and joining them would hold the message twice.
        let mut body = out.message_content;
        let (low, high) = body.size_hint();
        let mut raw = Vec::with_capacity(high.unwrap_or(low) as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            StoreError::Transient(format!("reading the message body: {}", error_chain(&e)))
        })? {
            raw.extend_from_slice(&chunk);
        }
        Ok(raw)
    }
}

/// Above this a rewrite is uploaded in parts of this size, so the function holds one part
/// at a time rather than a second copy of a 40 MB message (S3's parts are 5 MiB at least).
pub const UPLOAD_PART_SIZE: usize = 8 * 1024 * 1024;

impl AwsStore {
    /// Uploads `output` under `key`; returns the object version when the bucket keeps
    /// versions.
    async fn upload_object(
        &self,
        upload: &Upload,
        key: &str,
        output: &Output<'_>,
    ) -> Result<Option<String>, StoreError> {
        if output.len() <= UPLOAD_PART_SIZE {
            let put = self
                .s3
                .put_object()
                .bucket(&upload.bucket)
                .key(key)
                .content_type("message/rfc822")
                .body(ByteStream::from(output.to_vec()))
                .send()
                .await
                .map_err(|e| unmodeled(&e))?;
            return Ok(put.version_id().map(str::to_string));
        }
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&upload.bucket)
            .key(key)
            .content_type("message/rfc822")
            .send()
            .await
            .map_err(|e| unmodeled(&e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Other("S3 gave no multipart upload id".into()))?
            .to_string();
        self.in_flight().insert(key.to_string(), upload_id.clone());
        let result = self.upload_parts(upload, key, &upload_id, output).await;
        self.in_flight().remove(key);
        if let Err(e) = &result {
            // Abort it, or the parts stay stored (and billed) until the bucket's
            // lifecycle rule removes them.
            match self.abort(&upload.bucket, key, &upload_id).await {
                Ok(()) => tracing::info!(error = %e, "aborted the failed multipart upload"),
                Err(a) => {
                    tracing::warn!(error = %a, "could not abort the failed multipart upload; the bucket's lifecycle rule removes it")
                }
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        upload: &Upload,
        key: &str,
        upload_id: &str,
        output: &Output<'_>,
    ) -> Result<Option<String>, StoreError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let mut parts = Vec::new();
        for (i, chunk) in output.chunks(UPLOAD_PART_SIZE).enumerate() {
            let number = i as i32 + 1;
            let done = self
                .s3
                .upload_part()
                .bucket(&upload.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| unmodeled(&e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(done.e_tag().map(str::to_string))
                    .build(),
            );
        }
        let completed = self
            .s3
            .complete_multipart_upload()
            .bucket(&upload.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| unmodeled(&e))?;
        Ok(completed.version_id().map(str::to_string))
    }
}

impl MessageSink for AwsStore {
    async fn replace(
        &self,
        message_id: &str,
        invocation_id: &str,
        output: &Output<'_>,
    ) -> Result<(), StoreError> {
        let upload = self.upload.as_ref().ok_or_else(|| {
            StoreError::Other("no upload bucket configured (WORKMAIL_FLOW_BUCKET)".into())
        })?;
        let key = upload.key(message_id, invocation_id);
        let version = self
            .upload_object(upload, &key, output)
            .await
            .map_err(|err| match err {
                StoreError::Other(t) => StoreError::Other(format!(
                    "uploading to s3://{}/{key}: {t}; check the bucket exists and the role allows s3:PutObject on it",
                    upload.bucket
                )),
                other => other,
            })?;
        let reference = S3Reference::builder()
            .bucket(&upload.bucket)
            .key(&key)
            .set_object_version(version)
            .build()
            .map_err(|e| StoreError::Other(format!("building the S3 reference: {e}")))?;
        self.workmail
            .put_raw_message_content()
            .message_id(message_id)
            .content(RawMessageContent::builder().s3_reference(reference).build())
            .send()
            .await
            .map_err(|e| {
                let msg = |m: Option<&str>| m.unwrap_or("").to_string();
                match e.as_service_error() {
                    Some(PutRawMessageContentError::MessageFrozen(x)) => {
                        StoreError::Frozen(msg(x.message()))
                    }
                    Some(PutRawMessageContentError::MessageRejected(x)) => {
                        StoreError::Rejected(msg(x.message()))
                    }
                    Some(PutRawMessageContentError::InvalidContentLocation(x)) => {
                        StoreError::InvalidContentLocation(msg(x.message()))
                    }
                    Some(PutRawMessageContentError::ResourceNotFoundException(x)) => {
                        StoreError::NotFound(msg(x.message()))
                    }
                    _ => unmodeled(&e),
                }
            })?;
        Ok(())
    }

    async fn abandon(&self, message_id: &str, invocation_id: &str) -> Result<usize, StoreError> {
        let Some(upload) = &self.upload else {
            return Ok(0);
        };
        let key = upload.key(message_id, invocation_id);
        let Some(upload_id) = self.in_flight().remove(&key) else {
            return Ok(0);
        };
        self.abort(&upload.bucket, &key, &upload_id).await?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The S3 key pattern WorkMail accepts: letters, digits, `-` and `/`.
    fn key_char_ok(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-' || c == '/'
    }

    fn upload() -> Upload {
        Upload {
            bucket: "b".into(),
            prefix: Upload::DEFAULT_PREFIX.into(),
        }
    }

    #[test]
    fn keys_follow_workmails_pattern_and_are_stable_for_a_retry() {
        let u = upload();
        let k = u.key("d1234567-8e90-1f23", "0123abc");
        assert_eq!(k, "workmail-flow/d1234567-8e90-1f23/0123abc");
        assert_eq!(k, u.key("d1234567-8e90-1f23", "0123abc"));
        let odd = u.key("d1234567-8e90.x_y", "0123ABC");
        assert!(odd.chars().all(key_char_ok), "{odd}");
        assert_eq!(odd, "workmail-flow/d1234567-8e90X2ExX5Fy/0123X41X42X43");
    }

    #[test]
    fn ids_that_differ_only_in_characters_a_sanitiser_maps_alike_get_different_keys() {
        let u = upload();
        let ids = [
            "m.1", "m_1", "m-1", "m/1", "m 1", "M-1", "m\u{e9}1", "m\u{e8}1", "mX2E1", "m", "m/",
            "",
        ];
        let mut keys = std::collections::HashSet::new();
        for m in ids {
            for i in ["i", "I", "i.", "i_", ""] {
                let k = u.key(m, i);
                assert!(k.chars().all(key_char_ok), "{k}");
                assert!(k.len() <= MAX_KEY_LEN);
                assert!(keys.insert(k.clone()), "{m:?}/{i:?} collides: {k}");
            }
        }
        // A message id and an invocation id never trade characters across the `/`.
        assert_ne!(u.key("a/b", "c"), u.key("a", "b/c"));
    }

    #[test]
    fn a_key_past_1024_characters_becomes_a_hash_that_still_tells_ids_apart() {
        let u = upload();
        let long = ".".repeat(400);
        let a = u.key(&long, "x");
        let b = u.key(&long, "y");
        assert!(
            a.len() <= MAX_KEY_LEN && a.starts_with("workmail-flow/h-"),
            "{a}"
        );
        assert_ne!(a, b);
        assert!(a.chars().all(key_char_ok));
    }
}

//! The real message store: WorkMail's Message Flow API for the raw message, S3 for the
//! rewrite. Endpoints come from the SDK's standard variables (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW`), so the same binary talks to AWS or to
//! loopback servers in tests.

use crate::edit::Output;
use crate::store::{MessageSink, MessageSource, StoreError};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_workmailmessageflow::config::http::HttpResponse;
use aws_sdk_workmailmessageflow::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_workmailmessageflow::operation::get_raw_message_content::GetRawMessageContentError;
use aws_sdk_workmailmessageflow::operation::put_raw_message_content::PutRawMessageContentError;
use aws_sdk_workmailmessageflow::types::{RawMessageContent, S3Reference};

/// Where rewritten messages are uploaded: bucket and key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    /// Prefix of every key, `workmail-flow/` by default.
    pub prefix: String,
}

/// The S3 key pattern WorkMail accepts: letters, digits, `-` and `/`.
fn key_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '/'
}

impl Upload {
    pub const DEFAULT_PREFIX: &'static str = "workmail-flow/";

    /// `<prefix><messageId>/<invocationId>`, with every character WorkMail's key pattern
    /// refuses (`[a-zA-Z0-9-/]` only: no dots, no underscores) replaced by `-`. The same
    /// event always gives the same key, so a retry overwrites rather than duplicates.
    pub fn key(&self, message_id: &str, invocation_id: &str) -> String {
        let raw = format!("{}{message_id}/{invocation_id}", self.prefix);
        raw.chars()
            .map(|c| if key_char_ok(c) { c } else { '-' })
            .collect()
    }
}

/// WorkMail and S3 clients with the upload target.
#[derive(Debug, Clone)]
pub struct AwsStore {
    pub workmail: aws_sdk_workmailmessageflow::Client,
    pub s3: aws_sdk_s3::Client,
    /// `None` when no stage can change a message (nothing is ever uploaded).
    pub upload: Option<Upload>,
}

/// The SDK configuration from the environment (credentials, Region, endpoints, retries).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

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
        }
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
        let result = self.upload_parts(upload, key, &upload_id, output).await;
        if result.is_err() {
            // Best effort: the bucket's lifecycle rule removes abandoned uploads anyway,
            // and the role may not allow s3:AbortMultipartUpload.
            let _ = self
                .s3
                .abort_multipart_upload()
                .bucket(&upload.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_workmails_pattern_and_are_stable_for_a_retry() {
        let u = Upload {
            bucket: "b".into(),
            prefix: Upload::DEFAULT_PREFIX.into(),
        };
        let k = u.key("d1234567-8e90.x_y", "0123abc");
        assert_eq!(k, "workmail-flow/d1234567-8e90-x-y/0123abc");
        assert_eq!(k, u.key("d1234567-8e90.x_y", "0123abc"));
        assert!(k.chars().all(key_char_ok));
    }
}

//! One WorkMail event, end to end: fetch the raw message, run the stages, hand back a
//! change that passes the content rules, and answer with the delivery actions. Every
//! failure has one outcome, decided here and listed in the README:
//!
//! | what happened | outcome |
//! |---|---|
//! | MessageFrozen | deliver as is (DEFAULT), log |
//! | MessageRejected | deliver the original (DEFAULT), log WorkMail's reason |
//! | content rules fail and repair cannot fix them | no upload, no put, DEFAULT, log |
//! | throttling, 5xx, network faults | error result: WorkMail retries the invocation |
//! | ResourceNotFound, InvalidContentLocation, other store errors | error result, logged with what to check |
//! | the deadline would pass | DEFAULT with the message unchanged, log |

use crate::actions::Response;
use crate::event::{Envelope, WorkMailEvent};
use crate::pipeline::{Outcome, Pipeline};
use crate::store::{MessageSink, MessageSource, StoreError};
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

/// WorkMail waits 15 seconds for a synchronous rule's answer.
pub const WORKMAIL_TIMEOUT: Duration = Duration::from_secs(15);
/// Time kept back to serialize and send the answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(1500);

/// Why the invocation returns an error (so WorkMail retries, then applies its fallback).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("fetching message {message_id}: {source}; {hint}")]
    Fetch {
        message_id: String,
        source: StoreError,
        hint: &'static str,
    },
    #[error("putting back message {message_id}: {source}; {hint}")]
    Put {
        message_id: String,
        source: StoreError,
        hint: &'static str,
    },
}

/// What the handler did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing changed; nothing uploaded.
    Unchanged,
    /// The rewrite was stored and accepted.
    Replaced,
    /// The original goes through; the reason.
    Original(String),
    /// The deadline came first; the step that was cut short.
    TimedOut(&'static str),
}

/// The answer and what was done.
#[derive(Debug, Clone)]
pub struct HandlerResult {
    pub response: Response,
    pub delivery: Delivery,
}

/// The point by which the handler must have answered: WorkMail's 15 s from the start and
/// Lambda's own deadline, whichever comes first, less a margin for the answer.
pub fn answer_deadline(start: Instant, lambda_deadline: Option<Instant>) -> Instant {
    let workmail = start + WORKMAIL_TIMEOUT;
    let hard = lambda_deadline.map_or(workmail, |d| d.min(workmail));
    hard.checked_sub(ANSWER_MARGIN).unwrap_or(start)
}

fn hint_for(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound(_) => {
            "WorkMail keeps in-transit messages about a day: check the message is recent and the rule is synchronous"
        }
        StoreError::InvalidContentLocation(_) => {
            "WorkMail could not read the uploaded object: check the bucket policy grants workmail.<region>.amazonaws.com s3:GetObject, and that the bucket is in the function's account and Region"
        }
        StoreError::Transient(_) => "transient; WorkMail will retry the invocation",
        _ => "check the function's role and bucket configuration",
    }
}

/// Handles one event. `deadline` is when the answer must be ready (see
/// [`answer_deadline`]).
pub async fn handle<S>(
    event: &WorkMailEvent,
    pipeline: &Pipeline,
    store: &S,
    deadline: Instant,
) -> Result<HandlerResult, HandlerError>
where
    S: MessageSource + MessageSink,
{
    let id = &event.message_id;
    let deadline = tokio::time::Instant::from_std(deadline);
    let default = |delivery: Delivery| HandlerResult {
        response: Response::default_for_all(),
        delivery,
    };
    let raw = match timeout_at(deadline, store.fetch(id)).await {
        Err(_) => {
            tracing::warn!(message_id = %id, step = "fetch", "deadline reached; delivering unchanged");
            return Ok(default(Delivery::TimedOut("fetch")));
        }
        Ok(Err(source)) => {
            let hint = hint_for(&source);
            tracing::error!(message_id = %id, error = %source, hint, "fetch failed");
            return Err(HandlerError::Fetch {
                message_id: id.clone(),
                source,
                hint,
            });
        }
        Ok(Ok(raw)) => raw,
    };
    let envelope = Envelope::from(event);
    let result = pipeline.run(&raw, &envelope);
    for s in &result.stages {
        tracing::info!(message_id = %id, invocation_id = %event.invocation_id, stage = %s.label, changed = s.report.changed, decisions = %s.report.summary(), "stage");
    }
    let response = result.actions.to_response();
    let with_actions = |delivery: Delivery| HandlerResult {
        response: response.clone(),
        delivery,
    };
    match &result.outcome {
        Outcome::Unchanged => return Ok(with_actions(Delivery::Unchanged)),
        Outcome::KeptOriginal(why) => {
            tracing::warn!(message_id = %id, reason = %why, "keeping the original");
            return Ok(with_actions(Delivery::Original(why.clone())));
        }
        Outcome::Changed => {}
    }
    if tokio::time::Instant::now() >= deadline {
        tracing::warn!(message_id = %id, step = "stages", "deadline reached; delivering unchanged");
        return Ok(default(Delivery::TimedOut("stages")));
    }
    match timeout_at(
        deadline,
        store.replace(id, &event.invocation_id, &result.output),
    )
    .await
    {
        Err(_) => {
            tracing::warn!(message_id = %id, step = "put", "deadline reached; delivering unchanged");
            Ok(default(Delivery::TimedOut("put")))
        }
        Ok(Ok(())) => {
            tracing::info!(message_id = %id, bytes_in = raw.len(), bytes_out = result.output.len(), "replaced");
            Ok(with_actions(Delivery::Replaced))
        }
        Ok(Err(StoreError::Frozen(why))) => {
            tracing::warn!(message_id = %id, reason = %why, "message frozen; delivering as is");
            Ok(with_actions(Delivery::Original(format!("frozen: {why}"))))
        }
        Ok(Err(StoreError::Rejected(why))) => {
            tracing::warn!(message_id = %id, reason = %why, "WorkMail rejected the new content; delivering the original");
            Ok(with_actions(Delivery::Original(format!("rejected: {why}"))))
        }
        Ok(Err(source)) => {
            let hint = hint_for(&source);
            tracing::error!(message_id = %id, error = %source, hint, "put failed");
            Err(HandlerError::Put {
                message_id: id.clone(),
                source,
                hint,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::edit::Output;
    use crate::stage::StageRegistry;
    use std::path::Path;
    use std::sync::Mutex;

    /// An in-memory store whose answers each test sets.
    struct FakeStore {
        message: Result<Vec<u8>, StoreError>,
        put: Result<(), StoreError>,
        delay: Duration,
        replaced: Mutex<Vec<Vec<u8>>>,
    }

    impl FakeStore {
        fn new(message: &[u8]) -> FakeStore {
            FakeStore {
                message: Ok(message.to_vec()),
                put: Ok(()),
                delay: Duration::ZERO,
                replaced: Mutex::new(Vec::new()),
            }
        }
    }

    impl MessageSource for FakeStore {
        async fn fetch(&self, _: &str) -> Result<Vec<u8>, StoreError> {
            tokio::time::sleep(self.delay).await;
            self.message.clone()
        }
    }

    impl MessageSink for FakeStore {
        async fn replace(&self, _: &str, _: &str, output: &Output<'_>) -> Result<(), StoreError> {
            self.put.clone()?;
            self.replaced.lock().unwrap().push(output.to_vec());
            Ok(())
        }
    }

    const MSG: &[u8] =
        b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n";
    const STAMP: &str = "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n";

    fn event() -> WorkMailEvent {
        serde_json::from_str(r#"{"envelope":{"mailFrom":{"address":"a@example.com"},"recipients":[{"address":"b@example.com"}]},"messageId":"m-1","invocationId":"i1","flowDirection":"INBOUND"}"#).unwrap()
    }

    fn pipeline(text: &str) -> Pipeline {
        config::parse(
            text,
            Path::new("t.toml"),
            Path::new("."),
            &StageRegistry::builtin(),
        )
        .unwrap()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn a_changed_message_is_replaced_and_answered_default() {
        let store = FakeStore::new(MSG);
        let r = handle(&event(), &pipeline(STAMP), &store, later())
            .await
            .unwrap();
        assert_eq!(r.delivery, Delivery::Replaced);
        assert_eq!(r.response, Response::default_for_all());
        let replaced = store.replaced.lock().unwrap();
        assert!(String::from_utf8_lossy(&replaced[0]).contains("X-A: 1\r\n"));
    }

    #[tokio::test]
    async fn an_unchanged_message_is_not_put_back() {
        let store = FakeStore::new(MSG);
        let r = handle(&event(), &pipeline(""), &store, later())
            .await
            .unwrap();
        assert_eq!(r.delivery, Delivery::Unchanged);
        assert!(store.replaced.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn frozen_and_rejected_deliver_the_original_with_default() {
        for (err, prefix) in [
            (StoreError::Frozen("redirected".into()), "frozen"),
            (
                StoreError::Rejected("line too long".into()),
                "rejected: line too long",
            ),
        ] {
            let mut store = FakeStore::new(MSG);
            store.put = Err(err);
            let r = handle(&event(), &pipeline(STAMP), &store, later())
                .await
                .unwrap();
            assert!(
                matches!(&r.delivery, Delivery::Original(w) if w.starts_with(prefix)),
                "{:?}",
                r.delivery
            );
            assert_eq!(r.response, Response::default_for_all());
        }
    }

    #[tokio::test]
    async fn not_found_invalid_location_and_transient_errors_are_error_results() {
        let mut store = FakeStore::new(MSG);
        store.message = Err(StoreError::NotFound("m-1".into()));
        let e = handle(&event(), &pipeline(STAMP), &store, later())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("about a day"), "{e}");
        for err in [
            StoreError::InvalidContentLocation("x".into()),
            StoreError::Transient("503".into()),
        ] {
            let mut store = FakeStore::new(MSG);
            store.put = Err(err);
            assert!(
                handle(&event(), &pipeline(STAMP), &store, later())
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn an_unrepairable_change_is_neither_uploaded_nor_put() {
        let long_header = format!(
            "From: a@example.com\r\nX-Long: {}\r\n\r\nbody\r\n",
            "z".repeat(1200)
        );
        let store = FakeStore::new(long_header.as_bytes());
        let r = handle(&event(), &pipeline(STAMP), &store, later())
            .await
            .unwrap();
        assert!(matches!(r.delivery, Delivery::Original(_)));
        assert!(store.replaced.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_slow_fetch_past_the_deadline_answers_default_unchanged() {
        let mut store = FakeStore::new(MSG);
        store.delay = Duration::from_millis(500);
        let deadline = Instant::now() + Duration::from_millis(50);
        let r = handle(&event(), &pipeline(STAMP), &store, deadline)
            .await
            .unwrap();
        assert_eq!(r.delivery, Delivery::TimedOut("fetch"));
        assert!(store.replaced.lock().unwrap().is_empty());
    }

    #[test]
    fn the_answer_deadline_keeps_a_margin_before_workmail_and_lambda_deadlines() {
        let start = Instant::now();
        assert_eq!(
            answer_deadline(start, None),
            start + WORKMAIL_TIMEOUT - ANSWER_MARGIN
        );
        let lambda = start + Duration::from_secs(5);
        assert_eq!(answer_deadline(start, Some(lambda)), lambda - ANSWER_MARGIN);
    }
}

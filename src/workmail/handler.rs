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
//! | the deadline passes while fetching, running the stages or putting back | DEFAULT with the message unchanged (security stages fail closed), log the step cut |
//! | a directory lookup fails or runs past the deadline, `on_error = "retry"` (the default) | error result: WorkMail retries the invocation |
//! | the same, `on_error = "skip"` | the stages run without directory data, log why |

use crate::actions::Response;
use crate::edit::{Output, OutputPlan};
use crate::pipeline::{Outcome, Pipeline, Progress, RunOf};
use crate::workmail::directory::{CachedDirectory, DirectoryError};
use crate::workmail::event::{Envelope, WorkMailEvent};
use crate::workmail::redact;
use crate::workmail::store::{MessageSink, MessageSource, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout_at;
use tracing::Instrument;
use workmail_flow_core::envelope::DirectoryView;

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
    #[error(
        "looking up the people of message {message_id}: {source}; the config says on_error = \"retry\", so WorkMail retries"
    )]
    Directory {
        message_id: String,
        source: DirectoryError,
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
    /// The deadline came first; the step that was cut short (`fetch`, `put`, or the
    /// stage that was running).
    TimedOut(String),
}

/// The answer and what was done.
#[derive(Debug, Clone)]
pub struct HandlerResult {
    pub response: Response,
    pub delivery: Delivery,
    /// The message's size as fetched (0 when it never arrived).
    pub size: usize,
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
    pipeline: &Arc<Pipeline>,
    store: &S,
    deadline: Instant,
) -> Result<HandlerResult, HandlerError>
where
    S: MessageSource + MessageSink,
{
    handle_with(event, pipeline, store, None, deadline).await
}

/// [`handle`], with the directory the stages' templates and conditions read (looked up
/// after the fetch, before the stages run).
pub async fn handle_with<S>(
    event: &WorkMailEvent,
    pipeline: &Arc<Pipeline>,
    store: &S,
    directory: Option<&CachedDirectory>,
    deadline: Instant,
) -> Result<HandlerResult, HandlerError>
where
    S: MessageSource + MessageSink,
{
    let span = tracing::info_span!(
        "message",
        message_id = %event.message_id,
        invocation_id = %event.invocation_id,
        direction = event.flow_direction.as_str(),
    );
    handle_in_span(event, pipeline, store, directory, deadline)
        .instrument(span)
        .await
}

/// The directory's answers for this message, or the error that makes WorkMail retry.
async fn look_up_people(
    event: &WorkMailEvent,
    pipeline: &Pipeline,
    directory: Option<&CachedDirectory>,
    raw: &[u8],
    envelope: &Envelope,
    deadline: tokio::time::Instant,
) -> Result<DirectoryView, HandlerError> {
    crate::workmail::directory::view_by(pipeline, directory, raw, envelope, deadline)
        .await
        .map_err(|source| HandlerError::Directory {
            message_id: event.message_id.clone(),
            source,
        })
}

async fn handle_in_span<S>(
    event: &WorkMailEvent,
    pipeline: &Arc<Pipeline>,
    store: &S,
    directory: Option<&CachedDirectory>,
    deadline: Instant,
) -> Result<HandlerResult, HandlerError>
where
    S: MessageSource + MessageSink,
{
    let started = Instant::now();
    let id = &event.message_id;
    let deadline = tokio::time::Instant::from_std(deadline);
    let full = pipeline.log_addresses;
    tracing::info!(
        sender = %event.envelope.mail_from.as_ref().map(|a| redact::address(&a.address, full)).unwrap_or_default(),
        recipients = event.envelope.recipients.len(),
        recipient_list = %redact::addresses(&event.envelope.recipients.iter().map(|a| a.address.clone()).collect::<Vec<_>>(), full),
        truncated = event.truncated,
        "received"
    );
    let mut size = 0;
    let default = |delivery: Delivery, size: usize| HandlerResult {
        response: Response::default_for_all(),
        delivery,
        size,
    };
    let raw = match timeout_at(deadline, store.fetch(id)).await {
        Err(_) => {
            tracing::warn!(step = "fetch", "deadline reached; delivering unchanged");
            return Ok(default(Delivery::TimedOut("fetch".into()), size));
        }
        Ok(Err(source)) => {
            let hint = hint_for(&source);
            tracing::error!(error = %source, hint, "fetch failed");
            return Err(HandlerError::Fetch {
                message_id: id.clone(),
                source,
                hint,
            });
        }
        Ok(Ok(raw)) => raw,
    };
    size = raw.len();
    tracing::info!(
        bytes_in = size,
        fetch_ms = started.elapsed().as_millis() as u64,
        "fetched"
    );
    let mut envelope = Envelope::from(event);
    envelope.directory =
        look_up_people(event, pipeline, directory, &raw, &envelope, deadline).await?;
    let (raw, planned) = match run_by(deadline, pipeline, raw, envelope).await {
        Ok(ran) => ran,
        Err((cut, timed_out)) => {
            for why in &cut.fail_closed {
                tracing::warn!(reason = %why, "the rewrite is not delivered; failing closed");
            }
            let delivery = if timed_out {
                tracing::warn!(step = %cut.step, "deadline reached; delivering unchanged");
                Delivery::TimedOut(cut.step)
            } else {
                Delivery::Original(format!("the stages failed during {}", cut.step))
            };
            let (answer, fitted) = cut.answer.fit(&Envelope::from(event));
            for note in &fitted {
                tracing::warn!(note = %note, "response fitted to WorkMail's limits");
            }
            return Ok(HandlerResult {
                response: answer.to_response(),
                delivery,
                size,
            });
        }
    };
    let result = planned.map_output(|plan| plan.into_output(&raw));
    log_decisions(&result);
    for note in &result.fitted {
        tracing::warn!(note = %note, "response fitted to WorkMail's limits");
    }
    let response = result.actions.to_response();
    let with_actions = |delivery: Delivery| HandlerResult {
        response: response.clone(),
        delivery,
        size,
    };
    // When the rewrite does not reach the recipients after all, a security stage whose
    // change is lost fails closed (see RunResult::fallback).
    let fallback = result.fallback.to_response();
    let with_fallback = |delivery: Delivery| {
        for why in &result.fail_closed {
            tracing::warn!(reason = %why, "the rewrite is not delivered; failing closed");
        }
        HandlerResult {
            response: fallback.clone(),
            delivery,
            size,
        }
    };
    match &result.outcome {
        Outcome::Unchanged => {
            tracing::info!(
                outcome = "unchanged",
                total_ms = started.elapsed().as_millis() as u64,
                "done"
            );
            return Ok(with_actions(Delivery::Unchanged));
        }
        Outcome::NotAMessage(why) => {
            tracing::warn!(outcome = "not a message", reason = %why, "done");
            return Ok(with_actions(Delivery::Original(format!(
                "not a message: {why}"
            ))));
        }
        Outcome::KeptOriginal(why) => {
            for f in &result.fail_closed {
                tracing::warn!(reason = %f, "the rewrite is not delivered; failing closed");
            }
            tracing::warn!(outcome = "kept original", reason = %why, total_ms = started.elapsed().as_millis() as u64, "done");
            return Ok(with_actions(Delivery::Original(why.clone())));
        }
        Outcome::Changed => {}
    }
    if tokio::time::Instant::now() >= deadline {
        tracing::warn!(step = "stages", "deadline reached; delivering unchanged");
        return Ok(with_fallback(Delivery::TimedOut("stages".into())));
    }
    match timeout_at(
        deadline,
        store.replace(id, &event.invocation_id, &result.output),
    )
    .await
    {
        Err(_) => {
            tracing::warn!(step = "put", "deadline reached; delivering unchanged");
            // The cut upload must not stay behind as an incomplete multipart upload.
            abandon_by(deadline, store, id, &event.invocation_id).await;
            Ok(with_fallback(Delivery::TimedOut("put".into())))
        }
        Ok(Ok(())) => {
            tracing::info!(
                outcome = "changed",
                bytes_in = size,
                bytes_out = result.output.len(),
                total_ms = started.elapsed().as_millis() as u64,
                "done"
            );
            Ok(with_actions(Delivery::Replaced))
        }
        Ok(Err(StoreError::Frozen(why))) => {
            tracing::warn!(reason = %why, "message frozen; delivering as is");
            Ok(with_fallback(Delivery::Original(format!("frozen: {why}"))))
        }
        Ok(Err(StoreError::Rejected(why))) => {
            tracing::warn!(reason = %why, "WorkMail rejected the new content; delivering the original");
            Ok(with_fallback(Delivery::Original(format!(
                "rejected: {why}"
            ))))
        }
        Ok(Err(source)) => {
            let hint = hint_for(&source);
            tracing::error!(error = %source, hint, "put failed");
            Err(HandlerError::Put {
                message_id: id.clone(),
                source,
                hint,
            })
        }
    }
}

/// The time the answer margin leaves for cleaning up a cut upload.
const ABANDON_BUDGET: Duration = Duration::from_millis(1000);

/// Asks the store to remove what a cut `replace` left behind, within the answer margin.
async fn abandon_by<S: MessageSink>(
    deadline: tokio::time::Instant,
    store: &S,
    message_id: &str,
    invocation_id: &str,
) {
    let by = deadline.max(tokio::time::Instant::now()) + ABANDON_BUDGET;
    match timeout_at(by, store.abandon(message_id, invocation_id)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(aborted = n, "aborted the cut upload"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not abort the cut upload; the bucket's lifecycle rule removes it")
        }
        Err(_) => tracing::warn!(
            "aborting the cut upload took too long; the bucket's lifecycle rule removes it"
        ),
    }
}

/// Every decision of a run, for the logs: each stage's, the repairs, the ambiguities.
/// Shared by every transport, so a message's log reads the same wherever it came from.
pub(crate) fn log_decisions<O>(result: &RunOf<O>) {
    for s in &result.stages {
        tracing::info!(
            stage = %s.label,
            changed = s.report.changed,
            decisions = %s.report.summary(),
            duration_us = s.duration.as_micros() as u64,
            "stage"
        );
    }
    for r in &result.repairs {
        tracing::info!(repair = %r, "repaired");
    }
    if !result.findings.is_empty() {
        tracing::info!(findings = %result.findings.join("; "), "ambiguous");
    }
}

/// Runs the stages on a thread of their own and waits for them until `deadline`. Stages
/// are synchronous and may be slow (a custom stage calling out, a pathological message),
/// so the answer cannot wait on them: past the deadline this returns what to answer
/// instead ([`Progress`]) with `true`, and the thread's result, when it comes, is
/// dropped; `false` when the thread failed. The thread owns the message, and hands it
/// back with a result that does not borrow it.
pub(crate) async fn run_by(
    deadline: tokio::time::Instant,
    pipeline: &Arc<Pipeline>,
    raw: Vec<u8>,
    envelope: Envelope,
) -> Result<(Vec<u8>, RunOf<OutputPlan>), (crate::pipeline::CutShort, bool)> {
    let progress = Arc::new(Progress::default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pipeline = Arc::clone(pipeline);
    let watch = Arc::clone(&progress);
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new()
        .name("stages".into())
        // As much stack as a main thread has: parsing is iterative, but custom stages
        // may not be.
        .stack_size(8 * 1024 * 1024)
        .spawn(move || {
            let _in_span = span.enter();
            let result = pipeline
                .run_watched(&raw, &envelope, &watch)
                .map_output(Output::into_plan);
            let _ = tx.send((raw, result));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a thread for the stages");
        let mut cut = progress.snapshot();
        cut.step = "starting the stages".into();
        return Err((cut, false));
    }
    match timeout_at(deadline, rx).await {
        Ok(Ok(ran)) => Ok(ran),
        // The thread ended without an answer: something outside a stage panicked.
        Ok(Err(_)) => {
            let cut = progress.snapshot();
            tracing::error!(step = %cut.step, "the stages' thread stopped without a result");
            Err((cut, false))
        }
        Err(_) => Err((progress.snapshot(), true)),
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

    fn pipeline(text: &str) -> Arc<Pipeline> {
        Arc::new(
            config::parse(
                text,
                Path::new("t.toml"),
                Path::new("."),
                &StageRegistry::builtin(),
            )
            .unwrap(),
        )
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// A directory that answers from a list, or fails every lookup.
    struct FakeDirectory {
        down: bool,
    }

    impl crate::workmail::directory::Directory for FakeDirectory {
        fn lookup<'a>(&'a self, address: &'a str) -> crate::workmail::directory::Lookup<'a> {
            Box::pin(async move {
                if self.down {
                    return Err(DirectoryError::new(
                        "WorkMail DescribeEntity failed: ThrottlingException",
                    ));
                }
                Ok(
                    (address == "a@example.com").then(|| workmail_flow_core::envelope::Person {
                        email: address.into(),
                        attributes: [("job_title".to_string(), "CFO".to_string())].into(),
                        groups: vec!["finance".into()],
                        ..Default::default()
                    }),
                )
            })
        }
    }

    fn directory_flow(on_error: &str) -> Arc<Pipeline> {
        pipeline(&format!(
            "[directory]\nsource = \"file\"\npath = \"unused.toml\"\non_error = \"{on_error}\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-Finance\"\nvalue = \"yes\"\nwhen = {{ sender_group = \"finance\" }}\n"
        ))
    }

    fn cached(down: bool, pipeline: &Pipeline) -> CachedDirectory {
        CachedDirectory::new(
            Arc::new(FakeDirectory { down }),
            pipeline.directory.as_ref().unwrap(),
        )
    }

    #[tokio::test]
    async fn the_directory_is_looked_up_before_the_stages_and_a_group_condition_holds() {
        let p = directory_flow("retry");
        let store = FakeStore::new(MSG);
        let dir = cached(false, &p);
        let r = handle_with(&event(), &p, &store, Some(&dir), later())
            .await
            .unwrap();
        assert_eq!(r.delivery, Delivery::Replaced);
        let replaced = store.replaced.lock().unwrap();
        assert!(String::from_utf8_lossy(&replaced[0]).contains("X-Finance: yes\r\n"));
    }

    #[tokio::test]
    async fn a_failed_lookup_with_on_error_retry_is_an_error_result_so_workmail_retries() {
        let p = directory_flow("retry");
        let store = FakeStore::new(MSG);
        let dir = cached(true, &p);
        let e = handle_with(&event(), &p, &store, Some(&dir), later())
            .await
            .unwrap_err();
        assert!(matches!(e, HandlerError::Directory { .. }), "{e}");
        assert!(e.to_string().contains("ThrottlingException"), "{e}");
        assert!(
            store.replaced.lock().unwrap().is_empty(),
            "nothing put back"
        );
    }

    #[tokio::test]
    async fn a_failed_lookup_with_on_error_skip_runs_the_stages_without_the_directory() {
        let p = directory_flow("skip");
        let store = FakeStore::new(MSG);
        let dir = cached(true, &p);
        let r = handle_with(&event(), &p, &store, Some(&dir), later())
            .await
            .unwrap();
        assert_eq!(
            r.delivery,
            Delivery::Unchanged,
            "the group condition matched no one"
        );
        assert_eq!(r.response, Response::default_for_all());
    }

    #[tokio::test]
    async fn a_flow_that_reads_no_directory_asks_nothing() {
        let p = pipeline(STAMP);
        let store = FakeStore::new(MSG);
        let mut settings = workmail_flow_core::config::DirectorySettings::file("x".into());
        settings.on_error = workmail_flow_core::config::OnError::Retry;
        let down = CachedDirectory::new(Arc::new(FakeDirectory { down: true }), &settings);
        let r = handle_with(&event(), &p, &store, Some(&down), later())
            .await
            .unwrap();
        assert_eq!(
            r.delivery,
            Delivery::Replaced,
            "a down directory is never asked"
        );
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

    /// A custom stage that takes far longer than any deadline, and (as a security stage
    /// would) asks to fail closed with `on_failure` when set.
    struct Slow {
        for_: Duration,
        fail_closed: Option<crate::actions::Action>,
    }

    impl crate::stage::Stage for Slow {
        fn run(
            &self,
            _: &crate::mime_tree::MimeTree<'_>,
            cx: &mut crate::stage::StageContext<'_>,
        ) -> crate::stage::StageReport {
            std::thread::sleep(self.for_);
            cx.edits.header(
                0,
                crate::edit::HeaderOp::Add {
                    name: "X-Slow".into(),
                    value: "1".into(),
                },
            );
            crate::stage::StageReport::changed("added X-Slow")
        }

        fn on_failure(
            &self,
            _: &crate::mime_tree::MimeTree<'_>,
            _: &crate::stage::StageContext<'_>,
        ) -> Option<crate::actions::Action> {
            self.fail_closed.clone()
        }
    }

    fn slow_after(first: &str, fail_closed: Option<crate::actions::Action>) -> Arc<Pipeline> {
        let mut stages: Vec<(String, Box<dyn crate::stage::Stage>)> = Vec::new();
        if !first.is_empty() {
            let table: toml::Table = first.parse().unwrap();
            let mut keys = crate::stage::StageKeys::new(table, Path::new("."));
            stages.push((
                "verdict".into(),
                crate::stages::verdict::build(&mut keys).unwrap(),
            ));
        }
        stages.push((
            "slow".into(),
            Box::new(Slow {
                for_: Duration::from_secs(5),
                fail_closed,
            }),
        ));
        Arc::new(Pipeline::from_stages(stages))
    }

    #[tokio::test]
    async fn a_slow_stage_cannot_hold_the_answer_past_the_deadline() {
        let store = FakeStore::new(MSG);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let r = handle(&event(), &slow_after("", None), &store, deadline)
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(r.delivery, Delivery::TimedOut("stage 1 (slow)".into()));
        assert_eq!(r.response, Response::default_for_all());
        assert!(
            store.replaced.lock().unwrap().is_empty(),
            "nothing put back"
        );
    }

    fn build_slow(
        _: &mut crate::stage::StageKeys,
    ) -> Result<Box<dyn crate::stage::Stage>, crate::stage::KeyError> {
        Ok(Box::new(Slow {
            for_: Duration::from_secs(5),
            fail_closed: None,
        }))
    }

    #[tokio::test]
    async fn a_run_cut_before_a_security_stage_ran_fails_closed_for_it() {
        let mut registry = StageRegistry::builtin();
        registry.register("slow", build_slow);
        let text = "[[stage]]\ntype = \"slow\"\n[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\non_unstrippable = \"drop\"\n[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\nwhen = { direction = \"outbound\" }\n";
        let p =
            Arc::new(config::parse(text, Path::new("t.toml"), Path::new("."), &registry).unwrap());
        let store = FakeStore::new(MSG);
        let deadline = Instant::now() + Duration::from_millis(300);
        let r = handle(&event(), &p, &store, deadline).await.unwrap();
        assert_eq!(r.delivery, Delivery::TimedOut("stage 1 (slow)".into()));
        let json = serde_json::to_string(&r.response).unwrap();
        // Stage 2 never ran: it fails closed. Stage 3's conditions do not hold (the
        // event is inbound), so its bounce does not apply.
        assert_eq!(
            json,
            r#"{"actions":[{"action":{"type":"DROP"},"allRecipients":true}]}"#
        );
    }

    #[tokio::test]
    async fn a_cut_run_keeps_earlier_verdicts_and_a_cut_security_stage_fails_closed() {
        let store = FakeStore::new(MSG);
        let deadline = Instant::now() + Duration::from_millis(300);
        let r = handle(
            &event(),
            &slow_after("action = \"move_to_junk\"\n", None),
            &store,
            deadline,
        )
        .await
        .unwrap();
        assert_eq!(r.delivery, Delivery::TimedOut("stage 2 (slow)".into()));
        let json = serde_json::to_string(&r.response).unwrap();
        assert!(json.contains("MOVE_TO_JUNK"), "{json}");

        let deadline = Instant::now() + Duration::from_millis(300);
        let r = handle(
            &event(),
            &slow_after("", Some(crate::actions::Action::Drop)),
            &store,
            deadline,
        )
        .await
        .unwrap();
        let json = serde_json::to_string(&r.response).unwrap();
        assert!(json.contains("\"DROP\""), "{json}");
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
    async fn a_stripped_rewrite_that_is_frozen_or_rejected_fails_closed_with_a_bounce() {
        let raw = b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream; name=a.exe\r\n\r\nMZ\r\n--B--\r\n";
        let strip = "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n";
        for err in [
            StoreError::Frozen("redirected".into()),
            StoreError::Rejected("no".into()),
        ] {
            let mut store = FakeStore::new(raw);
            store.put = Err(err);
            let r = handle(&event(), &pipeline(strip), &store, later())
                .await
                .unwrap();
            assert!(
                matches!(r.delivery, Delivery::Original(_)),
                "{:?}",
                r.delivery
            );
            let json = serde_json::to_string(&r.response).unwrap();
            assert!(json.contains("\"BOUNCE\""), "{json}");
        }
        // With on_unstrippable = deliver, the original goes on as before.
        let deliver = format!("{strip}on_unstrippable = \"deliver\"\n");
        let mut store = FakeStore::new(raw);
        store.put = Err(StoreError::Rejected("no".into()));
        let r = handle(&event(), &pipeline(&deliver), &store, later())
            .await
            .unwrap();
        assert_eq!(r.response, Response::default_for_all());
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
        assert_eq!(r.delivery, Delivery::TimedOut("fetch".into()));
        assert!(store.replaced.lock().unwrap().is_empty());
    }

    /// Collects what the handler logs (JSON, as in Lambda) while it handles one event.
    fn logs_of(pipeline: &Arc<Pipeline>, raw: &[u8]) -> String {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        let store = FakeStore::new(raw);
        tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(handle(&event(), pipeline, &store, later()))
                .unwrap();
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn logs_carry_decisions_ids_and_sizes_but_no_body_text_or_full_address_by_default() {
        let raw = b"From: a@example.com\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nSECRET-BODY-TEXT\r\n";
        let logs = logs_of(&pipeline(STAMP), raw);
        assert!(logs.contains("\"message_id\":\"m-1\""), "{logs}");
        assert!(logs.contains("\"invocation_id\":\"i1\""), "{logs}");
        assert!(logs.contains("\"direction\":\"inbound\""), "{logs}");
        assert!(
            logs.contains("added X-A"),
            "a record per stage decision: {logs}"
        );
        assert!(logs.contains("\"bytes_in\":"), "{logs}");
        assert!(!logs.contains("SECRET-BODY-TEXT"), "{logs}");
        assert!(!logs.contains("a@example.com"), "{logs}");
        assert!(!logs.contains("b@example.com"), "{logs}");
        assert!(logs.contains("@example.com"), "domains stay: {logs}");
    }

    #[test]
    fn logs_list_the_ambiguities_and_why_a_lost_strip_fails_closed() {
        // Two Content-Type fields (an ambiguity) and an .exe stripped from a message
        // whose header line over 998 bytes keeps the rewrite back.
        let raw = format!(
            "From: a@example.com\r\nX-Long: {}\r\nContent-Type: multipart/mixed; boundary=B\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
            "z".repeat(1200)
        );
        let strip = "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n";
        let logs = logs_of(&pipeline(strip), raw.as_bytes());
        assert!(logs.contains("\"message\":\"ambiguous\""), "{logs}");
        assert!(logs.contains("Content-Type appears twice"), "{logs}");
        assert!(logs.contains("failing closed"), "{logs}");
        assert!(
            !logs.contains("a.exe"),
            "names are the sender's data: {logs}"
        );
    }

    #[test]
    fn log_addresses_true_shows_envelope_addresses() {
        let mut p = pipeline(STAMP);
        Arc::get_mut(&mut p).unwrap().log_addresses = true;
        let logs = logs_of(&p, MSG);
        assert!(
            logs.contains("a@example.com") && logs.contains("b@example.com"),
            "{logs}"
        );
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

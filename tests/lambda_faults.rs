//! The Lambda's path under faults, end to end with the real AWS SDK against servers on
//! 127.0.0.1: moto as S3 (behind a fault hop where S3 itself must fail) and the Message
//! Flow emulator as WorkMail (with its `.put-*` fault files). Each test provokes one row
//! of the README's failure table and checks the answer WorkMail gets, what was stored
//! and what was put back.

mod common;

use common::s3_faults::{Fault, Op, S3Faults};
use common::world::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workmail_flow::actions::{Action, Response};
use workmail_flow::handler::{self, Delivery};
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::pipeline::Pipeline;
use workmail_flow::stage::{Stage, StageContext, StageReport};
use workmail_flow::store::MessageSink;

/// A custom stage far slower than any deadline (it stands for one calling out, or a
/// pathological message); `fail_closed` is what it asks for if it cannot finish.
struct Slow {
    fail_closed: Option<Action>,
}

impl Stage for Slow {
    fn run(&self, _: &MimeTree<'_>, cx: &mut StageContext<'_>) -> StageReport {
        std::thread::sleep(Duration::from_secs(5));
        cx.edits.header(
            0,
            workmail_flow::edit::HeaderOp::Add {
                name: "X-Slow".into(),
                value: "1".into(),
            },
        );
        StageReport::changed("added X-Slow")
    }

    fn on_failure(&self, _: &MimeTree<'_>, _: &StageContext<'_>) -> Option<Action> {
        self.fail_closed.clone()
    }
}

const WITH_EXE: &[u8] = b"From: Alice <alice@partner.example>\r\nTo: bob@corp.example\r\nSubject: Q3\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nMessage-ID: <q3@partner.example>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream; name=a.exe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--B--\r\n";
const STRIP: &str = "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n";

fn json(r: &Response) -> String {
    serde_json::to_string(r).unwrap()
}

#[tokio::test]
async fn a_slow_custom_stage_is_cut_at_the_deadline_and_nothing_is_uploaded_or_put() {
    let w = World::start("slow-stage").await;
    w.message("msg-slow", MSG);
    let pipeline = Arc::new(Pipeline::from_stages(vec![(
        "slow".into(),
        Box::new(Slow { fail_closed: None }),
    )]));
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    let r = handler::handle(&event("msg-slow"), &pipeline, &w.store(), deadline)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered after {:?}, the stage takes 5 s",
        started.elapsed()
    );
    assert_eq!(r.delivery, Delivery::TimedOut("stage 1 (slow)".into()));
    assert_eq!(r.response, Response::default_for_all());
    assert!(w.object_keys().await.is_empty());
    assert!(w.updated("msg-slow").is_none());

    // A slow security stage fails closed as it asks.
    let pipeline = Arc::new(Pipeline::from_stages(vec![(
        "slow".into(),
        Box::new(Slow {
            fail_closed: Some(Action::Drop),
        }),
    )]));
    let deadline = Instant::now() + Duration::from_millis(500);
    let r = handler::handle(&event("msg-slow"), &pipeline, &w.store(), deadline)
        .await
        .unwrap();
    assert!(
        json(&r.response).contains("\"DROP\""),
        "{}",
        json(&r.response)
    );
}

#[tokio::test]
async fn a_put_that_times_out_after_the_upload_answers_default_and_a_strip_fails_closed() {
    let w = World::start("put-timeout").await;
    w.message("msg-pt", MSG);
    w.fault("msg-pt", "put-delay-ms", "4000");
    let deadline = Instant::now() + Duration::from_millis(1500);
    let r = handler::handle(&event("msg-pt"), &pipeline(STAMP), &w.store(), deadline)
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::TimedOut("put".into()));
    assert_eq!(r.response, Response::default_for_all());
    assert_eq!(w.object_keys().await.len(), 1, "the upload had succeeded");

    w.message("msg-pts", WITH_EXE);
    w.fault("msg-pts", "put-delay-ms", "4000");
    let deadline = Instant::now() + Duration::from_millis(1500);
    let r = handler::handle(&event("msg-pts"), &pipeline(STRIP), &w.store(), deadline)
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::TimedOut("put".into()));
    assert!(
        json(&r.response).contains("\"BOUNCE\""),
        "{}",
        json(&r.response)
    );
}

#[tokio::test]
async fn a_put_throttled_past_the_retries_is_an_error_result_and_the_retry_writes_the_same_key() {
    let w = World::start("put-throttle").await;
    w.message("msg-ptt", MSG);
    w.fault("msg-ptt", "put-throttle", "3");
    let e = handler::handle(&event("msg-ptt"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("transient"), "{e}");
    assert!(w.updated("msg-ptt").is_none());
    let keys = w.object_keys().await;
    assert_eq!(keys.len(), 1);
    // WorkMail retries the invocation: the same key, now accepted.
    let r = handler::handle(&event("msg-ptt"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    assert_eq!(w.object_keys().await, keys);
    assert!(w.updated("msg-ptt").is_some());
}

#[tokio::test]
async fn a_put_unavailable_once_is_retried_by_the_sdk_and_accepted() {
    let w = World::start("put-503").await;
    w.message("msg-pu", MSG);
    w.fault("msg-pu", "put-unavailable", "1");
    let r = handler::handle(&event("msg-pu"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    // Past the retries it is an error result.
    w.message("msg-pu2", MSG);
    w.fault("msg-pu2", "put-unavailable", "3");
    let e = handler::handle(&event("msg-pu2"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("transient"), "{e}");
}

#[tokio::test]
async fn s3_access_denied_on_the_upload_is_an_error_result_naming_the_permission() {
    let w = World::start("s3-denied").await;
    let hop = S3Faults::start(&w.moto_url).await;
    hop.inject(
        Op::PutObject,
        Fault::Error {
            status: 403,
            code: "AccessDenied",
        },
        10,
    );
    w.message("msg-ad", MSG);
    let e = handler::handle(
        &event("msg-ad"),
        &pipeline(STAMP),
        &w.store_via(&hop.url),
        soon(),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("AccessDenied") && text.contains("s3:PutObject"),
        "{text}"
    );
    assert!(w.updated("msg-ad").is_none(), "nothing put back");
    assert_eq!(
        hop.seen().iter().filter(|o| **o == Op::PutObject).count(),
        1,
        "access denied is not retried"
    );
}

#[tokio::test]
async fn an_s3_5xx_past_the_retries_is_a_transient_error_result() {
    let w = World::start("s3-500").await;
    let hop = S3Faults::start(&w.moto_url).await;
    hop.inject(
        Op::PutObject,
        Fault::Error {
            status: 500,
            code: "InternalError",
        },
        3,
    );
    w.message("msg-5xx", MSG);
    let e = handler::handle(
        &event("msg-5xx"),
        &pipeline(STAMP),
        &w.store_via(&hop.url),
        soon(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("transient"), "{e}");
    assert!(w.updated("msg-5xx").is_none());
    // One 5xx is retried by the SDK and the rewrite goes through.
    hop.inject(
        Op::PutObject,
        Fault::Error {
            status: 503,
            code: "SlowDown",
        },
        1,
    );
    let r = handler::handle(
        &event("msg-5xx"),
        &pipeline(STAMP),
        &w.store_via(&hop.url),
        soon(),
    )
    .await
    .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
}

/// A message over the part size, so its rewrite is uploaded in parts.
fn large() -> Vec<u8> {
    let mut raw = MSG.to_vec();
    raw.truncate(raw.len() - "Numbers attached.\r\n".len());
    for i in 0..(workmail_flow::aws::UPLOAD_PART_SIZE / 50) {
        raw.extend_from_slice(
            format!("line {i:08} of a long plain text body, to pass the part size.\r\n").as_bytes(),
        );
    }
    assert!(raw.len() > workmail_flow::aws::UPLOAD_PART_SIZE);
    raw
}

#[tokio::test]
async fn a_failing_upload_part_aborts_the_multipart_upload_and_is_an_error_result() {
    let w = World::start("part-fails").await;
    let hop = S3Faults::start(&w.moto_url).await;
    hop.inject(
        Op::UploadPart,
        Fault::Error {
            status: 500,
            code: "InternalError",
        },
        3,
    );
    w.message("msg-part", &large());
    let e = handler::handle(
        &event("msg-part"),
        &pipeline(STAMP),
        &w.store_via(&hop.url),
        soon(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("transient"), "{e}");
    assert!(
        hop.seen().contains(&Op::AbortMultipartUpload),
        "{:?}",
        hop.seen()
    );
    assert_eq!(w.open_multipart_uploads().await, 0, "no orphaned upload");
    assert!(w.updated("msg-part").is_none());
}

#[tokio::test]
async fn a_multipart_upload_cut_by_the_deadline_is_aborted() {
    let w = World::start("part-slow").await;
    let hop = S3Faults::start(&w.moto_url).await;
    hop.inject(Op::UploadPart, Fault::Delay(Duration::from_secs(4)), 1);
    w.message("msg-cut", &large());
    let deadline = Instant::now() + Duration::from_millis(2000);
    let store = w.store_via(&hop.url);
    let r = handler::handle(&event("msg-cut"), &pipeline(STAMP), &store, deadline)
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::TimedOut("put".into()));
    assert_eq!(r.response, Response::default_for_all());
    assert!(
        hop.seen().contains(&Op::AbortMultipartUpload),
        "{:?}",
        hop.seen()
    );
    assert_eq!(w.open_multipart_uploads().await, 0, "no orphaned upload");
    // Nothing is left to abandon afterwards.
    assert_eq!(
        store
            .abandon("msg-cut", "0123456789abcdef0123456789abcdef")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn invocation_ids_that_differ_only_in_characters_a_sanitiser_maps_alike_get_their_own_objects()
 {
    let w = World::start("keys").await;
    w.message("msg-k", MSG);
    let store = w.store();
    let output = workmail_flow::edit::Output::unchanged(MSG);
    for inv in ["inv.1", "inv_1", "inv-1", "INV-1"] {
        store.replace("msg-k", inv, &output).await.unwrap();
    }
    let mut keys = w.object_keys().await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "workmail-flow/msg-k/X49X4EX56-1",
            "workmail-flow/msg-k/inv-1",
            "workmail-flow/msg-k/invX2E1",
            "workmail-flow/msg-k/invX5F1",
        ]
    );
}

fn event_with(
    id: &str,
    direction: &str,
    recipients: &[String],
    truncated: bool,
) -> workmail_flow::event::WorkMailEvent {
    let list: Vec<_> = recipients
        .iter()
        .map(|r| serde_json::json!({ "address": r }))
        .collect();
    serde_json::from_value(serde_json::json!({
        "envelope": { "mailFrom": { "address": "alice@corp.example" }, "recipients": list },
        "messageId": id,
        "invocationId": "0123456789abcdef0123456789abcdef",
        "flowDirection": direction,
        "truncated": truncated
    }))
    .unwrap()
}

#[tokio::test]
async fn responses_for_big_and_truncated_recipient_lists_stay_within_workmails_limits() {
    let w = World::start("limits").await;
    w.message("msg-l", MSG);
    let drop_external = "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { recipient = \"*@x.example\" }\n";
    // Outbound, 550 external and 50 internal recipients: the 50 are named instead.
    let mut rs: Vec<String> = (0..550).map(|i| format!("r{i}@x.example")).collect();
    rs.extend((0..50).map(|i| format!("c{i}@corp.example")));
    let r = handler::handle(
        &event_with("msg-l", "OUTBOUND", &rs, false),
        &pipeline(drop_external),
        &w.store(),
        soon(),
    )
    .await
    .unwrap();
    let v = serde_json::to_value(&r.response).unwrap();
    assert_eq!(
        v["actions"][0]["recipients"].as_array().unwrap().len(),
        50,
        "{v}"
    );
    assert_eq!(v["actions"][1]["action"]["type"], "DROP");
    assert_eq!(v["actions"][1]["allRecipients"], true);

    // Truncated inbound: none of the listed recipients match, the ones left out may.
    let listed = vec!["b@corp.example".to_string()];
    let bounce_ceo = "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nwhen = { recipient = \"ceo@corp.example\" }\n";
    let r = handler::handle(
        &event_with("msg-l", "INBOUND", &listed, true),
        &pipeline(bounce_ceo),
        &w.store(),
        soon(),
    )
    .await
    .unwrap();
    let v = serde_json::to_value(&r.response).unwrap();
    assert_eq!(v["actions"][0]["action"]["type"], "DEFAULT", "{v}");
    assert_eq!(
        v["actions"][0]["recipients"],
        serde_json::json!(["b@corp.example"])
    );
    assert_eq!(v["actions"][1]["action"]["type"], "BOUNCE");
    assert!(
        serde_json::to_vec(&r.response).unwrap().len()
            <= workmail_flow::actions::MAX_RESPONSE_BYTES
    );
}

#[tokio::test]
async fn an_outsider_claiming_a_corp_address_is_tagged_and_an_authenticated_colleague_is_not() {
    let w = World::start("auth-sender").await;
    let tag = "[[stage]]\ntype = \"subject_tag\"\ntag = \"[EXTERNAL]\"\nwhen = { direction = \"inbound\" }\nunless = { authenticated_sender = [\"*@corp.example\"] }\n";
    let spoofed = b"Authentication-Results: amazonses.com; spf=pass smtp.mailfrom=ceo@corp.example; dkim=none; dmarc=fail header.from=corp.example\r\nFrom: CEO <ceo@corp.example>\r\nTo: bob@corp.example\r\nSubject: Wire transfer\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nMessage-ID: <s@x.example>\r\n\r\nPay now.\r\n";
    let real = b"Authentication-Results: amazonses.com; spf=pass smtp.mailfrom=ceo@corp.example; dkim=pass header.i=@corp.example; dmarc=pass header.from=corp.example\r\nFrom: CEO <ceo@corp.example>\r\nTo: bob@corp.example\r\nSubject: Lunch\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nMessage-ID: <r@corp.example>\r\n\r\nNoon?\r\n";
    w.message("msg-spoofed", spoofed);
    w.message("msg-real", real);
    let r = handler::handle(&event("msg-spoofed"), &pipeline(tag), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    let updated = String::from_utf8(w.updated("msg-spoofed").unwrap()).unwrap();
    assert!(
        updated.contains("Subject: [EXTERNAL] Wire transfer\r\n"),
        "{updated}"
    );
    let r = handler::handle(&event("msg-real"), &pipeline(tag), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Unchanged);
    assert!(w.updated("msg-real").is_none());
}

//! End to end with the real AWS SDK against real protocol servers on 127.0.0.1: moto as
//! S3 and our Message Flow emulator as WorkMail. The failure outcomes of the README's
//! table are provoked here and in `tests/lambda_faults.rs` (faults after the fetch, S3's
//! own failures, limits), and the `rewrite` binary runs under a Runtime API as Lambda
//! runs it (`tests/cargo_lambda.rs` does the same under cargo-lambda's).

mod common;

use common::world::*;
use std::path::Path;
use std::time::{Duration, Instant};
use workmail_flow::actions::Response;
use workmail_flow::handler::{self, Delivery};

#[tokio::test]
async fn a_changed_message_is_uploaded_under_a_stable_key_put_back_and_answered_default() {
    let w = World::start("changed").await;
    w.message("msg-1", MSG);
    let r = handler::handle(&event("msg-1"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    assert_eq!(
        serde_json::to_string(&r.response).unwrap(),
        r#"{"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
    );
    let updated = w.updated("msg-1").expect("the emulator accepted the put");
    let expected = String::from_utf8_lossy(MSG).replace(
        "Message-ID: <q3@partner.example>\r\n",
        "Message-ID: <q3@partner.example>\r\nX-WorkMail-Flow: processed\r\n",
    );
    assert_eq!(String::from_utf8(updated).unwrap(), expected);
    assert_eq!(
        w.object_keys().await,
        ["workmail-flow/msg-1/0123456789abcdef0123456789abcdef"]
    );
}

#[tokio::test]
async fn a_retry_of_the_same_invocation_writes_the_same_key_and_changes_nothing_more() {
    let w = World::start("retry").await;
    w.message("msg-2", MSG);
    let store = w.store();
    handler::handle(&event("msg-2"), &pipeline(STAMP), &store, soon())
        .await
        .unwrap();
    let first = w.updated("msg-2").unwrap();
    // WorkMail retries the same invocation; GET now returns the updated content.
    let again = handler::handle(&event("msg-2"), &pipeline(STAMP), &store, soon())
        .await
        .unwrap();
    assert_eq!(again.delivery, Delivery::Unchanged);
    assert_eq!(w.updated("msg-2").unwrap(), first);
    assert_eq!(w.object_keys().await.len(), 1);
}

#[tokio::test]
async fn a_versioned_bucket_passes_the_object_version_and_the_put_is_accepted() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let w = World::start("versioned").await;
    w.s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    w.message("msg-v", MSG);
    let r = handler::handle(&event("msg-v"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    assert!(w.updated("msg-v").is_some());
}

/// MSG turned into a multipart with a base64 attachment of `size` deterministic bytes.
fn with_attachment(size: u32) -> String {
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &data);
    drop(data);
    let mut raw = String::from_utf8_lossy(MSG).replace(
        "\r\n\r\nNumbers attached.\r\n",
        "\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNumbers attached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in b64.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push_str("\r\n");
    }
    raw.push_str("--b--\r\n");
    raw
}

#[tokio::test]
async fn a_large_rewrite_is_uploaded_in_parts_and_arrives_whole() {
    let w = World::start("large").await;
    // About 12 MB: over the part size, so the upload goes in parts.
    let raw = with_attachment(9_000_000);
    assert!(raw.len() > workmail_flow::aws::UPLOAD_PART_SIZE);
    w.message("msg-big", raw.as_bytes());
    let r = handler::handle(&event("msg-big"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
    let updated = w.updated("msg-big").unwrap();
    assert_eq!(
        updated.len(),
        raw.len() + "X-WorkMail-Flow: processed\r\n".len()
    );
    assert_eq!(
        String::from_utf8(updated)
            .unwrap()
            .replace("X-WorkMail-Flow: processed\r\n", ""),
        raw
    );
}

#[tokio::test]
async fn an_unchanged_message_is_neither_uploaded_nor_put() {
    let w = World::start("unchanged").await;
    w.message("msg-3", MSG);
    let verdict_only = "[[stage]]\ntype = \"verdict\"\naction = \"move_to_junk\"\n";
    let r = handler::handle(&event("msg-3"), &pipeline(verdict_only), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Unchanged);
    assert!(
        serde_json::to_string(&r.response)
            .unwrap()
            .contains("MOVE_TO_JUNK")
    );
    assert!(w.updated("msg-3").is_none());
    assert!(w.object_keys().await.is_empty());
}

#[tokio::test]
async fn message_frozen_delivers_as_is_with_default() {
    let w = World::start("frozen").await;
    w.message("msg-4", MSG);
    w.fault("msg-4", "frozen", "");
    let r = handler::handle(&event("msg-4"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert!(
        matches!(&r.delivery, Delivery::Original(w) if w.starts_with("frozen")),
        "{:?}",
        r.delivery
    );
    assert_eq!(r.response, Response::default_for_all());
    assert!(w.updated("msg-4").is_none());
}

#[tokio::test]
async fn message_rejected_delivers_the_original_and_keeps_workmails_reason() {
    let w = World::start("rejected").await;
    w.message("msg-5", MSG);
    w.fault("msg-5", "reject", "attachment type not accepted");
    let r = handler::handle(&event("msg-5"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(
        r.delivery,
        Delivery::Original("rejected: attachment type not accepted".into())
    );
    assert_eq!(r.response, Response::default_for_all());
}

#[tokio::test]
async fn a_change_the_rules_reject_and_repair_cannot_fix_is_not_uploaded() {
    let w = World::start("unrepairable").await;
    let long_header = format!(
        "From: a@partner.example\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nX-Long: {}\r\n\r\nbody\r\n",
        "z".repeat(1200)
    );
    w.message("msg-6", long_header.as_bytes());
    let r = handler::handle(&event("msg-6"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert!(
        matches!(&r.delivery, Delivery::Original(why) if why.contains("header")),
        "{:?}",
        r.delivery
    );
    assert_eq!(r.response, Response::default_for_all());
    assert!(w.object_keys().await.is_empty(), "nothing uploaded");
    assert!(w.updated("msg-6").is_none(), "nothing put");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_succeeds() {
    let w = World::start("throttle-once").await;
    w.message("msg-7", MSG);
    w.fault("msg-7", "throttle", "1");
    let r = handler::handle(&event("msg-7"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::Replaced);
}

#[tokio::test]
async fn throttling_and_5xx_past_the_retries_are_error_results_so_workmail_retries() {
    for (kind, id) in [("throttle", "msg-8"), ("unavailable", "msg-9")] {
        let w = World::start(kind).await;
        w.message(id, MSG);
        w.fault(id, kind, "100");
        let e = handler::handle(&event(id), &pipeline(STAMP), &w.store(), soon())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("transient"), "{kind}: {e}");
    }
}

#[tokio::test]
async fn a_missing_message_is_an_error_result_saying_what_to_check() {
    let w = World::start("missing").await;
    let e = handler::handle(&event("gone"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found") && e.contains("about a day"), "{e}");
}

#[tokio::test]
async fn an_object_workmail_cannot_read_is_an_invalid_content_location_error_result() {
    // The emulator reads uploads from a port where nothing listens: like a bucket in
    // another Region or without the policy.
    let nowhere = format!("http://127.0.0.1:{}", common::moto::free_port());
    let w = World::start_with_emulator_s3("badlocation", Some(&nowhere)).await;
    w.message("msg-10", MSG);
    let e = handler::handle(&event("msg-10"), &pipeline(STAMP), &w.store(), soon())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid content location") && e.contains("bucket policy"),
        "{e}"
    );
}

#[tokio::test]
async fn a_fetch_that_would_pass_the_deadline_answers_default_unchanged() {
    let w = World::start("slow").await;
    w.message("msg-11", MSG);
    w.fault("msg-11", "delay-ms", "3000");
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let r = handler::handle(&event("msg-11"), &pipeline(STAMP), &w.store(), deadline)
        .await
        .unwrap();
    assert_eq!(r.delivery, Delivery::TimedOut("fetch".into()));
    assert_eq!(r.response, Response::default_for_all());
    assert!(w.updated("msg-11").is_none());
}

/// The `rewrite` binary as Lambda starts it, polling `api` and talking to this world's
/// servers.
fn rewrite_command(w: &World, api: &common::runtime_api::RuntimeApi) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rewrite"));
    child_env(w, &mut cmd);
    cmd.env("AWS_LAMBDA_RUNTIME_API", api.env_value())
        .env("AWS_LAMBDA_FUNCTION_NAME", "rewrite")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    cmd
}

#[tokio::test]
async fn the_rewrite_binary_answers_events_under_a_lambda_runtime_api() {
    use common::runtime_api::{Answer, RuntimeApi};
    let w = World::start("binary").await;
    w.message("msg-12", MSG);
    let api = RuntimeApi::start().await;
    let mut cmd = rewrite_command(&w, &api);
    cmd.env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let spawned = Instant::now();
    let mut child = cmd.spawn().unwrap();
    api.push_event("req-1", serde_json::to_vec(&event("msg-12")).unwrap());
    match api.next_answer().await {
        Answer::Response { request_id, body } => {
            assert_eq!(request_id, "req-1");
            assert_eq!(
                String::from_utf8_lossy(&body),
                r#"{"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
            );
        }
        other => panic!("expected a response, got {other:?}"),
    }
    let cold = api.first_poll().unwrap() - spawned;
    eprintln!("cold start (debug build, spawn to first poll): {cold:?}");
    let updated = String::from_utf8(w.updated("msg-12").unwrap()).unwrap();
    assert!(
        updated.contains("X-WorkMail-Flow: processed\r\n"),
        "bundled flow.toml applied"
    );

    // A message WorkMail no longer has: an error result, so WorkMail retries.
    api.push_event("req-2", serde_json::to_vec(&event("msg-gone")).unwrap());
    match api.next_answer().await {
        Answer::Error { request_id, body } => {
            assert_eq!(request_id, "req-2");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["errorType"], "FetchFailed");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let emf: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(emf.len(), 2, "one metrics record per invocation: {stdout}");
    assert_eq!(emf[0]["Changed"], 1);
    assert_eq!(emf[1]["Errors"], 1);
    assert!(
        stdout.contains("\"message_id\":\"msg-12\""),
        "JSON logs: {stdout}"
    );
    assert!(
        !stdout.contains("alice@partner.example"),
        "no full address: {stdout}"
    );
    assert!(
        !stdout.contains("Numbers attached"),
        "no body text: {stdout}"
    );
}

/// Runs the rewrite binary for one event with `extra` environment and returns its stdout.
async fn rewrite_logs(w: &World, id: &str, extra: &[(&str, &str)]) -> String {
    use common::runtime_api::{Answer, RuntimeApi};
    let api = RuntimeApi::start().await;
    let mut cmd = rewrite_command(w, &api);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    api.push_event("req-1", serde_json::to_vec(&event(id)).unwrap());
    assert!(matches!(api.next_answer().await, Answer::Response { .. }));
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn lambdas_log_level_is_honoured_and_rust_log_overrides_it() {
    let w = World::start("log-level").await;
    w.message("msg-ll", MSG);
    let info = rewrite_logs(&w, "msg-ll", &[]).await;
    assert!(info.contains("fetched"), "{info}");
    let warn = rewrite_logs(&w, "msg-ll", &[("AWS_LAMBDA_LOG_LEVEL", "WARN")]).await;
    assert!(
        !warn.contains("fetched") && !warn.contains("started"),
        "{warn}"
    );
    let both = rewrite_logs(
        &w,
        "msg-ll",
        &[("AWS_LAMBDA_LOG_LEVEL", "ERROR"), ("RUST_LOG", "info")],
    )
    .await;
    assert!(both.contains("fetched"), "{both}");
}

#[tokio::test]
async fn the_rewrite_binary_refuses_to_start_without_a_bucket_naming_the_variable() {
    use common::runtime_api::RuntimeApi;
    let w = World::start("nobucket").await;
    let api = RuntimeApi::start().await;
    let mut cmd = rewrite_command(&w, &api);
    cmd.env_remove("WORKMAIL_FLOW_BUCKET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = cmd.output().await.unwrap();
    assert!(!out.status.success());
    let logs =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("WORKMAIL_FLOW_BUCKET"), "{logs}");
    assert!(api.first_poll().is_none(), "it must not take events");
}

#[tokio::test]
async fn workmail_flow_invoke_runs_the_handler_once_with_real_clients() {
    let w = World::start("invoke").await;
    w.message(
        "plain",
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/plain.eml")).unwrap(),
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"));
    child_env(&w, &mut cmd);
    cmd.arg("invoke")
        .arg("--event")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/events/plain.json"))
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/flow.toml"))
        .arg("--metrics");
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let emf: serde_json::Value = stderr
        .lines()
        .find(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("--metrics prints the EMF record: {stderr}"));
    assert_eq!(emf["Changed"], 1);
    assert_eq!(emf["Direction"], "inbound");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
    );
    let updated = String::from_utf8(w.updated("plain").unwrap()).unwrap();
    assert!(
        updated.contains("Subject: [EXTERNAL] Q3 numbers"),
        "{updated}"
    );
}

#[tokio::test]
async fn invoke_and_emulate_without_a_region_say_set_aws_region() {
    let w = World::start("no-region").await;
    for args in [
        vec!["invoke", "--event", "samples/events/plain.json"],
        vec!["emulate", "--port", "0", "--messages", "samples"],
    ] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"));
        child_env(&w, &mut cmd);
        cmd.env_remove("AWS_REGION")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args);
        let out = cmd.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("set AWS_REGION"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn workmail_flow_emulate_serves_the_folder_to_the_sdk() {
    let w = World::start("emulate-cli").await;
    w.message("msg-13", MSG);
    let (mut child, url) = spawn_emulate(&w, &[]).await;
    let got = workmail_client(&url)
        .get_raw_message_content()
        .message_id("msg-13")
        .send()
        .await
        .unwrap();
    let bytes = got.message_content.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], MSG);
    let _ = child.kill().await;
}

/// Not a pass/fail test: the measurement behind the README's memory figure. Run with
/// `cargo test --release --test e2e -- --ignored --nocapture lambda_peak_memory`.
#[tokio::test]
#[ignore = "a measurement; run on purpose with --release"]
async fn lambda_peak_memory_on_a_40_mb_message() {
    use common::runtime_api::{Answer, RuntimeApi};
    let w = World::start("peak").await;
    let raw = with_attachment(29 * 1024 * 1024);
    w.message("msg-peak", raw.as_bytes());
    let api = RuntimeApi::start().await;
    let mut cmd = rewrite_command(&w, &api);
    cmd.env(
        "WORKMAIL_FLOW_CONFIG",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/flow.toml"),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    api.push_event("req-peak", serde_json::to_vec(&event("msg-peak")).unwrap());
    let answer = api.next_answer().await;
    assert!(matches!(answer, Answer::Response { .. }), "{answer:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap()
        .to_string();
    eprintln!(
        "message {} bytes; rewrite binary peak resident: {peak}",
        raw.len()
    );
    assert!(w.updated("msg-peak").is_some());
    child.kill().await.unwrap();
}

/// Not a pass/fail test: the cold-start and per-message figures in the README. Run with
/// `cargo test --release --test e2e -- --ignored --nocapture lambda_cold_start`.
#[tokio::test]
#[ignore = "a measurement; run on purpose with --release"]
async fn lambda_cold_start_and_time_per_message_on_loopback() {
    use common::runtime_api::{Answer, RuntimeApi};
    let w = World::start("timing").await;
    let sample =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/alternative.eml"))
            .unwrap();
    let mut cold = Vec::new();
    let mut per_message = Vec::new();
    for run in 0..5 {
        let api = RuntimeApi::start().await;
        let mut cmd = rewrite_command(&w, &api);
        cmd.env(
            "WORKMAIL_FLOW_CONFIG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/flow.toml"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        let spawned = Instant::now();
        let mut child = cmd.spawn().unwrap();
        while api.first_poll().is_none() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        cold.push(api.first_poll().unwrap() - spawned);
        for i in 0..20 {
            let id = format!("t{run}-{i}");
            w.message(&id, &sample);
            let started = Instant::now();
            api.push_event(&id, serde_json::to_vec(&event(&id)).unwrap());
            assert!(matches!(api.next_answer().await, Answer::Response { .. }));
            per_message.push(started.elapsed());
        }
        child.kill().await.unwrap();
    }
    cold.sort();
    per_message.sort();
    eprintln!(
        "cold start (spawn to first poll), 5 runs: min {:?}, median {:?}, max {:?}",
        cold[0], cold[2], cold[4]
    );
    eprintln!(
        "per message (event queued to answer: fetch, stages, upload, put), {} messages: median {:?}, p90 {:?}",
        per_message.len(),
        per_message[per_message.len() / 2],
        per_message[per_message.len() * 9 / 10]
    );
}

//! The directory end to end: `workmail-flow invoke` runs the handler with the real
//! aws-sdk-workmail against the emulator's WorkMail directory API (DescribeEntity,
//! DescribeUser, ListGroupsForEntity, paged), signs the message from what it answers,
//! and follows `on_error` when the API throttles; `emulate --directory` serves the same
//! API to the SDK.

mod common;

use common::world::*;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const ORG: &str = "m-0123456789abcdef0123456789abcdef";

/// A config in the world's folder: the sample signature flow, with the directory
/// WorkMail's (`on_error` as given).
fn signature_config(w: &World, on_error: &str) -> PathBuf {
    let templates = root().join("templates");
    let text = format!(
        "[directory]\nsource = \"workmail\"\norganization_id = \"{ORG}\"\non_error = \"{on_error}\"\n\n[[stage]]\ntype = \"disclaimer\"\ntext_file = \"{}\"\nhtml_file = \"{}\"\nplacement = \"above_quote\"\nwhen = {{ direction = \"outbound\", sender_in_directory = true }}\n",
        templates.join("signature.txt").display(),
        templates.join("signature.html").display()
    );
    let path = w.dir.join(format!("flow-{on_error}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// An outbound event for message `id` from `sender`.
fn outbound_event(w: &World, id: &str, sender: &str) -> PathBuf {
    let event = serde_json::json!({
        "summaryVersion": "2019-07-28",
        "envelope": { "mailFrom": { "address": sender },
                      "recipients": [ { "address": "dave@customer.example" } ] },
        "messageId": id,
        "invocationId": "0123456789abcdef0123456789abcdef",
        "flowDirection": "OUTBOUND",
        "truncated": false
    });
    let path = w.dir.join(format!("{id}.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

fn message_from(address: &str) -> Vec<u8> {
    format!(
        "From: Someone <{address}>\r\nTo: dave@customer.example\r\nSubject: Pricing\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <p-1@corp.example>\r\n\r\nThursday is fine.\r\n"
    )
    .into_bytes()
}

async fn invoke(w: &World, config: &Path, event: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"));
    child_env(w, &mut cmd);
    cmd.arg("invoke")
        .arg("--event")
        .arg(event)
        .arg("--config")
        .arg(config)
        .args(extra);
    cmd.output().await.unwrap()
}

fn requests(w: &World) -> Vec<String> {
    std::fs::read_to_string(w.dir.join("directory-requests.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn invoke_signs_from_workmails_directory_through_the_sdks_three_calls() {
    let w = World::start_with_directory("dir-sign", &root().join("samples/directory.toml")).await;
    w.message("sig-1", &message_from("carol@corp.example"));
    let out = invoke(
        &w,
        &signature_config(&w, "retry"),
        &outbound_event(&w, "sig-1", "carol@corp.example"),
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let updated = String::from_utf8(w.updated("sig-1").expect("put back")).unwrap();
    for line in [
        "-- \r\nCarol Sender\r\nHead of Sales\r\nSales, Corp Example Ltd\r\nTel: +44 20 7946 0018\r\n",
        "Office: London, 1 Example Street, EC1A 1AA London, United Kingdom",
    ] {
        assert!(updated.contains(line), "{line:?} in {updated}");
    }
    let calls = requests(&w);
    let ops: Vec<&str> = calls.iter().map(|l| l.split(' ').next().unwrap()).collect();
    // Carol is in three groups, two to a page: the SDK's paginator asks twice.
    assert_eq!(
        ops,
        [
            "DescribeEntity",
            "DescribeUser",
            "ListGroupsForEntity",
            "ListGroupsForEntity"
        ],
        "{calls:#?}"
    );
    let describe: serde_json::Value =
        serde_json::from_str(calls[0].split_once(' ').unwrap().1).unwrap();
    assert_eq!(describe["OrganizationId"], ORG);
    assert_eq!(describe["Email"], "carol@corp.example");
    let user: serde_json::Value =
        serde_json::from_str(calls[1].split_once(' ').unwrap().1).unwrap();
    assert_eq!(
        user["UserId"], "u-1",
        "DescribeUser asks for the entity DescribeEntity found"
    );
    let second_page: serde_json::Value =
        serde_json::from_str(calls[3].split_once(' ').unwrap().1).unwrap();
    assert_eq!(second_page["NextToken"], "2");
    assert!(
        stderr.contains("asked=1") && stderr.contains("cached=0"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("carol@corp.example"),
        "no full addresses in logs: {stderr}"
    );
}

#[tokio::test]
async fn a_sender_workmail_does_not_know_gets_no_signature() {
    let w =
        World::start_with_directory("dir-unknown", &root().join("samples/directory.toml")).await;
    w.message("sig-2", &message_from("mallory@corp.example"));
    let out = invoke(
        &w,
        &signature_config(&w, "retry"),
        &outbound_event(&w, "sig-2", "mallory@corp.example"),
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w.updated("sig-2"), None, "unchanged: nothing put back");
    let calls = requests(&w);
    assert_eq!(
        calls.len(),
        1,
        "EntityNotFoundException ends the lookup: {calls:?}"
    );
}

#[tokio::test]
async fn a_throttled_directory_fails_the_invocation_with_retry_and_sends_it_unsigned_with_skip() {
    let w =
        World::start_with_directory("dir-throttle", &root().join("samples/directory.toml")).await;
    w.message("sig-3", &message_from("carol@corp.example"));
    let event = outbound_event(&w, "sig-3", "carol@corp.example");
    std::fs::write(w.dir.join("directory.throttle"), "1000").unwrap();

    let out = invoke(&w, &signature_config(&w, "retry"), &event, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an error result: {stderr}");
    assert!(stderr.contains("ThrottlingException"), "{stderr}");
    assert!(stderr.contains("WorkMail retries"), "{stderr}");
    assert!(
        requests(&w).len() >= 2,
        "the SDK retried the throttled call first"
    );
    assert_eq!(w.updated("sig-3"), None);

    let out = invoke(&w, &signature_config(&w, "skip"), &event, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("running the stages without it"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"actions":[{"action":{"type":"DEFAULT"},"allRecipients":true}]}"#
    );
    assert_eq!(w.updated("sig-3"), None, "sent unsigned, unchanged");
}

#[tokio::test]
async fn invoke_with_a_directory_file_asks_no_api() {
    let w = World::start_with_directory("dir-file", &root().join("samples/directory.toml")).await;
    w.message("sig-4", &message_from("erin@corp.example"));
    let directory = root().join("samples/directory.toml");
    let out = invoke(
        &w,
        &signature_config(&w, "retry"),
        &outbound_event(&w, "sig-4", "erin@corp.example"),
        &["--directory", directory.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let updated = String::from_utf8(w.updated("sig-4").unwrap()).unwrap();
    assert!(
        updated.contains("-- \r\nErin Newhire\r\nSales Associate\r\nCorp Example Ltd\r\n"),
        "{updated}"
    );
    assert!(
        !updated.contains("Tel:"),
        "no phone, no Tel: line: {updated}"
    );
    assert!(requests(&w).is_empty());
}

#[tokio::test]
async fn emulate_with_a_directory_answers_the_sdk_with_workmails_shapes() {
    use aws_sdk_workmail::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_workmail::error::ProvideErrorMetadata;
    let w = World::start("emulate-dir").await;
    let directory = root().join("samples/directory.toml");
    let (mut child, url) =
        spawn_emulate(&w, &["--directory".as_ref(), directory.as_os_str()]).await;
    let client = aws_sdk_workmail::Client::from_conf(
        aws_sdk_workmail::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&url)
            .build(),
    );
    let entity = client
        .describe_entity()
        .organization_id(ORG)
        .email("C.Sender@corp.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        entity.r#type(),
        Some(&aws_sdk_workmail::types::EntityType::User)
    );
    let user = client
        .describe_user()
        .organization_id(ORG)
        .user_id(entity.entity_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(user.job_title(), Some("Head of Sales"));
    assert_eq!(user.zip_code(), Some("EC1A 1AA"));
    let missing = client
        .describe_entity()
        .organization_id(ORG)
        .email("nobody@corp.example")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("EntityNotFoundException"));
    let _ = child.kill().await;
}

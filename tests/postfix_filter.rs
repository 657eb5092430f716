//! `contrib/postfix/workmail-flow-filter`, run as Postfix's pipe(8) runs it: message on
//! stdin, envelope as arguments, the result handed to `sendmail`. A stand-in sendmail
//! records the arguments and input of each call, as Postfix's would receive them, and
//! every verdict is enforced: the README's mapping, one test each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Setup {
    dir: PathBuf,
    sendmail: PathBuf,
}

fn setup(name: &str, sendmail_exit: i32) -> Setup {
    let dir = std::env::temp_dir().join(format!("wmf-postfix-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sendmail = dir.join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\nn=$(ls \"{d}\" | grep -c '^call-.*\\.args$')\nprintf '%s\\n' \"$@\" > \"{d}/call-$n.args\"\ncat > \"{d}/call-$n.message\"\nexit {sendmail_exit}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&sendmail)
        .status()
        .unwrap();
    Setup { dir, sendmail }
}

/// The stand-in sendmail's calls, in order: arguments and message.
fn calls(s: &Setup) -> Vec<(Vec<String>, String)> {
    (0..)
        .map_while(|n| {
            let args = std::fs::read_to_string(s.dir.join(format!("call-{n}.args"))).ok()?;
            let message = std::fs::read(s.dir.join(format!("call-{n}.message"))).unwrap();
            Some((
                args.lines().map(str::to_string).collect(),
                String::from_utf8_lossy(&message).into_owned(),
            ))
        })
        .collect()
}

fn run_filter(s: &Setup, config: &Path, input: &[u8]) -> i32 {
    run_filter_output(s, config, input).0
}

/// Runs the filter; its exit code and stdout (the bounce text Postfix returns).
fn run_filter_output(s: &Setup, config: &Path, input: &[u8]) -> (i32, String) {
    let mut child = Command::new(root().join("contrib/postfix/workmail-flow-filter"))
        .args([
            "-f",
            "alice@partner.example",
            "--",
            "bob@corp.example",
            "carol@corp.example",
        ])
        .env("WORKMAIL_FLOW_CONFIG", config)
        .env("WORKMAIL_FLOW_BIN", env!("CARGO_BIN_EXE_workmail-flow"))
        .env("SENDMAIL", &s.sendmail)
        .env("WORKMAIL_FLOW_REPORTING_MTA", "mx.corp.example")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A config file in the setup's folder.
fn config(s: &Setup, text: &str) -> PathBuf {
    let path = s.dir.join("flow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const MSG: &[u8] = b"From: alice@partner.example\r\nTo: bob@corp.example, carol@corp.example\r\nSubject: hi\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n";

#[test]
fn the_filter_rewrites_the_message_and_reinjects_it_with_the_same_envelope() {
    let s = setup("ok", 0);
    let input = std::fs::read(root().join("samples/plain.eml")).unwrap();
    let code = run_filter(&s, &root().join("samples/flow.toml"), &input);
    assert_eq!(code, 0);
    let calls = calls(&s);
    assert_eq!(calls.len(), 1);
    let (args, message) = &calls[0];
    assert_eq!(
        *args,
        [
            "-G",
            "-i",
            "-f",
            "alice@partner.example",
            "--",
            "bob@corp.example",
            "carol@corp.example"
        ]
    );
    assert!(
        message.contains("Subject: [EXTERNAL] Q3 numbers\r\n"),
        "{message}"
    );
    assert!(
        message.contains("X-WorkMail-Flow: processed\r\n"),
        "{message}"
    );
}

#[test]
fn a_broken_config_exits_75_so_postfix_keeps_the_message_queued() {
    let s = setup("badcfg", 0);
    let cfg = s.dir.join("flow.toml");
    std::fs::write(&cfg, "[[stage]]\ntype = \"no_such_stage\"\n").unwrap();
    let code = run_filter(&s, &cfg, b"From: a@x.example\r\n\r\nbody\r\n");
    assert_eq!(code, 75);
    assert!(calls(&s).is_empty(), "nothing reinjected");
}

#[test]
fn a_failing_sendmail_exits_75_too() {
    let s = setup("sendmail-fails", 1);
    let input = std::fs::read(root().join("samples/plain.eml")).unwrap();
    assert_eq!(
        run_filter(&s, &root().join("samples/flow.toml"), &input),
        75
    );
}

#[test]
fn bounce_for_everyone_is_not_reinjected_and_exits_69_with_the_bounce_text() {
    let s = setup("bounce-all", 0);
    let cfg = config(
        &s,
        "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nmessage = \"We do not accept mail from {{ sender }}\"\n",
    );
    let (code, stdout) = run_filter_output(&s, &cfg, MSG);
    assert_eq!(code, 69, "EX_UNAVAILABLE: Postfix bounces the message");
    assert_eq!(
        stdout.trim(),
        "We do not accept mail from alice@partner.example"
    );
    assert!(calls(&s).is_empty(), "nothing reinjected");
}

#[test]
fn drop_for_everyone_is_not_reinjected_and_exits_0() {
    let s = setup("drop-all", 0);
    let cfg = config(&s, "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\n");
    assert_eq!(run_filter(&s, &cfg, MSG), 0);
    assert!(calls(&s).is_empty(), "nothing reinjected, nobody told");
}

#[test]
fn some_recipients_bounced_are_left_out_of_the_reinjection_and_reported_to_the_sender() {
    let s = setup("bounce-some", 0);
    let cfg = config(
        &s,
        "[[stage]]\ntype = \"verdict\"\naction = \"bounce\"\nmessage = \"Mailbox closed\"\nwhen = { recipient = \"bob@*\" }\n",
    );
    assert_eq!(run_filter(&s, &cfg, MSG), 0);
    let calls = calls(&s);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0[5..], ["carol@corp.example"]);
    // A delivery status notification from the null sender to the sender.
    assert_eq!(
        calls[1].0,
        ["-G", "-i", "-f", "", "--", "alice@partner.example"]
    );
    let dsn = &calls[1].1;
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; bob@corp.example"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.7.1"), "{dsn}");
    assert!(dsn.contains("Mailbox closed"), "{dsn}");
    assert!(dsn.contains("Subject: hi"), "the original's header: {dsn}");
    assert!(!dsn.contains("\nbody"), "not the original's body: {dsn}");
    // Python's email package reads it as a delivery report.
    let py = Command::new("python3")
        .args(["-c", "import email,sys; m=email.message_from_bytes(sys.stdin.buffer.read()); print(m.get_content_type(), m.get_param('report-type'), [p.get_content_type() for p in m.walk()][1:])"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut py = py;
    py.stdin.take().unwrap().write_all(dsn.as_bytes()).unwrap();
    let out = String::from_utf8(py.wait_with_output().unwrap().stdout).unwrap();
    assert!(
        out.starts_with(
            "multipart/report delivery-status ['text/plain', 'message/delivery-status'"
        ),
        "{out}"
    );
}

#[test]
fn move_to_junk_reinjects_with_the_junk_header_for_those_recipients_only() {
    let s = setup("junk", 0);
    let cfg = config(
        &s,
        "[[stage]]\ntype = \"verdict\"\naction = \"move_to_junk\"\nwhen = { recipient = \"carol@*\" }\n",
    );
    assert_eq!(run_filter(&s, &cfg, MSG), 0);
    let calls = calls(&s);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0[5..], ["bob@corp.example"]);
    assert!(!calls[0].1.contains("X-Spam-Flag"));
    assert_eq!(calls[1].0[5..], ["carol@corp.example"]);
    assert!(
        calls[1].1.starts_with("X-Spam-Flag: YES\n"),
        "{}",
        calls[1].1
    );
}

#[test]
fn a_dropped_recipient_is_left_out_and_the_others_still_get_the_message() {
    let s = setup("drop-some", 0);
    let cfg = config(
        &s,
        "[[stage]]\ntype = \"verdict\"\naction = \"drop\"\nwhen = { recipient = \"bob@*\" }\n",
    );
    assert_eq!(run_filter(&s, &cfg, MSG), 0);
    let calls = calls(&s);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0[5..], ["carol@corp.example"]);
}

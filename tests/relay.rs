//! `workmail-flow relay` between real peers: Python's smtplib sends, aiosmtpd is the
//! next hop. Each test starts its own relay and hop on free loopback ports.

mod common;

use common::smtp::{FinalHop, Raw, Server, large_message, make_certs, scratch, send};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A flow with every verdict, each keyed on a recipient domain, plus a header stamp and
/// a subject tag so that every relayed message is a rewrite.
const FLOW: &str = r#"
[[stage]]
type = "stamp_header"
name = "X-Relayed-By"
value = "workmail-flow"

[[stage]]
type = "subject_tag"
tag = "[EXT]"

[[stage]]
type = "verdict"
action = "bounce"
message = "{{ recipients }}: this address no longer receives mail."
when = { recipient = ["*@closed.example"] }

[[stage]]
type = "verdict"
action = "drop"
when = { recipient = ["*@void.example"] }

[[stage]]
type = "verdict"
action = "move_to_junk"
when = { recipient = ["*@junk.example"] }
"#;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn write_flow(dir: &Path) -> PathBuf {
    let path = dir.join("flow.toml");
    std::fs::write(&path, FLOW).unwrap();
    path
}

fn start_relay(dir: &Path, hop: &str, extra: &[&str]) -> Server {
    let flow = write_flow(dir);
    let mut args = vec![
        "--config",
        flow.to_str().unwrap(),
        "--next-hop",
        hop,
        "--hostname",
        "relay.test",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, "relay", &args)
}

/// The relay's own Received field (its first field) and the rest.
fn split_received(bytes: &[u8]) -> (&[u8], &[u8]) {
    assert!(
        bytes.starts_with(b"Received: from "),
        "{}",
        String::from_utf8_lossy(&bytes[..80])
    );
    let mut end = 0;
    loop {
        let next = end + bytes[end..].iter().position(|&b| b == b'\n').unwrap() + 1;
        end = next;
        if bytes[end] != b' ' && bytes[end] != b'\t' {
            return (&bytes[..end], &bytes[end..]);
        }
    }
}

#[test]
fn a_relayed_message_is_the_flows_rewrite_of_what_the_client_sent_byte_for_byte() {
    let dir = scratch("relay-rewrite");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let file = sample("alternative.eml");
    let sent = send(
        relay.port,
        "carol@corp.example",
        &["dave@customer.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.kept();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].rcpt_tos, ["dave@customer.example"]);
    assert_eq!(kept[0].mail_from, "carol@corp.example");
    // The same flow in-process over what the relay handed it (its Received on top of the
    // client's bytes) gives exactly what the next hop got.
    let (received, _) = split_received(&kept[0].bytes);
    let mut input = received.to_vec();
    input.extend_from_slice(&std::fs::read(&file).unwrap());
    let pipeline = workmail_flow::config::load(&dir.join("flow.toml")).unwrap();
    let envelope = workmail_flow::Envelope {
        mail_from: Some("carol@corp.example".into()),
        recipients: vec!["dave@customer.example".into()],
        ..workmail_flow::Envelope::from_message(&input, workmail_flow::Direction::Inbound)
    };
    let expected = pipeline.run(&input, &envelope).output.to_vec();
    assert_eq!(
        String::from_utf8_lossy(&kept[0].bytes),
        String::from_utf8_lossy(&expected)
    );
    let text = String::from_utf8_lossy(&kept[0].bytes);
    assert!(text.contains("\r\nX-Relayed-By: workmail-flow\r\n"));
    assert!(text.contains("\r\n\tby relay.test (workmail-flow relay) with ESMTP id "));
    // Logs name the decisions, not the addresses.
    let logs = relay.logs();
    assert!(
        logs.contains("stamp_header") && logs.contains("relayed"),
        "{logs}"
    );
    assert!(!logs.contains("carol@corp.example"), "{logs}");
}

#[test]
fn every_recipient_bounced_is_refused_with_550_and_the_bounce_text() {
    let dir = scratch("relay-bounce");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let sent = send(
        relay.port,
        "a@partner.example",
        &["old@closed.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(550), "{sent:?}");
    assert!(
        sent[0]
            .text
            .contains("5.7.1 old@closed.example: this address no longer receives mail."),
        "{sent:?}"
    );
    assert!(hop.kept().is_empty(), "nothing reaches the next hop");
}

#[test]
fn every_recipient_dropped_is_accepted_and_not_relayed() {
    let dir = scratch("relay-drop");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let sent = send(
        relay.port,
        "a@partner.example",
        &["x@void.example", "y@void.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(sent[0].text.contains("not relayed"), "{sent:?}");
    assert!(hop.kept().is_empty());
}

#[test]
fn some_bounced_are_relayed_to_the_others_and_the_sender_gets_a_delivery_status_notification() {
    let dir = scratch("relay-partial");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let to = ["bob@corp.example", "old@closed.example", "x@void.example"];
    let sent = send(
        relay.port,
        "alice@partner.example",
        &to,
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.kept();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].rcpt_tos, ["bob@corp.example"]);
    assert_eq!(
        kept[1].mail_from, "<>",
        "the notification comes from the null sender"
    );
    assert_eq!(kept[1].rcpt_tos, ["alice@partner.example"]);
    let dsn = String::from_utf8_lossy(&kept[1].bytes);
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; old@closed.example\r\n"),
        "{dsn}"
    );
    assert!(
        !dsn.contains("x@void.example"),
        "a dropped recipient is not reported"
    );
    assert!(
        dsn.contains("Subject: Q3 numbers"),
        "the original's header is attached: {dsn}"
    );
}

#[test]
fn junk_recipients_get_the_message_with_the_junk_header_in_their_own_transaction() {
    let dir = scratch("relay-junk");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let to = ["bob@corp.example", "eve@junk.example"];
    let sent = send(
        relay.port,
        "a@partner.example",
        &to,
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.kept();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].rcpt_tos, ["bob@corp.example"]);
    assert!(!kept[0].bytes.starts_with(b"X-Spam-Flag"));
    assert_eq!(kept[1].rcpt_tos, ["eve@junk.example"]);
    assert!(kept[1].bytes.starts_with(b"X-Spam-Flag: YES\r\n"));
    assert_eq!(
        &kept[1].bytes[b"X-Spam-Flag: YES\r\n".len()..],
        &kept[0].bytes[..]
    );
}

#[test]
fn a_next_hop_that_is_down_gets_the_client_a_451_so_its_server_retries() {
    let dir = scratch("relay-down");
    let nothing = format!("127.0.0.1:{}", common::moto::free_port());
    let relay = start_relay(&dir, &nothing, &["--next-hop-tls", "none"]);
    let sent = send(
        relay.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?}");
    assert!(
        relay.logs().contains("cannot connect to"),
        "{}",
        relay.logs()
    );
}

#[test]
fn a_next_hop_4xx_is_451_and_its_5xx_is_passed_back_as_it_said_it() {
    let dir = scratch("relay-hop-replies");
    let busy = FinalHop::start(&dir, &["--reply", "452 4.3.1 Insufficient system storage"]);
    let relay_busy = start_relay(&dir, &busy.address(), &["--next-hop-tls", "none"]);
    let sent = send(
        relay_busy.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?}");
    let spam = FinalHop::start(&dir, &["--reply", "554 5.7.1 Rejected as spam"]);
    let relay_spam = start_relay(&dir, &spam.address(), &["--next-hop-tls", "none"]);
    let sent = send(
        relay_spam.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(554), "{sent:?}");
    assert!(sent[0].text.contains("5.7.1 Rejected as spam"), "{sent:?}");
}

#[test]
fn recipients_the_next_hop_refuses_are_reported_to_the_sender_and_the_rest_delivered() {
    let dir = scratch("relay-hop-refuses");
    let hop = FinalHop::start(&dir, &["--refuse-rcpt", "gone@corp.example"]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let to = ["bob@corp.example", "gone@corp.example"];
    let sent = send(
        relay.port,
        "alice@partner.example",
        &to,
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.kept();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].rcpt_tos, ["bob@corp.example"]);
    let dsn = String::from_utf8_lossy(&kept[1].bytes);
    assert!(
        dsn.contains("Final-Recipient: rfc822; gone@corp.example"),
        "{dsn}"
    );
    assert!(
        dsn.contains("No such user here (the next hop said 550 5.1.1)"),
        "{dsn}"
    );
}

#[test]
fn starttls_is_offered_to_clients_and_required_of_the_next_hop() {
    let dir = scratch("relay-tls");
    let certs = make_certs(&dir);
    let (cert, key, ca) = (
        certs.cert.to_str().unwrap(),
        certs.key.to_str().unwrap(),
        certs.ca.to_str().unwrap(),
    );
    let hop = FinalHop::start(&dir, &["--tls-cert", cert, "--tls-key", key]);
    let relay = start_relay(
        &dir,
        &hop.address(),
        &[
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--next-hop-tls",
            "required",
            "--next-hop-ca",
            ca,
        ],
    );
    let sent = send(
        relay.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &["--starttls", "--cafile", ca],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(sent[0].tls, "the client's session was encrypted");
    let kept = hop.kept();
    assert!(kept[0].tls, "the next hop's session was encrypted");
    assert!(String::from_utf8_lossy(&kept[0].bytes).contains(" with ESMTPS id "));

    // Required TLS to a next hop without it: 451, never plain text.
    let plain = FinalHop::start(&dir, &[]);
    let strict = start_relay(
        &dir,
        &plain.address(),
        &["--next-hop-tls", "required", "--next-hop-ca", ca],
    );
    let sent = send(
        strict.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?}");
    assert!(plain.kept().is_empty());
    assert!(
        strict.logs().contains("does not offer STARTTLS"),
        "{}",
        strict.logs()
    );

    // Required TLS to a certificate no trusted CA signed: 451.
    let unknown = start_relay(&dir, &hop.address(), &["--next-hop-tls", "required"]);
    let sent = send(
        unknown.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?}");

    // Opportunistic TLS encrypts to the same hop without verifying it.
    let opportunistic = start_relay(&dir, &hop.address(), &["--next-hop-tls", "opportunistic"]);
    let sent = send(
        opportunistic.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(hop.kept().last().unwrap().tls);
}

#[test]
fn the_relay_logs_in_to_the_next_hop_over_tls_and_a_refused_login_is_451() {
    let dir = scratch("relay-auth");
    let certs = make_certs(&dir);
    let (cert, key, ca) = (
        certs.cert.to_str().unwrap(),
        certs.key.to_str().unwrap(),
        certs.ca.to_str().unwrap(),
    );
    let hop = FinalHop::start(
        &dir,
        &[
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--auth",
            "relay-user:s3cret",
        ],
    );
    let flow = write_flow(&dir);
    let start = |password: &str| {
        Server::start_with_env(
            &dir,
            "relay",
            &[
                "--config",
                flow.to_str().unwrap(),
                "--next-hop",
                &hop.address(),
                "--next-hop-tls",
                "required",
                "--next-hop-ca",
                ca,
                "--next-hop-user",
                "relay-user",
            ],
            &[("WORKMAIL_FLOW_NEXT_HOP_PASSWORD", password)],
        )
    };
    let good = start("s3cret");
    let sent = send(
        good.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?} {}", good.logs());
    assert_eq!(hop.kept()[0].login.as_deref(), Some("relay-user"));
    assert!(
        !good.logs().contains("s3cret"),
        "the password is never logged"
    );
    let bad = start("wrong");
    let sent = send(
        bad.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?}");
    assert!(bad.logs().contains("AUTH refused"), "{}", bad.logs());
}

#[test]
fn a_40_mb_message_passes_through_unchanged_but_for_the_rewrite() {
    let dir = scratch("relay-40mb");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let message = large_message(40_000_000);
    let file = dir.join("big.eml");
    std::fs::write(&file, &message).unwrap();
    let sent = send(
        relay.port,
        "big@partner.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.kept();
    let (_, rest) = split_received(&kept[0].bytes);
    let body_at = |m: &[u8]| memchr_find(m, b"\r\n\r\n").unwrap();
    // The body is byte-identical; the header gained the stamp and the tag.
    assert_eq!(&rest[body_at(rest)..], &message[body_at(&message)..]);
    assert!(String::from_utf8_lossy(&rest[..body_at(rest)]).contains("Subject: [EXT] the archive"));
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_message_over_the_size_limit_is_refused_552_and_the_session_goes_on() {
    let dir = scratch("relay-size");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(
        &dir,
        &hop.address(),
        &["--next-hop-tls", "none", "--max-size", "2000"],
    );
    let mut raw = Raw::connect(relay.port);
    assert!(raw.reply().starts_with("220 "));
    raw.write(b"EHLO client.test\r\n");
    let ehlo = raw.reply();
    assert!(ehlo.contains("SIZE 2000"), "{ehlo}");
    raw.write(b"MAIL FROM:<a@partner.example> SIZE=5000\r\n");
    assert!(raw.reply().starts_with("552 5.3.4"));
    raw.write(b"MAIL FROM:<a@partner.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n");
    assert!(raw.reply().starts_with("250"));
    assert!(raw.reply().starts_with("250"));
    assert!(raw.reply().starts_with("354"));
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.extend(
        std::iter::repeat_n(b'x', 76)
            .chain(*b"\r\n")
            .cycle()
            .take(78 * 64),
    );
    big.extend_from_slice(b".\r\n");
    raw.write(&big);
    assert!(raw.reply().starts_with("552 5.3.4"));
    raw.write(b"NOOP\r\n");
    assert!(raw.reply().starts_with("250"));
    assert!(hop.kept().is_empty());
}

#[test]
fn pipelined_commands_are_answered_in_order_and_the_extensions_are_offered() {
    let dir = scratch("relay-pipelining");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let mut raw = Raw::connect(relay.port);
    assert!(raw.reply().starts_with("220 relay.test ESMTP"));
    raw.write(b"EHLO client.test\r\n");
    let ehlo = raw.reply();
    for ext in [
        "PIPELINING",
        "SIZE",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing: {ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "no certificate, no STARTTLS: {ehlo}"
    );
    // One write: the envelope, DATA, the message and QUIT (RFC 2920).
    raw.write(b"MAIL FROM:<a@partner.example> BODY=8BITMIME\r\nRCPT TO:<b\xc3\xbcro@corp.example>\r\nRCPT TO:<c@corp.example>\r\nDATA\r\nSubject: caf\xc3\xa9\r\n\r\n..a dot-stuffed line\r\n.\r\nQUIT\r\n");
    let replies: Vec<String> = (0..6).map(|_| raw.reply()).collect();
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "354", "250", "221"],
        "{replies:?}"
    );
    let kept = hop.kept();
    assert_eq!(kept[0].rcpt_tos, ["büro@corp.example", "c@corp.example"]);
    let text = String::from_utf8_lossy(&kept[0].bytes);
    assert!(text.ends_with("\r\n\r\n.a dot-stuffed line\r\n"), "{text}");
    // The tagged subject is not ASCII: written as an RFC 2047 encoded word ("[EXT] café").
    assert!(
        text.contains("Subject: =?UTF-8?B?W0VYVF0gY2Fmw6k=?=\r\n"),
        "{text}"
    );
}

#[test]
fn a_bare_lf_dot_cannot_end_the_data_and_smuggle_a_second_message() {
    let dir = scratch("relay-smuggling");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let mut raw = Raw::connect(relay.port);
    raw.reply();
    raw.write(b"EHLO c\r\nMAIL FROM:<a@partner.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n");
    for _ in 0..4 {
        raw.reply();
    }
    // "\n.\r\n" is not the end of the data (RFC 5321 4.1.1.4: only CRLF.CRLF is), so
    // what follows is part of this message, never a second transaction.
    raw.write(b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<ceo@corp.example>\r\nRCPT TO:<victim@corp.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n");
    assert!(raw.reply().starts_with("250"));
    let kept = hop.kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].rcpt_tos, ["bob@corp.example"]);
    assert!(
        String::from_utf8_lossy(&kept[0].bytes).contains("Subject: smuggled"),
        "inside the first message's body"
    );
}

#[test]
fn a_message_with_too_many_received_fields_is_refused_as_a_loop() {
    let dir = scratch("relay-loop");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let mut m = "Received: from a by b; Mon, 02 Nov 2026 09:14:00 +0000\r\n".repeat(50);
    m.push_str("Subject: loop\r\n\r\nround and round\r\n");
    let file = dir.join("loop.eml");
    std::fs::write(&file, m).unwrap();
    let sent = send(
        relay.port,
        "a@partner.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(554), "{sent:?}");
    assert!(sent[0].text.contains("5.4.6"), "{sent:?}");
    assert!(hop.kept().is_empty());
}

#[test]
fn commands_out_of_order_get_503_and_unknown_ones_500() {
    let dir = scratch("relay-order");
    let relay = start_relay(&dir, "127.0.0.1:1", &["--next-hop-tls", "none"]);
    let mut raw = Raw::connect(relay.port);
    raw.reply();
    raw.write(b"MAIL FROM:<a@x.example>\r\n");
    assert!(raw.reply().starts_with("503"), "EHLO first");
    raw.write(b"EHLO c\r\nRCPT TO:<b@y.example>\r\nDATA\r\nFROB\r\n");
    raw.reply();
    assert!(raw.reply().starts_with("503"));
    assert!(raw.reply().starts_with("503"));
    assert!(raw.reply().starts_with("500"));
}

#[test]
fn a_hundred_concurrent_sessions_are_all_relayed() {
    let dir = scratch("relay-100");
    let hop = FinalHop::start(&dir, &[]);
    let relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let sent = send(
        relay.port,
        "a@partner.example",
        &["bob@corp.example"],
        &sample("attachment.eml"),
        &["--count", "100", "--parallel", "100"],
    );
    assert_eq!(sent.len(), 100);
    assert!(
        sent.iter().all(|s| s.code == Some(250)),
        "{:?}",
        sent.iter().find(|s| s.code != Some(250))
    );
    assert_eq!(hop.kept().len(), 100);
}

#[test]
fn past_the_session_cap_a_connection_hears_421() {
    let dir = scratch("relay-cap");
    let relay = start_relay(
        &dir,
        "127.0.0.1:1",
        &["--next-hop-tls", "none", "--max-sessions", "1"],
    );
    // The start-up probe's session may still hold the one place for a moment.
    let started = std::time::Instant::now();
    let mut first = loop {
        let mut raw = Raw::connect(relay.port);
        if raw.reply().starts_with("220") {
            break raw;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the one session never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    first.write(b"NOOP\r\n");
    assert!(first.reply().starts_with("250"));
    let mut second = Raw::connect(relay.port);
    assert!(second.reply().starts_with("421 4.3.2"));
}

#[test]
fn sigterm_lets_the_session_in_flight_finish_and_answers_new_ones_421() {
    let dir = scratch("relay-drain");
    let hop = FinalHop::start(&dir, &[]);
    let mut relay = start_relay(&dir, &hop.address(), &["--next-hop-tls", "none"]);
    let mut busy = Raw::connect(relay.port);
    busy.reply();
    busy.write(
        b"EHLO c\r\nMAIL FROM:<a@partner.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n",
    );
    for _ in 0..4 {
        busy.reply();
    }
    relay.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let mut late = Raw::connect(relay.port);
    assert!(
        late.reply().starts_with("421"),
        "a new connection while draining"
    );
    busy.write(b"Subject: in flight\r\n\r\nbody\r\n.\r\n");
    assert!(
        busy.reply().starts_with("250"),
        "the message in flight is relayed"
    );
    busy.write(b"MAIL FROM:<a@partner.example>\r\n");
    assert!(
        busy.reply().starts_with("421"),
        "no new transaction while draining"
    );
    let status = relay
        .wait_exit(Duration::from_secs(30))
        .expect("the relay exits");
    assert!(status.success(), "{status}");
    assert_eq!(hop.kept().len(), 1);
}

#[test]
fn a_directory_that_cannot_be_read_makes_the_relay_answer_451() {
    let dir = scratch("relay-directory-down");
    let hop = FinalHop::start(&dir, &[]);
    let flow = dir.join("flow.toml");
    std::fs::write(
        &flow,
        "[directory]\nsource = \"workmail\"\norganization_id = \"m-0123456789abcdef0123456789abcdef\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-Dept\"\nvalue = \"yes\"\nwhen = { sender_group = [\"finance\"] }\n",
    )
    .unwrap();
    let nothing = format!("http://127.0.0.1:{}", common::moto::free_port());
    let relay = Server::start_with_env(
        &dir,
        "relay",
        &[
            "--config",
            flow.to_str().unwrap(),
            "--next-hop",
            &hop.address(),
            "--next-hop-tls",
            "none",
            "--stage-timeout",
            "5",
        ],
        &[
            ("AWS_ENDPOINT_URL_WORKMAIL", &nothing),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    let sent = send(
        relay.port,
        "a@corp.example",
        &["bob@corp.example"],
        &sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(451), "{sent:?} {}", relay.logs());
    assert!(hop.kept().is_empty());
}

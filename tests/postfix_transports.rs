//! Both transports behind a real Postfix (Debian's package, a throwaway instance on
//! 127.0.0.1): smtplib sends to Postfix, Postfix calls `workmail-flow milter` and relays
//! through `workmail-flow relay`, which hands the mail to aiosmtpd. Each test runs its
//! own chain on free ports.

mod common;

use common::smtp::{FinalHop, Postfix, Server, crlf, large_message, make_certs, scratch, send};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The milter's flow: a stamp, a subject tag, a disclaimer (a body change), and every
/// verdict keyed on a recipient domain.
const MILTER_FLOW: &str = r#"
[[stage]]
type = "stamp_header"
name = "X-Milter"
value = "seen"

[[stage]]
type = "subject_tag"
tag = "[M]"

[[stage]]
type = "disclaimer"
text = "-- Checked by the milter"
html = "<p>Checked by the milter</p>"

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

/// The relay's flow: one more stamp, so both rewrites show.
const RELAY_FLOW: &str = r#"
[[stage]]
type = "stamp_header"
name = "X-Relay"
value = "seen"
"#;

const WAIT: Duration = Duration::from_secs(30);

struct Chain {
    dir: PathBuf,
    hop: FinalHop,
    relay: Server,
    milter: Server,
    postfix: Postfix,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The chain; `milter_args` and `relay_args` are added to each command, `main_extra` to
/// Postfix's main.cf.
fn chain(name: &str, milter_args: &[&str], relay_args: &[&str], main_extra: &str) -> Chain {
    let dir = scratch(name);
    let hop = FinalHop::start(&dir, &[]);
    let relay_flow = write(&dir, "relay.toml", RELAY_FLOW);
    let hop_address = hop.address();
    let mut args = vec![
        "--config",
        relay_flow.to_str().unwrap(),
        "--next-hop",
        &hop_address,
        "--hostname",
        "relay.test",
    ];
    args.extend_from_slice(relay_args);
    if !relay_args.contains(&"--next-hop-tls") {
        args.extend_from_slice(&["--next-hop-tls", "none"]);
    }
    let relay = Server::start(&dir, "relay", &args);
    let milter_flow = write(&dir, "milter.toml", MILTER_FLOW);
    let mut margs = vec!["--config", milter_flow.to_str().unwrap()];
    margs.extend_from_slice(milter_args);
    let milter = Server::start(&dir, "milter", &margs);
    let main = format!(
        "smtpd_milters = inet:127.0.0.1:{}\nmilter_default_action = tempfail\nmilter_protocol = 6\n{main_extra}",
        milter.port
    );
    let postfix = Postfix::start(&dir, &format!("[127.0.0.1]:{}", relay.port), &main);
    Chain {
        dir,
        hop,
        relay,
        milter,
        postfix,
    }
}

impl Chain {
    fn sample(&self, name: &str) -> PathBuf {
        let raw = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("samples")
                .join(name),
        )
        .unwrap();
        let path = self.dir.join(name);
        std::fs::write(&path, crlf(&raw)).unwrap();
        path
    }

    fn explain(&self) -> String {
        format!(
            "--- postfix\n{}\n--- milter\n{}\n--- relay\n{}",
            self.postfix.log(),
            self.milter.logs(),
            self.relay.logs()
        )
    }
}

/// The fields of a header in order, names only.
fn names(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let header = text.split("\r\n\r\n").next().unwrap();
    header
        .split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .collect()
}

#[test]
fn a_message_is_rewritten_by_the_milter_and_the_relay_and_nothing_else_changes() {
    let c = chain("pf-rewrite", &[], &[], "");
    let file = c.sample("alternative.eml");
    let sent = send(
        c.postfix.port,
        "carol@corp.example",
        &["dave@customer.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = c.hop.wait_for(1, WAIT);
    assert_eq!(kept.len(), 1, "{}", c.explain());
    let got = &kept[0].bytes;
    // The milter's rewrite, computed in-process from what the milter was sent: the
    // header Postfix passes on (its own Received is not among it) and the body.
    let original = std::fs::read(&file).unwrap();
    let flow = workmail_flow::config::load(&c.dir.join("milter.toml")).unwrap();
    let envelope = workmail_flow::Envelope {
        mail_from: Some("carol@corp.example".into()),
        recipients: vec!["dave@customer.example".into()],
        ..workmail_flow::Envelope::from_message(&original, workmail_flow::Direction::Inbound)
    };
    let milter_out = flow.run(&original, &envelope).output.to_vec();
    // What arrived is: the relay's Received, Postfix's Received, then the milter's
    // rewrite with the relay's stamp appended to its header.
    let text = String::from_utf8_lossy(got);
    let postfix_received = text
        .find("Received: from client.test")
        .expect("Postfix's Received");
    let after_received = &got[postfix_received..];
    let end_of_postfix_received = {
        let mut i = after_received.iter().position(|&b| b == b'\n').unwrap() + 1;
        while after_received[i] == b'\t' || after_received[i] == b' ' {
            i += after_received[i..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap()
                + 1;
        }
        i
    };
    let rest = &after_received[end_of_postfix_received..];
    let split = |m: &[u8]| {
        let i = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (m[..i + 2].to_vec(), m[i + 4..].to_vec())
    };
    let (want_header, want_body) = split(&milter_out);
    let (got_header, got_body) = split(rest);
    assert_eq!(
        String::from_utf8_lossy(&got_body),
        String::from_utf8_lossy(&want_body),
        "the body is the milter's replacement, byte for byte"
    );
    let mut want_header = want_header;
    want_header.extend_from_slice(b"X-Relay: seen\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got_header),
        String::from_utf8_lossy(&want_header)
    );
    assert!(String::from_utf8_lossy(&got_body).contains("Checked by the milter"));
}

#[test]
fn every_recipient_bounced_by_the_milter_is_rejected_with_the_bounce_text() {
    let c = chain("pf-bounce", &[], &[], "");
    let sent = send(
        c.postfix.port,
        "a@partner.example",
        &["old@closed.example"],
        &c.sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(550), "{sent:?}");
    assert!(
        sent[0]
            .text
            .contains("old@closed.example: this address no longer receives mail."),
        "{sent:?}"
    );
    assert!(c.hop.wait_for(1, Duration::from_secs(2)).is_empty());
}

#[test]
fn every_recipient_dropped_by_the_milter_is_discarded() {
    let c = chain("pf-drop", &[], &[], "");
    let sent = send(
        c.postfix.port,
        "a@partner.example",
        &["x@void.example"],
        &c.sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(
        c.postfix.wait_log("milter-discard", WAIT),
        "{}",
        c.explain()
    );
    assert!(c.hop.kept().is_empty());
}

#[test]
fn recipients_bounced_or_dropped_by_the_milter_are_removed_and_the_rest_get_the_message() {
    let c = chain("pf-partial", &[], &[], "");
    let to = ["bob@corp.example", "old@closed.example", "x@void.example"];
    let sent = send(
        c.postfix.port,
        "a@partner.example",
        &to,
        &c.sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = c.hop.wait_for(1, WAIT);
    assert_eq!(kept.len(), 1, "{}", c.explain());
    assert_eq!(kept[0].rcpt_tos, ["bob@corp.example"]);
}

#[test]
fn junk_gets_the_junk_header_on_top_or_goes_to_postfixs_hold_queue() {
    let c = chain("pf-junk", &[], &[], "");
    let sent = send(
        c.postfix.port,
        "a@partner.example",
        &["eve@junk.example"],
        &c.sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = c.hop.wait_for(1, WAIT);
    assert_eq!(kept.len(), 1, "{}", c.explain());
    let fields = names(&kept[0].bytes);
    // Below the relay's Received, above Postfix's: the top of what Postfix delivered.
    assert_eq!(fields[1], "X-Spam-Flag", "{fields:?}");
    assert!(String::from_utf8_lossy(&kept[0].bytes).contains("\r\nX-Spam-Flag: YES\r\n"));

    let q = chain("pf-quarantine", &["--junk", "quarantine"], &[], "");
    let sent = send(
        q.postfix.port,
        "a@partner.example",
        &["eve@junk.example"],
        &q.sample("plain.eml"),
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(q.postfix.wait_log("milter-hold", WAIT), "{}", q.explain());
    assert!(
        q.postfix.queue().contains('!'),
        "held: {}",
        q.postfix.queue()
    );
    assert!(q.hop.kept().is_empty());
}

#[test]
fn when_the_relays_next_hop_is_down_postfix_keeps_the_message_and_delivers_it_later() {
    let dir = scratch("pf-hop-down");
    let hop_port = common::moto::free_port();
    let hop_address = format!("127.0.0.1:{hop_port}");
    let relay_flow = write(&dir, "relay.toml", RELAY_FLOW);
    let relay = Server::start(
        &dir,
        "relay",
        &[
            "--config",
            relay_flow.to_str().unwrap(),
            "--next-hop",
            &hop_address,
            "--next-hop-tls",
            "none",
        ],
    );
    let postfix = Postfix::start(&dir, &format!("[127.0.0.1]:{}", relay.port), "");
    let raw = crlf(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/plain.eml")).unwrap(),
    );
    let file = dir.join("plain.eml");
    std::fs::write(&file, raw).unwrap();
    let sent = send(
        postfix.port,
        "a@partner.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    assert!(postfix.wait_log("451 4.4.1", WAIT), "{}", postfix.log());
    assert!(
        postfix.queue().contains("bob@corp.example"),
        "still queued: {}",
        postfix.queue()
    );
    // The next hop comes back: the retry goes through, nothing was lost.
    let hop = common::smtp::FinalHop::start_on(&dir, hop_port, &[]);
    postfix.flush();
    let kept = hop.wait_for(1, WAIT);
    assert_eq!(kept.len(), 1, "{}\n{}", postfix.log(), relay.logs());
    assert!(String::from_utf8_lossy(&kept[0].bytes).contains("X-Relay: seen"));
}

#[test]
fn tls_from_postfix_to_the_relay_and_from_the_relay_to_the_next_hop() {
    let dir = scratch("pf-tls-certs");
    let certs = make_certs(&dir);
    let (cert, key, ca) = (
        certs.cert.to_str().unwrap().to_string(),
        certs.key.to_str().unwrap().to_string(),
        certs.ca.to_str().unwrap().to_string(),
    );
    let hop_dir = scratch("pf-tls");
    let hop = FinalHop::start(&hop_dir, &["--tls-cert", &cert, "--tls-key", &key]);
    let relay_flow = write(&hop_dir, "relay.toml", RELAY_FLOW);
    let relay = Server::start(
        &hop_dir,
        "relay",
        &[
            "--config",
            relay_flow.to_str().unwrap(),
            "--next-hop",
            &hop.address(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--next-hop-tls",
            "required",
            "--next-hop-ca",
            &ca,
        ],
    );
    let main = format!(
        "smtp_tls_security_level = secure\nsmtp_tls_CAfile = {ca}\nsmtp_tls_secure_cert_match = nexthop\nsmtp_tls_loglevel = 1\n"
    );
    let postfix = Postfix::start(&hop_dir, &format!("[127.0.0.1]:{}", relay.port), &main);
    let file = hop_dir.join("plain.eml");
    std::fs::write(
        &file,
        crlf(
            &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/plain.eml"))
                .unwrap(),
        ),
    )
    .unwrap();
    let sent = send(
        postfix.port,
        "a@partner.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = hop.wait_for(1, WAIT);
    assert_eq!(kept.len(), 1, "{}\n{}", postfix.log(), relay.logs());
    assert!(kept[0].tls, "the relay reached the next hop over TLS");
    assert!(
        String::from_utf8_lossy(&kept[0].bytes).contains("with ESMTPS id"),
        "Postfix reached the relay over TLS"
    );
    assert!(
        postfix
            .log()
            .contains("Verified TLS connection established"),
        "{}",
        postfix.log()
    );
}

#[test]
fn a_40_mb_message_goes_through_postfix_the_milter_and_the_relay() {
    let c = chain("pf-40mb", &[], &[], "");
    let message = large_message(40_000_000);
    let file = c.dir.join("big.eml");
    std::fs::write(&file, &message).unwrap();
    let sent = send(
        c.postfix.port,
        "big@partner.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(sent[0].code, Some(250), "{sent:?}");
    let kept = c.hop.wait_for(1, Duration::from_secs(120));
    assert_eq!(kept.len(), 1, "{}", c.explain());
    let text = String::from_utf8_lossy(&kept[0].bytes);
    assert!(text.contains("Subject: [M] the archive"));
    assert!(text.contains("X-Relay: seen"));
    // The attachment's bytes are untouched.
    let attachment = |m: &[u8]| {
        let start = m.windows(8).position(|w| w == b"base64\r\n").unwrap();
        m[start..start + 30_000_000].to_vec()
    };
    assert!(attachment(&kept[0].bytes) == attachment(&message));
}

#[test]
fn a_hundred_concurrent_sessions_through_postfix_all_arrive() {
    let c = chain("pf-100", &[], &[], "");
    let sent = send(
        c.postfix.port,
        "a@partner.example",
        &["bob@corp.example"],
        &c.sample("attachment.eml"),
        &["--count", "100", "--parallel", "100"],
    );
    assert!(
        sent.iter().all(|s| s.code == Some(250)),
        "{:?}",
        sent.iter().find(|s| s.code != Some(250))
    );
    let kept = c.hop.wait_for(100, Duration::from_secs(120));
    assert_eq!(kept.len(), 100, "{}", c.explain());
    assert!(
        kept.iter()
            .all(|k| String::from_utf8_lossy(&k.bytes).contains("X-Milter: seen"))
    );
}

#[test]
fn when_the_milters_flow_cannot_finish_postfix_answers_tempfail() {
    let dir = scratch("pf-tempfail");
    let hop = FinalHop::start(&dir, &[]);
    let flow = write(
        &dir,
        "milter.toml",
        "[directory]\nsource = \"workmail\"\norganization_id = \"m-0123456789abcdef0123456789abcdef\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-Finance\"\nvalue = \"yes\"\nwhen = { sender_group = [\"finance\"] }\n",
    );
    let nothing = format!("http://127.0.0.1:{}", common::moto::free_port());
    let milter = Server::start_with_env(
        &dir,
        "milter",
        &["--config", flow.to_str().unwrap()],
        &[
            ("AWS_ENDPOINT_URL_WORKMAIL", &nothing),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    let main = format!(
        "smtpd_milters = inet:127.0.0.1:{}\nmilter_default_action = accept\nmilter_protocol = 6\n",
        milter.port
    );
    let postfix = Postfix::start(&dir, &format!("[127.0.0.1]:{}", hop.port), &main);
    let file = dir.join("plain.eml");
    std::fs::write(
        &file,
        crlf(
            &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/plain.eml"))
                .unwrap(),
        ),
    )
    .unwrap();
    let sent = send(
        postfix.port,
        "a@corp.example",
        &["bob@corp.example"],
        &file,
        &[],
    );
    assert_eq!(
        sent[0].code,
        Some(451),
        "{sent:?}\n{}\n{}",
        postfix.log(),
        milter.logs()
    );
    assert!(
        milter.logs().contains("directory lookup failed"),
        "{}",
        milter.logs()
    );
    assert!(hop.kept().is_empty());
}

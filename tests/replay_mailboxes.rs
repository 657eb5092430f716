//! `replay` over whole mailboxes: folders, Maildirs, mbox files, zip archives and S3
//! prefixes in, the same form out; the dry-run report; and the guards that keep an input
//! from ever being written to. Outputs are read back with Python's `mailbox` and
//! `zipfile` modules, a second reader that is not ours.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wmf-mbx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const STAMP: &str =
    "[[stage]]\ntype = \"stamp_header\"\nname = \"X-WorkMail-Flow\"\nvalue = \"processed\"\n";

fn config(dir: &Path) -> PathBuf {
    let cfg = dir.join("stamp.toml");
    std::fs::write(&cfg, STAMP).unwrap();
    cfg
}

fn message(n: usize) -> String {
    format!(
        "From: a{n}@partner.example\nTo: b@corp.example\nSubject: m{n}\nDate: Mon, 2 Nov 2026 09:00:00 +0000\n\nHello {n}\nFrom the top, a body line that mbox quotes.\n"
    )
}

fn replay(cfg: &Path, out: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    bin()
        .arg("replay")
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra)
        .args(inputs)
        .output()
        .unwrap()
}

fn python(script: &str, arg: &Path) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(arg)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "python failed");
    String::from_utf8(out.stdout).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_folder_is_replayed_recursively_keeping_relative_paths_and_passing_non_messages_through() {
    let dir = tmp("folder");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(inbox.join("2026/11")).unwrap();
    std::fs::write(inbox.join("2026/11/one.eml"), message(1)).unwrap();
    std::fs::write(inbox.join("two.eml"), message(2)).unwrap();
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01";
    std::fs::write(inbox.join("photo.png"), png).unwrap();
    let out = dir.join("out");
    let o = replay(&config(&dir), &out, &[&inbox], &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let one = std::fs::read_to_string(out.join("inbox/2026/11/one.eml")).unwrap();
    assert!(one.starts_with("From: a1@partner.example\n"), "{one}");
    assert!(one.contains("X-WorkMail-Flow: processed\n"));
    assert!(out.join("inbox/two.eml").exists());
    assert_eq!(std::fs::read(out.join("inbox/photo.png")).unwrap(), png);
    assert!(
        text.contains("photo.png: not a message (the input is a PNG image)"),
        "{text}"
    );
    assert!(text.ends_with(", 1 not a message\n"), "{text}");
    // The input is as it was.
    assert_eq!(
        std::fs::read_to_string(inbox.join("two.eml")).unwrap(),
        message(2)
    );
}

#[test]
fn the_current_folder_as_input_is_written_under_its_own_name() {
    let dir = tmp("dot");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("one.eml"), message(1)).unwrap();
    let cfg = config(&dir);
    let o = bin()
        .arg("replay")
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg("../out")
        .arg(".")
        .current_dir(&inbox)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(dir.join("out/inbox/one.eml").exists());
}

#[test]
fn a_maildir_keeps_cur_and_new_and_skips_tmp() {
    let dir = tmp("maildir");
    let md = dir.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("cur/1700000000.1.host:2,S"), message(1)).unwrap();
    std::fs::write(md.join("new/1700000001.2.host"), message(2)).unwrap();
    std::fs::write(md.join("tmp/1700000002.3.host"), "half written").unwrap();
    let out = dir.join("out");
    let o = replay(&config(&dir), &out, &[&md], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let listing = python(
        "import mailbox,sys; md=mailbox.Maildir(sys.argv[1], create=False); print(sorted(m['X-WorkMail-Flow'] for m in md))",
        &out.join("Maildir"),
    );
    assert_eq!(listing.trim(), "['processed', 'processed']");
    assert!(!out.join("Maildir/tmp/1700000002.3.host").exists());
}

#[test]
fn an_mbox_comes_back_as_an_mbox_python_reads_with_every_message_rewritten_and_quoted() {
    let dir = tmp("mbox");
    let mbox = dir.join("inbox.mbox");
    let mut text = String::new();
    for n in 0..3 {
        text.push_str(&format!(
            "From a{n}@partner.example Mon Nov  2 09:00:00 2026\n"
        ));
        text.push_str(&message(n).replace("\nFrom the top", "\n>From the top"));
        text.push('\n');
    }
    std::fs::write(&mbox, &text).unwrap();
    let out = dir.join("out");
    let o = replay(&config(&dir), &out, &[&mbox], &[]);
    let report = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    assert!(report.contains("inbox.mbox#3: changed"), "{report}");
    let read = python(
        "import mailbox,sys\nfor m in mailbox.mbox(sys.argv[1]):\n  print(m['Subject'], m['X-WorkMail-Flow'], m.get_payload().splitlines()[1])",
        &out.join("inbox.mbox"),
    );
    // Python's mbox reader does not unquote, so the quoted body line reads `>From`.
    assert_eq!(
        read,
        "m0 processed >From the top, a body line that mbox quotes.\nm1 processed >From the top, a body line that mbox quotes.\nm2 processed >From the top, a body line that mbox quotes.\n"
    );
    // Replaying the output again splits it the same way and changes nothing more.
    let again = dir.join("again");
    let o = replay(&config(&dir), &again, &[&out.join("inbox.mbox")], &[]);
    assert!(
        stdout(&o).ends_with("3 processed: 0 changed, 3 unchanged, 0 kept original, 0 failed\n"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(again.join("inbox.mbox")).unwrap(),
        std::fs::read(out.join("inbox.mbox")).unwrap()
    );
}

#[test]
fn a_zip_of_messages_comes_back_as_a_zip_with_the_same_entry_names() {
    let dir = tmp("zip");
    let zip = dir.join("export.zip");
    let make = format!(
        "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\nz.writestr('a/one.eml', {:?})\nz.writestr('two.eml', {:?})\nz.close()",
        message(1),
        message(2)
    );
    python(&make, &zip);
    let out = dir.join("out");
    let o = replay(&config(&dir), &out, &[&zip], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let read = python(
        "import zipfile,sys,email\nz=zipfile.ZipFile(sys.argv[1])\nfor n in z.namelist(): print(n, email.message_from_bytes(z.read(n))['X-WorkMail-Flow'])",
        &out.join("export.zip"),
    );
    assert_eq!(read, "a/one.eml processed\ntwo.eml processed\n");
}

#[tokio::test]
async fn an_s3_prefix_is_read_through_the_sdk_and_written_under_the_bucket_name() {
    let w = common::world::World::start("replay-s3").await;
    for (key, n) in [
        ("export/user1/1.eml", 1),
        ("export/user1/2.eml", 2),
        ("other/3.eml", 3),
    ] {
        w.s3.put_object()
            .bucket(common::world::BUCKET)
            .key(key)
            .body(message(n).into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let dir = tmp("s3");
    let out = dir.join("out");
    let o = bin()
        .arg("replay")
        .arg("--config")
        .arg(config(&dir))
        .arg("--out")
        .arg(&out)
        .arg(format!("s3://{}/export/", common::world::BUCKET))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_S3", &w.moto_url)
        .env("WORKMAIL_FLOW_S3_PATH_STYLE", "true")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let base = out.join(common::world::BUCKET).join("export/user1");
    for n in [1, 2] {
        let m = std::fs::read_to_string(base.join(format!("{n}.eml"))).unwrap();
        assert!(m.contains("X-WorkMail-Flow: processed"), "{m}");
    }
    assert!(!out.join(common::world::BUCKET).join("other").exists());
}

#[test]
fn out_inside_or_equal_to_an_input_is_refused_and_nothing_is_written() {
    let dir = tmp("guard");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("one.eml"), message(1)).unwrap();
    let cfg = config(&dir);
    for (out, input) in [
        (inbox.clone(), inbox.clone()),
        (inbox.join("results"), inbox.clone()),
        (dir.clone(), inbox.clone()),
        (inbox.clone(), inbox.join("one.eml")),
        (inbox.join("../inbox"), inbox.join("one.eml")),
    ] {
        let o = replay(&cfg, &out, &[&input], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{} {}: {err}",
            out.display(),
            input.display()
        );
        assert!(err.contains("--out"), "{err}");
        assert_eq!(
            std::fs::read_to_string(inbox.join("one.eml")).unwrap(),
            message(1)
        );
        assert!(!inbox.join("results").exists());
    }
}

#[test]
fn the_report_has_a_record_per_message_and_counts_outcomes_and_decisions() {
    let dir = tmp("report");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for n in 0..5 {
        std::fs::write(inbox.join(format!("{n}.eml")), message(n)).unwrap();
    }
    std::fs::write(inbox.join("notes.txt"), "just notes\n").unwrap();
    let report = dir.join("report.json");
    let out = dir.join("out");
    let o = replay(
        &config(&dir),
        &out,
        &[&inbox],
        &["--report", report.to_str().unwrap(), "--jobs", "3"],
    );
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 6);
    assert_eq!(v["summary"]["outcomes"]["changed"], 5);
    assert_eq!(v["summary"]["outcomes"]["not a message"], 1);
    assert_eq!(
        v["summary"]["decisions"]["stage 1 (stamp_header)"]["added X-WorkMail-Flow"],
        5
    );
    let first = &v["messages"][0];
    assert_eq!(first["outcome"], "changed");
    assert!(first["bytes_out"].as_u64() > first["bytes_in"].as_u64());
    // With three workers, the lines still come in input order.
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    let mut sorted = lines[..6].to_vec();
    sorted.sort();
    assert_eq!(lines[..6], sorted[..]);
    // The terminal gets the same table.
    assert!(String::from_utf8_lossy(&o.stderr).contains("5  added X-WorkMail-Flow"));
}

#[test]
fn events_without_an_envelope_and_bad_recipients_are_clear_errors() {
    let dir = tmp("events");
    let cfg = config(&dir);
    let msg = dir.join("m.eml");
    std::fs::write(&msg, message(1)).unwrap();
    let event = dir.join("event.json");
    std::fs::write(&event, r#"{"messageId":"m","flowDirection":"INBOUND"}"#).unwrap();
    let o = replay(
        &cfg,
        &dir.join("out"),
        &[&msg],
        &["--event", event.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing field `envelope`"));
    std::fs::write(
        &event,
        r#"{"envelope":{"recipients":[{"address":"a@x.example, b@y.example"}]},"messageId":"m","flowDirection":"INBOUND"}"#,
    )
    .unwrap();
    let o = replay(
        &cfg,
        &dir.join("out"),
        &[&msg],
        &["--event", event.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("envelope.recipients[0].address") && err.contains("list"),
        "{err}"
    );
    for bad in ["", "a@x.example\nb@y.example", "nobody"] {
        let o = replay(&cfg, &dir.join("out"), &[&msg], &["--recipient", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--recipient"));
    }
}

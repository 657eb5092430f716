//! `contrib/postfix/workmail-flow-filter`, run as Postfix's pipe(8) runs it: message on
//! stdin, envelope as arguments, the result handed to `sendmail`. A stand-in sendmail
//! records its arguments and input, as Postfix's would receive them.

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
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"{d}/args\"\ncat > \"{d}/message\"\nexit {sendmail_exit}\n",
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

fn run_filter(s: &Setup, config: &Path, input: &[u8]) -> i32 {
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
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait().unwrap().code().unwrap()
}

#[test]
fn the_filter_rewrites_the_message_and_reinjects_it_with_the_same_envelope() {
    let s = setup("ok", 0);
    let input = std::fs::read(root().join("samples/plain.eml")).unwrap();
    let code = run_filter(&s, &root().join("samples/flow.toml"), &input);
    assert_eq!(code, 0);
    let args = std::fs::read_to_string(s.dir.join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
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
    let message = String::from_utf8(std::fs::read(s.dir.join("message")).unwrap()).unwrap();
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
    assert!(!s.dir.join("message").exists(), "nothing reinjected");
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

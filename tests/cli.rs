//! The `workmail-flow` binary as users and scripts call it: exit codes, output files,
//! the stdin/stdout filter, and error messages that name the file, stage and key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wmf-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn replay_writes_every_sample_and_reports_one_line_each() {
    let out = tmp("replay");
    let samples: Vec<PathBuf> = ["plain", "alternative", "attachment", "signed"]
        .iter()
        .map(|s| root().join(format!("samples/{s}.eml")))
        .collect();
    let o = bin()
        .arg("replay")
        .arg("--config")
        .arg(root().join("samples/flow.toml"))
        .arg("--out")
        .arg(&out)
        .args(&samples)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    for s in &samples {
        let written = out.join(s.file_name().unwrap());
        assert!(written.exists(), "{}", written.display());
        let check = bin()
            .arg("check")
            .arg("--original")
            .arg(s)
            .arg(&written)
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(0), "{:?}", text(&check));
    }
}

#[test]
fn replay_of_an_unchanged_message_writes_an_identical_copy() {
    let out = tmp("copy");
    let cfg = out.join("empty.toml");
    std::fs::write(&cfg, "").unwrap();
    let input = root().join("samples/signed.eml");
    let o = bin()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("unchanged"));
    assert_eq!(
        std::fs::read(out.join("signed.eml")).unwrap(),
        std::fs::read(&input).unwrap()
    );
}

#[test]
fn replay_dash_filters_stdin_to_stdout() {
    let mut child = bin()
        .args(["replay", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(root().join("samples/plain.eml")).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("X-WorkMail-Flow: processed\r\n"));
    assert_eq!(
        out.replace("X-WorkMail-Flow: processed\r\n", "").as_bytes(),
        input.as_slice()
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("changed"));
}

#[test]
fn replay_with_an_event_uses_its_envelope() {
    let out = tmp("event");
    let o = bin()
        .args(["replay", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg("--event")
        .arg(root().join("samples/events/plain.json"))
        .arg("--out")
        .arg(&out)
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[test]
fn a_bad_config_exits_2_naming_file_stage_and_key() {
    let dir = tmp("badcfg");
    let cfg = dir.join("flow.toml");
    std::fs::write(&cfg, "[[stage]]\ntype = \"stamp_header\"\nname = \"X-A\"\nvalue = \"1\"\n\n[[stage]]\ntype = \"stamp_header\"\nname = \"X-B\"\nvalue = \"2\"\nmoed = \"set\"\n").unwrap();
    let o = bin()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&dir)
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let (_, stderr) = text(&o);
    assert!(
        stderr.contains(&format!(
            "{}: stage 2 (stamp_header): key `moed`: unknown key",
            cfg.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_input_fails_that_message_with_exit_1_and_processes_the_rest() {
    let out = tmp("missing");
    let o = bin()
        .args(["replay", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg("--out")
        .arg(&out)
        .arg(Path::new("/nonexistent/x.eml"))
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("/nonexistent/x.eml: failed: cannot read"),
        "{stdout}"
    );
    assert!(out.join("plain.eml").exists());
}

#[test]
fn replay_without_out_for_files_is_a_usage_error() {
    let o = bin()
        .args(["replay", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_exits_0_for_a_clean_message_1_with_violations_2_on_io_errors() {
    let dir = tmp("check");
    let ok = root().join("samples/plain.eml");
    assert_eq!(
        bin().arg("check").arg(&ok).status().unwrap().code(),
        Some(0)
    );

    let long = dir.join("long.eml");
    let mut m = std::fs::read(&ok).unwrap();
    m.extend_from_slice(&[b'x'; 1200]);
    std::fs::write(&long, &m).unwrap();
    let o = bin().arg("check").arg(&long).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .0
            .contains("bytes before the line break, the limit is 998"),
        "{:?}",
        text(&o)
    );

    let changed = dir.join("changed.eml");
    std::fs::write(
        &changed,
        String::from_utf8(std::fs::read(&ok).unwrap())
            .unwrap()
            .replace(
                "Subject: Q3 numbers",
                "Subject: Q3 numbers\r\nSubject: again",
            ),
    )
    .unwrap();
    let o = bin()
        .arg("check")
        .arg("--original")
        .arg(&ok)
        .arg(&changed)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).0.contains("field Subject: appears 2 times"),
        "{:?}",
        text(&o)
    );

    assert_eq!(
        bin()
            .args(["check", "/nonexistent.eml"])
            .status()
            .unwrap()
            .code(),
        Some(2)
    );
    assert_eq!(bin().arg("check").status().unwrap().code(), Some(2));
}

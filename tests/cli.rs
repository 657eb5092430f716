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

/// A flow that only stamps a header, so a test can say exactly what the output is.
fn stamp_config() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = tmp(&format!("stamp-config-{n}"));
    let cfg = dir.join("stamp.toml");
    std::fs::write(
        &cfg,
        "[[stage]]\ntype = \"stamp_header\"\nname = \"X-WorkMail-Flow\"\nvalue = \"processed\"\n",
    )
    .unwrap();
    cfg
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
    assert_eq!(
        stdout.lines().count(),
        5,
        "four messages and the summary: {stdout}"
    );
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
fn replay_with_events_gives_each_sample_its_own_event() {
    let out = tmp("events");
    let o = bin()
        .arg("replay")
        .arg("--config")
        .arg(root().join("samples/flow.toml"))
        .arg("--events")
        .arg(root().join("samples/events"))
        .arg("--out")
        .arg(&out)
        .arg(root().join("samples/alternative.eml"))
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap()
            .to_string()
    };
    // alternative.json is outbound from corp.example: the disclaimer, no tag.
    assert!(
        line("alternative.eml").contains("stage 3 (disclaimer): added"),
        "{stdout}"
    );
    assert!(
        line("alternative.eml").contains("subject_tag): skipped"),
        "{stdout}"
    );
    // plain.json is inbound from a partner: the tag.
    assert!(line("plain.eml").contains("tagged the subject"), "{stdout}");

    // A broken event is an error naming its file.
    let events = tmp("bad-events");
    std::fs::write(events.join("plain.json"), "{").unwrap();
    let o = bin()
        .arg("replay")
        .arg("--config")
        .arg(root().join("samples/flow.toml"))
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .arg(root().join("samples/plain.eml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("plain.json: not a WorkMail event"),
        "{stdout}{stderr}"
    );
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
        .arg(stamp_config())
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

/// A folder of messages that end each way a replay can end: changed, unchanged, kept
/// original (a header line over 998 characters the stamp cannot make legal), failed.
fn mixed_outcomes(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let cfg = dir.join("flow.toml");
    std::fs::write(
        &cfg,
        "[[stage]]\ntype = \"stamp_header\"\nname = \"X-Flow\"\nvalue = \"seen\"\n",
    )
    .unwrap();
    let changed = dir.join("changed.eml");
    std::fs::write(
        &changed,
        "From: a@example.com\r\nSubject: one\r\n\r\nbody\r\n",
    )
    .unwrap();
    let unchanged = dir.join("unchanged.eml");
    std::fs::write(
        &unchanged,
        "From: a@example.com\r\nX-Flow: seen\r\nSubject: two\r\n\r\nbody\r\n",
    )
    .unwrap();
    let kept = dir.join("kept.eml");
    std::fs::write(
        &kept,
        format!(
            "From: a@example.com\r\nX-Long: {}\r\nSubject: three\r\n\r\nbody\r\n",
            "x".repeat(1200)
        ),
    )
    .unwrap();
    let missing = dir.join("missing.eml");
    (cfg, vec![changed, unchanged, kept, missing])
}

#[test]
fn replay_ends_with_a_summary_counting_each_outcome() {
    let dir = tmp("tally");
    let (cfg, inputs) = mixed_outcomes(&dir);
    let o = bin()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("out"))
        .args(&inputs)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "a failed input: {stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].ends_with("changed.eml: changed | stage 1 (stamp_header): added X-Flow"),
        "{stdout}"
    );
    assert!(lines[1].contains("unchanged.eml: unchanged"), "{stdout}");
    assert!(
        lines[2].contains("kept.eml: kept original (content rules"),
        "{stdout}"
    );
    assert!(
        lines[3].contains("missing.eml: failed: cannot read"),
        "{stdout}"
    );
    assert_eq!(
        lines[4],
        "summary: 4 processed: 1 changed, 1 unchanged, 1 kept original, 1 failed"
    );
}

#[test]
fn replay_diff_shows_the_disclaimer_lines_added_to_the_decoded_text() {
    let dir = tmp("diff");
    let cfg = dir.join("flow.toml");
    std::fs::write(
        &cfg,
        "[[stage]]\ntype = \"disclaimer\"\ntext = \"Confidential: meant for its addressees only.\"\n",
    )
    .unwrap();
    let input = root().join("samples/alternative.eml");
    let o = bin()
        .args(["replay", "--diff", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("out"))
        .arg(&input)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    let name = input.display().to_string();
    for want in [
        format!("--- {name} [1] text/plain (original)\n+++ {name} [1] text/plain (output)\n"),
        "+Confidential: meant for its addressees only.\n".to_string(),
        format!("--- {name} [2] text/html (original)\n+++ {name} [2] text/html (output)\n"),
        "+<p>Confidential: meant for its addressees only.</p>\n".to_string(),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in\n{stdout}");
    }
    assert!(
        !stdout.contains("headers (original)"),
        "no header changed: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("summary: 1 processed: 1 changed")
    );
}

#[test]
fn replay_diff_in_stdin_mode_goes_to_stderr_and_stdout_stays_the_message() {
    let mut child = bin()
        .args(["replay", "--diff", "--config"])
        .arg(stamp_config())
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
    assert_eq!(
        out.replace("X-WorkMail-Flow: processed\r\n", "").as_bytes(),
        input.as_slice(),
        "stdout holds the message and nothing else"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--- - headers (original)\n"), "{stderr}");
    assert!(
        stderr.contains("\n+X-WorkMail-Flow: processed\n"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("summary:"),
        "one message, no summary: {stderr}"
    );
}

#[test]
fn replay_of_many_messages_piped_draws_no_progress_bar() {
    let dir = tmp("many");
    let src = std::fs::read(root().join("samples/plain.eml")).unwrap();
    let inputs: Vec<PathBuf> = (0..25)
        .map(|i| {
            let p = dir.join(format!("m{i:02}.eml"));
            std::fs::write(&p, &src).unwrap();
            p
        })
        .collect();
    let o = bin()
        .args(["replay", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(&inputs)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}{stderr:?}"
    );
    assert!(
        !stderr.contains("messages,"),
        "no bar text either: {stderr:?}"
    );
    assert_eq!(stdout.lines().count(), 26, "{stdout}");
}

#[test]
fn explain_draws_the_tree_and_marks_what_each_stage_decided() {
    let dir = tmp("explain");
    let cfg = dir.join("flow.toml");
    std::fs::write(
        &cfg,
        "[[stage]]\ntype = \"strip_attachments\"\nextensions = [\"exe\"]\n",
    )
    .unwrap();
    let o = bin()
        .args(["explain", "--config"])
        .arg(&cfg)
        .arg(root().join("samples/attachment.eml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("[0] multipart/mixed"), "{stdout}");
    assert!(
        stdout.contains(
            "└─ [3] application/x-msdownload  base64, 32 B, attachment, \"update.exe\"\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("stage 1 (strip_attachments): stripped: extension exe"),
        "{stdout}"
    );
    assert!(
        stdout
            .ends_with("outcome: changed: the rewritten message passes WorkMail's content rules\n")
    );
    let ascii = bin()
        .args(["explain", "--ascii", "--config"])
        .arg(&cfg)
        .arg(root().join("samples/attachment.eml"))
        .output()
        .unwrap();
    assert!(ascii.stdout.is_ascii());
}

#[test]
fn explain_of_a_missing_message_is_a_usage_error() {
    let o = bin()
        .args(["explain", "--config"])
        .arg(root().join("samples/flow.toml"))
        .arg("/nonexistent/x.eml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("/nonexistent/x.eml: cannot read"));
}

/// The subcommands the top-level help lists, read from it so a new one is covered too.
fn subcommands() -> Vec<String> {
    let o = bin().arg("--help").output().unwrap();
    let help = text(&o).0;
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let commands = subcommands();
    for want in ["explain", "replay", "check", "invoke", "emulate"] {
        assert!(
            commands.iter().any(|c| c == want),
            "{want} not in {commands:?}"
        );
    }
    for c in &commands {
        let o = bin().args([c.as_str(), "--help"]).output().unwrap();
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{c}: {stderr}");
        assert!(
            stdout.contains("Example"),
            "{c} --help has no example:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("\n  workmail-flow {c} ")),
            "{c}: the example keeps its own indented line:\n{stdout}"
        );
    }
    let top = bin().arg("--help").output().unwrap();
    assert!(text(&top).0.contains("Examples:\n  workmail-flow explain"));
}

#[test]
fn version_prints_the_crate_version() {
    let o = bin().arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o).0.trim(),
        format!("workmail-flow {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_and_explain_agree_that_a_picture_is_not_a_message() {
    let dir = tmp("png");
    let png = dir.join("photo.eml");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00").unwrap();
    let check = bin().arg("check").arg(&png).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check)
            .0
            .contains("not a message: the input is a PNG image"),
        "{:?}",
        text(&check)
    );
    let explain = bin()
        .arg("explain")
        .arg("--config")
        .arg(stamp_config())
        .arg(&png)
        .output()
        .unwrap();
    let (out, _) = text(&explain);
    assert!(
        out.contains("outcome: not a message: the input is a PNG image"),
        "{out}"
    );
    let replay = bin()
        .arg("replay")
        .arg("--config")
        .arg(stamp_config())
        .arg("--out")
        .arg(dir.join("out"))
        .arg(&png)
        .output()
        .unwrap();
    assert!(text(&replay).0.contains("photo.eml: not a message"));
    assert_eq!(
        std::fs::read(dir.join("out/photo.eml")).unwrap(),
        std::fs::read(&png).unwrap()
    );
}

#[test]
fn replay_into_a_closed_pipe_does_not_panic_and_still_writes_every_result() {
    let out = tmp("epipe");
    let mut child = bin()
        .arg("replay")
        .arg("--config")
        .arg(stamp_config())
        .arg("--out")
        .arg(&out)
        .arg(root().join("samples/plain.eml"))
        .arg(root().join("samples/signed.eml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.join("plain.eml").exists() && out.join("signed.eml").exists());
}

//! The commands the README and docs tell users to type, held to the command line the
//! binary really has: every `workmail-flow ...` and `cargo run [--release] -- ...` line in
//! a shell block of README.md and docs/*.md is parsed with the CLI's own parser, so a
//! renamed flag or subcommand fails here, not on a user's first try. Runnable ones (the
//! README's main job and `explain`) are run as well.

use clap::Parser;
use std::path::{Path, PathBuf};
use workmail_flow::cli::Cli;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Words of a shell command line, up to the first pipe, redirection, `&`, `;` or comment;
/// single and double quotes group words.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '|' | '<' | '>' | '&' | ';' | '#' => break,
                c if c.is_whitespace() => {
                    if in_word {
                        out.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The workmail-flow arguments of a documented command line, if it is one.
fn cli_args(line: &str) -> Option<Vec<String>> {
    let w = words(line.trim());
    // Leading VAR=value assignments and /usr/bin/time and its flags.
    let mut i = 0;
    while i < w.len() && (w[i].contains('=') && !w[i].starts_with('-')) {
        i += 1;
    }
    if w.get(i).is_some_and(|x| x.ends_with("/time")) {
        i += 1;
        while w.get(i).is_some_and(|x| x.starts_with('-')) {
            i += 1;
            if w.get(i - 1).is_some_and(|x| x == "-f") {
                i += 1;
            }
        }
    }
    let rest = &w[i..];
    let args = if rest
        .first()
        .is_some_and(|x| x == "workmail-flow" || x.ends_with("/workmail-flow"))
    {
        rest[1..].to_vec()
    } else if rest.first().is_some_and(|x| x == "cargo") && rest.get(1).is_some_and(|x| x == "run")
    {
        let sep = rest.iter().position(|x| x == "--")?;
        // `cargo run --example x -- ...` runs another binary: its CLI is this one too.
        rest[sep + 1..].to_vec()
    } else {
        return None;
    };
    Some(args)
}

/// Every command line in the shell blocks of the README and docs, with where it is.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut files: Vec<PathBuf> = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_shell = false;
        let mut pending = String::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(lang) = line.trim_start().strip_prefix("```") {
                in_shell = !in_shell && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
                continue;
            }
            if !in_shell {
                continue;
            }
            // Continued lines.
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let full = std::mem::take(&mut pending) + line;
            if let Some(args) = cli_args(&full) {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                out.push((format!("{name}:{}: {}", n + 1, full.trim()), args));
            }
        }
    }
    out
}

#[test]
fn every_documented_command_line_parses_with_the_real_cli() {
    let commands = documented_commands();
    assert!(
        commands.len() >= 10,
        "found only {} commands",
        commands.len()
    );
    let mut failures = Vec::new();
    for (place, args) in &commands {
        let argv = std::iter::once("workmail-flow".to_string()).chain(args.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv) {
            failures.push(format!(
                "{place}\n    {}",
                e.to_string().lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "documented commands the CLI refuses:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_readmes_main_job_and_explain_run_as_written() {
    let out = std::env::temp_dir().join(format!("wmf-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let main_job = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- replay"))
        .expect("the README's main job");
    let mut args = cli_args(main_job).unwrap();
    // The glob the shell would expand.
    let glob = args.iter().position(|a| a == "samples/*.eml").unwrap();
    args.remove(glob);
    for s in ["alternative", "attachment", "plain", "signed"] {
        args.insert(glob, format!("samples/{s}.eml"));
    }
    let o_at = args.iter().position(|a| a == "--out").unwrap();
    args[o_at + 1] = out.display().to_string();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
        .args(&args)
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .ends_with("summary: 4 processed: 4 changed, 0 unchanged, 0 kept original, 0 failed\n"),
        "{stdout}"
    );
    let explain = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- explain"))
        .expect("the README's explain example");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"))
        .args(cli_args(explain).unwrap())
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&run.stdout).contains("outcome: changed"));
}

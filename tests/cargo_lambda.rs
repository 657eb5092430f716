//! The `rewrite` binary under a Lambda Runtime API nobody here wrote: cargo-lambda's
//! (`cargo lambda watch --only-lambda-apis`), invoked with every sample event through
//! `cargo lambda invoke --data-file`, exactly the loop docs/deploy.md gives users, end to
//! end against moto as S3 and the Message Flow emulator as WorkMail.
//!
//! cargo-lambda sends `Lambda-Runtime-Deadline-Ms: 600000` (a moment in 1970): the
//! function must take that for "no deadline" and still rewrite, not answer every event
//! at once with "deadline reached". Each answer and each put-back message must be what
//! the same config gives in-process.
//!
//! The binary is `WORKMAIL_FLOW_REWRITE_BIN` when set (CI sets the release build), else
//! this build's. cargo-lambda is `CARGO_LAMBDA`, else `.venv-ci/bin/cargo-lambda`
//! (`.ci/run` installs it with pip), else on PATH; missing, the test fails.

mod common;

use common::world::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use workmail_flow::StageRegistry;
use workmail_flow::event::{Envelope, WorkMailEvent};
use workmail_flow::lambda::Function;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_lambda() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_LAMBDA") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv-ci/bin/cargo-lambda");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("cargo-lambda"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found: `.venv-ci/bin/pip install cargo-lambda` (as .ci/run does) or set CARGO_LAMBDA"
            )
        })
}

fn rewrite_bin() -> PathBuf {
    std::env::var_os("WORKMAIL_FLOW_REWRITE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rewrite")))
}

async fn wait_for_port(port: u16) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_sample_event_through_cargo_lambdas_runtime_api_is_answered_and_put_back() {
    let w = World::start("cargo-lambda").await;
    let config = root().join("samples/flow.toml");
    let function = Function::load(Some(&config), &StageRegistry::builtin(), |k| {
        (k == "WORKMAIL_FLOW_BUCKET").then(|| BUCKET.to_string())
    })
    .unwrap();

    let mut events: Vec<PathBuf> = std::fs::read_dir(root().join("samples/events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    events.sort();
    assert!(events.len() >= 4, "{events:?}");
    for path in &events {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let raw = std::fs::read(root().join(format!("samples/{stem}.eml"))).unwrap();
        w.message(stem, &raw);
    }

    let port = common::moto::free_port();
    let mut watch = tokio::process::Command::new(cargo_lambda())
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
        .args(["-P", &port.to_string()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start cargo lambda watch");
    wait_for_port(port).await;

    let mut rewrite = tokio::process::Command::new(rewrite_bin());
    child_env(&w, &mut rewrite);
    rewrite
        .env("WORKMAIL_FLOW_CONFIG", &config)
        // What `cargo lambda watch --only-lambda-apis` tells the function to set.
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let function_process = rewrite.spawn().expect("start the rewrite binary");

    for path in &events {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let event: WorkMailEvent =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let out = tokio::process::Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .arg("--data-file")
            .arg(path)
            .current_dir(root())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{stem}: cargo lambda invoke failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{stem}: {e}: {}", String::from_utf8_lossy(&out.stdout)));

        // The same config, in-process, on the same message and envelope.
        let raw = std::fs::read(root().join(format!("samples/{stem}.eml"))).unwrap();
        let expected = function.pipeline.run(&raw, &Envelope::from(&event));
        assert_eq!(
            answer,
            serde_json::to_value(expected.actions.to_response()).unwrap(),
            "{stem}"
        );
        match (expected.is_changed(), w.updated(stem)) {
            (true, Some(updated)) => assert!(
                updated == expected.output.to_vec(),
                "{stem}: the put-back message differs from the in-process rewrite"
            ),
            (true, None) => panic!("{stem}: changed, but nothing was put back"),
            (false, None) => {}
            (false, Some(_)) => panic!("{stem}: unchanged, yet something was put back"),
        }
    }
    let changed = events
        .iter()
        .filter(|p| {
            w.updated(p.file_stem().unwrap().to_str().unwrap())
                .is_some()
        })
        .count();
    assert!(
        changed >= 3,
        "the sample flow changes most samples ({changed})"
    );

    let mut function_process = function_process;
    function_process.start_kill().unwrap();
    let logs = function_process.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&logs.stdout);
    assert!(
        !stdout.contains("deadline reached"),
        "the emulator's deadline was read as passed: {stdout}"
    );
    assert_eq!(
        stdout.matches("the runtime's deadline is absent").count(),
        1,
        "one warning about cargo-lambda's deadline: {stdout}"
    );
    watch.start_kill().unwrap();
}

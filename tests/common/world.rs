//! moto as S3 and the Message Flow emulator as WorkMail on 127.0.0.1, a fresh folder of
//! messages, and real SDK clients pointed at both: the world the end-to-end tests run in.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_workmailmessageflow::config::retry::RetryConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workmail_flow::aws::{AwsStore, Upload};
use workmail_flow::emulator::{self, Emulator};
use workmail_flow::event::WorkMailEvent;
use workmail_flow::handler;
use workmail_flow::pipeline::Pipeline;
use workmail_flow::{StageRegistry, config};

pub const BUCKET: &str = "mail-out";
pub const STAMP: &str =
    "[[stage]]\ntype = \"stamp_header\"\nname = \"X-WorkMail-Flow\"\nvalue = \"processed\"\n";
pub const MSG: &[u8] = b"From: Alice <alice@partner.example>\r\nTo: bob@corp.example\r\nSubject: Q3\r\nDate: Mon, 02 Nov 2026 09:14:00 +0000\r\nMessage-ID: <q3@partner.example>\r\n\r\nNumbers attached.\r\n";

/// Quick retries so transient-fault tests finish fast (3 attempts, ms backoff).
pub fn fast_retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(10))
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(fast_retry())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn workmail_client(endpoint: &str) -> aws_sdk_workmailmessageflow::Client {
    let conf = aws_sdk_workmailmessageflow::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(fast_retry())
        .build();
    aws_sdk_workmailmessageflow::Client::from_conf(conf)
}

/// moto, the emulator serving a fresh folder, and clients pointed at both.
pub struct World {
    _moto: super::moto::Moto,
    pub moto_url: String,
    pub emulator_url: String,
    pub dir: PathBuf,
    pub s3: aws_sdk_s3::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl World {
    pub async fn start(name: &str) -> World {
        World::start_with_emulator_s3(name, None).await
    }

    /// `emulator_s3`: where the emulator reads uploads from (default: moto).
    pub async fn start_with_emulator_s3(name: &str, emulator_s3: Option<&str>) -> World {
        World::start_full(name, emulator_s3, None).await
    }

    /// The emulator also answers WorkMail's directory API from `directory`.
    pub async fn start_with_directory(name: &str, directory: &Path) -> World {
        let d = workmail_flow::envelope::FileDirectory::load(directory).unwrap();
        World::start_full(name, None, Some(d)).await
    }

    async fn start_full(
        name: &str,
        emulator_s3: Option<&str>,
        directory: Option<workmail_flow::envelope::FileDirectory>,
    ) -> World {
        let moto = super::moto::start();
        let moto_url = moto.url();
        let dir = std::env::temp_dir().join(format!("wmf-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s3 = s3_client(&moto_url);
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let emulator_url = format!("http://{}", listener.local_addr().unwrap());
        let reader = s3_client(emulator_s3.unwrap_or(&moto_url));
        let mut emu = Emulator::new(&dir, reader);
        if let Some(d) = directory {
            emu = emu.with_directory(d);
        }
        let server = tokio::spawn(emulator::serve(listener, Arc::new(emu)));
        World {
            _moto: moto,
            moto_url,
            emulator_url,
            dir,
            s3,
            server,
        }
    }

    pub fn store(&self) -> AwsStore {
        AwsStore::from_clients(
            workmail_client(&self.emulator_url),
            self.s3.clone(),
            Some(Upload {
                bucket: BUCKET.into(),
                prefix: Upload::DEFAULT_PREFIX.into(),
            }),
        )
    }

    pub fn message(&self, id: &str, raw: &[u8]) {
        std::fs::write(self.dir.join(format!("{id}.eml")), raw).unwrap();
    }

    pub fn fault(&self, id: &str, kind: &str, value: &str) {
        std::fs::write(self.dir.join(format!("{id}.{kind}")), value).unwrap();
    }

    pub fn updated(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(format!("{id}.updated"))).ok()
    }

    pub async fn object_keys(&self) -> Vec<String> {
        let list = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        list.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }
}

pub fn event(id: &str) -> WorkMailEvent {
    serde_json::from_value(serde_json::json!({
        "summaryVersion": "2019-07-28",
        "envelope": { "mailFrom": { "address": "alice@partner.example" },
                      "recipients": [ { "address": "bob@corp.example" } ] },
        "subject": "Q3",
        "messageId": id,
        "invocationId": "0123456789abcdef0123456789abcdef",
        "flowDirection": "INBOUND",
        "truncated": false
    }))
    .unwrap()
}

pub fn pipeline(text: &str) -> Arc<Pipeline> {
    Arc::new(
        config::parse(
            text,
            Path::new("t.toml"),
            Path::new("."),
            &StageRegistry::builtin(),
        )
        .unwrap(),
    )
}

pub fn soon() -> Instant {
    handler::answer_deadline(Instant::now(), None)
}

impl World {
    /// A store whose S3 client goes through `s3_url` (a fault hop in front of moto);
    /// WorkMail is the emulator as usual.
    pub fn store_via(&self, s3_url: &str) -> AwsStore {
        AwsStore::from_clients(
            workmail_client(&self.emulator_url),
            s3_client(s3_url),
            Some(Upload {
                bucket: BUCKET.into(),
                prefix: Upload::DEFAULT_PREFIX.into(),
            }),
        )
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub async fn open_multipart_uploads(&self) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap()
            .uploads()
            .len()
    }
}

/// Environment for a child process talking to this world's servers.
pub fn child_env(w: &World, cmd: &mut tokio::process::Command) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_ENDPOINT_URL_S3", &w.moto_url)
        .env("AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW", &w.emulator_url)
        .env("AWS_ENDPOINT_URL_WORKMAIL", &w.emulator_url)
        .env("WORKMAIL_FLOW_BUCKET", BUCKET)
        .kill_on_drop(true);
}

/// Starts `workmail-flow emulate` on a free port over the world's folder, reading uploads
/// from moto, with `extra` arguments; returns the child and the URL it prints.
pub async fn spawn_emulate(
    w: &World,
    extra: &[&std::ffi::OsStr],
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_workmail-flow"));
    child_env(w, &mut cmd);
    cmd.args([
        "emulate",
        "--port",
        "0",
        "--s3-endpoint",
        &w.moto_url,
        "--messages",
    ])
    .arg(&w.dir)
    .args(extra)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    (child, url)
}

//! The Lambda function's start-up and per-invocation glue around [`crate::workmail::handler`]:
//! configuration from the environment, the AWS clients built once, logging, and the
//! Lambda runtime loop. `handlers/rewrite.rs` is a thin `main` over this, and
//! `workmail-flow invoke` runs the same code once in-process.
//!
//! Environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `WORKMAIL_FLOW_CONFIG` | path of the flow config; without it, the `flow.toml` bundled at build time |
//! | `WORKMAIL_FLOW_BUCKET` | bucket for rewritten messages; required when any stage can change a message |
//! | `WORKMAIL_FLOW_PREFIX` | key prefix, default `workmail-flow/` |
//! | `WORKMAIL_FLOW_S3_PATH_STYLE` | `true` for path-style S3 addressing (local S3 servers on `localhost`) |
//! | `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW` | the SDK's own endpoint overrides, for loopback servers |
//! | `AWS_LAMBDA_LOG_FORMAT` | `JSON` for one JSON object per log record |
//! | `AWS_LAMBDA_LOG_LEVEL` | the level Lambda's advanced logging controls set (`TRACE` to `FATAL`); `RUST_LOG`, when set, overrides it |

use crate::config::{self, ConfigError};
use crate::pipeline::Pipeline;
use crate::stage::StageRegistry;
use crate::workmail::aws::{AwsStore, Upload};
use crate::workmail::directory::CachedDirectory;
use crate::workmail::event::WorkMailEvent;
use crate::workmail::handler::{self, HandlerError, HandlerResult};
use crate::workmail::metrics::{InvocationMetrics, MetricOutcome};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workmail_flow_core::config::DirectorySettings;

/// The flow config compiled into the binary (`flow.toml` at the crate root).
pub const BUNDLED_CONFIG: &str = include_str!("../../flow.toml");

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "WORKMAIL_FLOW_PREFIX {0:?}: WorkMail reads only S3 keys of letters, digits, '-' and '/'"
    )]
    BadPrefix(String),
    #[error(
        "{config}: {stage} can change messages, so the environment variable WORKMAIL_FLOW_BUCKET must name the bucket for rewritten messages"
    )]
    MissingBucket { config: String, stage: String },
    #[error("the directory cannot be opened: {0}")]
    Directory(String),
}

/// Everything the function builds once at start-up.
pub struct Function {
    /// Shared with the thread each invocation runs its stages on.
    pub pipeline: Arc<Pipeline>,
    pub upload: Option<Upload>,
    /// Where the config came from, for logs.
    pub config_source: String,
    /// The config's `[directory]`, opened by [`Function::open_directory`]; kept for the
    /// warm container's life, with its cache.
    pub directory: Option<CachedDirectory>,
}

impl Function {
    /// Loads the config (`config_path`, else the bundled one) with `registry`'s stages and
    /// checks the upload settings in `env`.
    pub fn load(
        config_path: Option<&Path>,
        registry: &StageRegistry,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Function, StartupError> {
        let (pipeline, config_source) = match config_path {
            Some(path) => (
                config::load_with(path, registry)?,
                path.display().to_string(),
            ),
            None => {
                let name = "flow.toml (bundled)";
                (
                    config::parse(BUNDLED_CONFIG, Path::new(name), Path::new("."), registry)?,
                    name.to_string(),
                )
            }
        };
        let upload = match env("WORKMAIL_FLOW_BUCKET").filter(|b| !b.is_empty()) {
            Some(bucket) => {
                let prefix = env("WORKMAIL_FLOW_PREFIX")
                    .unwrap_or_else(|| Upload::DEFAULT_PREFIX.to_string());
                // Rewriting a bad prefix would give keys outside the role's s3:PutObject
                // resource; refuse it where the operator sees it.
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/')
                {
                    return Err(StartupError::BadPrefix(prefix));
                }
                Some(Upload { bucket, prefix })
            }
            None => {
                if let Some(s) = pipeline.stages().iter().find(|s| s.stage.changes_message()) {
                    return Err(StartupError::MissingBucket {
                        config: config_source,
                        stage: s.label.clone(),
                    });
                }
                None
            }
        };
        Ok(Function {
            pipeline: Arc::new(pipeline),
            upload,
            config_source,
            directory: None,
        })
    }

    /// Opens the directory the config names (`override_file`: a file instead, as
    /// `--directory FILE` asks), with `conf` for WorkMail's API. No `[directory]` and no
    /// override: nothing to open.
    pub async fn open_directory(
        &mut self,
        conf: &aws_config::SdkConfig,
        override_file: Option<&Path>,
    ) -> Result<(), StartupError> {
        let settings = match (override_file, &self.pipeline.directory) {
            (Some(path), Some(s)) => {
                let mut s = s.clone();
                s.source = workmail_flow_core::config::DirectorySource::File {
                    path: path.to_path_buf(),
                };
                s
            }
            (Some(path), None) => DirectorySettings::file(path.to_path_buf()),
            (None, Some(s)) => s.clone(),
            (None, None) => return Ok(()),
        };
        let dir = crate::workmail::directory::open(&settings, Some(conf))
            .await
            .map_err(|e| StartupError::Directory(e.to_string()))?;
        self.directory = Some(dir);
        Ok(())
    }

    /// Loads from the process environment (`WORKMAIL_FLOW_CONFIG` and friends).
    pub fn from_env(registry: &StageRegistry) -> Result<Function, StartupError> {
        // An empty value (a template that passes its empty parameter) means unset.
        let path = std::env::var_os("WORKMAIL_FLOW_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Function::load(path.as_deref(), registry, |k| std::env::var(k).ok())
    }
}

/// Where log records go: Lambda reads the function's stdout; a command whose stdout is
/// its answer (`invoke`) logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    Stdout,
    Stderr,
}

/// The log filter: `RUST_LOG` when set (a full `tracing` filter), else the level
/// Lambda's advanced logging controls put in `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn log_filter(
    rust_log: Option<&str>,
    lambda_level: Option<&str>,
) -> tracing_subscriber::EnvFilter {
    if let Some(f) = rust_log
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
    {
        return f;
    }
    let level = match lambda_level
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        // tracing has no level above error.
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    };
    tracing_subscriber::EnvFilter::new(level)
}

/// Sets up `tracing` for the function: JSON records when `AWS_LAMBDA_LOG_FORMAT=JSON`,
/// plain text otherwise, level from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else
/// `info` (see [`log_filter`]).
pub fn init_logging(to: LogTo) {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let _ = match (json, to) {
        (true, LogTo::Stdout) => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
        (true, LogTo::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, LogTo::Stdout) => builder.try_init(),
        (false, LogTo::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// The error WorkMail sees (and retries on): a stable type name and the message.
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> lambda_runtime::Diagnostic {
        let error_type = match &e {
            HandlerError::Fetch { .. } => "FetchFailed",
            HandlerError::Put { .. } => "PutFailed",
            HandlerError::Directory { .. } => "DirectoryLookupFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: e.to_string(),
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Converts Lambda's deadline (milliseconds since the epoch) to an `Instant`. A deadline
/// that is zero or not in the future is no deadline (`None`): emulators send odd values
/// (cargo-lambda's sends `600000`, a moment in 1970), and reading one as "already
/// passed" would deliver every message unchanged. The handler then keeps WorkMail's own
/// 15 s.
pub fn lambda_deadline(deadline_ms: u64, now_ms: u64) -> Option<Instant> {
    (deadline_ms > now_ms).then(|| Instant::now() + Duration::from_millis(deadline_ms - now_ms))
}

/// Set once the function has warned about an unusable deadline.
static WARNED_NO_DEADLINE: AtomicBool = AtomicBool::new(false);

/// [`lambda_deadline`] for the runtime's value, warning once per process when it is not
/// usable.
fn runtime_deadline(deadline_ms: u64) -> Option<Instant> {
    let deadline = lambda_deadline(deadline_ms, now_ms() as u64);
    if deadline.is_none() && !WARNED_NO_DEADLINE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            deadline_ms,
            "the runtime's deadline is absent, zero or already past; answering within WorkMail's 15 s instead"
        );
    }
    deadline
}

/// The CloudWatch embedded-metric record of one invocation, as the function prints it.
pub fn emf_line(
    event: &WorkMailEvent,
    result: &Result<HandlerResult, HandlerError>,
    started: Instant,
) -> String {
    let (outcome, size) = match result {
        Ok(r) => (MetricOutcome::from_delivery(&r.delivery), r.size),
        Err(_) => (MetricOutcome::Error, 0),
    };
    InvocationMetrics {
        direction: event.flow_direction,
        outcome,
        duration: started.elapsed(),
        size,
    }
    .to_emf(now_ms())
}

/// Runs one event through the handler with AWS clients.
pub async fn invoke(
    function: &Function,
    store: &AwsStore,
    event: &WorkMailEvent,
    lambda_deadline: Option<Instant>,
) -> Result<HandlerResult, HandlerError> {
    let deadline = handler::answer_deadline(Instant::now(), lambda_deadline);
    handler::handle_with(
        event,
        &function.pipeline,
        store,
        function.directory.as_ref(),
        deadline,
    )
    .await
}

/// The Lambda runtime loop: builds clients once, then answers events until the runtime
/// stops. Custom handlers call this with their own registry.
pub async fn run(registry: StageRegistry) -> Result<(), lambda_runtime::Error> {
    init_logging(LogTo::Stdout);
    let mut function = match Function::from_env(&registry) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return Err(e.into());
        }
    };
    let conf = crate::workmail::aws::sdk_config().await;
    if let Err(e) = function.open_directory(&conf, None).await {
        tracing::error!(error = %e, "cannot start");
        return Err(e.into());
    }
    tracing::info!(config = %function.config_source, stages = function.pipeline.len(), directory = function.directory.is_some(), "started");
    let store = AwsStore::new(&conf, function.upload.clone());
    let function = &function;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<WorkMailEvent>| async move {
            let started = Instant::now();
            let deadline = runtime_deadline(ev.context.deadline);
            let result = invoke(function, store, &ev.payload, deadline).await;
            // EMF records go to stdout on their own lines, where CloudWatch reads them.
            println!("{}", emf_line(&ev.payload, &result, started));
            result.map(|r| r.response)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_deadline_that_is_zero_or_past_is_no_deadline() {
        let now = 1_800_000_000_000;
        assert!(lambda_deadline(0, now).is_none());
        assert!(
            lambda_deadline(600_000, now).is_none(),
            "cargo-lambda's value"
        );
        assert!(lambda_deadline(now, now).is_none());
        let d = lambda_deadline(now + 5_000, now).unwrap();
        let left = d - Instant::now();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
    }

    #[test]
    fn rust_log_overrides_lambdas_log_level_which_overrides_info() {
        let f = |r: Option<&str>, l: Option<&str>| log_filter(r, l).to_string();
        assert_eq!(f(None, None), "info");
        assert_eq!(f(None, Some("DEBUG")), "debug");
        assert_eq!(f(None, Some("warn")), "warn");
        assert_eq!(f(None, Some("FATAL")), "error");
        assert_eq!(f(None, Some("nonsense")), "info");
        assert_eq!(f(Some("trace"), Some("ERROR")), "trace");
        assert_eq!(f(Some(""), Some("ERROR")), "error");
    }

    #[test]
    fn the_bundled_config_loads() {
        let env = |k: &str| (k == "WORKMAIL_FLOW_BUCKET").then(|| "b".to_string());
        let f = Function::load(None, &StageRegistry::builtin(), env).unwrap();
        assert!(!f.pipeline.is_empty());
        assert_eq!(f.upload.unwrap().prefix, "workmail-flow/");
    }

    #[test]
    fn a_changing_flow_without_a_bucket_stops_start_up_naming_the_variable() {
        let e = Function::load(None, &StageRegistry::builtin(), no_env)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("WORKMAIL_FLOW_BUCKET"), "{e}");
        assert!(
            e.contains("flow.toml (bundled): stage 1 (stamp_header)"),
            "{e}"
        );
    }

    #[test]
    fn a_prefix_workmail_cannot_read_stops_start_up() {
        let env = |k: &str| match k {
            "WORKMAIL_FLOW_BUCKET" => Some("b".to_string()),
            "WORKMAIL_FLOW_PREFIX" => Some("mail_out/".to_string()),
            _ => None,
        };
        let e = Function::load(None, &StageRegistry::builtin(), env)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("WORKMAIL_FLOW_PREFIX \"mail_out/\""), "{e}");
    }

    #[test]
    fn a_verdict_only_flow_needs_no_bucket() {
        let dir = std::env::temp_dir().join(format!("wmf-lambda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("verdicts.toml");
        std::fs::write(
            &path,
            "[[stage]]\ntype = \"verdict\"\naction = \"default\"\n",
        )
        .unwrap();
        let f = Function::load(Some(&path), &StageRegistry::builtin(), no_env).unwrap();
        assert!(f.upload.is_none());
    }

    #[test]
    fn a_broken_config_stops_start_up_naming_file_stage_and_key() {
        let dir = std::env::temp_dir().join(format!("wmf-lambda-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flow.toml");
        std::fs::write(
            &path,
            "[[stage]]\ntype = \"stamp_header\"\nname = \"Received\"\nvalue = \"x\"\n",
        )
        .unwrap();
        let e = Function::load(Some(&path), &StageRegistry::builtin(), no_env)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("stage 1 (stamp_header): key `name`"), "{e}");
    }
}

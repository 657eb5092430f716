//! What `relay` and `milter` share on the command line: the flow, the directory, the
//! direction, what an internal error becomes, and the session limits.

use crate::pipeline::Pipeline;
use crate::stage::StageRegistry;
use crate::transport::serve::ServeOptions;
use crate::workmail::directory::CachedDirectory;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use workmail_flow_core::Direction;
use workmail_flow_core::config::DirectorySettings;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The flow config (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The direction the stages' conditions see for every message.
    #[arg(long, value_parser = ["inbound", "outbound"], default_value = "inbound")]
    pub direction: String,
    /// A directory file (TOML `[[user]]` tables) instead of the config's `[directory]`.
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// What a message gets when the flow does not finish (a stage panics or runs past
    /// --stage-timeout): `tempfail` (the sender retries), or `accept` (the original goes
    /// on with the verdicts decided so far and the fail-closed actions of security
    /// stages). A directory that cannot be read follows its own `on_error`.
    #[arg(long, value_parser = ["tempfail", "accept"], default_value = "tempfail")]
    pub on_error: String,
    /// Seconds the stages may take for one message.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stage_timeout: u64,
    /// Sessions in flight at most; more connections are refused (the relay says 421).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_sessions: usize,
    /// Seconds sessions in flight get to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub drain_timeout: u64,
}

/// The flow and its directory, loaded; errors name the file.
pub struct Loaded {
    pub pipeline: Arc<Pipeline>,
    pub directory: Option<Arc<CachedDirectory>>,
    pub direction: Direction,
}

impl ServerArgs {
    pub async fn load(&self, registry: &StageRegistry) -> Result<Loaded, String> {
        let pipeline =
            crate::config::load_with(&self.config, registry).map_err(|e| e.to_string())?;
        let settings = match (&self.directory, &pipeline.directory) {
            (Some(path), Some(s)) => {
                let mut s = s.clone();
                s.source = workmail_flow_core::config::DirectorySource::File { path: path.clone() };
                Some(s)
            }
            (Some(path), None) => Some(DirectorySettings::file(path.clone())),
            (None, s) => s.clone(),
        };
        let directory = match settings {
            Some(s) => Some(Arc::new(
                crate::workmail::directory::open(&s, None)
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let direction = Direction::parse(&self.direction).unwrap_or_default();
        Ok(Loaded {
            pipeline: Arc::new(pipeline),
            directory,
            direction,
        })
    }

    pub fn accept_on_error(&self) -> bool {
        self.on_error == "accept"
    }

    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.stage_timeout.max(1))
    }

    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            max_sessions: self.max_sessions.max(1),
            drain: Duration::from_secs(self.drain_timeout),
        }
    }
}

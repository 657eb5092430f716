//! Command-line interface: argument definitions and one module per subcommand.
//! Uses the engine and the WorkMail transport (`workmail/`); nothing but the binaries uses it.
//!
//! Exit codes are shared: 0 all good, 1 a message failed or broke a rule, 2 usage,
//! config or I/O errors that stop the run.

pub mod batch;
pub mod check;
pub mod emulate;
pub mod envelope;
pub mod explain;
pub mod invoke;
pub mod mailbox;
pub mod milter;
pub mod relay;
pub mod replay;
pub mod report;
pub mod server;

use crate::stage::StageRegistry;
use clap::{Parser, Subcommand};

/// Exit code: every message was fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one message failed or broke a rule.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage, config or I/O.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "workmail-flow",
    version,
    about = "Byte-exact email rewriting for Amazon WorkMail message-flow Lambdas and mail-server pipes",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Shown under the top-level help: the two commands a newcomer starts with.
const AFTER_HELP: &str = "\
Examples:
  workmail-flow explain --config samples/flow.toml samples/attachment.eml
  workmail-flow replay --config samples/flow.toml --out out --diff samples/*.eml

Each command has its own help with examples: workmail-flow help <COMMAND>";

#[derive(Debug, Subcommand)]
pub enum Command {
    Explain(explain::ExplainArgs),
    Replay(replay::ReplayArgs),
    Check(check::CheckArgs),
    Invoke(invoke::InvokeArgs),
    Emulate(emulate::EmulateArgs),
    Relay(relay::RelayArgs),
    Milter(milter::MilterArgs),
}

/// An async runtime for a command that talks to servers, or the exit code after saying
/// why there is none.
pub(crate) fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, u8> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        EXIT_FAILED
    })
}

/// Runs a parsed command line with the built-in stages and returns its exit code.
pub fn run(cli: Cli) -> u8 {
    run_with(cli, &StageRegistry::builtin())
}

/// Runs a parsed command line with the stages of `registry` and returns its exit code.
pub fn run_with(cli: Cli, registry: &StageRegistry) -> u8 {
    match cli.command {
        Command::Explain(args) => explain::run(&args, registry),
        Command::Replay(args) => replay::run(&args, registry),
        Command::Check(args) => check::run(&args),
        Command::Invoke(args) => invoke::run(&args, registry),
        Command::Emulate(args) => emulate::run(&args),
        Command::Relay(args) => relay::run(&args, registry),
        Command::Milter(args) => milter::run(&args, registry),
    }
}

/// The whole `workmail-flow` command line for a binary of your own whose configs use
/// your stages beside the built-in ones: `explain`, `replay`, `invoke` and the rest, with
/// `registry`. A custom binary's `main` is one line:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let mut registry = workmail_flow::StageRegistry::builtin();
///     // registry.register("my_stage", my_stage::build);
///     workmail_flow::cli::main_with(registry)
/// }
/// ```
pub fn main_with(registry: StageRegistry) -> std::process::ExitCode {
    std::process::ExitCode::from(run_with(Cli::parse(), &registry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{KeyError, Stage, StageContext, StageKeys, StageReport};

    struct Tagger;

    impl Stage for Tagger {
        fn run(&self, _: &crate::mime_tree::MimeTree<'_>, _: &mut StageContext<'_>) -> StageReport {
            StageReport::unchanged("looked")
        }
    }

    fn build(_: &mut StageKeys) -> Result<Box<dyn Stage>, KeyError> {
        Ok(Box::new(Tagger))
    }

    #[test]
    fn run_with_a_registry_lets_every_subcommand_use_custom_stages() {
        let dir = std::env::temp_dir().join(format!("wmf-cli-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("flow.toml");
        std::fs::write(&cfg, "[[stage]]\ntype = \"tagger\"\n").unwrap();
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/plain.eml");
        let explain = || {
            Cli::try_parse_from([
                "workmail-flow",
                "explain",
                "--config",
                cfg.to_str().unwrap(),
                sample,
            ])
            .unwrap()
        };
        // The built-in registry does not know the stage: a usage error.
        assert_eq!(run(explain()), EXIT_USAGE);
        let mut registry = StageRegistry::builtin();
        registry.register("tagger", build);
        assert_eq!(run_with(explain(), &registry), EXIT_OK);
        let replay = Cli::try_parse_from([
            "workmail-flow",
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
            sample,
        ])
        .unwrap();
        assert_eq!(run_with(replay, &registry), EXIT_OK);
        assert!(dir.join("out/plain.eml").exists());
    }
}

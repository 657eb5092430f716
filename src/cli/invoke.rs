//! `workmail-flow invoke`: runs the Lambda handler once in-process with real AWS clients.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::stage::StageRegistry;
use crate::workmail::aws::AwsStore;
use crate::workmail::event::WorkMailEvent;
use crate::workmail::lambda::{self, Function};
use clap::Args;
use std::path::PathBuf;

/// Run the Lambda handler once for a WorkMail event, in-process, with real AWS clients.
///
/// Reads the event, fetches the message from the Message Flow API, runs the flow, uploads
/// and puts back a changed message, and prints the response WorkMail would get. The same
/// environment as the function applies (WORKMAIL_FLOW_BUCKET, WORKMAIL_FLOW_PREFIX,
/// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW, AWS_ENDPOINT_URL_WORKMAIL,
/// AWS credentials and Region).
///
/// Example, against the local emulator and an S3 server:
///   AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW=http://127.0.0.1:8025 \
///   AWS_ENDPOINT_URL_S3=http://127.0.0.1:5000 WORKMAIL_FLOW_BUCKET=mail \
///   workmail-flow invoke --event samples/events/plain.json --config samples/flow.toml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InvokeArgs {
    /// The WorkMail event (JSON).
    #[arg(long, value_name = "EVENT.json")]
    pub event: PathBuf,
    /// The flow config; default WORKMAIL_FLOW_CONFIG, else the bundled flow.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also print, on stderr, the CloudWatch metrics record (EMF) the function would
    /// write for this invocation.
    #[arg(long)]
    pub metrics: bool,
    /// A directory file (TOML `[[user]]` tables) instead of the config's `[directory]`.
    /// Without it a `source = "workmail"` directory is asked through the SDK
    /// (AWS_ENDPOINT_URL_WORKMAIL points it at `emulate --directory`).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
}

pub fn run(args: &InvokeArgs, registry: &StageRegistry) -> u8 {
    lambda::init_logging(lambda::LogTo::Stderr);
    let event: WorkMailEvent = match std::fs::read_to_string(&args.event)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not a WorkMail event: {e}")))
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}: {e}", args.event.display());
            return EXIT_USAGE;
        }
    };
    let config = args
        .config
        .clone()
        .or_else(|| std::env::var_os("WORKMAIL_FLOW_CONFIG").map(PathBuf::from));
    let mut function = match Function::load(config.as_deref(), registry, |k| std::env::var(k).ok())
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let runtime = match super::runtime(false) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let conf = crate::workmail::aws::sdk_config().await;
        if conf.region().is_none() {
            eprintln!("error: {}", crate::workmail::aws::NO_REGION);
            return EXIT_USAGE;
        }
        if let Err(e) = function
            .open_directory(&conf, args.directory.as_deref())
            .await
        {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        let store = AwsStore::new(&conf, function.upload.clone());
        let started = std::time::Instant::now();
        let result = lambda::invoke(&function, &store, &event, None).await;
        if args.metrics {
            eprintln!("{}", lambda::emf_line(&event, &result, started));
        }
        match result {
            Ok(result) => {
                eprintln!("delivery: {:?}", result.delivery);
                println!(
                    "{}",
                    serde_json::to_string(&result.response).expect("responses serialize")
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_FAILED
            }
        }
    })
}

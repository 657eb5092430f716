//! `workmail-flow emulate`: a local WorkMail Message Flow API (see `crate::workmail::emulator`).

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::workmail::emulator::{self, Emulator};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use workmail_flow_core::envelope::FileDirectory;

/// Serve WorkMail's Message Flow API on 127.0.0.1 from a folder of messages.
///
/// GET /messages/{id} answers DIR/{id}.eml (or DIR/{id}.updated once a put was
/// accepted); POST /messages/{id} reads the referenced S3 object, applies WorkMail's
/// content rules (MessageRejected with the reason, InvalidContentLocation when the object
/// cannot be read) and writes what it accepts to DIR/{id}.updated. Faults can be
/// injected per message with DIR/{id}.frozen, .reject, .throttle, .unavailable and
/// .delay-ms files (see the README). With --directory FILE it also answers WorkMail's
/// directory API (POST / with X-Amz-Target: WorkMailService.DescribeEntity,
/// DescribeUser, ListGroupsForEntity); DIR/directory.throttle and
/// DIR/directory.unavailable inject faults there.
///
/// Example:
///   workmail-flow emulate --messages work/messages --port 8025 --s3-endpoint http://127.0.0.1:5000
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EmulateArgs {
    /// Folder of <messageId>.eml files.
    #[arg(long, value_name = "DIR")]
    pub messages: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 8025)]
    pub port: u16,
    /// S3 endpoint to read uploaded objects from; default AWS_ENDPOINT_URL_S3 or AWS.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Also answer WorkMail's directory API (DescribeEntity, DescribeUser,
    /// ListGroupsForEntity) from this directory file, for `[directory] source =
    /// "workmail"` with AWS_ENDPOINT_URL_WORKMAIL pointing here.
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
}

pub fn run(args: &EmulateArgs) -> u8 {
    if !args.messages.is_dir() {
        eprintln!("error: {}: not a folder", args.messages.display());
        return EXIT_USAGE;
    }
    let directory = match args
        .directory
        .as_deref()
        .map(FileDirectory::load)
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    if !emulator::has_messages(&args.messages) {
        eprintln!(
            "warning: {} holds no .eml files yet",
            args.messages.display()
        );
    }
    let runtime = match super::runtime(true) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on 127.0.0.1:{}: {e}", args.port);
                return EXIT_USAGE;
            }
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let conf = crate::workmail::aws::sdk_config().await;
        if conf.region().is_none() {
            eprintln!("error: {}", crate::workmail::aws::NO_REGION);
            return EXIT_USAGE;
        }
        let s3 = emulator::s3_client(&conf, args.s3_endpoint.as_deref());
        println!("listening on http://{addr}");
        let mut emu = Emulator::new(&args.messages, s3);
        if let Some(d) = directory {
            emu = emu.with_directory(d);
        }
        emulator::serve(listener, Arc::new(emu)).await;
        EXIT_FAILED
    })
}

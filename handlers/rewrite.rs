//! The `rewrite` Lambda function: WorkMail's synchronous "Run Lambda" rule calls it for
//! every message. All of it lives in the library (`workmail_flow::lambda`); a custom
//! handler is this file with its own stages registered in the registry.

// The runtime loop's future (Lambda runtime, AWS SDK, handler) nests deeper than the
// compiler's default layout query depth when clippy checks the test build.
#![recursion_limit = "256"]

use workmail_flow::StageRegistry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    workmail_flow::lambda::run(StageRegistry::builtin()).await
}

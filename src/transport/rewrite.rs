//! One message through the flow for a mail-server transport: the directory lookups the
//! stages need, the stages on a thread of their own raced against a time budget (a
//! slow or panicking stage cannot hold a session), and the decisions logged.

use super::delivery::DeliveryPlan;
use crate::pipeline::{Outcome, Pipeline};
use crate::workmail::directory::CachedDirectory;
use crate::workmail::handler::{log_decisions, run_by};
use std::sync::Arc;
use std::time::Duration;
use workmail_flow_core::Envelope;

/// A message the flow ran over.
#[derive(Debug)]
pub struct Rewritten {
    /// What to deliver: the rewrite, or the original when nothing changed or the rewrite
    /// was kept back.
    pub message: Vec<u8>,
    pub changed: bool,
    /// What each recipient gets.
    pub plan: DeliveryPlan,
    /// One line for the logs: the outcome and each stage's decisions.
    pub summary: String,
}

/// Why the flow did not finish for a message.
#[derive(Debug)]
pub enum NotRewritten {
    /// The directory could not be read and the config says `on_error = "retry"`.
    Directory(String),
    /// The stages failed (a panic) or ran past the budget, during `step`. `plan` is
    /// what holds if the original goes on: the verdicts decided so far plus what security
    /// stages ask for when they could not check the message; `fail_closed` says why
    /// they asked (empty when none did).
    CutShort {
        step: String,
        timed_out: bool,
        plan: DeliveryPlan,
        fail_closed: Vec<String>,
    },
}

impl std::fmt::Display for NotRewritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRewritten::Directory(why) => write!(f, "directory lookup failed: {why}"),
            NotRewritten::CutShort {
                step, timed_out, ..
            } => {
                if *timed_out {
                    write!(f, "the stages ran past their time budget during {step}")
                } else {
                    write!(f, "the stages failed during {step}")
                }
            }
        }
    }
}

/// Runs `pipeline` over `raw` for `envelope`, giving the stages at most `budget`.
pub async fn rewrite(
    pipeline: &Arc<Pipeline>,
    directory: Option<&CachedDirectory>,
    raw: Vec<u8>,
    mut envelope: Envelope,
    budget: Duration,
) -> Result<Rewritten, NotRewritten> {
    let deadline = tokio::time::Instant::now() + budget;
    envelope.directory =
        crate::workmail::directory::view_by(pipeline, directory, &raw, &envelope, deadline)
            .await
            .map_err(|e| NotRewritten::Directory(e.what))?;
    let recipients = envelope.recipients.clone();
    let (raw, planned) = match run_by(deadline, pipeline, raw, envelope).await {
        Ok(ran) => ran,
        Err((cut, timed_out)) => {
            for why in &cut.fail_closed {
                tracing::warn!(reason = %why, "the rewrite is not delivered; failing closed");
            }
            return Err(NotRewritten::CutShort {
                step: cut.step,
                timed_out,
                plan: DeliveryPlan::new(&cut.answer, &recipients),
                fail_closed: cut.fail_closed,
            });
        }
    };
    let result = planned.map_output(|plan| plan.into_output(&raw));
    log_decisions(&result);
    if let Outcome::KeptOriginal(why) = &result.outcome {
        tracing::warn!(reason = %why, "the rewrite was kept back; the original goes on");
    }
    let changed = result.is_changed();
    let summary = result.summary();
    let plan = DeliveryPlan::new(&result.actions, &recipients);
    let message = if changed {
        result.output.to_vec()
    } else {
        drop(result);
        raw
    };
    Ok(Rewritten {
        message,
        changed,
        plan,
        summary,
    })
}

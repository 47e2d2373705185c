//! `loop until COND every D within D`: the step's action (with its own
//! retries) is run, its output captured, and the condition evaluated; while
//! the condition is false the action runs again `every` later, until the
//! window `within` (counted from the first round) has no room for another
//! round. A failed round fails the step, as a failed action does. A
//! condition that cannot be decided (a dry run's simulated capture) ends
//! the loop, as it passes a `verify`.

use super::action::Site;
use super::context::{Bindings, RunCtx};
use super::scheduler::{capture, NodeResult};
use crate::events::{ActionStatus, ConditionPurpose};
use crate::plan::{Action, Node};

pub(super) async fn run(
    ctx: &RunCtx,
    node: &Node,
    action: &Action,
    site: &Site<'_>,
    scope: &Bindings,
    res: &mut NodeResult,
) -> Result<(), String> {
    let Some(policy) = node.repeat.as_deref() else {
        return Ok(());
    };
    let id = node.id.as_str();
    let clock = *ctx.emitter.clock();
    let deadline = clock.now() + policy.within;
    let mut round = 0u32;
    loop {
        round += 1;
        let a = ctx.with_retry(action, site, scope, node.retry).await;
        res.attempts += a.attempts;
        if !a.is_ok() {
            if a.status == ActionStatus::Cancelled {
                res.state = super::scheduler::NodeState::Cancelled;
            }
            res.in_doubt = matches!(a.status, ActionStatus::Timeout | ActionStatus::Cancelled)
                && node.effect >= crate::plan::Effect::Write;
            return Err(format!("round {round} of the loop: {}", a.reason));
        }
        res.action_done = true;
        if let Some(cap) = &node.capture {
            let name = super::scheduler::stored_as(&cap.name, scope);
            capture(ctx, id, cap.format, &name, a.output)?;
        }
        let out = ctx
            .condition(
                Some(id),
                &policy.condition,
                ConditionPurpose::Until,
                scope,
                round,
            )
            .await;
        match out.result {
            Ok(Some(true)) | Ok(None) => return Ok(()),
            Ok(Some(false)) => {}
            Err(e) => {
                return Err(format!(
                    "loop until `{}` could not be evaluated: {e}",
                    policy.condition.text
                ))
            }
        }
        if clock.now() + policy.every > deadline {
            return Err(format!(
                "loop until `{}` did not hold within {} ({round} round(s))",
                policy.condition.text,
                humantime::format_duration(policy.within)
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.every) => {}
            _ = ctx.opts.cancel.cancelled() => {
                res.state = super::scheduler::NodeState::Cancelled;
                return Err("cancelled during loop".into());
            }
        }
    }
}

//! Periodic status updates (`every D notify ...`): beside the whole run
//! (written at runbook level) or beside one step (written in it).
//!
//! The rule: the first update goes out after the interval or after five
//! minutes ([`crate::plan::FIRST_STATUS_UPDATE`]), whichever is shorter;
//! then one every interval, counted from the start (a slow send does not
//! push the next one back). A step's updates are sent while the step is
//! in progress (from when it is reached to when it ends, its `verify` and
//! retries included); the run's while its steps, its rollback and its
//! `always` steps run, and not after (the `on success` / `on failure`
//! handlers say how it ended). A failed update is a warning: it never
//! fails the run or the step.

use super::action::Site;
use super::context::{Bindings, RunCtx};
use crate::events::{EventKind, Phase};
use crate::plan::{Effect, RetryPolicy, StatusUpdate};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The node name the run's own status updates are logged under.
pub const RUN_NODE: &str = "status_update";

/// Runs `work` with `updates` sent beside it, logged under `node`; once
/// `work` is done, an update being sent is finished, and no other starts.
pub(crate) async fn beside<F: std::future::Future>(
    ctx: &RunCtx,
    node: &str,
    updates: &[StatusUpdate],
    scope: &Bindings,
    work: F,
) -> F::Output {
    if updates.is_empty() {
        return work.await;
    }
    let stop = CancellationToken::new();
    let work = async {
        let r = work.await;
        stop.cancel();
        r
    };
    let (r, ()) = tokio::join!(work, send(ctx, node, updates, scope, &stop));
    r
}

/// Sends `updates` on their schedule, counted from now, until `stop` is
/// cancelled (an update being sent then is finished first: a journal never
/// holds a send without its end).
async fn send(
    ctx: &RunCtx,
    node: &str,
    updates: &[StatusUpdate],
    scope: &Bindings,
    stop: &CancellationToken,
) {
    let start = tokio::time::Instant::now();
    let mut sent = vec![0u32; updates.len()];
    loop {
        let next = updates
            .iter()
            .zip(&sent)
            .enumerate()
            .map(|(i, (u, n))| (u.due(n + 1), i))
            .min();
        let Some((due, i)) = next else { return };
        tokio::select! {
            // An update due as the work ends is not sent.
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(start + due) => {}
        }
        sent[i] += 1;
        let Some(u) = updates.get(i) else { continue };
        let site = Site {
            node,
            phase: Phase::Status,
            effect: Effect::Notify,
            timeout: ctx.settings().default_timeout,
        };
        let a = ctx
            .with_retry(&u.notify, &site, scope, RetryPolicy::NONE)
            .await;
        if !a.is_ok() {
            ctx.emit(
                Some(node),
                EventKind::Warning {
                    message: format!("status update {} failed: {}", sent[i], a.reason),
                },
            );
        }
    }
}

/// The run's status updates, sent by a task of their own until
/// [`stop_run_updates`].
pub(crate) struct RunUpdates {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the run's status updates, if it has any, counted from now.
pub(crate) fn start_run_updates(ctx: &Arc<RunCtx>) {
    if ctx.graph.status_updates.is_empty() {
        return;
    }
    let stop = CancellationToken::new();
    let (c, s) = (ctx.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let graph = c.graph.clone();
        send(
            &c,
            RUN_NODE,
            &graph.status_updates,
            &Bindings::default(),
            &s,
        )
        .await
    });
    *ctx.run_updates.lock().unwrap_or_else(|e| e.into_inner()) = Some(RunUpdates { stop, task });
}

/// Stops the run's status updates (see [`start_run_updates`]): an
/// update being sent is finished first.
pub(crate) async fn stop_run_updates(ctx: &RunCtx) {
    let updates = ctx
        .run_updates
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(u) = updates {
        u.stop.cancel();
        let _ = u.task.await;
    }
}

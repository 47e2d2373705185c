//! Stopping a run: the caller's [`Cancel`] handle, and Ctrl-C / SIGTERM for
//! a run attended from a terminal.

use tokio_util::sync::CancellationToken;

/// Cancels a session's run from outside it (another thread, a server's
/// request handler). Cloning shares the run's tokens.
#[derive(Debug, Clone)]
pub struct Cancel {
    pub(crate) cancel: CancellationToken,
    pub(crate) cancel_rollback: CancellationToken,
}

impl Cancel {
    /// No new step starts, running actions are stopped, then the rollback
    /// (unless the request turned `rollback_on_cancel` off).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Stops the rollback too (a second Ctrl-C).
    pub fn stop_rollback(&self) {
        self.cancel_rollback.cancel();
    }
}

/// First Ctrl-C / SIGTERM: `cancel`; second: `stop_rollback`, each said on
/// stderr (the terminal the run is attended from). Call inside the runtime,
/// before the run emits anything: the handlers are installed here, at once
/// (a spawned task is first polled only when the run yields, and a signal
/// that came before would kill the process instead of cancelling the run).
pub(crate) fn watch_signals(cancel: Cancel) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::spawn(async move {
        for stage in 0..2 {
            let got = tokio::select! {
                r = recv(&mut interrupt) => r.is_some(),
                r = recv(&mut term) => r.is_some(),
            };
            if !got {
                return;
            }
            if stage == 0 {
                eprintln!("\ncancelling: no new step starts, running actions are stopped, then the rollback (Ctrl-C again stops the rollback)");
                cancel.cancel();
            } else {
                eprintln!("\nstopping the rollback");
                cancel.stop_rollback();
            }
        }
    });
}

/// The next signal of a stream, or never when it could not be installed.
async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream.as_mut() {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

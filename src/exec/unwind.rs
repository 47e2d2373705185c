//! A panic inside a future, caught: what a spawned task's `JoinError` gives
//! the scheduler, for a node it runs in its own task instead.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `F`, turning a panic into `Err(message)`.
pub(super) struct CatchUnwind<F> {
    inner: F,
}

impl<F: Future + Unpin> CatchUnwind<F> {
    pub(super) fn new(inner: F) -> Self {
        CatchUnwind { inner }
    }
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // After a panic the future is never polled again (the scheduler
        // takes the `Err` and drops it), so a broken invariant inside it
        // cannot be observed: unwind safety holds in practice.
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// Worded as tokio words a panicked task (`JoinError`'s `Display`), less
/// the task id, which a node run in place does not have.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    match text {
        Some(t) => format!("task panicked with message {t:?}"),
        None => "task panicked".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::CatchUnwind;

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message() {
        let r = CatchUnwind::new(Box::pin(async { panic!("boom {}", 1) })).await;
        assert_eq!(
            r,
            Err::<(), _>("task panicked with message \"boom 1\"".into())
        );
        let ok = CatchUnwind::new(Box::pin(async { 7 })).await;
        assert_eq!(ok, Ok(7));
    }
}

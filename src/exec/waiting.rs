//! Sinks hold text back while a run goes on without waiting (the console
//! of a dry run writes its lines in chunks); they must show it before the
//! run waits for anything. A future that returns `Pending` is about to
//! wait: [`FlushWhenWaiting`] flushes the emitter then.

use crate::events::Emitter;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `F`; each time it returns `Pending`, flushes the emitter's sinks.
pub(crate) struct FlushWhenWaiting<'a, F> {
    emitter: &'a Emitter,
    inner: F,
}

impl<'a, F: Future + Unpin> FlushWhenWaiting<'a, F> {
    pub(crate) fn new(emitter: &'a Emitter, inner: F) -> Self {
        FlushWhenWaiting { emitter, inner }
    }
}

impl<F: Future + Unpin> Future for FlushWhenWaiting<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let p = Pin::new(&mut self.inner).poll(cx);
        if p.is_pending() {
            self.emitter.flush();
        }
        p
    }
}

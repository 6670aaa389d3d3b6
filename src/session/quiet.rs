//! A future that is polled again only after it asked to be: the session loop waits on the
//! signals that end a session (shutdown, kick, eviction) and on its idle timer beside every
//! command, and each of those takes a lock to be polled, while nearly every wake-up of the
//! loop is for a command or a transfer. Wrapped in [`Quiet`], such a signal costs a flag
//! read per wake-up and is polled only once it has woken the task itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// `inner` (pinned by its owner), polled on the first poll and afterwards only when it has
/// woken its waker since it was last polled.
pub(super) struct Quiet<'a, F> {
    inner: Pin<&'a mut F>,
    relay: Arc<Relay>,
    /// The waker `inner` holds: it marks the relay and wakes the task.
    relay_waker: Waker,
    /// The task's waker as last handed to the relay (compared without a lock).
    task: Option<Waker>,
}

/// What `inner` wakes: a flag, and the task to wake.
struct Relay {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<'a, F: Future> Quiet<'a, F> {
    pub(super) fn new(inner: Pin<&'a mut F>) -> Quiet<'a, F> {
        let relay = Arc::new(Relay {
            // Polled at the first poll, to register the relay.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Quiet {
            inner,
            relay_waker: Waker::from(Arc::clone(&relay)),
            relay,
            task: None,
        }
    }

    /// The wrapped future, to change it (a timer's new deadline); it is polled at the next
    /// poll, so the change takes effect.
    pub(super) fn inner(&mut self) -> Pin<&mut F> {
        self.relay.woken.store(true, Ordering::Relaxed);
        self.inner.as_mut()
    }
}

impl<F: Future> Future for Quiet<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            *this.relay.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            this.task = Some(cx.waker().clone());
        }
        // Cleared before the poll: a wake-up during or after it sets the flag again.
        if !this.relay.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.relay_waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Counts its polls; ready once `token` is cancelled.
    async fn counted(token: CancellationToken, polls: &std::cell::Cell<u32>) {
        let mut wait = std::pin::pin!(token.cancelled_owned());
        std::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            wait.as_mut().poll(cx)
        })
        .await
    }

    #[tokio::test]
    async fn polled_once_until_its_waker_fires_then_ready() {
        let token = CancellationToken::new();
        let polls = std::cell::Cell::new(0);
        let signal = std::pin::pin!(counted(token.clone(), &polls));
        let mut quiet = std::pin::pin!(Quiet::new(signal));
        // Many wake-ups of the task for other reasons: the signal is polled at the first only.
        for _ in 0..50 {
            let now = std::future::poll_fn(|cx| Poll::Ready(quiet.as_mut().poll(cx))).await;
            assert!(now.is_pending());
            tokio::task::yield_now().await;
        }
        assert_eq!(polls.get(), 1);
        // Cancelled from another task: the task is woken and the signal is ready.
        let canceller = tokio::spawn({
            let token = token.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                token.cancel();
            }
        });
        tokio::time::timeout(Duration::from_secs(5), quiet.as_mut())
            .await
            .expect("the cancellation reached the task");
        canceller.await.unwrap();
    }

    #[tokio::test]
    async fn a_timer_moved_through_inner_fires_at_its_new_deadline() {
        let start = tokio::time::Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::from_secs(600)));
        let mut quiet = Quiet::new(sleep);
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut quiet).poll(cx))).await;
        assert!(first.is_pending());
        quiet.inner().reset(start + Duration::from_millis(50));
        tokio::time::timeout(Duration::from_secs(10), &mut quiet)
            .await
            .expect("the timer fired at its new deadline, not the old one");
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}

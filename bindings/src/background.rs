//! Running blocking core work off the caller's thread.
//!
//! The core is synchronous (SQLite, libjpeg-turbo, a blocking HTTP client)
//! and the phone has no Rust async runtime. An exported `async fn` hands
//! its work to a fresh thread and returns a future that the foreign side's
//! own executor (Kotlin coroutines, Swift concurrency, Python asyncio)
//! awaits; the UI thread never waits on the core. Threads are per call:
//! the calls that use this (login, sync, photo compression) take hundreds
//! of milliseconds or more, so a thread's start-up cost does not matter.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    result: Option<T>,
    waker: Option<Waker>,
}

/// A future resolved by a background thread.
pub struct Background<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for Background<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `work` on a new thread; the returned future yields its result.
/// A panic in `work`, or no thread to be had, yields `failed()` instead,
/// so the caller gets an error rather than a future that never resolves.
pub fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    failed: fn() -> T,
) -> Background<T> {
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let shared = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name("fieldbook-core".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| failed());
            let waker = {
                let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
                s.result = Some(result);
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
    if spawned.is_err() {
        let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
        s.result = Some(failed());
    }
    Background { slot }
}

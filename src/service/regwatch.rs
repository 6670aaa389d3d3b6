//! Registry change notifications: on Windows, a change under fxpd's `Parameters` key
//! ([`crate::config::SERVICE_KEY`]) or IIS's ([`crate::config::IIS_KEY`]) is a reload request,
//! like the service's parameter-change control, for `fxpd serve` in a console and for the
//! service alike ([`super::ReloadSignal`] waits for both).
//!
//! # How
//! `RegistryWatch` (`cfg(windows)`) runs one dedicated thread, never a runtime worker. For
//! each key it opens a handle (`KEY_READ`, which includes `KEY_NOTIFY`) and arms
//! `RegNotifyChangeKeyValue` (value changes and value creation or deletion, this key only,
//! asynchronous, with an auto-reset event), then waits with `WaitForMultipleObjects` on those events and a stop event. After
//! each notification it re-arms at once, before the reload reads the registry, so no change is
//! lost between the two.
//!
//! # Decisions
//! - Bursts coalesce ([`Burst`]): one request [`QUIET`] after the last change of a burst, and
//!   never later than [`MAX_DELAY`] after its first, so `reg add` run several times in a row is
//!   one reload, and a value that keeps changing still reloads about once a second.
//! - A key that does not exist (MSFTPSVC usually does not) is opened again every [`RETRY`],
//!   logged once each time it goes missing. When it appears, that is a change (its values are
//!   new settings). A key deleted while watched signals its event (a change: its values are
//!   gone), re-arming then fails with `ERROR_KEY_DELETED`, and it is retried like a missing one.
//!   A key that cannot be opened or armed for another reason (access denied) is logged and
//!   retried the same way: never fatal, since restarts and the parameter-change control still
//!   reload.
//! - The watch stops when the `RegistryWatch` is dropped, i.e. with the server (the reload
//!   listener lives in the server's runtime): the stop event wakes the thread, which is joined.
//! - Keys present when the watch starts are not a change: the configuration was just loaded from
//!   them. A change in the few milliseconds between that load and the first arming is only seen
//!   with the next change, a control or a restart (the watch starts with the server's runtime).
//! - Only a request crosses to the runtime (a bounded channel of one: while a request waits,
//!   later ones are already covered by it). The reload re-reads every source and applies only a
//!   valid result, as for every other reload request.

use std::time::{Duration, Instant};

/// A burst ends when no change has come for this long.
pub const QUIET: Duration = Duration::from_millis(250);
/// A burst never delays its reload request longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often a missing (or unreadable) key is opened again.
pub const RETRY: Duration = Duration::from_secs(1);

/// Changes seen and not yet turned into a reload request.
#[derive(Debug, Default)]
pub struct Burst {
    /// When the burst's first and last changes came; `None` when there is none.
    span: Option<(Instant, Instant)>,
    /// The keys that changed, each once, in the order seen.
    keys: Vec<&'static str>,
}

impl Burst {
    /// A change under `key` at `now`.
    pub fn change(&mut self, key: &'static str, now: Instant) {
        self.span = Some(match self.span {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// When the request is due: [`QUIET`] after the last change, at most [`MAX_DELAY`] after
    /// the first. `None` without a change.
    pub fn due(&self) -> Option<Instant> {
        self.span
            .map(|(first, last)| (last + QUIET).min(first + MAX_DELAY))
    }

    /// The keys that changed, if the request is due at `now` (the burst is then over).
    pub fn take_due(&mut self, now: Instant) -> Option<Vec<&'static str>> {
        if self.due()? > now {
            return None;
        }
        self.span = None;
        Some(std::mem::take(&mut self.keys))
    }
}

#[cfg(windows)]
pub use watch::RegistryWatch;

#[cfg(windows)]
mod watch {
    use std::io;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_FILE_NOT_FOUND, ERROR_KEY_DELETED, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT,
    };
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegNotifyChangeKeyValue, RegOpenKeyExW, HKEY, HKEY_LOCAL_MACHINE, KEY_READ,
        REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME,
    };
    use windows_sys::Win32::System::Threading::{
        CreateEventW, ResetEvent, SetEvent, WaitForMultipleObjects, INFINITE,
    };

    use super::{Burst, RETRY};
    use crate::config::display_key;

    /// Watches registry keys (paths under `HKEY_LOCAL_MACHINE`) for changes, on its own thread,
    /// until dropped. See the module docs.
    pub struct RegistryWatch {
        /// Coalesced changes: the keys that changed.
        changes: mpsc::Receiver<Vec<&'static str>>,
        /// Wakes the thread to end it.
        stop: Arc<Event>,
        thread: Option<JoinHandle<()>>,
    }

    impl RegistryWatch {
        /// Starts watching `keys`. `None` (logged) if the thread or its events cannot be created.
        pub fn start(keys: &[&'static str]) -> Option<RegistryWatch> {
            let made = Event::new().and_then(|stop| {
                let keys = keys
                    .iter()
                    .map(|&path| Watched::new(path))
                    .collect::<io::Result<Vec<_>>>()?;
                Ok((Arc::new(stop), keys))
            });
            let (stop, keys) = match made {
                Ok(made) => made,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch the registry for changes; reload with the parameter-change control or a restart");
                    return None;
                }
            };
            let (tx, changes) = mpsc::channel(1);
            let stopper = stop.clone();
            let thread = std::thread::Builder::new()
                .name("registry-watch".into())
                .spawn(move || run(keys, &stopper, &tx));
            match thread {
                Ok(thread) => Some(RegistryWatch {
                    changes,
                    stop,
                    thread: Some(thread),
                }),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the registry watch thread; reload with the parameter-change control or a restart");
                    None
                }
            }
        }

        /// The next coalesced change: the keys (as `HKLM\...`) that changed. Waits forever if
        /// the watch has ended.
        pub async fn recv(&mut self) -> Vec<String> {
            match self.changes.recv().await {
                Some(keys) => keys.into_iter().map(display_key).collect(),
                None => std::future::pending().await,
            }
        }
    }

    impl Drop for RegistryWatch {
        fn drop(&mut self) {
            self.stop.set();
            if let Some(thread) = self.thread.take() {
                // Prompt: the thread waits on the stop event and never blocks elsewhere.
                let _ = thread.join();
            }
        }
    }

    /// A Win32 event (auto-reset), closed on drop.
    pub(super) struct Event(HANDLE);

    // SAFETY: an event handle may be used from any thread.
    unsafe impl Send for Event {}
    // SAFETY: SetEvent, ResetEvent and waits are thread-safe.
    unsafe impl Sync for Event {}

    impl Event {
        fn new() -> io::Result<Event> {
            // SAFETY: no attributes, no name; the handle is owned by the result.
            let handle = unsafe { CreateEventW(std::ptr::null(), 0, 0, std::ptr::null()) };
            if handle.is_null() {
                return Err(io::Error::last_os_error());
            }
            Ok(Event(handle))
        }

        fn set(&self) {
            // SAFETY: a valid event handle (owned by self).
            unsafe { SetEvent(self.0) };
        }

        fn reset(&self) {
            // SAFETY: a valid event handle (owned by self).
            unsafe { ResetEvent(self.0) };
        }
    }

    impl Drop for Event {
        fn drop(&mut self) {
            // SAFETY: owned, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    /// One watched key.
    struct Watched {
        /// Under `HKEY_LOCAL_MACHINE`.
        path: &'static str,
        /// Signalled by `RegNotifyChangeKeyValue`.
        event: Event,
        /// The open key while it is watched; `None` while it is missing.
        key: Option<HKEY>,
        /// Why it is not watched, as last logged (a Win32 error): each reason is logged once,
        /// not every second.
        logged: Option<u32>,
    }

    // SAFETY: key and event handles may be used from any thread. (A notification belongs to the
    // thread that armed it; every key is opened and armed on the watch thread only.)
    unsafe impl Send for Watched {}

    impl Watched {
        fn new(path: &'static str) -> io::Result<Watched> {
            Ok(Watched {
                path,
                event: Event::new()?,
                key: None,
                logged: None,
            })
        }

        /// Opens and arms the key if it is not watched yet. True if it is watched now and was
        /// not before.
        fn open(&mut self) -> bool {
            if self.key.is_some() {
                return false;
            }
            let path: Vec<u16> = self.path.encode_utf16().chain(std::iter::once(0)).collect();
            let mut key: HKEY = std::ptr::null_mut();
            // KEY_READ (which includes KEY_NOTIFY): the access the configuration loader opens the
            // key with, so the watch sees a key exactly when the reload can read it.
            // SAFETY: a NUL-terminated path and a place for the handle, owned by self from here.
            let status = unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, path.as_ptr(), 0, KEY_READ, &mut key) };
            if status != 0 {
                self.not_watched(status, "cannot open the registry key to watch it");
                return false;
            }
            self.key = Some(key);
            // A notification for a previous handle (closed when the key was deleted) is stale.
            self.event.reset();
            if !self.arm() {
                return false;
            }
            if self.logged.take().is_some() {
                tracing::info!(key = %display_key(self.path), "registry key present: watching it");
            }
            true
        }

        /// Asks for the next change; on failure (the key was deleted) closes the key so that it
        /// is opened again. True if armed.
        fn arm(&mut self) -> bool {
            let Some(key) = self.key else {
                return false;
            };
            // SAFETY: an open key handle and a valid event; asynchronous, so it returns at once.
            let status = unsafe {
                RegNotifyChangeKeyValue(
                    key,
                    0,
                    REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                    self.event.0,
                    1,
                )
            };
            if status == 0 {
                return true;
            }
            self.close();
            self.not_watched(status, "cannot watch the registry key");
            false
        }

        /// Logs why the key is not watched, unless that was the last reason logged.
        fn not_watched(&mut self, status: u32, what: &str) {
            if self.logged == Some(status) {
                return;
            }
            self.logged = Some(status);
            let key = display_key(self.path);
            match status {
                ERROR_FILE_NOT_FOUND => {
                    tracing::info!(%key, "registry key absent: checking for it every second")
                }
                ERROR_KEY_DELETED => {
                    tracing::info!(%key, "registry key deleted: checking for it every second")
                }
                _ => {
                    let error = io::Error::from_raw_os_error(status as i32);
                    tracing::warn!(%key, %error, "{what}: trying again every second")
                }
            }
        }

        fn close(&mut self) {
            if let Some(key) = self.key.take() {
                // SAFETY: an open key handle, closed once.
                unsafe { RegCloseKey(key) };
            }
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            self.close();
        }
    }

    /// The watch thread: until `stop` is set or the receiver is gone.
    fn run(mut keys: Vec<Watched>, stop: &Event, tx: &mpsc::Sender<Vec<&'static str>>) {
        // Keys present at start are the configuration already loaded: not a change.
        for key in &mut keys {
            key.open();
        }
        let mut burst = Burst::default();
        let mut next_retry = Instant::now() + RETRY;
        loop {
            let mut handles = vec![stop.0];
            let mut owners = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                if key.key.is_some() {
                    handles.push(key.event.0);
                    owners.push(i);
                }
            }
            let now = Instant::now();
            let missing = keys.iter().any(|k| k.key.is_none());
            let wake = [missing.then_some(next_retry), burst.due()]
                .into_iter()
                .flatten()
                .min();
            let timeout = wake.map_or(INFINITE, |at| {
                // Rounded up, so that the burst is due when the wait ends.
                let left = at.saturating_duration_since(now) + Duration::from_micros(999);
                u32::try_from(left.as_millis()).unwrap_or(INFINITE - 1)
            });
            // SAFETY: valid handles (owned by `stop` and `keys`, which outlive the wait).
            let woke = unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, timeout) };
            let index = woke.wrapping_sub(WAIT_OBJECT_0) as usize;
            if index == 0 {
                return;
            } else if index < handles.len() {
                let key = &mut keys[owners[index - 1]];
                burst.change(key.path, Instant::now());
                key.arm();
            } else if woke != WAIT_TIMEOUT {
                tracing::error!(error = %io::Error::last_os_error(), "waiting for registry changes failed; the registry watch ends");
                return;
            }
            let now = Instant::now();
            if now >= next_retry {
                next_retry = now + RETRY;
                for key in keys.iter_mut().filter(|k| k.key.is_none()) {
                    if key.open() {
                        burst.change(key.path, now);
                    }
                }
            }
            if let Some(changed) = burst.take_due(Instant::now()) {
                match tx.try_send(changed) {
                    // Full: a request is waiting, and the reload it starts reads these changes.
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "A";
    const B: &str = "B";

    #[test]
    fn a_burst_is_one_request_after_a_quiet_period() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        assert_eq!(burst.due(), None);
        assert_eq!(burst.take_due(t0 + Duration::from_secs(10)), None);
        burst.change(A, t0);
        burst.change(A, t0 + Duration::from_millis(100));
        burst.change(B, t0 + Duration::from_millis(200));
        assert_eq!(burst.due(), Some(t0 + Duration::from_millis(200) + QUIET));
        assert_eq!(burst.take_due(t0 + Duration::from_millis(300)), None);
        assert_eq!(burst.take_due(t0 + Duration::from_millis(450)), Some(vec![A, B]));
        assert_eq!(burst.due(), None, "the burst is over");
        assert_eq!(burst.take_due(t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn a_continuous_burst_still_reloads_within_the_maximum_delay() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        let mut t = t0;
        while t < t0 + Duration::from_secs(3) {
            burst.change(A, t);
            if burst.take_due(t).is_some() {
                break;
            }
            t += Duration::from_millis(100);
        }
        assert_eq!(t, t0 + MAX_DELAY);
        assert!(QUIET < MAX_DELAY && MAX_DELAY <= Duration::from_secs(1));
    }
}

//! Session threads: every control connection, from the PROXY header to its last reply, runs on
//! one thread with a single-threaded runtime of its own, chosen when it is accepted.
//!
//! Why not the shared multi-threaded runtime: a small-file transfer is a handful of short
//! steps (PASV, the data connection's accept, RETR, the `150`/`226` pair), each separated by a
//! wait for the client. On a work-stealing runtime every one of those wake-ups, and every task
//! a step would spawn, may wake a second worker thread, which then steals the work or finds
//! none: futex calls, eventfd writes and context
//! switches that cost more server CPU per small file than the transfer itself. On a thread of
//! its own a session's tasks are woken by that thread's own `epoll_wait` and never leave it,
//! as in a server with a process per session, while the threads together still use every
//! core. Large files are unaffected: their bytes move on blocking threads (`sendfile`,
//! `splice`) either way.
//!
//! A new connection goes to the thread with the fewest sessions. Its socket is moved from the
//! accepting runtime's reactor to that thread's (one `epoll_ctl` each way, once per
//! connection). The threads stop when [`Workers`] is dropped, after the server has drained;
//! sessions still open then are dropped with their runtime, as they would be at exit.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The session threads.
pub struct Workers {
    workers: Vec<Worker>,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

/// One session thread: its runtime and how many sessions it runs now.
struct Worker {
    handle: Handle,
    sessions: Arc<AtomicUsize>,
}

impl Workers {
    /// One session thread per core the process may use. If a thread or its runtime cannot be
    /// started, sessions run on the runtime that calls [`Workers::spawn`] instead (logged).
    pub fn start() -> Workers {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        let stop = CancellationToken::new();
        let mut pool = Workers {
            workers: Vec::with_capacity(count),
            stop: stop.clone(),
            threads: Vec::with_capacity(count),
        };
        for n in 0..count {
            match start_thread(n, stop.clone()) {
                Ok((handle, thread)) => {
                    pool.workers.push(Worker {
                        handle,
                        sessions: Arc::new(AtomicUsize::new(0)),
                    });
                    pool.threads.push(thread);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a session thread; sessions share the main runtime");
                    // Threads already started would only take some of the sessions: stop them.
                    pool.stop_threads();
                    pool.workers.clear();
                    break;
                }
            }
        }
        pool
    }

    /// Run `session` on the least busy session thread, tracked by `tracker`. The future is
    /// first polled on that thread, so sockets it creates or adopts there (see
    /// [`tokio::net::TcpStream::from_std`]) belong to that thread's reactor.
    pub fn spawn<F>(&self, tracker: &TaskTracker, session: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|w| w.sessions.load(Ordering::Relaxed))
        else {
            tracker.spawn(session);
            return;
        };
        let sessions = worker.sessions.clone();
        sessions.fetch_add(1, Ordering::Relaxed);
        tracker.spawn_on(
            async move {
                // Counted until the session's future is gone, however it ends.
                let _count = Count(sessions);
                session.await;
            },
            &worker.handle,
        );
    }

    fn stop_threads(&mut self) {
        self.stop.cancel();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Gives a session's place on its thread back when dropped.
struct Count(Arc<AtomicUsize>);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Start session thread `n`: a single-threaded runtime that runs until `stop` is cancelled.
fn start_thread(n: usize, stop: CancellationToken) -> io::Result<(Handle, JoinHandle<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let thread = std::thread::Builder::new()
        .name(format!("fxpd-sessions-{n}"))
        .spawn(move || {
            runtime.block_on(stop.cancelled());
            // Sessions still running (past the shutdown grace) end here, with the runtime.
            drop(runtime);
        })?;
    Ok((handle, thread))
}

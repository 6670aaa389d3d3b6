//! Process lifecycle: stop and reload signals, and the service manager's view of the
//! process (systemd `Type=notify`: READY, RELOADING, STOPPING).

/// Stop requests: SIGINT or SIGTERM on Unix, Ctrl-C elsewhere. Create it before the
/// listeners are bound, so a signal that arrives right after start-up is never missed (it
/// would otherwise kill the process with the default action).
pub struct StopSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignal {
    /// Install the handlers now (inside the runtime).
    pub fn new() -> StopSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => {
                    tracing::error!("cannot install signal handlers");
                    None
                }
            };
            StopSignal { signals }
        }
        #[cfg(not(unix))]
        {
            StopSignal {}
        }
    }

    /// Wait for the stop request.
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            let Some((mut term, mut int)) = self.signals else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            } else {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal::new()
    }
}

/// Reload requests: SIGHUP on Unix.
pub struct ReloadSignal {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl ReloadSignal {
    /// Install the handler; `None` (logged) where reloads cannot be requested this way.
    pub fn new() -> Option<ReloadSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(hup) => Some(ReloadSignal { hup }),
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the SIGHUP handler; reloading needs a restart");
                    None
                }
            }
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Wait for the next request.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.hup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading the configuration");
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

/// What the process tells its service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every listener is bound; the service is up.
    Ready,
    /// A configuration reload has started.
    Reloading,
    /// Shutdown has started: no new connections, transfers draining.
    Stopping,
}

/// Tell systemd (when started with `Type=notify`, i.e. `NOTIFY_SOCKET` is set) about the
/// service's state. Elsewhere it does nothing.
pub fn notify(status: Status) {
    #[cfg(unix)]
    {
        use sd_notify::NotifyState;
        let state = match status {
            Status::Ready => NotifyState::Ready,
            Status::Reloading => NotifyState::Reloading,
            Status::Stopping => NotifyState::Stopping,
        };
        if let Err(e) = sd_notify::notify(&[state]) {
            tracing::warn!(error = %e, "cannot notify the service manager");
        }
    }
    #[cfg(not(unix))]
    let _ = status;
}

//! Process lifecycle: stop signals turned into the shutdown token.

/// Wait until the process is asked to stop: SIGINT or SIGTERM on Unix, Ctrl-C elsewhere.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("cannot install signal handlers");
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

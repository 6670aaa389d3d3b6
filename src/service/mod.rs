//! Process lifecycle: stop and reload signals, and the service manager's view of the
//! process (systemd `Type=notify`: READY, RELOADING, STOPPING; the Windows SCM).
//!
//! On Windows, `fxpd service run` runs the same server as `fxpd serve` under the Service Control
//! Manager (`windows/`): there the stop and shutdown controls are the stop signal, the
//! parameter-change control is a reload signal, and [`notify`] reports to the SCM. A change under
//! either registry `Parameters` key is a reload signal too, for the console and the service
//! (`regwatch.rs`).

use std::ffi::OsString;
use std::path::Path;

pub mod regwatch;
#[cfg(windows)]
pub mod windows;

/// The values `fxpd service install` creates under
/// `HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters` when they are absent (REG_DWORD):
/// the hardened FXP defaults, in IIS's names (KB Q247132), so an administrator finds the
/// switches where the KB says. Existing values are never overwritten. Every name is one the
/// registry layer reads ([`crate::config::REGISTRY_VALUES`]), which rejects unknown names.
pub const PARAMETER_DEFAULTS: &[(&str, u32)] = &[("EnablePortAttack", 0), ("EnablePASVTheft", 0)];

/// The arguments the Windows service is started with: `service run [--config FILE]`.
pub fn service_arguments(config: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["service".into(), "run".into()];
    if let Some(config) = config {
        args.push("--config".into());
        args.push(config.as_os_str().to_owned());
    }
    args
}

/// An error the administrator must see (a configuration that cannot be loaded, a server that
/// cannot start). The caller prints it to stderr; when this process runs as the Windows service
/// it also goes to the Event Log, since a service has no console.
pub fn report_error(message: &str) {
    #[cfg(windows)]
    windows::report_error(message);
    #[cfg(not(windows))]
    let _ = message;
}

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
            #[cfg(windows)]
            if let Some(stop) = windows::stop_requests() {
                stop.cancelled().await;
                tracing::info!("stop control received from the Service Control Manager");
                return;
            }
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

/// Reload requests: SIGHUP on Unix. On Windows: a change under fxpd's or IIS's registry
/// `Parameters` key ([`regwatch`]), and the parameter-change control for the service.
pub struct ReloadSignal {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
    /// The parameter-change control, when running as the service.
    #[cfg(windows)]
    service: Option<&'static tokio::sync::Notify>,
    /// Registry change notifications; stops when this is dropped.
    #[cfg(windows)]
    registry: Option<regwatch::RegistryWatch>,
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
        #[cfg(windows)]
        {
            let service = windows::reload_requests();
            let registry =
                regwatch::RegistryWatch::start(&[crate::config::SERVICE_KEY, crate::config::IIS_KEY]);
            if service.is_none() && registry.is_none() {
                return None;
            }
            Some(ReloadSignal { service, registry })
        }
        #[cfg(not(any(unix, windows)))]
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
            std::future::pending::<()>().await
        }
        #[cfg(windows)]
        {
            let service = self.service;
            let parameter_change = async {
                match service {
                    Some(service) => service.notified().await,
                    None => std::future::pending().await,
                }
            };
            let registry = async {
                match &mut self.registry {
                    Some(watch) => watch.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = parameter_change => {
                    tracing::info!("parameter-change control received: reloading the configuration");
                }
                keys = registry => {
                    let keys = keys.join(" and ");
                    tracing::info!("registry change under {keys}: reloading the configuration");
                    windows::registry_reload_requested(&keys);
                }
            }
        }
        #[cfg(not(any(unix, windows)))]
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

/// Tell systemd (when started with `Type=notify`, i.e. `NOTIFY_SOCKET` is set) or the Windows
/// SCM (when running as the service) about the service's state. Elsewhere it does nothing.
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
    #[cfg(windows)]
    windows::notify(status);
    #[cfg(not(any(unix, windows)))]
    let _ = status;
}

/// Keep large, short-lived allocations from staying in the process after they are freed.
/// Each login's argon2 hash allocates its whole memory cost (19 MiB by default) at once;
/// glibc's adaptive mmap threshold would soon serve such blocks from per-thread heaps that
/// are never returned, so an idle server would keep hundreds of MiB after a burst of logins
/// (which unauthenticated clients can cause). A fixed threshold makes every block from
/// 512 KiB up (cheap hashes of a MiB or two, the largest upload buffers) a private mapping
/// that goes back to the system when freed, and a small number of heaps keeps the many
/// blocking-pool threads from each holding memory of their own.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; called before other threads start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 512 * 1024);
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RegType, REGISTRY_VALUES};

    /// Every default `service install` writes is a switch the registry layer reads (it rejects
    /// unknown names), and it is as strict as the built-in default of the setting it maps to.
    #[test]
    fn parameter_defaults_are_known_hardened_switches() {
        let defaults = crate::config::Config::default();
        for &(name, value) in PARAMETER_DEFAULTS {
            let spec = REGISTRY_VALUES
                .iter()
                .find(|v| v.name == name)
                .unwrap_or_else(|| panic!("{name} is not in REGISTRY_VALUES"));
            assert_eq!(spec.ty, RegType::Switch, "{name}");
            assert_eq!(value, 0, "{name} must default to off");
            let builtin = match spec.key {
                "fxp.allow_foreign_port" => defaults.fxp.allow_foreign_port,
                "fxp.allow_foreign_passive" => defaults.fxp.allow_foreign_passive,
                other => panic!("no built-in default checked for {other}"),
            };
            assert!(!builtin, "{} is off by default", spec.key);
        }
        let names: Vec<_> = PARAMETER_DEFAULTS.iter().map(|d| d.0).collect();
        assert_eq!(names, ["EnablePortAttack", "EnablePASVTheft"]);
    }

    #[test]
    fn service_command_line() {
        assert_eq!(service_arguments(None), ["service", "run"]);
        assert_eq!(
            service_arguments(Some(Path::new(r"C:\ProgramData\fxpd\fxpd.toml"))),
            ["service", "run", "--config", r"C:\ProgramData\fxpd\fxpd.toml"]
        );
    }
}

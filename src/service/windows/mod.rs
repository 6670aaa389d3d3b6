//! The Windows service (`cfg(windows)`): `fxpd service install|uninstall|start|stop|reload|status`
//! and the entry point the Service Control Manager (SCM) starts, `fxpd service run`, with the
//! `windows-service` crate.
//!
//! # How the service runs the server
//! `fxpd service run` hands the SCM's dispatcher ([`run`]) the same body as `fxpd serve`. While
//! it runs, the process is in *service mode*: [`super::StopSignal`] waits for the stop and
//! shutdown controls instead of Ctrl-C, [`super::ReloadSignal`] for the parameter-change control
//! (and registry changes, as in the console) instead of SIGHUP, and [`super::notify`] reports to
//! the SCM instead of systemd (`Ready` -> Running, `Stopping` -> StopPending). So there is one server loop, one shutdown token and one
//! reload path for the console and the service.
//!
//! # Decisions
//! - Stop drains: the stop (and shutdown) control reports StopPending at once and cancels the
//!   token; the server stops accepting and lets transfers finish within
//!   `limits.shutdown_grace_secs`. While it drains, a thread advances the StopPending checkpoint
//!   every two seconds so the SCM and `fxpd service stop` see progress instead of a hung service.
//!   Stopped is reported last, with exit code 0, or a service-specific code (1 runtime error, 2
//!   configuration error, 101 panic) that makes the SCM's recovery actions restart the service.
//! - `install` never overwrites: of the hardened registry defaults
//!   ([`super::PARAMETER_DEFAULTS`]) it writes only the values that are absent.
//! - The Event Log gets start, stop requests, stop, reloads and errors (source `fxpd`, message
//!   file `EventCreate.exe`, whose message for every event ID 1-1000 is the text itself). Under
//!   Wine `ReportEventW` succeeds and writes the text to the `eventlog` debug channel.
//! - The service needs a configuration file: without `--config` and without
//!   `%ProgramData%\fxpd\fxpd.toml` it refuses to start rather than run the quick start in
//!   `C:\Windows\System32`.
//!
//! # Layout
//! - `runner.rs`: service mode, the SCM dispatcher's entry point and the status reports.
//! - `admin.rs`: `install`, `uninstall`, `start`, `stop`, `reload`, `status` against the SCM.
//! - `eventlog.rs`: the Event Log source and its entries.

mod admin;
mod eventlog;
mod runner;

pub use admin::{install, reload, start, status, stop, uninstall};
pub use eventlog::{event_log, Kind, EVENT_SOURCE_KEY};
pub use runner::run;
pub(crate) use runner::{notify, registry_reload_requested, reload_requests, report_error, stop_requests};

/// The service's name in the SCM (also the Event Log source).
pub const SERVICE_NAME: &str = "fxpd";
/// What the Services console shows.
pub const DISPLAY_NAME: &str = "fxpd FTP server";
/// The service's description.
pub const DESCRIPTION: &str = "FTP/FTPS server with an explicit, enforced FXP (server-to-server) \
                               address policy. Settings: the --config file and \
                               HKLM\\SYSTEM\\CurrentControlSet\\Services\\fxpd\\Parameters.";

/// A `windows-service` error with the OS error text, and hints for the common cases.
fn scm_error(what: &str, e: &windows_service::Error) -> String {
    let hint = match e {
        windows_service::Error::Winapi(io) => match io.raw_os_error() {
            Some(5) => " (run it from an elevated prompt: administrator rights are needed)",
            Some(1060) => " (the service is not installed: `fxpd service install`)",
            Some(1073) => " (it is already installed: `fxpd service uninstall` first)",
            Some(1056) => " (it is already running)",
            Some(1062) => " (it is not running)",
            _ => "",
        },
        _ => "",
    };
    format!("{what}: {}{hint}", message(e))
}

fn message(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    }
}

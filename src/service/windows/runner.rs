//! Service mode: the entry point the SCM's dispatcher starts, the control handler that turns
//! stop, shutdown and parameter-change controls into the server's signals, and the status reports.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};

use super::eventlog::{event, event_id, Kind};
use super::{message, SERVICE_NAME};
use crate::config;
use crate::service::Status;

/// How long the SCM should wait for a first sign of life after start (binding, loading).
pub(super) const START_WAIT_HINT: Duration = Duration::from_secs(30);
/// How often the StopPending checkpoint advances while transfers drain.
const STOP_TICK: Duration = Duration::from_secs(2);

/// What the control handler signals to the server; set once, before the dispatcher starts.
struct Controls {
    stop: CancellationToken,
    reload: Notify,
}

static CONTROLS: OnceLock<Controls> = OnceLock::new();
static REPORTER: OnceLock<Reporter> = OnceLock::new();
/// The server (`fxpd serve`'s body), taken once by the service main.
type Body = Box<dyn FnOnce() -> ExitCode + Send>;
static BODY: Mutex<Option<Body>> = Mutex::new(None);
/// The body's result, returned by [`run`] as the process exit code.
static RESULT: Mutex<Option<ExitCode>> = Mutex::new(None);
/// The config file the service was started with (for messages).
static CONFIG: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The stop request, when this process runs as the service.
pub(crate) fn stop_requests() -> Option<CancellationToken> {
    CONTROLS.get().map(|c| c.stop.clone())
}

/// Reload requests (the parameter-change control), when this process runs as the service.
pub(crate) fn reload_requests() -> Option<&'static Notify> {
    CONTROLS.get().map(|c| &c.reload)
}

/// [`crate::service::notify`] in service mode: tell the SCM.
pub(crate) fn notify(status: Status) {
    let Some(reporter) = REPORTER.get() else {
        return;
    };
    match status {
        Status::Ready => {
            if reporter.set(ServiceState::Running, ServiceExitCode::NO_ERROR) == Some(true) {
                let config = CONFIG.get().and_then(|c| c.as_ref());
                let config = config.map_or_else(
                    || config::default_config_path().display().to_string(),
                    |c| c.display().to_string(),
                );
                event(
                    Kind::Information,
                    event_id::STARTED,
                    &format!("fxpd started (configuration {config})"),
                );
            }
        }
        Status::Reloading => {}
        Status::Stopping => {
            reporter.set(ServiceState::StopPending, ServiceExitCode::NO_ERROR);
        }
    }
}

/// In service mode, an Event Log entry for a reload that a registry change under `keys` requested.
pub(crate) fn registry_reload_requested(keys: &str) {
    if REPORTER.get().is_some() {
        event(
            Kind::Information,
            event_id::RELOAD_REQUESTED,
            &format!("fxpd reloading its configuration (registry change under {keys})"),
        );
    }
}

/// [`crate::service::report_error`] in service mode: an Event Log error.
pub(crate) fn report_error(message: &str) {
    if REPORTER.get().is_some() {
        event(Kind::Error, event_id::ERROR, message);
    }
}

/// The service's status as last reported, and the handle to report it.
struct Reporter {
    handle: ServiceStatusHandle,
    /// (state, checkpoint, Running reported before).
    state: Mutex<(ServiceState, u32, bool)>,
}

impl Reporter {
    /// Reports `state`. Returns `None` if it was not reported (nothing after Stopped, no Running
    /// once stopping), else whether this is the first Running.
    fn set(&self, state: ServiceState, exit_code: ServiceExitCode) -> Option<bool> {
        let mut current = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (old, checkpoint, ever_running) = *current;
        if old == ServiceState::Stopped
            || (state == ServiceState::Running && old == ServiceState::StopPending)
        {
            return None;
        }
        let pending = matches!(state, ServiceState::StartPending | ServiceState::StopPending);
        let checkpoint = match (pending, state == old) {
            (false, _) => 0,
            (true, true) => checkpoint + 1,
            (true, false) => 1,
        };
        let (controls_accepted, wait_hint) = match state {
            ServiceState::Running => (
                ServiceControlAccept::STOP
                    | ServiceControlAccept::SHUTDOWN
                    | ServiceControlAccept::PARAM_CHANGE,
                Duration::ZERO,
            ),
            ServiceState::StartPending => (ServiceControlAccept::empty(), START_WAIT_HINT),
            ServiceState::StopPending => (ServiceControlAccept::empty(), STOP_TICK * 5),
            _ => (ServiceControlAccept::empty(), Duration::ZERO),
        };
        let status = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted,
            exit_code,
            checkpoint,
            wait_hint,
            process_id: None,
        };
        if let Err(e) = self.handle.set_service_status(status) {
            tracing::warn!(error = %e, ?state, "cannot report the service status");
        }
        let first_running = state == ServiceState::Running && !ever_running;
        *current = (state, checkpoint, ever_running || state == ServiceState::Running);
        if state == ServiceState::StopPending && old != ServiceState::StopPending {
            // Keep the SCM informed while transfers drain (ends at Stopped).
            std::thread::spawn(|| loop {
                std::thread::sleep(STOP_TICK);
                let Some(reporter) = REPORTER.get() else { return };
                let still = reporter
                    .state
                    .lock()
                    .map(|s| s.0)
                    .unwrap_or(ServiceState::Stopped);
                if still != ServiceState::StopPending {
                    return;
                }
                reporter.set(ServiceState::StopPending, ServiceExitCode::NO_ERROR);
            });
        }
        Some(first_running)
    }
}

windows_service::define_windows_service!(ffi_service_main, service_main);

/// `fxpd service run`: connects to the SCM and runs `body` (the server, as `fxpd serve` runs it)
/// as the service `fxpd` until it returns. `config` is the `--config` the service was installed
/// with. Run from a console (not by the SCM) it says so and returns exit code 2.
pub fn run(config: Option<&Path>, body: impl FnOnce() -> ExitCode + Send + 'static) -> ExitCode {
    *BODY.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(body));
    let _ = CONFIG.set(config.map(Path::to_path_buf));
    let _ = CONTROLS.set(Controls {
        stop: CancellationToken::new(),
        reload: Notify::new(),
    });
    match windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => RESULT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or(ExitCode::FAILURE),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            eprintln!(
                "fxpd: `fxpd service run` is what the Service Control Manager starts; \
                 use `fxpd service start` to start the service, or `fxpd serve` to run in this console"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!(
                "fxpd: cannot connect to the Service Control Manager: {}",
                message(&e)
            );
            ExitCode::FAILURE
        }
    }
}

/// `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: not started by the SCM.
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

/// The service main (on the SCM dispatcher's thread): register the control handler, report
/// StartPending, run the body, report Stopped with its exit code.
fn service_main(_arguments: Vec<OsString>) {
    let Some(controls) = CONTROLS.get() else {
        return;
    };
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let why = if control == ServiceControl::Stop {
                "stop"
            } else {
                "system shutdown"
            };
            event(
                Kind::Information,
                event_id::STOP_REQUESTED,
                &format!("fxpd stopping ({why}): no new connections; transfers may finish within limits.shutdown_grace_secs"),
            );
            if let Some(reporter) = REPORTER.get() {
                reporter.set(ServiceState::StopPending, ServiceExitCode::NO_ERROR);
            }
            controls.stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::ParamChange => {
            event(
                Kind::Information,
                event_id::RELOAD_REQUESTED,
                "fxpd reloading its configuration (parameter-change control)",
            );
            controls.reload.notify_one();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(handle) => handle,
        Err(e) => {
            event(
                Kind::Error,
                event_id::ERROR,
                &format!(
                    "fxpd cannot register its service control handler: {}",
                    message(&e)
                ),
            );
            return;
        }
    };
    let reporter = REPORTER.get_or_init(|| Reporter {
        handle,
        state: Mutex::new((ServiceState::StartPending, 0, false)),
    });
    reporter.set(ServiceState::StartPending, ServiceExitCode::NO_ERROR);

    let code = match preflight() {
        Err(e) => {
            event(Kind::Error, event_id::ERROR, &e);
            ExitCode::from(2)
        }
        Ok(()) => {
            let body = BODY.lock().unwrap_or_else(|e| e.into_inner()).take();
            match body.map(|body| std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))) {
                Some(Ok(code)) => code,
                Some(Err(_)) => {
                    event(Kind::Error, event_id::ERROR, "fxpd panicked");
                    ExitCode::from(101)
                }
                None => ExitCode::FAILURE,
            }
        }
    };
    let exit = service_exit_code(code);
    if exit == ServiceExitCode::NO_ERROR {
        event(Kind::Information, event_id::STOPPED, "fxpd stopped");
    } else {
        event(
            Kind::Error,
            event_id::STOPPED,
            &format!(
                "fxpd stopped with an error (service-specific exit code {})",
                specific(exit)
            ),
        );
    }
    *RESULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
    reporter.set(ServiceState::Stopped, exit);
}

/// Refuses the quick start (no configuration file) for the service.
fn preflight() -> Result<(), String> {
    let given = CONFIG.get().and_then(|c| c.as_ref());
    if given.is_none() && !config::default_config_path().is_file() {
        return Err(format!(
            "fxpd cannot start as a service without a configuration file: create {} or \
             reinstall with `fxpd service install --config FILE`",
            config::default_config_path().display()
        ));
    }
    Ok(())
}

/// The process exit code as the SCM's service exit code.
fn service_exit_code(code: ExitCode) -> ServiceExitCode {
    if code == ExitCode::SUCCESS {
        ServiceExitCode::NO_ERROR
    } else if code == ExitCode::from(2) {
        ServiceExitCode::ServiceSpecific(2)
    } else if code == ExitCode::from(101) {
        ServiceExitCode::ServiceSpecific(101)
    } else {
        ServiceExitCode::ServiceSpecific(1)
    }
}

fn specific(code: ServiceExitCode) -> u32 {
    match code {
        ServiceExitCode::Win32(n) | ServiceExitCode::ServiceSpecific(n) => n,
    }
}

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

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo,
    ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::Status;
use crate::config;

/// The service's name in the SCM (also the Event Log source).
pub const SERVICE_NAME: &str = "fxpd";
/// What the Services console shows.
pub const DISPLAY_NAME: &str = "fxpd FTP server";
/// The service's description.
pub const DESCRIPTION: &str = "FTP/FTPS server with an explicit, enforced FXP (server-to-server) \
                               address policy. Settings: the --config file and \
                               HKLM\\SYSTEM\\CurrentControlSet\\Services\\fxpd\\Parameters.";
/// The Event Log source's registration, under `HKEY_LOCAL_MACHINE`.
pub const EVENT_SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\fxpd";
/// Its message file: `EventCreate.exe` has a message `%1` for every event ID from 1 to 1000.
const EVENT_MESSAGE_FILE: &str = r"%SystemRoot%\System32\EventCreate.exe";

/// Event IDs (1-1000, see [`EVENT_MESSAGE_FILE`]).
mod event_id {
    pub const STARTED: u32 = 1;
    pub const STOP_REQUESTED: u32 = 2;
    pub const STOPPED: u32 = 3;
    pub const RELOAD_REQUESTED: u32 = 4;
    pub const ERROR: u32 = 100;
}

/// How long the SCM should wait for a first sign of life after start (binding, loading).
const START_WAIT_HINT: Duration = Duration::from_secs(30);
/// How often the StopPending checkpoint advances while transfers drain.
const STOP_TICK: Duration = Duration::from_secs(2);
/// `fxpd service stop`/`uninstall` give up when the service shows no progress for this long.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- service mode

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

/// [`super::notify`] in service mode: tell the SCM.
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

/// [`super::report_error`] in service mode: an Event Log error.
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

// ---------------------------------------------------------------- the Event Log

/// An Event Log entry's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `EVENTLOG_INFORMATION_TYPE`.
    Information,
    /// `EVENTLOG_WARNING_TYPE`.
    Warning,
    /// `EVENTLOG_ERROR_TYPE`.
    Error,
}

/// Writes one entry (source `fxpd`) to the Application log; failures are logged, not fatal.
fn event(kind: Kind, id: u32, text: &str) {
    match event_log(kind, id, text) {
        Ok(()) => tracing::debug!(id, text, "written to the Event Log"),
        Err(e) => tracing::warn!(error = %e, text, "cannot write to the Event Log"),
    }
}

/// Writes one entry to the Application log with `ReportEventW` (source `fxpd`).
pub fn event_log(kind: Kind, id: u32, text: &str) -> Result<(), String> {
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    };
    let source = wide(SERVICE_NAME);
    let text = wide(text);
    let kind = match kind {
        Kind::Information => EVENTLOG_INFORMATION_TYPE,
        Kind::Warning => EVENTLOG_WARNING_TYPE,
        Kind::Error => EVENTLOG_ERROR_TYPE,
    };
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the calls; the handle is
    // released before returning.
    unsafe {
        let handle = RegisterEventSourceW(std::ptr::null(), source.as_ptr());
        if handle.is_null() {
            return Err(format!(
                "RegisterEventSourceW: {}",
                std::io::Error::last_os_error()
            ));
        }
        let strings = [text.as_ptr()];
        let ok = ReportEventW(
            handle,
            kind,
            0,
            id,
            std::ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            std::ptr::null(),
        );
        let error = std::io::Error::last_os_error();
        DeregisterEventSource(handle);
        if ok == 0 {
            return Err(format!("ReportEventW: {error}"));
        }
    }
    Ok(())
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

// ---------------------------------------------------------------- administration

/// `fxpd service install [--config FILE]`: registers the service (automatic start, restart on
/// failure), creates its `Parameters` key with the hardened defaults where absent, and
/// registers the Event Log source. Returns what was done, for the console.
pub fn install(config_file: Option<&Path>) -> Result<String, String> {
    let config_file = match config_file {
        Some(path) => {
            let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !path.is_file() {
                return Err(format!("configuration file {} does not exist", path.display()));
            }
            Some(path)
        }
        None => None,
    };
    let executable_path = std::env::current_exe().map_err(|e| format!("cannot find fxpd.exe itself: {e}"))?;
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: executable_path.clone(),
        launch_arguments: super::service_arguments(config_file.as_deref()),
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    // Values an administrator set before installing must survive a failed install too.
    let had_parameters = windows_registry::LOCAL_MACHINE.open(config::SERVICE_KEY).is_ok();
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG | ServiceAccess::DELETE,
        )
        .map_err(|e| scm_error("cannot create the service", &e))?;
    let configured = configure(&service).and_then(|warnings| {
        let written = write_parameter_defaults()?;
        register_event_source()?;
        Ok((warnings, written))
    });
    let (warnings, written) = match configured {
        Ok(written) => written,
        Err(e) if had_parameters => {
            // Deleting the service would delete its key, with the administrator's values.
            return Err(format!(
                "{e}; the service stays installed but incomplete (`fxpd service uninstall` removes it, \
                 and the values under its Parameters key with it)"
            ));
        }
        Err(e) => {
            // Leave nothing half-installed.
            let _ = service.delete();
            return Err(format!("{e}; the service was not installed"));
        }
    };
    let delays: Vec<String> = RESTART_DELAYS_SECS.iter().map(|s| format!("{s}s")).collect();
    let mut out = format!(
        "service {SERVICE_NAME} installed: automatic start\n  command: {} {}\n  recovery: restart \
         after {} (counts reset after {}h)",
        executable_path.display(),
        info.launch_arguments
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        delays.join(", "),
        FAILURE_RESET.as_secs() / 3600,
    );
    for warning in warnings {
        out.push_str(&format!("\n  {warning}"));
    }
    for (name, value, wrote) in written {
        let what = if wrote {
            format!("set to {value} (hardened default)")
        } else {
            "kept (already set)".to_string()
        };
        out.push_str(&format!("\n  HKLM\\{}\\{name}: {what}", config::SERVICE_KEY));
    }
    if config_file.is_none() && !config::default_config_path().is_file() {
        out.push_str(&format!(
            "\n  note: no --config and {} does not exist: create it before starting the service",
            config::default_config_path().display()
        ));
    }
    Ok(out)
}

/// Restart delays of the recovery actions (first, second, later failures).
const RESTART_DELAYS_SECS: [u64; 3] = [5, 10, 60];
/// After a day without failures the SCM counts from the first action again.
const FAILURE_RESET: Duration = Duration::from_secs(24 * 3600);
/// `ERROR_INVALID_LEVEL`: the SCM does not know a configuration level (Wine 8 for
/// `SERVICE_CONFIG_FAILURE_ACTIONS_FLAG`).
const ERROR_INVALID_LEVEL: i32 = 124;

/// Description and recovery actions: restart after 5 s, 10 s, then 60 s; the count resets after
/// a day. Also for a non-crash failure (the service reporting Stopped with an error code), where
/// the SCM supports that; where it does not (Wine), a warning is returned instead.
fn configure(service: &Service) -> Result<Vec<String>, String> {
    service
        .set_description(DESCRIPTION)
        .map_err(|e| scm_error("cannot set the description", &e))?;
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(FAILURE_RESET),
            reboot_msg: None,
            command: None,
            actions: Some(RESTART_DELAYS_SECS.iter().map(|&s| restart(s)).collect()),
        })
        .map_err(|e| scm_error("cannot set the recovery actions", &e))?;
    match service.set_failure_actions_on_non_crash_failures(true) {
        Ok(()) => Ok(vec![]),
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(ERROR_INVALID_LEVEL) => Ok(vec![
            "warning: this Service Control Manager cannot apply the recovery actions to \
                     error exits (FailureActionsOnNonCrashFailures): only a crash restarts the service"
                .to_string(),
        ]),
        Err(e) => Err(scm_error("cannot apply the recovery actions to error exits", &e)),
    }
}

/// Creates `HKLM\`[`config::SERVICE_KEY`] and each of [`super::PARAMETER_DEFAULTS`] that is
/// absent. Never overwrites a value that exists (whatever its type: a bad one is reported at
/// start). Returns (name, default, written).
fn write_parameter_defaults() -> Result<Vec<(&'static str, u32, bool)>, String> {
    let key_name = format!("HKLM\\{}", config::SERVICE_KEY);
    let key = windows_registry::LOCAL_MACHINE
        .create(config::SERVICE_KEY)
        .map_err(|e| format!("cannot create {key_name}: {}", e.message()))?;
    let mut done = Vec::new();
    for &(name, value) in super::PARAMETER_DEFAULTS {
        match key.get_type(name) {
            Ok(_) => done.push((name, value, false)),
            Err(e) if e.code().0 as u32 == NOT_FOUND => {
                key.set_u32(name, value)
                    .map_err(|e| format!("cannot set {key_name}\\{name}: {}", e.message()))?;
                done.push((name, value, true));
            }
            Err(e) => return Err(format!("cannot read {key_name}\\{name}: {}", e.message())),
        }
    }
    Ok(done)
}

/// `ERROR_FILE_NOT_FOUND` as an HRESULT: the registry key or value does not exist.
const NOT_FOUND: u32 = 0x8007_0002;

/// Registers the Event Log source `fxpd` (message file [`EVENT_MESSAGE_FILE`]).
fn register_event_source() -> Result<(), String> {
    let key = windows_registry::LOCAL_MACHINE
        .create(EVENT_SOURCE_KEY)
        .map_err(|e| format!("cannot create HKLM\\{EVENT_SOURCE_KEY}: {}", e.message()))?;
    key.set_expand_string("EventMessageFile", EVENT_MESSAGE_FILE)
        .and_then(|()| key.set_u32("TypesSupported", 7))
        .map_err(|e| format!("cannot register the Event Log source: {}", e.message()))
}

/// `fxpd service uninstall`: stops the service if it runs (draining), deletes it and its Event
/// Log source. Deleting the service removes its registry key, `Parameters` included.
pub fn uninstall() -> Result<String, String> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(
        &manager,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    )?;
    let mut out = String::new();
    if current_state(&service)? != ServiceState::Stopped {
        out.push_str(&stop_and_wait(&service)?);
        out.push('\n');
    }
    service
        .delete()
        .map_err(|e| scm_error("cannot delete the service", &e))?;
    drop(service);
    match windows_registry::LOCAL_MACHINE.remove_tree(EVENT_SOURCE_KEY) {
        Ok(()) => {}
        Err(e) if e.code().0 as u32 == NOT_FOUND => {}
        Err(e) => out.push_str(&format!(
            "warning: cannot remove HKLM\\{EVENT_SOURCE_KEY}: {}\n",
            e.message()
        )),
    }
    out.push_str(&format!(
        "service {SERVICE_NAME} removed, with its registry key (Parameters included)"
    ));
    Ok(out)
}

/// `fxpd service start`: starts the service and waits until it runs (or fails to).
pub fn start() -> Result<String, String> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(&manager, ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    service
        .start::<&str>(&[])
        .map_err(|e| scm_error("cannot start the service", &e))?;
    let deadline = Instant::now() + START_WAIT_HINT + Duration::from_secs(30);
    loop {
        let status = service
            .query_status()
            .map_err(|e| scm_error("cannot query the service", &e))?;
        match status.current_state {
            ServiceState::Running => {
                let pid = status
                    .process_id
                    .map(|p| format!(" (process {p})"))
                    .unwrap_or_default();
                return Ok(format!("service {SERVICE_NAME} running{pid}"));
            }
            ServiceState::Stopped => {
                return Err(format!(
                    "service {SERVICE_NAME} stopped while starting (exit code {}); the Event Log \
                     (source {SERVICE_NAME}) says why",
                    describe_exit(status.exit_code)
                ))
            }
            _ if Instant::now() > deadline => {
                return Err(format!("service {SERVICE_NAME} did not start in time"));
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `fxpd service stop`: sends the stop control and waits while the service drains.
pub fn stop() -> Result<String, String> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(&manager, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    if current_state(&service)? == ServiceState::Stopped {
        return Ok(format!("service {SERVICE_NAME} is not running"));
    }
    stop_and_wait(&service)
}

/// `fxpd service reload`: sends the parameter-change control (the service re-reads its
/// configuration: file, registry and environment).
pub fn reload() -> Result<String, String> {
    use windows_sys::Win32::System::Services::{ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS};
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(
        &manager,
        ServiceAccess::PAUSE_CONTINUE | ServiceAccess::QUERY_STATUS,
    )?;
    // SAFETY: a valid service handle (owned by `service`) and a zeroed SERVICE_STATUS to fill.
    let ok = unsafe {
        let mut status: SERVICE_STATUS = std::mem::zeroed();
        ControlService(service.raw_handle(), SERVICE_CONTROL_PARAMCHANGE, &mut status)
    };
    if ok == 0 {
        let e = windows_service::Error::Winapi(std::io::Error::last_os_error());
        return Err(scm_error("cannot send the parameter-change control", &e));
    }
    Ok(format!("service {SERVICE_NAME}: reload requested"))
}

/// `fxpd service status`: state, process, last exit code and command line.
pub fn status() -> Result<String, String> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(
        &manager,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    )?;
    let status = service
        .query_status()
        .map_err(|e| scm_error("cannot query the service", &e))?;
    let mut out = format!("service {SERVICE_NAME}: {}", state_name(status.current_state));
    if let Some(pid) = status.process_id {
        out.push_str(&format!(" (process {pid})"));
    }
    if status.current_state == ServiceState::Stopped {
        out.push_str(&format!(", last exit code {}", describe_exit(status.exit_code)));
    }
    if let Ok(config) = service.query_config() {
        out.push_str(&format!(
            "\n  start: {:?}\n  command: {}",
            config.start_type,
            config.executable_path.display()
        ));
    }
    Ok(out)
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, String> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| scm_error("cannot connect to the Service Control Manager", &e))
}

fn open(manager: &ServiceManager, access: ServiceAccess) -> Result<Service, String> {
    manager
        .open_service(SERVICE_NAME, access)
        .map_err(|e| scm_error("cannot open the service", &e))
}

fn current_state(service: &Service) -> Result<ServiceState, String> {
    service
        .query_status()
        .map(|s| s.current_state)
        .map_err(|e| scm_error("cannot query the service", &e))
}

/// Sends stop and waits for Stopped while the service shows progress (its checkpoint or state
/// changes at least every [`NO_PROGRESS_LIMIT`]).
fn stop_and_wait(service: &Service) -> Result<String, String> {
    let started = Instant::now();
    match service.stop() {
        Ok(_) => {}
        // Already stopping or stopped (ERROR_SERVICE_NOT_ACTIVE, ERROR_SERVICE_CANNOT_ACCEPT_CTRL).
        Err(windows_service::Error::Winapi(e)) if matches!(e.raw_os_error(), Some(1062 | 1061)) => {}
        Err(e) => return Err(scm_error("cannot stop the service", &e)),
    }
    let mut last = None;
    let mut last_progress = Instant::now();
    loop {
        let status = service
            .query_status()
            .map_err(|e| scm_error("cannot query the service", &e))?;
        if status.current_state == ServiceState::Stopped {
            return Ok(format!(
                "service {SERVICE_NAME} stopped after {:.1}s (exit code {})",
                started.elapsed().as_secs_f64(),
                describe_exit(status.exit_code)
            ));
        }
        let now = (status.current_state, status.checkpoint);
        if last != Some(now) {
            last = Some(now);
            last_progress = Instant::now();
        } else if last_progress.elapsed() > NO_PROGRESS_LIMIT {
            return Err(format!(
                "service {SERVICE_NAME} shows no progress stopping ({})",
                state_name(status.current_state)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn state_name(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Stopped => "stopped",
        ServiceState::StartPending => "starting",
        ServiceState::StopPending => "stopping",
        ServiceState::Running => "running",
        ServiceState::ContinuePending => "continuing",
        ServiceState::PausePending => "pausing",
        ServiceState::Paused => "paused",
    }
}

fn describe_exit(code: ServiceExitCode) -> String {
    match code {
        ServiceExitCode::Win32(0) => "0".to_string(),
        ServiceExitCode::Win32(n) => format!("Win32 error {n}"),
        ServiceExitCode::ServiceSpecific(2) => "2: configuration error".to_string(),
        ServiceExitCode::ServiceSpecific(n) => n.to_string(),
    }
}

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

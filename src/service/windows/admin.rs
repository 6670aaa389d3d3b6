//! Administration from a console: `fxpd service install|uninstall|start|stop|reload|status`
//! against the Service Control Manager, with the service's recovery actions and registry defaults.

use std::path::Path;
use std::time::{Duration, Instant};

use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceErrorControl, ServiceExitCode,
    ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState,
    ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::eventlog::{register_event_source, EVENT_SOURCE_KEY};
use super::runner::START_WAIT_HINT;
use super::{scm_error, DESCRIPTION, DISPLAY_NAME, SERVICE_NAME};
use crate::config;

/// `fxpd service stop`/`uninstall` give up when the service shows no progress for this long.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(30);

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
        launch_arguments: crate::service::service_arguments(config_file.as_deref()),
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

/// Creates `HKLM\`[`config::SERVICE_KEY`] and each of [`crate::service::PARAMETER_DEFAULTS`] that is
/// absent. Never overwrites a value that exists (whatever its type: a bad one is reported at
/// start). Returns (name, default, written).
fn write_parameter_defaults() -> Result<Vec<(&'static str, u32, bool)>, String> {
    let key_name = format!("HKLM\\{}", config::SERVICE_KEY);
    let key = windows_registry::LOCAL_MACHINE
        .create(config::SERVICE_KEY)
        .map_err(|e| format!("cannot create {key_name}: {}", e.message()))?;
    let mut done = Vec::new();
    for &(name, value) in crate::service::PARAMETER_DEFAULTS {
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

//! The Event Log: the source `fxpd` (its registration at install) and the entries the service writes.

use super::SERVICE_NAME;

/// The Event Log source's registration, under `HKEY_LOCAL_MACHINE`.
pub const EVENT_SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\fxpd";
/// Its message file: `EventCreate.exe` has a message `%1` for every event ID from 1 to 1000.
const EVENT_MESSAGE_FILE: &str = r"%SystemRoot%\System32\EventCreate.exe";

/// Event IDs (1-1000, see [`EVENT_MESSAGE_FILE`]).
pub(super) mod event_id {
    pub const STARTED: u32 = 1;
    pub const STOP_REQUESTED: u32 = 2;
    pub const STOPPED: u32 = 3;
    pub const RELOAD_REQUESTED: u32 = 4;
    pub const ERROR: u32 = 100;
}

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
pub(super) fn event(kind: Kind, id: u32, text: &str) {
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

/// Registers the Event Log source `fxpd` (message file [`EVENT_MESSAGE_FILE`]).
pub(super) fn register_event_source() -> Result<(), String> {
    let key = windows_registry::LOCAL_MACHINE
        .create(EVENT_SOURCE_KEY)
        .map_err(|e| format!("cannot create HKLM\\{EVENT_SOURCE_KEY}: {}", e.message()))?;
    key.set_expand_string("EventMessageFile", EVENT_MESSAGE_FILE)
        .and_then(|()| key.set_u32("TypesSupported", 7))
        .map_err(|e| format!("cannot register the Event Log source: {}", e.message()))
}

//! What a reload (SIGHUP) applies, and what it says needs a restart.
//!
//! Settings read only at start keep their start-up values until a restart; a reload whose
//! result changes any of them names every one in a single structured event
//! (`event="reload_needs_restart"`, `settings="a,b,c"`). `log.level` and `log.format` apply
//! at once. An edit to the configuration file waits for the signal.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Every JSON event of the server's log so far (a line still being written is left out).
fn events(s: &Server) -> Vec<Value> {
    let log = s.stderr();
    let complete = &log[..log.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON event ({e}): {l}")))
        .collect()
}

/// The `fields.event = "reload_needs_restart"` events so far.
fn restart_events(s: &Server) -> Vec<Value> {
    events(s)
        .into_iter()
        .filter(|e| e["fields"]["event"] == "reload_needs_restart")
        .collect()
}

/// Waits up to 10 s until `count` events match `pred`; returns them.
fn wait_events(s: &Server, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = events(s).into_iter().filter(|e| pred(e)).collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {count} matching events within 10 s:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reload_names_every_changed_setting_that_needs_a_restart_in_one_event() {
    // JSON from the file, not from --log-json: a flag would beat the file's new value.
    let s = Server::builder().config("[log]\nformat = \"json\"\n").start();
    let w3c = s.dir.path().join("w3c");
    s.write_config_merged(&format!(
        r#"
            listen = ["127.0.0.2:0", "127.0.0.3:0"]
            banner = "reloaded at once"
            [limits]
            failed_login_delay_ms = 5
            max_login_failures = 7
            lockout_secs = 60
            user_slowdown_max_ms = 500
            shutdown_grace_secs = 3
            max_sessions = 400
            [log]
            w3c_dir = {w3c:?}
            [cluster]
            key_prefix = "other"
            [fxp]
            allow_foreign_port = true
            "#
    ));
    s.reload().expect("a valid file must be applied");
    let events = restart_events(&s);
    assert_eq!(events.len(), 1, "one event for the whole reload:\n{}", s.stderr());
    let event = &events[0];
    assert_eq!(event["level"], "WARN", "{event}");
    assert_eq!(
        event["fields"]["settings"],
        "cluster.key_prefix,limits.failed_login_delay_ms,limits.lockout_secs,limits.max_login_failures,\
         limits.shutdown_grace_secs,limits.user_slowdown_max_ms,listen",
        "exactly the changed settings read only at start, sorted (not banner, max_sessions, fxp, \
         log.w3c_dir): {event}"
    );
    // The rest applies at once.
    let greeting = s.ctrl().greeting.expect("a greeting");
    assert!(greeting.text().contains("reloaded at once"), "{greeting}");
    assert!(
        w3c.is_dir(),
        "log.w3c_dir applies at once: its directory is created"
    );

    // Still not in force: the next reload says so again.
    s.reload().expect("a valid file must be applied");
    assert_eq!(restart_events(&s).len(), 2, "{}", s.stderr());

    // Back to the start-up values: nothing needs a restart, so no event.
    std::fs::write(&s.config_path, &s.config_text).unwrap();
    s.reload().expect("a valid file must be applied");
    assert_eq!(restart_events(&s).len(), 2, "{}", s.stderr());
}

#[test]
fn a_reload_switches_the_log_format_at_once() {
    let s = Server::builder()
        .config("[log]\nformat = \"text\"\n")
        .user("alice", PASS, "alice", false)
        .start();
    let is_json = |l: &str| serde_json::from_str::<Value>(l).is_ok();
    assert!(
        !s.stderr().is_empty() && !s.stderr().lines().any(is_json),
        "text format at start:\n{}",
        s.stderr()
    );
    s.write_config_merged("[log]\nformat = \"json\"\n");
    s.reload().expect("a valid file must be applied");
    let _c = s.login("alice", PASS);
    // Text up to the switch (the SIGHUP line among it), then one JSON event per line: the
    // reload's own first, then the session's lines.
    let log = s.stderr();
    let lines: Vec<&str> = log.lines().collect();
    let switch = lines
        .iter()
        .position(|l| is_json(l))
        .expect("no JSON line after the reload");
    assert!(lines[..switch].iter().any(|l| l.contains("SIGHUP")), "{log}");
    let events: Vec<Value> = lines[switch..]
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("text after the switch ({e}): {l}\n{log}"))
        })
        .collect();
    assert_eq!(events[0]["fields"]["event"], "config_reloaded", "{log}");
    assert!(
        events.iter().any(|e| e["fields"]["message"] == "logged in"),
        "the session's lines are JSON too: {log}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["fields"]["event"] == "reload_needs_restart"),
        "log.format needs no restart: {log}"
    );
}

#[test]
fn tls_implicit_listen_is_named_when_it_changes() {
    let s = Server::builder().arg("--log-json").start();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (s.dir.path().join("c.pem"), s.dir.path().join("k.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    s.write_config_merged(&format!(
        "[tls]\ncertificate = {c:?}\nprivate_key = {k:?}\nimplicit_listen = [\"127.0.0.2:0\"]\n"
    ));
    s.reload().expect("a valid file must be applied");
    let events = restart_events(&s);
    assert_eq!(events.len(), 1, "{}", s.stderr());
    assert_eq!(
        events[0]["fields"]["settings"], "tls.implicit_listen",
        "{}",
        events[0]
    );
}

#[test]
fn log_level_applies_at_once_on_reload() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .arg("--log-json")
        .start();
    let is_debug = |e: &Value| e["level"] == "DEBUG";
    let noop_traced = |e: &Value| e["level"] == "DEBUG" && e["fields"]["command"] == "Noop";
    let disconnected = |e: &Value| e["fields"]["message"] == "disconnected";
    // One session: a NOOP (traced at debug level), then QUIT, whose info event ends it.
    let session = |n: usize| {
        let mut c = s.login("alice", PASS);
        c.expect("NOOP", 200);
        c.expect("QUIT", 221);
        wait_events(&s, n, disconnected);
    };

    session(1);
    assert!(!events(&s).iter().any(is_debug), "info level: no debug event");

    s.write_config_merged("[log]\nlevel = \"debug\"\n");
    s.reload().expect("a valid file must be applied");
    session(2);
    assert_eq!(
        events(&s).iter().filter(|e| noop_traced(e)).count(),
        1,
        "debug level from the reload on:\n{}",
        s.stderr()
    );
    assert!(restart_events(&s).is_empty(), "log.level needs no restart");

    std::fs::write(&s.config_path, &s.config_text).unwrap();
    s.reload().expect("a valid file must be applied");
    let debug_before = events(&s).iter().filter(|e| is_debug(e)).count();
    session(3);
    assert_eq!(
        events(&s).iter().filter(|e| is_debug(e)).count(),
        debug_before,
        "back to info: no more debug events:\n{}",
        s.stderr()
    );
}

/// The configuration file is not watched: an edit waits for a SIGHUP, however long, while a
/// change to the users file (looked at every 2 s) would have been applied by then. Then the
/// signal applies it.
#[test]
fn an_edit_to_the_configuration_file_waits_for_the_signal() {
    let s = Server::builder().user("alice", PASS, "alice", false).start();
    let greeting = |s: &Server| Ctrl::connect(s.addr()).greeting.expect("greeted").text();
    let before = greeting(&s);
    s.write_config_merged("banner = \"edited, not yet signalled\"\n");
    // Three looks of the users-file watch, twice what it needs to apply a change of its own.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(greeting(&s), before, "an edit took effect without a signal");
    assert!(!s.stderr().contains("configuration reloaded"), "{}", s.stderr());
    s.reload().expect("a valid file must be applied");
    assert_eq!(greeting(&s).trim_end(), "220 edited, not yet signalled");
}

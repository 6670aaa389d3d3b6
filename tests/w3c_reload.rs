//! `log.w3c_dir` reloads: a SIGHUP that changes it sends the next lines to the new directory
//! (or stops the log when unset), and one whose directory cannot be opened is refused as a
//! whole, the W3C log in force going on.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// The server's configuration file with `[log] w3c_dir` set to `dir` (removed when `None`)
/// and `banner` set to `banner`.
fn write_config(s: &Server, dir: Option<&Path>, banner: &str) {
    let mut table: toml::Table = toml::from_str(&s.config_text).unwrap();
    let log = table
        .entry("log")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    match dir {
        Some(dir) => log.insert("w3c_dir".into(), dir.to_str().unwrap().into()),
        None => log.remove("w3c_dir"),
    };
    table.insert("banner".into(), banner.into());
    fs::write(&s.config_path, toml::to_string(&table).unwrap()).unwrap();
}

/// The URIs (`cs-uri-stem`) of the log lines in `dir` so far.
fn uris(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        out.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split(' ').nth(7).map(str::to_owned)),
        );
    }
    out
}

/// Waits up to 10 s for a line with `uri` in `dir`; returns every URI there.
fn wait_for_uri(dir: &Path, uri: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = uris(dir);
        if found.iter().any(|u| u == uri) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no line for {uri} in {} within 10 s; lines: {found:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reload_moves_the_w3c_log_and_a_directory_that_cannot_be_opened_refuses_it() {
    let logs = tempfile::tempdir().unwrap();
    let (a, b) = (logs.path().join("a"), logs.path().join("b"));
    let s = Server::with_alice(&format!("[log]\nw3c_dir = {:?}\n", a.to_str().unwrap()));
    let mut c = s.login("alice", PASS);
    c.expect("SIZE before.bin", 550);
    wait_for_uri(&a, "before.bin");

    write_config(&s, Some(&b), "moved to b");
    s.reload().expect("a writable W3C directory must be applied");
    // An open session and a new one both log to the new directory.
    c.expect("SIZE after.bin", 550);
    let mut fresh = s.login("alice", PASS);
    fresh.expect("SIZE fresh.bin", 550);
    wait_for_uri(&b, "after.bin");
    let in_b = wait_for_uri(&b, "fresh.bin");
    let in_a = uris(&a);
    assert!(in_a.contains(&"before.bin".to_owned()), "{in_a:?}");
    assert!(
        !in_a.iter().any(|u| u == "after.bin" || u == "fresh.bin"),
        "lines after the reload went to the old directory: {in_a:?}"
    );
    assert!(
        !in_b.contains(&"before.bin".to_owned()),
        "a line from before the reload in the new directory: {in_b:?}"
    );

    // A file where the directory should be: the whole reload is refused (the banner too).
    let not_a_dir = logs.path().join("not-a-dir");
    fs::write(&not_a_dir, b"a file").unwrap();
    write_config(&s, Some(&not_a_dir), "must not apply");
    let refused = s
        .reload()
        .expect_err("a W3C directory that cannot be opened must refuse the reload");
    assert!(
        refused.contains("log.w3c_dir") && refused.contains(not_a_dir.to_str().unwrap()),
        "the refusal names the setting and the path: {refused}"
    );
    assert_eq!(fs::read(&not_a_dir).unwrap(), b"a file", "the file was touched");
    let greeting = s.ctrl().greeting.expect("a greeting");
    assert!(
        greeting.text().contains("moved to b"),
        "the configuration in force stays: {greeting}"
    );
    c.expect("SIZE still-b.bin", 550);
    wait_for_uri(&b, "still-b.bin");
}

#[test]
fn a_reload_that_unsets_the_w3c_directory_stops_the_log() {
    let logs = tempfile::tempdir().unwrap();
    let (a, b) = (logs.path().join("a"), logs.path().join("b"));
    let s = Server::with_alice(&format!("[log]\nw3c_dir = {:?}\n", a.to_str().unwrap()));
    let mut c = s.login("alice", PASS);
    c.expect("SIZE on.bin", 550);
    wait_for_uri(&a, "on.bin");

    write_config(&s, None, "no w3c log");
    s.reload().expect("no W3C log is a valid configuration");
    c.expect("SIZE off.bin", 550);

    // Back on, in another directory: the line logged while off is in neither.
    write_config(&s, Some(&b), "w3c log again");
    s.reload().expect("a writable W3C directory must be applied");
    c.expect("SIZE on-again.bin", 550);
    let in_b = wait_for_uri(&b, "on-again.bin");
    let in_a = uris(&a);
    assert!(
        !in_a.contains(&"off.bin".to_owned()) && !in_b.contains(&"off.bin".to_owned()),
        "a line logged while the W3C log was off: a {in_a:?}, b {in_b:?}"
    );
}

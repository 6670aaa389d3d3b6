//! The W3C Extended log (`log.w3c_dir`): the file IIS administrators know, checked line by
//! line and parsed by a real log analyser (goaccess); stopped transfers are lines too.

mod common;

use common::*;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// The log lines (without `#` directives) once the session's QUIT (its last command) is
/// there, or at least `n` lines.
fn wait_for_lines(dir: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut lines = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            lines.extend(text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned));
        }
        let quit = lines.iter().any(|l| l.split(' ').nth(6) == Some("QUIT"));
        if (quit && lines.len() >= n) || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a session with a download, an upload, a refused PORT and a missing file.
fn logged_session() -> (Server, std::path::PathBuf, String) {
    let logs = tempfile::tempdir().unwrap().keep();
    let s = Server::with_alice(&format!("[log]\nw3c_dir = {:?}\n", logs.to_str().unwrap()));
    let sha = write_random_file(&s.home("alice").join("down.bin"), 300_000);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let a = c.pasv();
    let mut d = data_connect(a);
    c.expect_class("RETR down.bin", 1);
    assert_eq!(sha256_bytes(&read_to_end_deadline(&mut d, IO_TIMEOUT)), sha);
    assert_eq!(c.read_reply().code, 226);
    let a = c.pasv();
    let mut d = data_connect(a);
    c.expect_class("STOR up load.bin", 1);
    std::io::Write::write_all(&mut d, &[7u8; 12_345]).unwrap();
    drop(d);
    assert_eq!(c.read_reply().code, 226);
    c.expect("PORT 127,0,0,3,200,1", 504);
    c.expect("SIZE nope.bin", 550);
    c.expect("QUIT", 221);
    (s, logs, sha)
}

#[test]
fn every_command_is_a_line_with_status_and_bytes() {
    let (s, logs, _) = logged_session();
    let files: Vec<_> = fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(files.len(), 1, "one file per day: {files:?}");
    let name = files[0].to_str().unwrap().to_owned();
    assert!(
        name.starts_with("ex") && name.ends_with(".log") && name.len() == 12,
        "{name}"
    );
    let text = fs::read_to_string(logs.join(&name)).unwrap();
    assert!(text.starts_with("#Software: fxpd "), "{text}");
    assert!(text.contains("\r\n#Version: 1.0\r\n#Date: "), "{text}");
    assert!(text.contains(
        "#Fields: date time c-ip cs-username s-ip s-port cs-method cs-uri-stem sc-status sc-bytes cs-bytes time-taken x-session\r\n"
    ));
    let lines = wait_for_lines(&logs, 8);
    let find = |method: &str| {
        lines
            .iter()
            .find(|l| l.split(' ').nth(6) == Some(method))
            .unwrap_or_else(|| panic!("no {method} line in {lines:#?}"))
            .split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let retr = find("RETR");
    assert_eq!(retr.len(), 13, "{retr:?}");
    assert_eq!((retr[2].as_str(), retr[3].as_str()), ("127.0.0.1", "alice"));
    assert_eq!(
        (retr[4].as_str(), retr[5].parse::<u16>().unwrap()),
        ("127.0.0.2", s.port())
    );
    assert_eq!(
        (retr[7].as_str(), retr[8].as_str(), retr[9].as_str()),
        ("/down.bin", "226", "300000")
    );
    let stor = find("STOR");
    assert_eq!(
        (stor[7].as_str(), stor[8].as_str(), stor[10].as_str()),
        ("/up+load.bin", "226", "12345")
    );
    let port = find("PORT");
    assert_eq!(
        (port[7].as_str(), port[8].as_str()),
        ("127.0.0.3:51201", "504"),
        "policy refusal logged"
    );
    let pass = find("PASS");
    assert_eq!(pass[7], "-", "passwords are never logged");
    assert!(!text.contains(PASS));
    assert_eq!(find("SIZE")[8], "550");
    let _ = fs::remove_dir_all(logs);
}

/// The log lines so far (without `#` directives).
fn lines_now(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        lines.extend(text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned));
    }
    lines
}

/// A transfer that never reaches its final reply is a line too, with 426 and the bytes it
/// moved: an upload stopped by ABOR (the partial file stays), and one cut off by the end of
/// its session. Without them an aborted upload would leave a file and no record of it.
#[test]
fn stopped_transfers_are_logged_with_426_and_their_bytes() {
    let logs = tempfile::tempdir().unwrap().keep();
    let s = Server::with_alice(&format!("[log]\nw3c_dir = {:?}\n", logs.to_str().unwrap()));
    let home = s.home("alice");
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let mut d = c.start_passive("STOR kept.bin");
    std::io::Write::write_all(&mut d, &[1u8; 20_000]).unwrap();
    wait_for_size(&home.join("kept.bin"), 20_000);
    c.send("ABOR");
    assert_eq!(c.read_reply().code, 426);
    assert_eq!(c.read_reply().code, 226);
    drop(d);

    let mut e = s.login("alice", PASS);
    e.expect("TYPE I", 200);
    let mut d = e.start_passive("STOR cut.bin");
    std::io::Write::write_all(&mut d, &[2u8; 5_000]).unwrap();
    wait_for_size(&home.join("cut.bin"), 5_000);
    drop(e);

    let deadline = Instant::now() + Duration::from_secs(10);
    let stor = |lines: &[String], path: &str| {
        lines
            .iter()
            .map(|l| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .find(|f| f[6] == "STOR" && f[7] == path)
    };
    let lines = loop {
        let lines = lines_now(&logs);
        if stor(&lines, "/cut.bin").is_some() {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no line for the cut-off upload: {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let kept = stor(&lines, "/kept.bin").expect("no line for the aborted upload");
    assert_eq!(
        (kept[8].as_str(), kept[10].as_str()),
        ("426", "20000"),
        "{kept:?}"
    );
    let cut = stor(&lines, "/cut.bin").unwrap();
    assert_eq!((cut[8].as_str(), cut[10].as_str()), ("426", "5000"), "{cut:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.split(' ').nth(6) == Some("ABOR") && l.split(' ').nth(8) == Some("226")),
        "{lines:#?}"
    );
    drop(d);
    let _ = fs::remove_dir_all(logs);
}

#[test]
fn goaccess_parses_the_log() {
    if !require_client("goaccess") {
        return;
    }
    let (_s, logs, _) = logged_session();
    let lines = wait_for_lines(&logs, 8);
    let report = logs.join("report.json");
    let file = fs::read_dir(&logs).unwrap().flatten().next().unwrap().path();
    let out = run_with_timeout(
        Command::new("goaccess").arg(&file).args([
            "--log-format=%d %t %h %e %^ %^ %^ %U %s %b %^ %L %^",
            "--date-format=%Y-%m-%d",
            "--time-format=%H:%M:%S",
            "--no-global-config",
            "-o",
            report.to_str().unwrap(),
        ]),
        60,
    );
    assert!(
        out.status.success(),
        "goaccess failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = fs::read_to_string(&report).unwrap();
    let total = lines.len().to_string();
    assert!(
        json.contains(&format!("\"total_requests\": {total}")),
        "{total} lines; report: {json}"
    );
    assert!(
        json.contains(&format!("\"valid_requests\": {total}")),
        "report: {json}"
    );
    assert!(json.contains("\"failed_requests\": 0"), "report: {json}");
    assert!(json.contains("/down.bin"), "report: {json}");
    let _ = fs::remove_dir_all(logs);
}

//! Transfer rate limits (`limits.*_bytes_per_sec`), measured on real transfers.

mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

const SIZE: usize = 512 * 1024;
const RATE: u64 = 256 * 1024;

/// Downloads `name` over a passive connection; returns the bytes and the seconds taken.
fn timed_download(c: &mut Ctrl, name: &str) -> (Vec<u8>, f64) {
    let a = c.pasv();
    let mut d = data_connect(a);
    let start = Instant::now();
    c.expect_class(&format!("RETR {name}"), 1);
    let data = read_to_end_deadline(&mut d, Duration::from_secs(60));
    assert_eq!(c.read_reply().code, 226);
    (data, start.elapsed().as_secs_f64())
}

#[test]
fn download_and_upload_rates_are_enforced_per_session() {
    let s = Server::with_alice(&format!(
        "[limits]\ndownload_bytes_per_sec = {RATE}\nupload_bytes_per_sec = {RATE}\n"
    ));
    let sha = write_random_file(&s.home("alice").join("f.bin"), SIZE);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let (data, secs) = timed_download(&mut c, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    // 512 KiB at 256 KiB/s, less a quarter-second burst: at least ~1.75 s.
    assert!(
        secs >= 1.5,
        "download took {secs:.2} s, faster than the limit allows"
    );
    assert!(secs < 20.0, "download took {secs:.2} s");

    let a = c.pasv();
    let mut d = data_connect(a);
    let start = Instant::now();
    c.expect_class("STOR up.bin", 1);
    d.write_all(&data).unwrap();
    drop(d);
    assert_eq!(c.read_reply().code, 226);
    let secs = start.elapsed().as_secs_f64();
    assert!(
        secs >= 1.5,
        "upload took {secs:.2} s, faster than the limit allows"
    );
    assert_eq!(sha256_file(&s.home("alice").join("up.bin")), sha);
}

#[test]
fn without_limits_the_same_download_is_fast() {
    let s = Server::with_alice("");
    let sha = write_random_file(&s.home("alice").join("f.bin"), SIZE);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let (data, secs) = timed_download(&mut c, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    assert!(secs < 1.5, "an unlimited 512 KiB download took {secs:.2} s");
}

#[test]
fn the_global_limit_is_shared_by_all_sessions() {
    let s = Server::with_alice(&format!("[limits]\nglobal_download_bytes_per_sec = {RATE}\n"));
    let sha = write_random_file(&s.home("alice").join("f.bin"), SIZE / 2);
    let start = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut c = s.login("alice", PASS);
            std::thread::spawn(move || {
                c.expect("TYPE I", 200);
                timed_download(&mut c, "f.bin").0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(sha256_bytes(&t.join().unwrap()), sha);
    }
    // Two sessions x 256 KiB through one 256 KiB/s bucket: at least ~1.75 s together.
    let secs = start.elapsed().as_secs_f64();
    assert!(secs >= 1.5, "two downloads took {secs:.2} s under a shared limit");
}

/// A group whose members may download at [`RATE`] all their sessions together.
const SLOW_GROUP: &str = "
[[group]]
name = \"slow\"
download_bytes_per_sec = 262144
";

/// alice in group `slow`, bob in no group; each has `f.bin` (`size` bytes) at home. Returns
/// the server and the file's hash.
fn account_rate_server(size: usize) -> (Server, String) {
    assert_eq!(RATE, 262_144, "SLOW_GROUP says the same rate");
    let s = Server::builder()
        .user("alice", PASS, "alice", true)
        .user("bob", PASS, "bob", true)
        .users_toml(SLOW_GROUP)
        .start();
    let o = cli_user(&s.users_file, &["set", "alice", "--groups", "slow"]);
    assert_success(&o, "fxpd user set alice --groups slow");
    s.reload().unwrap();
    let sha = write_random_file(&s.home("alice").join("f.bin"), size);
    std::fs::copy(s.home("alice").join("f.bin"), s.home("bob").join("f.bin")).unwrap();
    (s, sha)
}

#[test]
fn an_accounts_rate_comes_from_its_group_and_is_shared_by_all_its_sessions() {
    let (s, sha) = account_rate_server(SIZE / 2);
    // Two sessions of alice at once, 256 KiB each, through her one 256 KiB/s bucket: at
    // least ~1.75 s together (a second session must not double her rate).
    let start = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut c = s.login("alice", PASS);
            std::thread::spawn(move || {
                c.expect("TYPE I", 200);
                timed_download(&mut c, "f.bin").0
            })
        })
        .collect();
    // bob, downloading meanwhile, is not held back by alice's limit.
    let mut bob = s.login("bob", PASS);
    bob.expect("TYPE I", 200);
    let (data, bob_secs) = timed_download(&mut bob, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    for t in threads {
        assert_eq!(sha256_bytes(&t.join().unwrap()), sha);
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(
        secs >= 1.5,
        "alice's two downloads took {secs:.2} s, faster than her account's limit allows"
    );
    assert!(
        bob_secs < 1.5,
        "bob's unlimited 256 KiB download took {bob_secs:.2} s while alice was limited"
    );
}

#[test]
fn a_users_own_rate_overrides_the_groups_and_a_reload_reaches_open_sessions() {
    let (s, sha) = account_rate_server(SIZE);
    let mut alice = s.login("alice", PASS);
    alice.expect("TYPE I", 200);
    let (data, secs) = timed_download(&mut alice, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    assert!(secs >= 1.5, "512 KiB at the group's 256 KiB/s took {secs:.2} s");

    // `fxpd user show` names the rate and where it came from.
    let o = cli_user(&s.users_file, &["show", "alice"]);
    assert_success(&o, "fxpd user show alice");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("download_bytes_per_sec: 262144 (group slow)"),
        "{shown}"
    );
    assert!(shown.contains("upload_bytes_per_sec: -"), "{shown}");

    // bob's own limit, set while his session is open, applies to his next transfer.
    let mut bob = s.login("bob", PASS);
    bob.expect("TYPE I", 200);
    let o = cli_user(
        &s.users_file,
        &["set", "bob", "--upload-bytes-per-sec", &RATE.to_string()],
    );
    assert_success(&o, "fxpd user set bob --upload-bytes-per-sec");
    // alice's own 0 lifts her group's limit.
    let o = cli_user(&s.users_file, &["set", "alice", "--download-bytes-per-sec", "0"]);
    assert_success(&o, "fxpd user set alice --download-bytes-per-sec 0");
    s.reload().unwrap();
    let shown = String::from_utf8_lossy(&cli_user(&s.users_file, &["show", "bob"]).stdout).to_string();
    assert!(
        shown.contains("upload_bytes_per_sec: 262144 (user bob)"),
        "{shown}"
    );

    let a = bob.pasv();
    let mut d = data_connect(a);
    let start = Instant::now();
    bob.expect_class("STOR up.bin", 1);
    d.write_all(&data).unwrap();
    drop(d);
    assert_eq!(bob.read_reply().code, 226);
    let secs = start.elapsed().as_secs_f64();
    assert!(
        secs >= 1.5,
        "bob's upload took {secs:.2} s after his limit was set and reloaded"
    );
    assert_eq!(sha256_file(&s.home("bob").join("up.bin")), sha);

    let (data, secs) = timed_download(&mut alice, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    assert!(
        secs < 1.5,
        "alice's own 0 did not lift the group's limit: 512 KiB took {secs:.2} s"
    );
}

#[test]
fn the_server_wide_limit_still_applies_to_an_account_with_a_looser_one() {
    let s = Server::builder()
        .config(&format!("[limits]\ndownload_bytes_per_sec = {RATE}\n"))
        .user("alice", PASS, "alice", true)
        .users_toml("[everyone]\ndownload_bytes_per_sec = 104857600\n")
        .start();
    let sha = write_random_file(&s.home("alice").join("f.bin"), SIZE);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let (data, secs) = timed_download(&mut c, "f.bin");
    assert_eq!(sha256_bytes(&data), sha);
    assert!(
        secs >= 1.5,
        "the tighter server-wide limit lost to the account's: {secs:.2} s"
    );
}

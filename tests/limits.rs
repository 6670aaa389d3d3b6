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

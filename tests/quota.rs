//! Quotas (`quota_bytes`, `quota_files` in the users file; a group's apply to each member):
//! an upload announced past the quota (ALLO) gets 552 before any data, one that crosses it
//! mid-transfer (curl) stops with 552 and leaves nothing of itself while the rest of the home
//! is unchanged by hash, DELE frees quota, the file count is enforced, and the usage is kept
//! in `quota.json` next to the users file. An upload stopped by ABOR or by the end of its
//! session is charged for what it left, and uploads running at the same time share the
//! account's room: no number of sessions takes an account past its quota.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::*;
use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

const QUOTA: &str = r#"
[[group]]
name = "metered"
quota_bytes = 100000
quota_files = 3
"#;

fn quota_server() -> Server {
    let s = Server::builder()
        .user("qa", PASS, "qa", true)
        .users_toml(QUOTA)
        .start();
    let o = cli_user(&s.users_file, &["set", "qa", "--groups", "metered"]);
    assert_success(&o, "fxpd user set qa --groups metered");
    s.reload().unwrap();
    s
}

/// The usage `quota.json` records for `account`: (bytes, files).
fn recorded(s: &Server, account: &str) -> (u64, u64) {
    let path = s.users_file.parent().unwrap().join("quota.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        v[account]["bytes"].as_u64().unwrap_or(0),
        v[account]["files"].as_u64().unwrap_or(0),
    )
}

/// Waits until `quota.json` records `usage` for `account` (it is written when an upload ends).
fn wait_for_usage(s: &Server, account: &str, usage: (u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = recorded(s, account);
        if now == usage {
            return;
        }
        assert!(Instant::now() < deadline, "usage {now:?}, never {usage:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn allo_past_the_quota_is_refused_before_data_and_dele_frees_it() {
    let s = quota_server();
    let home = s.home("qa");
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    c.stor("a.bin", &random_bytes(60_000));
    assert_eq!(recorded(&s, "qa"), (60_000, 1));
    // 40 000 bytes left: an announced 50 000 is refused before 150, nothing created.
    c.expect("ALLO 50000", 200);
    let r = c.try_upload("STOR", "b.bin", b"x");
    assert_eq!(
        r.first(),
        "552 Quota exceeded: this account may hold at most 100000 bytes."
    );
    assert!(!home.join("b.bin").exists());
    // Overwriting a.bin frees what it held: 95 000 fit where 60 000 were.
    let big = random_bytes(95_000);
    c.stor("a.bin", &big);
    assert_eq!(sha256_file(&home.join("a.bin")), sha256_bytes(&big));
    assert_eq!(recorded(&s, "qa"), (95_000, 1));
    // DELE frees it all.
    c.expect("DELE a.bin", 250);
    assert_eq!(recorded(&s, "qa"), (0, 0));
    c.stor("c.bin", &random_bytes(100_000));
    assert_eq!(recorded(&s, "qa"), (100_000, 1));
    // Full: refused before any data.
    assert_eq!(c.try_upload("STOR", "d.bin", b"").code, 552);
    assert!(!home.join("d.bin").exists());
}

#[test]
fn the_file_count_is_enforced() {
    let s = quota_server();
    let home = s.home("qa");
    let mut c = s.login("qa", PASS);
    for name in ["1.txt", "2.txt", "3.txt"] {
        c.stor(name, b"one");
    }
    let r = c.try_upload("STOR", "4.txt", b"four");
    assert_eq!(
        r.first(),
        "552 Quota exceeded: this account may hold at most 3 files."
    );
    assert!(!home.join("4.txt").exists());
    // Replacing or appending to a file it holds adds no file.
    c.stor("1.txt", b"again");
    c.upload("APPE", "2.txt", b"more");
    assert_eq!(recorded(&s, "qa"), (5 + 7 + 3, 3));
    c.expect("DELE 3.txt", 250);
    c.stor("4.txt", b"four");
    assert_eq!(recorded(&s, "qa").1, 3);
}

/// A group's quota is each member's own allowance: one member filling it leaves another
/// member's whole allowance free.
#[test]
fn a_group_quota_is_each_members_own_allowance() {
    let s = Server::builder()
        .user("qa", PASS, "qa", true)
        .user("qb", PASS, "qb", true)
        .users_toml(QUOTA)
        .start();
    for name in ["qa", "qb"] {
        let o = cli_user(&s.users_file, &["set", name, "--groups", "metered"]);
        assert_success(&o, &format!("fxpd user set {name} --groups metered"));
    }
    s.reload().unwrap();
    let full = "552 Quota exceeded: this account may hold at most 100000 bytes.";

    let mut a = s.login("qa", PASS);
    a.expect("TYPE I", 200);
    a.stor("a.bin", &random_bytes(100_000));
    assert_eq!(a.try_upload("STOR", "more.bin", b"x").first(), full);
    assert!(!s.home("qa").join("more.bin").exists());

    // The other member has its own 100 000 bytes, all of them.
    let mut b = s.login("qb", PASS);
    b.expect("TYPE I", 200);
    let body = random_bytes(100_000);
    let r = b.try_upload("STOR", "b.bin", &body);
    assert_eq!(
        r.first(),
        "226 Transfer complete.",
        "the second member's first upload"
    );
    assert_eq!(sha256_file(&s.home("qb").join("b.bin")), sha256_bytes(&body));
    // Each member's usage is its own.
    assert_eq!(recorded(&s, "qa"), (100_000, 1));
    assert_eq!(recorded(&s, "qb"), (100_000, 1));
    // ... and no more than that.
    assert_eq!(b.try_upload("STOR", "more.bin", b"x").first(), full);
    // Freeing one member's room frees none of the other's.
    a.expect("DELE a.bin", 250);
    assert_eq!(b.try_upload("STOR", "more.bin", b"x").first(), full);
    a.stor("again.bin", &random_bytes(100_000));
    assert_eq!(recorded(&s, "qa"), (100_000, 1));
}

#[test]
fn curl_filling_the_quota_mid_transfer_gets_552_and_leaves_the_rest_unchanged() {
    if !require_client("curl") {
        return;
    }
    let s = quota_server();
    let home = s.home("qa");
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    c.stor("kept.bin", &random_bytes(30_000));
    make_tree(&home.join("tree"));
    let before = tree_hashes(&home);
    let work = s.dir.path().join("curl");
    fs::create_dir_all(&work).unwrap();
    let src = work.join("big.bin");
    write_random_file(&src, 1_000_000);
    let o = run_with_timeout(
        client_command("curl", &work)
            .args(["-sS", "--user", &format!("qa:{PASS}"), "-T"])
            .arg(&src)
            .arg(format!("ftp://{}/big.bin", s.addr())),
        120,
    );
    // curl's exit code 70 is its name for FTP 552 ("Exceeded storage allocation"); 55 when
    // the server closed the data connection before curl read the 552 (a race on loopback).
    assert!(
        matches!(o.status.code(), Some(70 | 55)),
        "{}",
        describe_output(&o)
    );
    // Whichever curl saw, the server stopped the upload at the quota.
    s.log_when(|l| l.contains("upload stopped at the account's size limit or quota"));
    assert!(!home.join("big.bin").exists(), "the partial file stayed");
    assert_eq!(tree_hashes(&home), before, "the rest of the home changed");
    assert_eq!(recorded(&s, "qa"), (30_000, 1), "a refused upload was charged");
    // The session goes on and the room is still there.
    c.stor("more.bin", &random_bytes(70_000));
    assert_eq!(recorded(&s, "qa"), (100_000, 2));
}

#[test]
fn usage_survives_a_restart_and_stat_and_user_show_report_it() {
    let mut s = quota_server();
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    c.stor("a.bin", &random_bytes(80_000));
    let stat = c.expect("STAT", 211).text();
    assert!(
        stat.contains("Quota: 80000 of 100000 bytes, 1 of 3 files used"),
        "{stat}"
    );
    c.expect("QUIT", 221);
    s.signal("TERM");
    assert!(s.wait_exit(std::time::Duration::from_secs(20)).is_some());
    // A new fxpd process on the same users file and root.
    let again = Server::builder()
        .config(&format!(
            "root = {:?}\nusers_file = {:?}\n",
            s.root.display().to_string(),
            s.users_file.display().to_string()
        ))
        .start();
    let mut c = again.login("qa", PASS);
    c.expect("TYPE I", 200);
    let stat = c.expect("STAT", 211).text();
    assert!(stat.contains("Quota: 80000 of 100000 bytes"), "{stat}");
    // 20 000 bytes left after the restart: 30 000 cross it.
    assert_eq!(c.try_upload("STOR", "b.bin", &random_bytes(30_000)).code, 552);
    assert!(!s.home("qa").join("b.bin").exists());
    let o = cli_user(&s.users_file, &["show", "qa"]);
    assert_success(&o, "fxpd user show qa");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("quota_bytes: 100000") && out.contains("quota_files: 3"),
        "{out}"
    );
    assert!(out.contains("quota usage: 80000 bytes, 1 files"), "{out}");
}

#[test]
fn quota_scan_corrects_a_usage_file_edited_by_hand() {
    let s = quota_server();
    let home = s.home("qa");
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    c.stor("a.bin", &random_bytes(10_000));
    // Files put there behind fxpd's back, and a usage file edited by hand to say "full".
    write_file(&home.join("sub/b.bin"), &[1u8; 5_000]);
    let state = s.users_file.parent().unwrap().join("quota.json");
    fs::write(&state, r#"{ "qa": { "bytes": 100000, "files": 3 } }"#).unwrap();
    assert_eq!(c.try_upload("STOR", "c.bin", b"x").code, 552);
    let o = cli_user(
        &s.users_file,
        &["quota-scan", "qa", "--root", &s.root.display().to_string()],
    );
    assert_success(&o, "fxpd user quota-scan qa");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("15000 bytes in 2 files"), "{out}");
    assert_eq!(recorded(&s, "qa"), (15_000, 2));
    // The running server sees the recount at once.
    c.stor("c.bin", b"x");
    assert_eq!(recorded(&s, "qa"), (15_001, 3));
    // An unknown user is an error naming it, and the file is left alone.
    let o = cli_user(
        &s.users_file,
        &["quota-scan", "nobody", "--root", &s.root.display().to_string()],
    );
    assert!(!o.status.success());
    assert_eq!(recorded(&s, "qa"), (15_001, 3));
}

#[test]
fn user_set_edits_the_quota_and_rnto_over_a_file_frees_it() {
    let s = quota_server();
    let mut c = s.login("qa", PASS);
    c.stor("a.txt", &[b'a'; 10]);
    c.stor("b.txt", &[b'b'; 20]);
    assert_eq!(recorded(&s, "qa"), (30, 2));
    // Renaming a onto b replaces b: its 20 bytes and one file are freed.
    c.expect("RNFR a.txt", 350);
    c.expect("RNTO b.txt", 250);
    assert_eq!(recorded(&s, "qa"), (10, 1));
    // The user's own quota, set with the CLI, beats the group's.
    let o = cli_user(
        &s.users_file,
        &["set", "qa", "--quota-bytes", "50", "--quota-files", "1"],
    );
    assert_success(&o, "fxpd user set qa --quota-bytes 50 --quota-files 1");
    s.reload().unwrap();
    let stat = c.expect("STAT", 211).text();
    assert!(
        stat.contains("Quota: 10 of 50 bytes, 1 of 1 files used"),
        "{stat}"
    );
    assert_eq!(c.try_upload("STOR", "c.txt", b"c").code, 552);
    // Cleared, the group's applies again.
    let o = cli_user(&s.users_file, &["set", "qa", "--clear", "quota-files"]);
    assert_success(&o, "fxpd user set qa --clear quota-files");
    s.reload().unwrap();
    c.stor("c.txt", b"c");
    assert_eq!(recorded(&s, "qa"), (11, 2));
}

#[test]
fn quota_scan_on_s3_counts_the_objects_under_the_users_prefix() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let bucket = "quota-scan";
    moto.bucket(bucket);
    let s = Server::builder()
        .config(&moto.storage_config(bucket))
        .user("qa", PASS, "qa", true)
        .user("bob", PASS, "bob", true)
        .users_toml(QUOTA)
        .start();
    let o = cli_user(&s.users_file, &["set", "qa", "--groups", "metered"]);
    assert_success(&o, "fxpd user set qa --groups metered");
    s.reload().unwrap();
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    c.stor("a.bin", &random_bytes(10_000));
    c.expect("MKD sub", 257);
    // Put there behind fxpd's back, in a subdirectory; bob's and the top's objects are not
    // qa's; and a usage file edited by hand to say "full".
    moto.s3(&["put", bucket, "ftp/qa/sub/deep/b.bin"], Some(&[1u8; 5_000]));
    moto.s3(&["put", bucket, "ftp/bob/big.bin"], Some(&[2u8; 50_000]));
    moto.s3(&["put", bucket, "ftp/qa-other/x.bin"], Some(&[3u8; 7_000]));
    moto.s3(&["put", bucket, "top.bin"], Some(&[4u8; 9_000]));
    let state = s.users_file.parent().unwrap().join("quota.json");
    fs::write(&state, r#"{ "qa": { "bytes": 100000, "files": 3 } }"#).unwrap();
    assert_eq!(c.try_upload("STOR", "c.bin", b"x").code, 552);

    let config = s.config_path.display().to_string();
    let root = s.root.display().to_string();
    // The server's configuration alone says where the objects are (its `root` included).
    let o = cli_user(&s.users_file, &["quota-scan", "qa", "--config", &config]);
    assert_success(&o, "fxpd user quota-scan qa --config");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("15000 bytes in 2 files"), "{out}");
    assert_eq!(recorded(&s, "qa"), (15_000, 2));
    // The running server sees the recount at once; the object's hash is what was sent.
    let body = random_bytes(1_000);
    c.stor("c.bin", &body);
    assert_eq!(recorded(&s, "qa"), (16_000, 3));
    assert_eq!(
        moto.s3(&["sha256", bucket, "ftp/qa/c.bin"], None).trim(),
        sha256_bytes(&body)
    );
    // An unknown user is an error naming it, and the usage file is left alone.
    let o = cli_user(
        &s.users_file,
        &["quota-scan", "nobody", "--config", &config, "--root", &root],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nobody"),
        "{}",
        describe_output(&o)
    );
    assert_eq!(recorded(&s, "qa"), (16_000, 3));
    // Neither --root nor --config: refused by the command line.
    let o = cli_user(&s.users_file, &["quota-scan", "qa"]);
    assert!(!o.status.success());
}

/// An upload that does not end with its final reply still leaves a file: ABOR keeps what
/// arrived (a client resumes it with REST), and so does a session that ends mid-upload. Both
/// are charged, or aborting just before the end would store anything without a charge.
#[test]
fn an_upload_stopped_by_abor_or_by_its_session_ending_is_charged_for_what_it_left() {
    let s = quota_server();
    let home = s.home("qa");
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    let mut data = c.start_passive("STOR aborted.bin");
    data.write_all(&random_bytes(40_000)).unwrap();
    wait_for_size(&home.join("aborted.bin"), 40_000);
    c.send("ABOR");
    assert_eq!(c.read_reply().code, 426);
    assert_eq!(c.read_reply().code, 226);
    drop(data);
    assert_eq!(recorded(&s, "qa"), (40_000, 1));

    let mut d = s.login("qa", PASS);
    d.expect("TYPE I", 200);
    let mut data = d.start_passive("STOR cut.bin");
    data.write_all(&random_bytes(25_000)).unwrap();
    wait_for_size(&home.join("cut.bin"), 25_000);
    drop(d);
    wait_for_usage(&s, "qa", (65_000, 2));
    drop(data);
    assert_eq!(fs::metadata(home.join("cut.bin")).unwrap().len(), 25_000);

    // What is left is what the charges say: 35 000 bytes.
    assert_eq!(c.try_upload("STOR", "over.bin", &random_bytes(35_001)).code, 552);
    c.stor("fits.bin", &random_bytes(35_000));
    assert_eq!(recorded(&s, "qa"), (100_000, 3));
}

/// Two sessions of one account uploading at the same time share its room: both start with
/// the whole quota free, and the one whose bytes would take the account past it stops with
/// 552 and leaves nothing. Running uploads that create files count against `quota_files`.
#[test]
fn uploads_running_at_the_same_time_share_the_accounts_room() {
    let s = quota_server();
    let home = s.home("qa");
    let mut a = s.login("qa", PASS);
    a.expect("TYPE I", 200);
    let mut b = s.login("qa", PASS);
    b.expect("TYPE I", 200);
    let mut to_a = a.start_passive("STOR a.bin");
    let mut to_b = b.start_passive("STOR b.bin");
    let first = random_bytes(70_000);
    to_a.write_all(&first).unwrap();
    wait_for_size(&home.join("a.bin"), 70_000);
    let _ = to_b.write_all(&random_bytes(70_000));
    drop(to_b);
    let r = b.read_reply();
    assert_eq!(r.code, 552, "the second upload: {r}");
    assert!(!home.join("b.bin").exists(), "the stopped upload left its file");
    drop(to_a);
    Ctrl::assert_transfer_end("STOR a.bin", &a.read_reply());
    assert_eq!(sha256_file(&home.join("a.bin")), sha256_bytes(&first));
    assert_eq!(recorded(&s, "qa"), (70_000, 1));

    // One file held, two being created: a third new file is refused before any data.
    let mut to_a = a.start_passive("STOR x.bin");
    let mut to_b = b.start_passive("STOR y.bin");
    let mut c = s.login("qa", PASS);
    let r = c.try_upload("STOR", "z.bin", b"z");
    assert_eq!(
        r.first(),
        "552 Quota exceeded: this account may hold at most 3 files."
    );
    assert!(!home.join("z.bin").exists());
    to_a.write_all(b"x").unwrap();
    to_b.write_all(b"y").unwrap();
    drop((to_a, to_b));
    Ctrl::assert_transfer_end("STOR x.bin", &a.read_reply());
    Ctrl::assert_transfer_end("STOR y.bin", &b.read_reply());
    assert_eq!(recorded(&s, "qa"), (70_002, 3));
}

/// A running upload holds only what it has written: another session of the account that
/// opens an upload and sends nothing (a stalled client, or someone else with the account's
/// password) takes none of the room from the upload beside it, which may fill the quota.
#[test]
fn a_stalled_upload_holds_no_room_from_the_accounts_other_uploads() {
    let s = quota_server();
    let home = s.home("qa");
    let mut idle = s.login("qa", PASS);
    idle.expect("TYPE I", 200);
    let stalled = idle.start_passive("STOR stalled.bin");
    let mut c = s.login("qa", PASS);
    c.expect("TYPE I", 200);
    let whole = random_bytes(100_000);
    c.stor("whole.bin", &whole);
    assert_eq!(sha256_file(&home.join("whole.bin")), sha256_bytes(&whole));
    assert_eq!(recorded(&s, "qa"), (100_000, 1));
    // The stalled upload ends with nothing written: its empty file is charged as a file.
    drop(stalled);
    Ctrl::assert_transfer_end("STOR stalled.bin", &idle.read_reply());
    assert_eq!(recorded(&s, "qa"), (100_000, 2));
}

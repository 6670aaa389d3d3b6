//! State shared by the nodes of a cluster through a real Redis server (Debian's `redis-server`,
//! started by each test on a free 127.0.0.1 port, without persistence): failed-login lockouts
//! and FXP bans started on one node hold on another, a lockout lifted through one node's
//! admin listener is gone on every node, and a node refuses to start when the Redis it was
//! told to use does not answer.
//!
//! Node A listens on 127.0.0.2, node B on 127.0.0.3; clients come from 127.0.0.1 and 127.0.0.5.

mod common;

use common::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));

/// One node of the cluster on `ip`, sharing state through `redis`, with user alice.
fn node(ip: &str, redis: &Redis, extra: &str) -> Server {
    Server::builder()
        .config(&format!(
            "listen = [\"{ip}:0\"]\n\
             [cluster]\nredis_url = \"{}\"\nkey_prefix = \"test\"\n\
             [limits]\nmax_login_failures = 3\nlockout_secs = 600\n{extra}",
            redis.url()
        ))
        .user("alice", PASS, "alice", true)
        .start()
}

#[test]
fn failed_logins_on_one_node_lock_the_client_out_of_another() {
    if !require_client("redis-server") {
        return;
    }
    let mut redis = Redis::start();
    let a = node("127.0.0.2", &redis, "");
    let b = node("127.0.0.3", &redis, "");

    // Three failures on A, each with another (unknown) user name, so only the client address
    // reaches the threshold.
    for i in 0..3 {
        let mut c = Ctrl::connect_from(CLIENT, a.addr());
        c.expect(&format!("USER nobody{i}"), 331);
        c.expect("PASS wrong", 530);
    }
    let ttl = redis.pttl("test:login-client:lock:127.0.0.1");
    assert!(
        ttl > 590_000,
        "the lock is in Redis with the lockout as its expiry: PTTL {ttl}"
    );

    // B has seen no failure from this client, yet refuses even the right password.
    let mut c = Ctrl::connect_from(CLIENT, b.addr());
    c.expect("USER alice", 331);
    let r = c.cmd(&format!("PASS {PASS}"));
    assert_eq!(r.code, 530, "locked out on B by A's count: {r}");
    assert!(r.text().contains("too many failed attempts"), "{r}");

    // Another client address logs in on both nodes.
    for server in [&a, &b] {
        let mut c = Ctrl::connect_from(OTHER_CLIENT, server.addr());
        c.login("alice", PASS);
    }
}

#[test]
fn a_lockout_lifted_through_one_nodes_admin_listener_is_gone_on_every_node() {
    if !require_clients(&["redis-server", "curl"]) {
        return;
    }
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    let token = "0a1b2c3d".repeat(8);
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let admin = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n",
        token_file.to_str().unwrap()
    );
    let a = node("127.0.0.2", &redis, &admin);
    let b = node("127.0.0.3", &redis, "");
    for i in 0..3 {
        let mut c = Ctrl::connect_from(CLIENT, a.addr());
        c.expect(&format!("USER nobody{i}"), 331);
        c.expect("PASS wrong", 530);
    }
    assert!(
        redis.pttl("test:login-client:lock:127.0.0.1") > 0,
        "no lock in Redis"
    );

    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30", "-X", "DELETE", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{}/api/bans/127.0.0.1", a.admin.as_ref().unwrap()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["lockout"], true, "{answer}");
    assert_eq!(
        redis.pttl("test:login-client:lock:127.0.0.1"),
        -2,
        "the shared lock is still in Redis"
    );
    // Neither node refuses the client now.
    for server in [&a, &b] {
        let mut c = Ctrl::connect_from(CLIENT, server.addr());
        c.login("alice", PASS);
        c.expect("QUIT", 221);
    }
}

#[test]
fn failed_logins_for_one_user_name_add_up_across_nodes_into_a_slowdown_not_a_lockout() {
    if !require_client("redis-server") {
        return;
    }
    let mut redis = Redis::start();
    let a = node("127.0.0.2", &redis, "user_slowdown_max_ms = 1500\n");
    let b = node("127.0.0.3", &redis, "user_slowdown_max_ms = 1500\n");
    // Two failures on A from one address, two on B from another: neither node nor address
    // passed 3 on its own; the user name did, cluster-wide.
    for (from, server) in [(CLIENT, &a), (CLIENT, &a), (OTHER_CLIENT, &b), (OTHER_CLIENT, &b)] {
        let mut c = Ctrl::connect_from(from, server.addr());
        c.expect("USER alice", 331);
        c.expect("PASS wrong", 530);
    }
    assert!(redis.pttl("test:login-user:count:alice") > 0);
    assert_eq!(
        redis.pttl("test:login-user:lock:alice"),
        -2,
        "a user name is never locked"
    );
    // From a third address alice logs in on every node, each time after the slowdown the
    // cluster's count asks for (1 s for the first failure beyond the threshold).
    let third = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6));
    for server in [&a, &b] {
        let mut c = Ctrl::connect_from(third, server.addr());
        c.expect("USER alice", 331);
        let started = Instant::now();
        let r = c.cmd(&format!("PASS {PASS}"));
        let took = started.elapsed();
        assert_eq!(r.code, 230, "alice is never locked out: {r}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "slowed down by the shared count: {took:?}"
        );
    }
}

#[test]
fn an_fxp_ban_started_on_one_node_holds_on_another() {
    if !require_client("redis-server") {
        return;
    }
    let redis = Redis::start();
    let fxp = "[fxp]\nban_threshold = 2\nban_window_secs = 60\nban_secs = 600\n";
    let a = node("127.0.0.2", &redis, fxp);
    let b = node("127.0.0.3", &redis, fxp);

    // On B, a session opened before the ban.
    let mut on_b = Ctrl::connect_from(CLIENT, b.addr());
    on_b.login("alice", PASS);
    on_b.expect("PORT 127,0,0,1,200,10", 200);

    // Two foreign PORTs on A: refused, and the second bans the client (on A at once).
    let mut on_a = Ctrl::connect_from(CLIENT, a.addr());
    on_a.login("alice", PASS);
    for _ in 0..2 {
        let r = on_a.cmd("PORT 127,0,0,9,200,10");
        assert_eq!(r.code, 504, "{r}");
    }
    // The ban reaches B through Redis: the open session's next data command is refused...
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = on_b.cmd("PORT 127,0,0,1,200,11");
        if r.code == 504 {
            assert!(r.text().contains("banned"), "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "B never saw the ban: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // ... a new connection is refused with 421 ...
    let mut c = Ctrl::connect_no_greeting(SocketAddr::new(b.addr().ip(), b.port()));
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{r}");
    // ... and other clients are unaffected.
    let mut other = Ctrl::connect_from(OTHER_CLIENT, b.addr());
    other.login("alice", PASS);
    other.expect("PORT 127,0,0,5,200,12", 200);
}

#[test]
fn a_node_does_not_start_without_the_redis_it_was_given() {
    // A port nobody listens on: bind, note, release.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Server::builder()
        .config(&format!(
            "[cluster]\nredis_url = \"redis://127.0.0.1:{port}/0\"\ntimeout_ms = 200\n"
        ))
        .try_start();
    let err = match started {
        Ok(_) => panic!("fxpd started without its Redis"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cluster.redis_url"), "{err}");
}

#[test]
fn a_password_in_the_redis_url_is_refused_without_echoing_it() {
    let started = Server::builder()
        .config("[cluster]\nredis_url = \"redis://:hunter2@127.0.0.1:6379/0\"\n")
        .try_start();
    let err = match started {
        Ok(_) => panic!("fxpd accepted a password in cluster.redis_url"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("redis_password_file"), "{err}");
    assert!(!err.contains("hunter2"), "the password must not be echoed: {err}");
}

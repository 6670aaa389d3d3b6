//! Server-wide client access lists (`[access]` allow/deny): a refused client gets `421` and is
//! closed before the greeting, an admitted one gets `220`; deny beats allow; a reload changes
//! the lists for new connections; behind a trusted load balancer the PROXY header's client is
//! judged, not the balancer; every refusal is logged as `event=client_denied`. Clients are raw
//! TCP connections bound to distinct loopback addresses, and curl for a real client.

mod common;

use common::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The first reply of a connection from `from`, and whether the server then closes it.
fn first_reply_from(s: &Server, from: IpAddr) -> (u16, bool) {
    let mut c = Ctrl::over(connect_from(from, s.addr()), b"");
    let r = c.read_reply();
    let closed = r.code != 220 && c.wait_closed(std::time::Duration::from_secs(5));
    (r.code, closed)
}

#[test]
fn a_denied_network_gets_421_before_the_greeting_and_others_log_in() {
    let s = Server::with_alice("[access]\ndeny = [\"127.0.0.5\"]\n");
    let (code, closed) = first_reply_from(&s, lo(5));
    assert_eq!((code, closed), (421, true), "127.0.0.5 is denied");
    // Everyone else is untouched: 127.0.0.1 greets and logs in.
    let mut c = Ctrl::connect_from(lo(1), s.addr());
    c.login("alice", PASS);
    c.expect("NOOP", 200);
    let log = s.log_when(|l| l.contains("client_denied"));
    let line = log.lines().find(|l| l.contains("client_denied")).unwrap();
    assert!(
        line.contains("127.0.0.5") && line.contains("deny:127.0.0.5/32"),
        "the refusal names the client and the rule: {line}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("client_denied") && l.contains("127.0.0.1")),
        "127.0.0.1 was never denied:\n{log}"
    );
}

#[test]
fn deny_beats_allow_and_a_non_empty_allow_closes_the_rest() {
    let s = Server::with_alice("[access]\nallow = [\"127.0.0.0/29\"]\ndeny = [\"127.0.0.5/32\"]\n");
    assert_eq!(first_reply_from(&s, lo(1)).0, 220);
    assert_eq!(first_reply_from(&s, lo(4)).0, 220);
    // Inside the allowed /29 but denied: deny wins.
    assert_eq!(first_reply_from(&s, lo(5)), (421, true));
    // Outside the allowed block.
    assert_eq!(first_reply_from(&s, lo(9)), (421, true));
    let log = s.log_when(|l| l.contains("allow:not-listed"));
    assert!(log.contains("127.0.0.9"), "{log}");
}

#[test]
fn a_reload_changes_the_lists_for_new_connections_only() {
    let s = Server::with_alice("");
    let mut open = Ctrl::connect_from(lo(5), s.addr());
    open.login("alice", PASS);
    std::fs::write(
        &s.config_path,
        format!("{}\n[access]\ndeny = [\"127.0.0.5\"]\n", s.config_text),
    )
    .unwrap();
    s.reload().expect("the reload must be applied");
    assert_eq!(first_reply_from(&s, lo(5)), (421, true));
    assert_eq!(first_reply_from(&s, lo(6)).0, 220);
    // The session that was open before the reload stays open.
    open.expect("NOOP", 200);
    // A broken list is refused as a whole: the deny stays in force (fail closed).
    std::fs::write(
        &s.config_path,
        format!("{}\n[access]\ndeny = [\"127.0.0.5/8\"]\n", s.config_text),
    )
    .unwrap();
    assert!(s.reload().is_err(), "a CIDR with host bits must be refused");
    assert_eq!(first_reply_from(&s, lo(5)), (421, true));
    // Lifting it readmits the address.
    std::fs::write(&s.config_path, &s.config_text).unwrap();
    s.reload().expect("the reload must be applied");
    assert_eq!(first_reply_from(&s, lo(5)).0, 220);
}

#[test]
fn behind_a_trusted_balancer_the_header_client_is_judged() {
    let s = Server::with_alice(
        "[proxy]\ntrusted = [\"127.0.0.10/32\"]\n[access]\ndeny = [\"127.0.0.5\"]\nallow = [\"127.0.0.0/28\"]\n",
    );
    let frontend = SocketAddr::new(lo(10), 2121);
    // The balancer relays the denied client: refused, although the balancer itself is allowed.
    let mut denied = Ctrl::over(
        connect_from(lo(10), s.addr()),
        &proxy_v1(SocketAddr::new(lo(5), 40000), frontend),
    );
    assert_eq!(denied.read_reply().code, 421);
    // Another client through the same balancer gets in.
    let mut ok = Ctrl::over(
        connect_from(lo(10), s.addr()),
        &proxy_v2(SocketAddr::new(lo(6), 40001), frontend),
    );
    assert_eq!(ok.read_reply().code, 220);
    ok.login("alice", PASS);
    let log = s.log_when(|l| l.contains("client_denied"));
    let line = log.lines().find(|l| l.contains("client_denied")).unwrap();
    assert!(
        line.contains("client=127.0.0.5") && line.contains("proxy=127.0.0.10"),
        "{line}"
    );
}

#[test]
fn curl_from_a_denied_address_is_refused_and_from_an_allowed_one_lists() {
    if !require_client("curl") {
        return;
    }
    let s = Server::with_alice("[access]\ndeny = [\"127.0.0.5\"]\n");
    let url = format!("ftp://{}/", s.addr());
    let home = tempfile::tempdir().unwrap();
    let run = |from: &str| {
        run_with_timeout(
            client_command("curl", home.path())
                .args(["-sS", "--interface", from, "--user", &format!("alice:{PASS}")])
                .arg(&url),
            30,
        )
    };
    let denied = run("127.0.0.5");
    assert!(!denied.status.success(), "{}", describe_output(&denied));
    let allowed = run("127.0.0.1");
    assert_success(&allowed, "curl listing from 127.0.0.1");
}

#[test]
fn refusals_are_counted_on_the_admin_listener() {
    if !require_client("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("admin-token");
    let token = "ab".repeat(32);
    std::fs::write(&token_path, format!("{token}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let s = Server::builder()
        .user("alice", PASS, "alice", true)
        .config(&format!(
            "[access]\ndeny = [\"127.0.0.5\"]\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n",
            token_path.display().to_string()
        ))
        .start();
    for _ in 0..3 {
        assert_eq!(first_reply_from(&s, lo(5)).0, 421);
    }
    assert_eq!(first_reply_from(&s, lo(1)).0, 220);
    let base = s.admin.clone().expect("the admin listener is on");
    let o = run_with_timeout(
        client_command("curl", dir.path())
            .args(["-sS", "-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("{base}/metrics")),
        30,
    );
    assert_success(&o, "curl /metrics");
    let metrics = String::from_utf8_lossy(&o.stdout);
    assert!(
        metrics.contains("# HELP fxpd_connections_denied Control connections refused")
            || metrics.contains("# HELP fxpd_connections_denied_total Control connections refused"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.trim() == "fxpd_connections_denied_total 3"),
        "three refusals counted:\n{metrics}"
    );
}

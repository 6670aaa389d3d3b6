//! Two fxpd nodes behind a real HAProxy (Debian's package), driven by curl, lftp and raw
//! control connections: the scale-out set-up docs/cluster.md describes.
//!
//! HAProxy listens on 127.0.0.70: the FTP frontend balances control connections round-robin
//! over node A (127.0.0.2) and node B (127.0.0.3) with `send-proxy-v2`; each node owns half of
//! the passive ports (A 41000-41049, B 41050-41099), and HAProxy forwards each half, port for
//! port, to its node, again with `send-proxy-v2`. Both nodes announce 127.0.0.70 in 227
//! replies, trust only 127.0.0.70 for PROXY headers and share one root directory.
//!
//! Checked: uploads and downloads through the balancer (SHA-256), a file stored through one
//! node read through the other, the FXP procedure between the cluster and a third fxpd on
//! 127.0.0.4, and the address checks by the real client address: a foreign PORT is refused
//! (the client is 127.0.0.1, not the balancer), a thief on 127.0.0.9 gets nothing from the
//! balancer's data port while the client's own transfer goes through.
//!
//! Needs `haproxy`, `curl` and `lftp` (tests/run.sh installs them; skipped unless
//! FXPD_EXTERNAL_CLIENTS=1, and then a missing program is a failure). Ports 41000-41099 on
//! 127.0.0.2, 127.0.0.3 and 127.0.0.70 are used by this file only; no other test uses
//! 127.0.0.70 at all, so no client socket of another test can hold one of the balancer's
//! data ports when HAProxy binds them (127.0.0.10, which other tests use as a client
//! address, once collided that way).

mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 70));
const NODE_A: &str = "127.0.0.2";
const NODE_B: &str = "127.0.0.3";
const PORTS_A: (u16, u16) = (41000, 41049);
const PORTS_B: (u16, u16) = (41050, 41099);
/// The passive ranges of the lockout test (tests run at the same time: no shared ports).
const LOCKOUT_PORTS: [(u16, u16); 2] = [(41100, 41149), (41150, 41199)];

/// A running HAProxy; killed on drop.
struct Haproxy {
    child: Child,
    log: PathBuf,
    err: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// HAProxy's stdout and stderr (alerts such as a server going DOWN).
    fn log(&self) -> String {
        let out = fs::read_to_string(&self.log).unwrap_or_default();
        let err = fs::read_to_string(&self.err).unwrap_or_default();
        format!("{out}{err}")
    }
}

/// The HAProxy configuration of the test (docs/cluster.md shows the same, trimmed).
fn haproxy_config(front: u16, a: SocketAddr, b: SocketAddr, [ports_a, ports_b]: [(u16, u16); 2]) -> String {
    format!(
        "global
    maxconn 256

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout check 5s

# Control connections, balanced; each carries the client's address in a PROXY v2 header.
# Health checks send a LOCAL header, which fxpd answers with its greeting and closes.
frontend ftp
    bind {LB}:{front}
    default_backend fxpd
backend fxpd
    balance roundrobin
    source {LB}
    option tcp-check
    tcp-check expect string 220
    server a {a} send-proxy-v2 check inter 500
    server b {b} send-proxy-v2 check inter 500

# Passive data ports: each node owns a range; no port on the server line = the same port.
frontend data_a
    bind {LB}:{a_first}-{a_last}
    default_backend data_a
backend data_a
    source {LB}
    server a {a_ip} send-proxy-v2

frontend data_b
    bind {LB}:{b_first}-{b_last}
    default_backend data_b
backend data_b
    source {LB}
    server b {b_ip} send-proxy-v2
",
        a_first = ports_a.0,
        a_last = ports_a.1,
        b_first = ports_b.0,
        b_last = ports_b.1,
        a_ip = a.ip(),
        b_ip = b.ip(),
    )
}

fn start_haproxy(dir: &Path, a: SocketAddr, b: SocketAddr, ports: [(u16, u16); 2]) -> (Haproxy, SocketAddr) {
    // A free port on the balancer's address for the FTP frontend.
    let front = TcpListener::bind(SocketAddr::new(LB, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = dir.join("haproxy.cfg");
    fs::write(&cfg, haproxy_config(front.port(), a, b, ports)).unwrap();
    let check = run_with_timeout(Command::new("haproxy").arg("-c").arg("-f").arg(&cfg), 30);
    assert!(check.status.success(), "haproxy -c: {}", describe_output(&check));
    let log = dir.join("haproxy.log");
    let err = dir.join("haproxy.err");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::from(fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(fs::File::create(&err).unwrap()))
        .spawn()
        .expect("cannot start haproxy");
    let mut proxy = Haproxy { child, log, err };
    // Ready when the last data port accepts (that reaches no fxpd session).
    let probe = SocketAddr::new(LB, ports[1].1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&probe, Duration::from_secs(1)).is_err() {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            panic!(
                "haproxy exited ({status}): {}",
                fs::read_to_string(dir.join("haproxy.err")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "haproxy did not come up: {}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (proxy, front)
}

/// A node of the cluster: listens on `ip`, owns `ports`, announces and trusts the balancer,
/// serves `root`, and lets the FXP partner 127.0.0.4 connect to its passive ports.
fn node(ip: &str, ports: (u16, u16), root: &Path) -> Server {
    node_with(ip, ports, root, "")
}

/// [`node`] with `extra` configuration appended.
fn node_with(ip: &str, ports: (u16, u16), root: &Path, extra: &str) -> Server {
    Server::builder()
        .merge_config(extra)
        .config(&format!(
            "listen = [\"{ip}:0\"]\nroot = {root:?}\n\
             [passive]\nports = \"{}-{}\"\naddress = \"{LB}\"\n\
             [proxy]\ntrusted = [\"{LB}/32\"]\n\
             [fxp]\nallow_foreign_passive = true\npeers = [\"127.0.0.4/32\"]\n\
             [limits]\ndata_timeout_secs = 20\n[log]\nlevel = \"debug\"\n",
            ports.0,
            ports.1,
            root = root.to_str().unwrap(),
        ))
        .user("alice", PASS, "alice", true)
        .start()
}

/// How many transfers of `verb` each node has completed so far.
fn transfers(nodes: [&Server; 2], verb: &str) -> [usize; 2] {
    let needle = format!("transfer complete command=\"{verb}\"");
    nodes.map(|n| n.stderr().matches(&needle).count())
}

/// Waits until the nodes together have logged `total` transfers of `verb`.
fn wait_transfers(nodes: [&Server; 2], verb: &str, total: usize) -> [usize; 2] {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = transfers(nodes, verb);
        if t[0] + t[1] >= total || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn curl(work: &Path) -> Command {
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "--connect-timeout", "10", "--max-time", "60", "-u"])
        .arg(format!("alice:{PASS}"));
    c
}

fn lftp(work: &Path, front: SocketAddr, epsv: bool, commands: &str) {
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         set ftp:passive-mode on; set ftp:prefer-epsv {}; \
         open -u alice,{PASS} -p {} {}; {commands}",
        if epsv { "yes" } else { "no" },
        front.port(),
        front.ip()
    );
    let o = run_with_timeout(
        client_command("lftp", &work.join("home")).arg("-c").arg(&script),
        120,
    );
    assert!(o.status.success(), "lftp {commands}: {}", describe_output(&o));
}

fn ctrl_login(addr: SocketAddr) -> Ctrl {
    let mut c = Ctrl::connect(addr);
    c.login("alice", PASS);
    c.expect("TYPE I", 200);
    c
}

#[test]
fn balanced_cluster_keeps_the_fxp_policy() {
    if !require_clients(&["haproxy", "curl", "lftp"]) {
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    let root = shared.path().join("root");
    fs::create_dir_all(root.join("alice")).unwrap();
    let a = node(NODE_A, PORTS_A, &root);
    let b = node(NODE_B, PORTS_B, &root);
    let nodes = [&a, &b];
    let (proxy, front) = start_haproxy(shared.path(), a.addr(), b.addr(), [PORTS_A, PORTS_B]);
    let work = shared.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let url = |name: &str| format!("ftp://{front}/{name}");

    // An upload through the balancer lands on one node ...
    let src = work.join("up.bin");
    let sha = write_random_file(&src, 3_000_000);
    let o = run_with_timeout(curl(&work).arg("-T").arg(&src).arg(url("up.bin")), 90);
    assert!(o.status.success(), "curl upload: {}", describe_output(&o));
    let stored = wait_transfers(nodes, "STOR", 1);
    assert_eq!(stored[0] + stored[1], 1, "{stored:?}");
    assert_eq!(sha256_file(&root.join("alice/up.bin")), sha);
    // ... and two downloads (consecutive control connections alternate) come from both.
    for i in 0..2 {
        let out = work.join(format!("down{i}.bin"));
        let o = run_with_timeout(curl(&work).arg("-o").arg(&out).arg(url("up.bin")), 90);
        assert!(o.status.success(), "curl download {i}: {}", describe_output(&o));
        assert_eq!(sha256_file(&out), sha, "download {i} through the balancer");
    }
    let got = wait_transfers(nodes, "RETR", 2);
    assert_eq!(got, [1, 1], "each node served one download (RETR per node)");

    // lftp, EPSV and PASV (the 227 names the balancer, passive.address), both ways.
    for (i, epsv) in [true, false].into_iter().enumerate() {
        let name = format!("lftp{i}.bin");
        let local = work.join(&name);
        let sha = write_random_file(&local, 1_500_000);
        let back = work.join(format!("{name}.back"));
        lftp(
            &work,
            front,
            epsv,
            &format!(
                "put {} -o {name}; get {name} -o {}",
                local.display(),
                back.display()
            ),
        );
        assert_eq!(sha256_file(&root.join("alice").join(&name)), sha);
        assert_eq!(sha256_file(&back), sha);
    }

    // Active mode through the balancer: the node connects straight to the real client.
    let mut c = ctrl_login(front);
    let l = c.port_listener();
    c.expect_class("RETR up.bin", 1);
    let (mut d, from) = accept_within(&l, Duration::from_secs(20)).expect("no active data connection");
    assert!(
        matches!(from.ip().to_string().as_str(), NODE_A | NODE_B),
        "{from}"
    );
    assert_eq!(sha256_bytes(&read_to_end_deadline(&mut d, IO_TIMEOUT)), sha);
    assert_eq!(c.read_reply().code, 226);

    // The hidden-address cases, judged by the real client (127.0.0.1), not the balancer.
    let r = c.expect("PORT 127,0,0,3,200,1", 504);
    assert!(r.text().contains("(foreign-address)"), "{r}");
    let r = c.expect("PORT 127,0,0,70,200,1", 504);
    assert!(
        r.text().contains("(foreign-address)"),
        "the balancer is not the client: {r}"
    );
    c.expect("PORT 127,0,0,1,200,1", 200);

    // A thief on 127.0.0.9 races to the balancer's data port: refused by its PROXY header's
    // source; then the client's own transfer goes through.
    let a_pasv = c.pasv();
    assert_eq!(a_pasv.ip(), LB, "227 must announce the balancer");
    let mut thief = connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), a_pasv);
    c.expect_class("RETR up.bin", 1);
    thief.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut loot = Vec::new();
    let _ = thief.read_to_end(&mut loot);
    assert!(loot.is_empty(), "the thief got {} bytes", loot.len());
    let mut d = data_connect(a_pasv);
    assert_eq!(sha256_bytes(&read_to_end_deadline(&mut d, IO_TIMEOUT)), sha);
    assert_eq!(c.read_reply().code, 226);
    let logs = format!("{}\n{}", a.stderr(), b.stderr());
    assert!(
        logs.contains("target=127.0.0.9") && logs.contains("rule=\"peer-not-listed\""),
        "the thief is refused by its own address:\n{logs}"
    );
    c.expect("QUIT", 221);

    // FXP (KB Q247132) between the cluster (destination: PASV) and a third fxpd on 127.0.0.4
    // (source: PORT), driven from 127.0.0.1.
    let third = Server::builder()
        .config("listen = [\"127.0.0.4:0\"]\n[fxp]\nallow_foreign_port = true\n")
        .user("alice", PASS, "alice", true)
        .start();
    let fxp_sha = write_random_file(&third.home("alice").join("fxp.bin"), 2_000_000);
    let mut dst = ctrl_login(front);
    let mut src = ctrl_login(third.addr());
    let target = dst.pasv();
    assert_eq!(target.ip(), LB);
    src.expect(&port_command(target), 200);
    src.expect_class("RETR fxp.bin", 1);
    dst.expect_class("STOR fxp.bin", 1);
    assert_eq!(src.read_reply().code, 226, "source final reply");
    assert_eq!(dst.read_reply().code, 226, "destination final reply");
    assert_eq!(sha256_file(&root.join("alice/fxp.bin")), fxp_sha);

    // Both nodes logged sessions with the balancer and the real client side by side.
    for n in nodes {
        let log = n.stderr();
        assert!(
            log.lines()
                .any(|l| l.contains("connected through a load balancer")
                    && l.contains("client=127.0.0.1:")
                    && l.contains(&format!("proxy={LB}:"))),
            "no proxied session in a node's log:\n{log}"
        );
    }
    // The health checks (LOCAL headers) kept both nodes up and never became sessions.
    let hlog = proxy.log();
    assert!(
        !hlog.contains("DOWN"),
        "a node was marked down by its health check:\n{hlog}"
    );
    for n in nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = n.stderr();
        while !log.contains("load balancer health check answered") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            log = n.stderr();
        }
        assert!(
            log.contains("load balancer health check answered"),
            "no health check seen:\n{log}"
        );
        assert!(
            !log.contains(&format!("client={LB}")),
            "a health check became a session:\n{log}"
        );
    }
    drop(proxy);
}

#[test]
fn failed_logins_through_one_node_lock_the_client_out_of_the_other() {
    if !require_clients(&["haproxy", "redis-server"]) {
        return;
    }
    let redis = Redis::start();
    let shared = tempfile::tempdir().unwrap();
    let root = shared.path().join("root");
    fs::create_dir_all(root.join("alice")).unwrap();
    let cluster = format!(
        "[cluster]\nredis_url = \"{}\"\n[limits]\nmax_login_failures = 3\nlockout_secs = 600\n",
        redis.url()
    );
    let a = node_with(NODE_A, LOCKOUT_PORTS[0], &root, &cluster);
    let b = node_with(NODE_B, LOCKOUT_PORTS[1], &root, &cluster);
    let (_proxy, front) = start_haproxy(shared.path(), a.addr(), b.addr(), LOCKOUT_PORTS);

    // Three failures through the balancer (round robin: A, B, A or B, A, B), each with another
    // unknown user name, so only the client address counts up.
    for i in 0..3 {
        let mut c = Ctrl::connect(front);
        c.expect(&format!("USER nobody{i}"), 331);
        c.expect("PASS wrong", 530);
    }
    let failed_on = |s: &Server| s.stderr().matches("login failed").count();
    let (on_a, on_b) = (failed_on(&a), failed_on(&b));
    assert_eq!(on_a + on_b, 3, "A {on_a}, B {on_b}");
    assert!(
        on_a > 0 && on_b > 0,
        "the failures went to both nodes: A {on_a}, B {on_b}"
    );

    // Neither node saw three failures, yet both now refuse the right password from this
    // client (the header's address, not the balancer's) ...
    for _ in 0..2 {
        let mut c = Ctrl::connect(front);
        c.expect("USER alice", 331);
        let r = c.cmd(&format!("PASS {PASS}"));
        assert_eq!(r.code, 530, "{r}");
        assert!(r.text().contains("too many failed attempts"), "{r}");
    }
    let locked = |s: &Server| s.stderr().contains("locked out");
    assert!(locked(&a) && locked(&b), "both nodes refused a locked-out login");
    // ... while another client through the same balancer logs in on both.
    for _ in 0..2 {
        let mut c = Ctrl::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)), front);
        c.login("alice", PASS);
    }
}

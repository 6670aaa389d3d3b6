//! Tests of the passive listener: screening, holding, the direct look at the queue.
use super::*;
use crate::policy::{DataSetup, FxpConfig, FxpOverride, Grant};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

#[test]
fn port_numbers_stay_random_across_pool_refills() {
    // 1,000 draws use up the 256-byte pool 15 times over; a refill that failed to happen,
    // or bytes used twice, would repeat values.
    let draws: Vec<u32> = (0..1000).map(|_| random_u32().unwrap()).collect();
    let distinct: std::collections::HashSet<_> = draws.iter().collect();
    assert!(distinct.len() >= 999, "{} distinct of 1000", distinct.len());
    assert!(!draws.contains(&0), "a wiped word was handed out");
    // Every residue of a 16-port range is reached.
    let residues: std::collections::HashSet<_> = draws.iter().map(|d| d % 16).collect();
    assert_eq!(residues.len(), 16);
}

/// A listener bound for alice's session from [`CLIENT`], on a port of the whole range.
fn alices_listener(policy: &Arc<Policy>) -> PassiveListener {
    let who = Who {
        peer: CLIENT,
        user: Some("alice".into()),
        anonymous: false,
        fxp: FxpOverride::Inherit,
    };
    let Ok(Grant::Passive(grant)) = policy.approve_setup(&who, DataSetup::Pasv, false) else {
        panic!("PASV refused")
    };
    let range = PortRange {
        first: 1024,
        last: 65535,
    };
    PassiveListener::bind(CLIENT, range, grant, Arc::clone(policy)).unwrap()
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
        .await
        .expect("connect timed out")
        .unwrap()
}

/// Whether the server closed `s` (EOF or reset) within 10 s, without sending anything.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("a refused connection received {n} bytes"),
        Err(_) => false,
    }
}

#[test]
fn refused_log_counts_all_and_keeps_the_first_few() {
    let policy = Policy::new(FxpConfig::default());
    let who = Who {
        peer: CLIENT,
        user: None,
        anonymous: false,
        fxp: FxpOverride::Inherit,
    };
    let mut log = RefusedLog::default();
    for port in 0..1000 {
        let source = SocketAddr::new(STRANGER, 1024 + port);
        log.push(source, policy.screen_passive_peer(&who, source).unwrap_err());
    }
    assert_eq!(log.count(), 1000);
    assert_eq!(log.first.len(), REFUSED_KEPT);
    assert_eq!(log.first().unwrap().0.port(), 1024);
}

/// The client's connection is in the kernel's queue before its RETR arrives, but the
/// runtime has not looked at the sockets since: the transfer's first poll still gets it
/// (the direct look at the queue), with the client's own address.
#[cfg(unix)]
#[tokio::test]
async fn the_first_poll_takes_a_connection_the_runtime_has_not_seen() {
    let policy = Arc::new(Policy::new(FxpConfig::default()));
    let mut listener = alices_listener(&policy);
    // A blocking connect: it completes in the kernel, without the runtime running.
    let mine = std::net::TcpStream::connect(listener.local_addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut accept = std::pin::pin!(listener.accept(deadline));
    let first = std::future::poll_fn(|cx| Poll::Ready(accept.as_mut().poll(cx))).await;
    let Poll::Ready(Ok((held, source))) = first else {
        panic!("the first poll did not take the queued connection")
    };
    assert_eq!(source, mine.local_addr().unwrap());
    assert_eq!(held.peer_addr().unwrap(), mine.local_addr().unwrap());
}

/// A trusted balancer's connection queued before the transfer's first poll: the direct
/// look accepts it, and its PROXY header is read at once (the read must be polled, or
/// nothing wakes the transfer when the header is there), giving the client it names.
#[cfg(unix)]
#[tokio::test]
async fn a_queued_balancer_connection_is_read_on_the_first_poll() {
    const BALANCER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));
    let policy = Arc::new(Policy::new(FxpConfig::default()));
    policy.set_proxy_trusted(vec!["127.0.0.10/32".parse().unwrap()]);
    let mut listener = alices_listener(&policy);
    // Connected from another thread's runtime: this one's reactor has not run since the
    // bind, so only the direct look at the queue can find the connection.
    let to = listener.local_addr();
    let mut balancer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { connect_from(BALANCER, to).await.into_std().unwrap() })
    })
    .join()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut accept = std::pin::pin!(listener.accept(deadline));
    // The first poll with a waker that notes being woken, as the session's task would be.
    struct Woken(std::sync::atomic::AtomicBool);
    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let woken = Arc::new(Woken(std::sync::atomic::AtomicBool::new(false)));
    let waker = std::task::Waker::from(woken.clone());
    let first = accept.as_mut().poll(&mut Context::from_waker(&waker));
    assert!(first.is_pending(), "no header yet: the transfer waits");
    use std::io::Write;
    balancer
        .write_all(b"PROXY TCP4 127.0.0.1 127.0.0.2 40000 21\r\n")
        .unwrap();
    // The header's arrival must wake the transfer (the runtime's reactor runs meanwhile).
    for _ in 0..100 {
        if woken.0.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        woken.0.load(std::sync::atomic::Ordering::SeqCst),
        "the header arrived but nothing woke the transfer"
    );
    let (_, source) = accept.await.expect("the balancer's connection");
    assert_eq!(source, "127.0.0.1:40000".parse().unwrap());
}

#[tokio::test]
async fn screens_while_polled_holds_the_client_and_closes_when_dropped() {
    let policy = Arc::new(Policy::new(FxpConfig {
        ban_threshold: 0,
        ..FxpConfig::default()
    }));
    let mut listener = alices_listener(&policy);
    let addr = listener.local_addr();

    // While its owner waits (the session between PASV and the transfer), strangers are
    // closed before any transfer asks for the connection.
    let mine = tokio::select! {
        _ = listener.screen() => unreachable!("screening never ends"),
        pair = async {
            for _ in 0..20 {
                let mut stranger = connect_from(STRANGER, addr).await;
                assert!(closed(&mut stranger).await, "a stranger's connection stayed open");
            }
            let mine = connect_from(CLIENT, addr).await;
            // A second connection from the client's own address is closed unused.
            let mut second = connect_from(CLIENT, addr).await;
            assert!(closed(&mut second).await);
            mine
        } => pair,
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    let (held, _) = listener.accept(deadline).await.expect("the held connection");
    assert_eq!(held.peer_addr().unwrap(), mine.local_addr().unwrap());
    assert_eq!(listener.refused().count(), 20);
    assert_eq!(policy.stats().approved_passive, 1, "approved once, when used");

    // Strangers are still closed while the transfer runs.
    let work = async {
        let mut stranger = connect_from(STRANGER, addr).await;
        closed(&mut stranger).await
    };
    assert!(
        listener.screening(work).await,
        "a stranger's connection stayed open during the transfer"
    );
    assert_eq!(listener.refused().count(), 21);

    drop(listener);
    // The port is closed with the listener: it no longer accepts.
    let mut refused_connect = false;
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().unwrap();
        if socket.connect(addr).await.is_err() {
            refused_connect = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused_connect,
        "the passive port still accepts after the listener was dropped"
    );
}

//! Scenario tests of the FXP procedure against scripted servers: the timing cases the real
//! servers in `tests/copy.rs` do not produce on demand (a stalled transfer, a server that
//! queues STAT until the transfer ends, a passive side that never gets its connection).

use crate::client::{ControlClient, Role};
use crate::fxp::{self, Arrangement, FileJob, FxpError};
use crate::progress::{Mode, Progress};
use crate::refusal::What;
use crate::url::FtpUrl;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A reply the fake sends `after` the command (raw text with CRLF).
struct Say {
    after: Duration,
    text: String,
}

fn now(text: &str) -> Say {
    Say {
        after: Duration::ZERO,
        text: format!("{text}\r\n"),
    }
}

fn later(ms: u64, text: &str) -> Say {
    Say {
        after: Duration::from_millis(ms),
        text: format!("{text}\r\n"),
    }
}

/// Starts a fake server on 127.0.0.1 that answers each command line with `script(line)`.
/// Replies leave in order, each no earlier than its delay after its command, like a server
/// that handles one command at a time.
async fn fake(script: impl Fn(&str) -> Vec<Say> + Send + Sync + 'static) -> FtpUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = sock.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, String)>();
        tokio::spawn(async move {
            let _ = w.write_all(b"220 fake ready\r\n").await;
            while let Some((at, text)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                let _ = w.write_all(text.as_bytes()).await;
            }
        });
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let arrived = Instant::now();
            for say in script(&line) {
                let _ = tx.send((arrived + say.after, say.text));
            }
        }
    });
    FtpUrl::parse(&format!("ftp://127.0.0.1:{port}/f")).expect("url")
}

/// Answers shared by both fakes: ABOR (426 then 226) and NOOP.
fn common(line: &str) -> Option<Vec<Say>> {
    match line {
        "ABOR" => Some(vec![now("426 aborted"), now("226 ABOR ok")]),
        "NOOP" => Some(vec![now("200 NOOP ok")]),
        _ => None,
    }
}

async fn connect(role: Role, url: &FtpUrl, timeout_ms: u64) -> ControlClient {
    ControlClient::connect(role, url, Duration::from_millis(timeout_ms), false)
        .await
        .expect("connect")
}

const JOB: FileJob<'static> = FileJob {
    src_path: "f",
    dst_path: "f",
    size: Some(100),
    offset: 0,
};

#[tokio::test]
async fn a_transfer_without_progress_is_aborted_on_both_sides() {
    let src = fake(|line| {
        common(line).unwrap_or_else(|| match line {
            l if l.starts_with("PORT") => vec![now("200 ok")],
            "RETR f" => vec![now("150 go")],
            "STAT" => vec![
                now("211-s"),
                now(" Data connection open: RETR /f, 5 of 100 bytes transferred"),
                now("211 End"),
            ],
            _ => vec![now("500 ?")],
        })
    })
    .await;
    let dst = fake(|line| {
        common(line).unwrap_or_else(|| match line {
            "PASV" => vec![now("227 Entering Passive Mode (127,0,0,1,200,1).")],
            "STOR f" => vec![now("150 go")],
            "STAT" => vec![
                now("211-s"),
                now(" Data connection open: STOR /f, 5 bytes transferred"),
                now("211 End"),
            ],
            _ => vec![now("500 ?")],
        })
    })
    .await;
    let mut s = connect(Role::Source, &src, 1000).await;
    let mut d = connect(Role::Destination, &dst, 1000).await;
    let mut arrangement = Arrangement::DestinationPassive;
    let mut progress = Progress::new(Mode::Quiet);
    let started = Instant::now();
    let e = fxp::transfer(&mut s, &mut d, &JOB, &mut arrangement, &mut progress).await;
    match e {
        Err(FxpError::Failed(why)) => assert!(why.contains("made no progress"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // Both connections are back in step.
    assert_eq!(s.command("NOOP").await.expect("noop").code, 200);
    assert_eq!(d.command("NOOP").await.expect("noop").code, 200);
}

#[tokio::test]
async fn servers_that_answer_stat_after_the_transfer_stay_in_step() {
    // Both finals at ~2.5 s; the STAT answers only after them (RFC 959 queueing).
    let script = |verb: &'static str| {
        move |line: &str| {
            common(line).unwrap_or_else(|| match line {
                "PASV" => vec![now("227 Entering Passive Mode (127,0,0,1,200,1).")],
                l if l.starts_with("PORT") => vec![now("200 ok")],
                l if l == format!("{verb} f") => vec![now("150 go"), later(2500, "226 done")],
                "STAT" => vec![later(2700, "211 No data connection")],
                _ => vec![now("500 ?")],
            })
        }
    };
    let src = fake(script("RETR")).await;
    let dst = fake(script("STOR")).await;
    let mut s = connect(Role::Source, &src, 5000).await;
    let mut d = connect(Role::Destination, &dst, 5000).await;
    let mut arrangement = Arrangement::DestinationPassive;
    let mut progress = Progress::new(Mode::Quiet);
    fxp::transfer(&mut s, &mut d, &JOB, &mut arrangement, &mut progress)
        .await
        .expect("transfer");
    assert_eq!(s.command("NOOP").await.expect("noop").code, 200);
    assert_eq!(d.command("NOOP").await.expect("noop").code, 200);
}

#[tokio::test]
async fn a_passive_side_that_never_gets_its_connection_is_a_refusal() {
    let src = fake(|line| {
        common(line).unwrap_or_else(|| match line {
            l if l.starts_with("PORT") => vec![now("200 ok")],
            "RETR f" => vec![now("150 go"), later(100, "226 done")],
            "PASV" => vec![now("502 PASV not here")],
            "STAT" => vec![now("211 No data connection")],
            _ => vec![now("500 ?")],
        })
    })
    .await;
    let dst = fake(|line| {
        common(line).unwrap_or_else(|| match line {
            "PASV" => vec![now("227 Entering Passive Mode (127,0,0,1,200,1).")],
            "STOR f" => vec![now("150 go")],
            "STAT" => vec![
                now("211-s"),
                now(" Data connection open: STOR /f, 0 bytes transferred"),
                now("211 End"),
            ],
            _ => vec![now("500 ?")],
        })
    })
    .await;
    let mut s = connect(Role::Source, &src, 1000).await;
    let mut d = connect(Role::Destination, &dst, 1000).await;
    let mut arrangement = Arrangement::DestinationPassive;
    let mut progress = Progress::new(Mode::Quiet);
    match fxp::transfer(&mut s, &mut d, &JOB, &mut arrangement, &mut progress).await {
        Err(FxpError::Refused(list)) => {
            assert_eq!(list.len(), 2);
            let (first, refusal) = &list[0];
            assert_eq!(*first, Arrangement::DestinationPassive);
            assert_eq!(
                (refusal.role, refusal.what),
                (Role::Destination, What::ForeignPassive)
            );
            let (second, refusal) = &list[1];
            assert_eq!(*second, Arrangement::SourcePassive);
            assert_eq!((refusal.role, refusal.what), (Role::Source, What::NoPassive));
        }
        other => panic!("{other:?}"),
    }
}

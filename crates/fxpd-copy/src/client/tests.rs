//! The client against scripted servers: login, FEAT, PASV, PORT, timeouts, PWD quoting.

use super::{ControlClient, Role};
use crate::url::FtpUrl;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A scripted server: for each expected command line, the raw reply to send.
async fn scripted(greeting: &'static str, script: Vec<(&'static str, &'static str)>) -> FtpUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = tokio::io::BufReader::new(r);
        w.write_all(greeting.as_bytes()).await.unwrap();
        for (want, answer) in script {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line.trim_end(), want);
            w.write_all(answer.as_bytes()).await.unwrap();
        }
        // Stay connected: a silent server, not a closed one.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    FtpUrl::parse(&format!("ftp://127.0.0.1:{port}/f")).unwrap()
}

#[tokio::test]
async fn login_features_and_passive() {
    let url = scripted(
        "120 wait\r\n220-hello\r\n220 fxpd ready\r\n",
        vec![
            ("USER u", "331 pw\r\n"),
            ("PASS p", "230 ok\r\n"),
            ("FEAT", "211-x\r\n HASH SHA-256*\r\n UTF8\r\n211 End\r\n"),
            ("OPTS UTF8 ON", "200 ok\r\n"),
            ("PASV", "227 Entering Passive Mode (0,0,0,0,4,1).\r\n"),
            ("PORT 127,0,0,3,4,1", "504 PORT refused (foreign-address)\r\n"),
        ],
    )
    .await;
    let mut c = ControlClient::connect(Role::Source, &url, Duration::from_secs(5), false)
        .await
        .unwrap();
    assert_eq!(c.greeting.text(), "hello fxpd ready");
    c.login("u", "p").await.unwrap();
    c.load_features().await.unwrap();
    assert_eq!(c.features.hash_selected.as_deref(), Some("SHA-256"));
    let addr = c.passive().await.unwrap();
    assert_eq!(
        addr,
        "127.0.0.1:1025".parse().unwrap(),
        "0.0.0.0 means the control peer"
    );
    let (line, reply) = c.active("127.0.0.3:1025".parse().unwrap()).await.unwrap();
    assert_eq!((line.as_str(), reply.code), ("PORT 127,0,0,3,4,1", 504));
}

#[tokio::test]
async fn rejected_login_and_timeouts_name_the_server() {
    let url = scripted(
        "220 hi\r\n",
        vec![("USER u", "331 pw\r\n"), ("PASS secret", "530 no\r\n")],
    )
    .await;
    let mut c = ControlClient::connect(Role::Destination, &url, Duration::from_secs(5), false)
        .await
        .unwrap();
    let e = c.login("u", "secret").await.unwrap_err().to_string();
    assert!(e.contains("the destination 127.0.0.1:"), "{e}");
    assert!(e.contains("`PASS ****`") && !e.contains("secret"), "{e}");
    let url = scripted("220 hi\r\n", vec![("NOOP", "")]).await;
    let mut c = ControlClient::connect(Role::Source, &url, Duration::from_millis(300), false)
        .await
        .unwrap();
    let e = c.command("NOOP").await.unwrap_err().to_string();
    assert!(e.contains("did not answer in time"), "{e}");
}

#[tokio::test]
async fn pwd_unquotes() {
    let url = scripted("220 hi\r\n", vec![("PWD", "257 \"/a \"\"b\"\"\" is current\r\n")]).await;
    let mut c = ControlClient::connect(Role::Source, &url, Duration::from_secs(5), false)
        .await
        .unwrap();
    assert_eq!(c.pwd().await.unwrap(), "/a \"b\"");
}

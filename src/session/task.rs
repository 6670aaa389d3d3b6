//! The session task: TLS for implicit FTPS, the greeting, the command loop with its
//! timeouts, and the one place where a session writes replies ([`Session::send`]). Each
//! command's [`Answer`] is written here and what follows it is done here: closing, the TLS
//! handshake after AUTH, starting a prepared transfer.

use super::answer::{Answer, Then};
use super::quiet::Quiet;
use super::transfers::{final_reply, Prepared};
use super::{AuthState, Flow, Running, Session, Shared};
use crate::control::codec::{write_replies, write_reply, Line, LineReader};
use crate::control::command::{Command, TransferType};
use crate::control::parser::parse;
use crate::control::reply::{Code, Reply};
use crate::control::stream::ControlStream;
use crate::datachan::{Outcome, Plan};
use crate::server::Admitted;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// Serve one control connection the listener admitted until QUIT, timeout, shutdown or
/// disconnect: the session entry point [`crate::run`] gives [`crate::server::serve`]. On an
/// implicit FTPS listener TLS starts before the greeting. The caller instruments this future
/// with a span naming the client.
///
/// The client is the TCP peer, or the source of a trusted load balancer's PROXY header, in
/// which case `proxy` is the balancer's address (logged once, beside the client's). The seat
/// is the connection's waiting seat; the session moves it to a logged-in seat at login, and
/// closes when a newcomer takes it over before that. The listener has refused banned
/// addresses already ([`Shared::refuse_banned`]).
pub async fn run(shared: Arc<Shared>, admitted: Admitted) {
    let Admitted {
        stream,
        client: peer,
        proxy,
        implicit_tls,
        seat,
    } = admitted;
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    // Replies must leave at once: without this Nagle holds a 226 until the client's delayed
    // ACK of the 150 (a fixed ~40 ms stall per transfer).
    let _ = stream.set_nodelay(true);
    let settings = shared.settings();
    let mut tls_acceptors = None;
    let conn = if implicit_tls {
        let Some(tls) = settings.tls.clone() else { return };
        let acceptors = match tls.session_acceptors() {
            Ok(acceptors) => acceptors,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS for the session");
                return;
            }
        };
        let timeout = Duration::from_secs(settings.config.limits.login_timeout_secs);
        let handshake = tokio::time::timeout(timeout, acceptors.control.accept(stream)).await;
        let outcome = match &handshake {
            Ok(Ok(s)) => Some(crate::tls::resumed(s.get_ref().1.handshake_kind())),
            _ => None,
        };
        crate::tls::count_handshake(crate::tls::Channel::Control, outcome);
        match handshake {
            Ok(Ok(s)) => {
                tls_acceptors = Some(acceptors);
                ControlStream::Tls(Box::new(s))
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "implicit TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!("implicit TLS handshake timed out");
                return;
            }
        }
    } else {
        ControlStream::plain(stream)
    };
    let conn = LineReader::new(conn, settings.config.limits.max_line_len);
    let id = shared.next_session_id();
    let registration = shared.live.register(id, peer, proxy);
    let live = super::live::Live::new(registration, settings.config.storage.kind);
    let mut session = Session {
        shared,
        settings,
        peer,
        local,
        id,
        conn,
        last_code: 0,
        auth: AuthState::Fresh,
        prot_private: false,
        sscn_client: false,
        cpsv_once: false,
        tls_acceptors,
        login_failures: 0,
        seat,
        transfer_type: TransferType::Ascii,
        rest: 0,
        allo: None,
        rename_from: None,
        data: None,
        epsv_all: false,
        transfer: None,
        live,
        account_now: std::sync::OnceLock::new(),
    };
    match proxy {
        Some(proxy) => tracing::info!(client = %peer, proxy = %proxy, "connected through a load balancer"),
        None => tracing::info!("connected"),
    }
    let banner = Reply::new(Code::READY, session.settings.config.banner.clone());
    if session.send(banner).await.is_err() {
        return;
    }
    let result = session.main_loop().await;
    // A transfer still running stops with the session.
    if let Some(running) = session.transfer.take() {
        session
            .stop_transfer(running, super::live::StoppedBy::SessionEnd)
            .await;
    }
    session.transfer_ended("disconnected");
    match result {
        Ok(()) => tracing::info!("disconnected"),
        Err(e) => tracing::info!(error = %e, "connection lost"),
    }
}

impl Session {
    /// Write one reply: with [`Session::send_pair`], the only place a session writes to its
    /// control connection.
    async fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        self.last_code = reply.code.0;
        write_reply(self.conn.get_mut(), &reply).await
    }

    /// Write two replies in one write (a transfer's 150 and its final reply).
    async fn send_pair(&mut self, first: Reply, second: Reply) -> std::io::Result<()> {
        self.last_code = second.code.0;
        write_replies(self.conn.get_mut(), &[first, second]).await
    }

    /// One line in the W3C log, if it is on; `status`: the code of the reply that ended it.
    fn log_w3c(
        &self,
        method: &'static str,
        uri: Option<&str>,
        sc_bytes: u64,
        cs_bytes: u64,
        started: Instant,
        status: u16,
    ) {
        let Some(w3c) = self.shared.w3c() else { return };
        let took = started.elapsed();
        w3c.log(crate::w3c::Entry {
            time: std::time::SystemTime::now(),
            client: crate::policy::normalize(self.peer.ip()),
            user: self.logged_in().map(|l| l.user.name.clone()),
            server: self.local,
            method,
            uri: uri.unwrap_or("-").to_owned(),
            status,
            sc_bytes,
            cs_bytes,
            took,
            session: self.id,
        });
    }

    /// Log an ended transfer with the code of its final reply (426 for one stopped by ABOR, a
    /// kick or the end of its session, before that reply is written or when none will be).
    pub(super) fn log_transfer(&self, running: &Running, status: u16) {
        let moved = running.transfer.moved();
        let (sc, cs) = if running.verb.uploads() {
            (0, moved)
        } else {
            (moved, 0)
        };
        self.log_w3c(
            running.verb.as_str(),
            Some(&running.path),
            sc,
            cs,
            running.started,
            status,
        );
    }

    async fn main_loop(&mut self) -> std::io::Result<()> {
        let limits = self.settings.config.limits.clone();
        let idle = Duration::from_secs(limits.idle_timeout_secs);
        let login_deadline = Instant::now() + Duration::from_secs(limits.login_timeout_secs);
        // The signals that end a session are waited on by one future each for the whole
        // session (made afresh for every command, each would join and leave its token's list
        // of waiters every time).
        let shutdown = self.shared.shutdown.clone().cancelled_owned();
        let kicked = self.live.registration.kicked().cancelled_owned();
        let evicted = self.seat.evicted().clone().cancelled_owned();
        // One timer for the idle and login timeouts: it is set for the earliest time the
        // session could time out and, when it fires early because a command came since, moved
        // to the deadline then in force (no timer to re-arm for every command).
        let mut last_activity = Instant::now();
        let clock = tokio::time::sleep_until(login_deadline.min(last_activity + idle));
        tokio::pin!(shutdown, kicked, evicted, clock);
        // Polled only when they have woken the task themselves (most wake-ups are for a
        // command or a transfer, and each of these takes a lock to poll).
        let (mut shutdown, mut kicked, mut evicted, mut clock) = (
            Quiet::new(shutdown),
            Quiet::new(kicked),
            Quiet::new(evicted),
            Quiet::new(clock),
        );
        loop {
            let logged_in = matches!(self.auth, AuthState::LoggedIn(_));
            let deadline = if logged_in {
                last_activity + idle
            } else {
                login_deadline.min(last_activity + idle)
            };
            let transferring = self.transfer.is_some();
            let (conn, transfer, data) = (&mut self.conn, &mut self.transfer, &mut self.data);
            tokio::select! {
                biased;
                _ = &mut kicked => {
                    for reply in self.kicked().await {
                        self.send(reply).await?;
                    }
                    return Ok(());
                }
                outcome = async { (&mut transfer.as_mut().expect("guarded").transfer).await }, if transferring => {
                    let running = self.transfer.take().expect("guarded");
                    self.end_transfer(running, outcome, None).await?;
                    last_activity = Instant::now();
                }
                _ = &mut shutdown, if !transferring => {
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, "Server shutting down, closing control connection.")).await;
                    return Ok(());
                }
                _ = &mut evicted, if !logged_in => {
                    tracing::info!(target: "fxpd::security", "closed before login to make room for a newcomer: this address held the most connections not logged in, and this one the longest");
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, "Too many connections waiting to log in; closing the oldest.")).await;
                    return Ok(());
                }
                _ = &mut clock, if !transferring => {
                    if Instant::now() < deadline {
                        clock.inner().reset(deadline);
                        continue;
                    }
                    let text = if logged_in { "Idle timeout, closing control connection." } else { "Login timeout, closing control connection." };
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, text)).await;
                    return Ok(());
                }
                () = screen(data) => {}
                line = conn.next() => {
                    last_activity = Instant::now();
                    let line = match line? {
                        None => return Ok(()),
                        Some(Line::TooLong) => {
                            self.send(Reply::new(Code::SYNTAX_ERROR, "Command line too long.")).await?;
                            continue;
                        }
                        Some(Line::Command(bytes)) => bytes,
                    };
                    let command = match parse(&line) {
                        Ok(c) => c,
                        Err(e) => {
                            self.send(e.0).await?;
                            continue;
                        }
                    };
                    log_command(&command);
                    self.settings = self.shared.settings();
                    self.account_now = std::sync::OnceLock::new();
                    if self.transfer.is_some() && !matches!(command, Command::Stat(None) | Command::Abor | Command::Noop) {
                        // RFC 959 sequencing: other commands (QUIT too) wait for the transfer's
                        // final reply.
                        self.finish_transfer().await?;
                    }
                    // SECURITY: the folders in force are mounted only between transfers: the
                    // end of a running upload (its quota charge, a discarded overflow) must act
                    // on the tree it wrote to, not on whatever a reload mounted at its path.
                    if self.transfer.is_none() {
                        self.remount_folders();
                    }
                    // The argument is kept only for the W3C log, when that is on.
                    let verb = command.verb();
                    let arg = self.shared.w3c().and_then(|_| command.log_arg());
                    let started = last_activity;
                    self.note_upload(matches!(command, Command::Stor(_) | Command::Stou));
                    let answer = self.handle(command).await.unwrap_or_else(Answer::from);
                    // A transfer is logged with its final reply, not as a command.
                    let starts_transfer = answer.starts_transfer();
                    let flow = self.answer(answer).await?;
                    self.publish();
                    if !starts_transfer {
                        self.log_w3c(verb, arg.as_deref(), 0, 0, started, self.last_code);
                    }
                    if flow == Flow::Close {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Wait for the running transfer and send its final reply.
    async fn finish_transfer(&mut self) -> std::io::Result<()> {
        if let Some(mut running) = self.transfer.take() {
            let outcome = (&mut running.transfer).await;
            self.end_transfer(running, outcome, None).await?;
        }
        Ok(())
    }

    /// A transfer ended with `outcome`: count it, cut back an upload stopped at its size
    /// limit, settle its quota charge, then send its final reply (after its `preliminary`
    /// 150 in the same write, when that has not gone out yet) and log it.
    async fn end_transfer(
        &mut self,
        running: Running,
        outcome: Outcome,
        preliminary: Option<Reply>,
    ) -> std::io::Result<()> {
        self.transfer_ended(outcome.label());
        let overflow = matches!(outcome, Outcome::TooLarge);
        let reply = final_reply(&running, outcome);
        if overflow {
            self.discard_overflow(&running).await;
        }
        self.settle_charge(&running, false).await;
        match preliminary {
            Some(preliminary) => self.send_pair(preliminary, reply).await?,
            None => self.send(reply).await?,
        }
        self.log_transfer(&running, self.last_code);
        Ok(())
    }

    /// Start a prepared transfer. Its 150 goes out as soon as the transfer has to wait for
    /// anything (the client's connection, its data, the network, a blocking thread); a
    /// download that needs no wait at all (a small file over a connection the client has
    /// made already) is done before the 150 would have been written, and its 150 and final
    /// reply go out together. Either way the client reads the 150, then the data, then the
    /// final reply; the transfer is polled before any reply only so that the common small
    /// download costs one reply write and one wake-up of the client instead of two. An
    /// upload's client waits for the 150 before it sends: its 150 goes out first.
    async fn begin_transfer(&mut self, preliminary: Reply, prepared: Prepared) -> std::io::Result<()> {
        let uploads = prepared.uploads();
        let mut running = prepared.start();
        self.transfer_started(&running);
        if uploads {
            self.transfer = Some(running);
            return self.send(preliminary).await;
        }
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut running.transfer).poll(cx))).await;
        match first {
            Poll::Ready(outcome) => self.end_transfer(running, outcome, Some(preliminary)).await,
            Poll::Pending => {
                self.transfer = Some(running);
                self.send(preliminary).await
            }
        }
    }

    /// Write an answer's replies, then do what it says next.
    async fn answer(&mut self, answer: Answer) -> std::io::Result<Flow> {
        let (reply, also, then) = answer.into_parts();
        if let Then::Transfer(prepared) = then {
            self.begin_transfer(reply, *prepared).await?;
            return Ok(Flow::Continue);
        }
        self.send(reply).await?;
        if let Some(also) = also {
            self.send(also).await?;
        }
        Ok(match then {
            Then::Continue | Then::Transfer(_) => Flow::Continue,
            Then::Close => Flow::Close,
            Then::StartTls { acceptors, mechanism } => self.start_tls(acceptors, mechanism).await,
        })
    }
}

/// A passive listener waiting for its transfer screens arrivals while the session waits for
/// the next command (this never ends; the transfer takes the listener over).
async fn screen(data: &mut Option<Plan>) {
    match data {
        Some(Plan::Passive(listener)) => listener.screen().await,
        _ => std::future::pending().await,
    }
}

fn log_command(command: &Command) {
    match command {
        // Never log passwords.
        Command::Pass(_) => tracing::debug!(command = "PASS", "command"),
        other => tracing::debug!(command = ?other, "command"),
    }
}

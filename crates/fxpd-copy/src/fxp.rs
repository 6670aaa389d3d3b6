//! One file from server to server: the procedure of Microsoft KB Q247132.
//!
//! 1. `PASV` (`EPSV` on an IPv6 control connection, RFC 2428) on the passive side;
//! 2. `PORT`/`EPRT` with that address on the active side;
//! 3. `REST` (when resuming, RFC 3659 section 5) and `RETR` on the source, `STOR` on the
//!    destination: the active side first, because it connects at once while some servers
//!    answer on the passive side only once the connection has arrived;
//! 4. wait for both final replies while polling `STAT` for progress (RFC 959 lets STAT
//!    through during a transfer; servers that queue it instead answer after the transfer,
//!    which is detected and handled).
//!
//! The KB arrangement puts the destination in passive mode and the source in active mode.
//! When a server refuses its part (a foreign PORT target, a foreign passive connection),
//! [`transfer`] tries the reverse roles before giving up, and reports each [`RemoteRefusal`].
//!
//! Every wait is bounded: replies by the client timeout, the transfer by a stall detector
//! (no progress for the timeout: ABOR both) and, once one side has finished, by a short
//! grace period for the other (a passive side that never got its connection otherwise
//! waits for its own data timeout). Without progress reports from either server the
//! transfer is bounded by the servers' data timeouts.

use crate::client::{ClientError, ControlClient, Role};
use crate::progress::Progress;
use crate::refusal::{RemoteRefusal, ServerKind, What};
use crate::reply::ServerReply;
use crate::wire;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// How often STAT is sent to a server that answers it during transfers.
const POLL: Duration = Duration::from_millis(500);

/// How long a first STAT may take before the server is taken to queue it until the
/// transfer ends.
const STAT_PROBE: Duration = Duration::from_secs(2);

/// How long a side that shows no progress may keep running after the other side finished.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// Which server listens (PASV) and which connects (PORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// KB Q247132: PASV on the destination, PORT on the source.
    DestinationPassive,
    /// The reverse: PASV on the source, PORT on the destination.
    SourcePassive,
}

impl Arrangement {
    /// The other arrangement.
    pub fn reversed(self) -> Arrangement {
        match self {
            Arrangement::DestinationPassive => Arrangement::SourcePassive,
            Arrangement::SourcePassive => Arrangement::DestinationPassive,
        }
    }

    /// E.g. "PASV on the destination and PORT on the source".
    pub fn describe(self) -> &'static str {
        match self {
            Arrangement::DestinationPassive => "PASV on the destination and PORT on the source",
            Arrangement::SourcePassive => "PASV on the source and PORT on the destination",
        }
    }
}

/// One file to move.
#[derive(Debug, Clone)]
pub struct FileJob<'a> {
    /// Path on the source (as the server takes it).
    pub src_path: &'a str,
    /// Path on the destination.
    pub dst_path: &'a str,
    /// The source file's size, if SIZE told it.
    pub size: Option<u64>,
    /// Where to start (REST on both sides) when resuming; 0 otherwise.
    pub offset: u64,
}

/// Why a file could not be moved.
#[derive(Debug)]
pub enum FxpError {
    /// Both arrangements were refused: (arrangement, refusal) for each.
    Refused(Vec<(Arrangement, RemoteRefusal)>),
    /// Anything else, as one clause.
    Failed(String),
}

/// Moves one file; `arrangement` is tried first and, when the reverse worked instead,
/// updated so that the next file starts with the one that works.
pub async fn transfer(
    src: &mut ControlClient,
    dst: &mut ControlClient,
    job: &FileJob<'_>,
    arrangement: &mut Arrangement,
    progress: &mut Progress,
) -> Result<(), FxpError> {
    let first = *arrangement;
    let refused = match run_attempt(src, dst, job, first, progress).await {
        Attempt::Done => return Ok(()),
        Attempt::Failed(why) => return Err(FxpError::Failed(why)),
        Attempt::Refused(r) => r,
    };
    let second = first.reversed();
    progress.note(&format!(
        "{}; trying the reverse roles ({})",
        refused.describe(),
        second.describe()
    ));
    match run_attempt(src, dst, job, second, progress).await {
        Attempt::Done => {
            *arrangement = second;
            Ok(())
        }
        Attempt::Refused(again) => Err(FxpError::Refused(vec![(first, refused), (second, again)])),
        Attempt::Failed(why) => Err(FxpError::Failed(format!(
            "{why} (before that, with {}, {})",
            first.describe(),
            refused.describe()
        ))),
    }
}

/// How one arrangement went.
enum Attempt {
    Done,
    Refused(RemoteRefusal),
    Failed(String),
}

/// [`attempt`], turning a lost or silent control connection into a failure after a
/// best-effort ABOR on both servers.
async fn run_attempt(
    src: &mut ControlClient,
    dst: &mut ControlClient,
    job: &FileJob<'_>,
    arrangement: Arrangement,
    progress: &mut Progress,
) -> Attempt {
    match attempt(src, dst, job, arrangement, progress).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = src.abort().await;
            let _ = dst.abort().await;
            Attempt::Failed(e.to_string())
        }
    }
}

/// One arrangement, steps 1-4 of the module docs.
async fn attempt(
    src: &mut ControlClient,
    dst: &mut ControlClient,
    job: &FileJob<'_>,
    arrangement: Arrangement,
    progress: &mut Progress,
) -> Result<Attempt, ClientError> {
    let (passive, active) = match arrangement {
        Arrangement::DestinationPassive => (dst, src),
        Arrangement::SourcePassive => (src, dst),
    };
    let target = match passive.passive().await {
        Ok(addr) => addr,
        Err(e) => match e.reply() {
            Some(reply) => return Ok(refused(passive, What::NoPassive, None, Some(reply.clone()))),
            None => return Err(e),
        },
    };
    let (_, reply) = active.active(target).await?;
    if !reply.is_completion() {
        return Ok(refused(active, What::ForeignPort, Some(target), Some(reply)));
    }
    if let Some((command, reply)) = start(active, job).await? {
        if reply.code == 425 {
            return Ok(refused(active, What::Connect, Some(target), Some(reply)));
        }
        return Ok(Attempt::Failed(format!(
            "{} answered `{command}` with `{reply}`",
            active.name()
        )));
    }
    if let Some((command, reply)) = start(passive, job).await? {
        active.abort().await?;
        if reply.code == 425 {
            return Ok(refused(passive, What::ForeignPassive, Some(target), Some(reply)));
        }
        return Ok(Attempt::Failed(format!(
            "{} answered `{command}` with `{reply}`",
            passive.name()
        )));
    }
    let mut p = Watch::default();
    let mut a = Watch::default();
    let end = wait(passive, active, &mut p, &mut a, job, progress).await?;
    for (client, w) in [(&mut *passive, &p), (&mut *active, &a)] {
        if !w.aborted && (w.stat_sent.is_some() || w.owed) {
            // A STAT answer is still on its way: read past it.
            client.resync().await?;
        }
    }
    Ok(classify(passive, active, &p, &a, end, target))
}

/// REST (when resuming) and RETR/STOR. `Some((command, reply))` when the server refused
/// instead of starting the transfer.
async fn start(
    client: &mut ControlClient,
    job: &FileJob<'_>,
) -> Result<Option<(String, ServerReply)>, ClientError> {
    if job.offset > 0 {
        let line = format!("REST {}", job.offset);
        let reply = client.command(&line).await?;
        if reply.code != 350 {
            return Ok(Some((line, reply)));
        }
    }
    let line = match client.role {
        Role::Source => format!("RETR {}", job.src_path),
        Role::Destination => format!("STOR {}", job.dst_path),
    };
    let reply = client.command(&line).await?;
    Ok((!reply.is_preliminary()).then_some((line, reply)))
}

/// A refusal by `client`.
fn refused(
    client: &ControlClient,
    what: What,
    target: Option<SocketAddr>,
    reply: Option<ServerReply>,
) -> Attempt {
    Attempt::Refused(RemoteRefusal {
        role: client.role,
        server: client.name(),
        kind: ServerKind::from_greeting(&client.greeting),
        what,
        target,
        reply,
    })
}

/// Whether a server answers STAT while it transfers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum StatSupport {
    /// Not known yet.
    #[default]
    Unknown,
    /// It answers at once (fxpd, and the KB's IIS).
    Answers,
    /// It answers only after the transfer (RFC 959 queueing); no more STATs are sent.
    Queued,
    /// It does not know STAT.
    Unsupported,
}

/// What is known about one side's running transfer.
#[derive(Debug, Default)]
struct Watch {
    /// The transfer's final reply (226, 425, 426, ...).
    final_reply: Option<ServerReply>,
    /// The transfer was aborted by us (ABOR); `abort_replies` holds what came back.
    aborted: bool,
    abort_replies: Vec<ServerReply>,
    stat: StatSupport,
    /// A STAT sent and not yet answered.
    stat_sent: Option<Instant>,
    /// A STAT answer is still due (it took longer than [`STAT_PROBE`]).
    owed: bool,
    last_stat: Option<Instant>,
    /// Bytes moved so far (this transfer), from the last STAT answer that had a count.
    bytes: Option<u64>,
    /// When `bytes` last changed.
    changed_at: Option<Instant>,
    /// When a STAT was last answered during the transfer.
    answered_at: Option<Instant>,
}

impl Watch {
    /// The transfer on this side is over (final reply or aborted).
    fn done(&self) -> bool {
        self.final_reply.is_some() || self.aborted
    }

    /// The server answers STAT during the transfer with a byte count, so a count that
    /// stands still means the transfer stands still.
    fn reports_bytes(&self) -> bool {
        self.stat == StatSupport::Answers && self.bytes.is_some()
    }

    /// Files one reply: a STAT answer, a STAT refusal, a preliminary reply, or the final one.
    fn route(&mut self, reply: ServerReply, now: Instant) {
        let awaiting_stat = self.stat_sent.is_some() || self.owed;
        if awaiting_stat && (211..=213).contains(&reply.code) {
            self.stat_sent = None;
            self.owed = false;
            if self.final_reply.is_none() {
                self.stat = StatSupport::Answers;
                self.answered_at = Some(now);
                if let Some(b) = wire::parse_stat_progress(&reply) {
                    if self.bytes != Some(b) {
                        self.bytes = Some(b);
                        self.changed_at = Some(now);
                    }
                }
            }
            return;
        }
        if awaiting_stat && (500..=504).contains(&reply.code) {
            self.stat_sent = None;
            self.owed = false;
            self.stat = StatSupport::Unsupported;
            return;
        }
        if reply.is_preliminary() || self.final_reply.is_some() {
            return;
        }
        self.final_reply = Some(reply);
    }

    /// A STAT unanswered for [`STAT_PROBE`] is owed: the server queues it.
    fn expire_stat(&mut self, now: Instant) {
        if let Some(sent) = self.stat_sent {
            if now.duration_since(sent) > STAT_PROBE {
                self.stat_sent = None;
                self.owed = true;
                if self.stat == StatSupport::Unknown {
                    self.stat = StatSupport::Queued;
                }
            }
        }
    }

    /// Whether to send a STAT now.
    fn wants_stat(&self, now: Instant) -> bool {
        !self.done()
            && self.stat_sent.is_none()
            && !self.owed
            && matches!(self.stat, StatSupport::Unknown | StatSupport::Answers)
            && self.last_stat.is_none_or(|t| now.duration_since(t) >= POLL)
    }

    /// The reply that says how the transfer ended, or why it was aborted.
    fn outcome_text(&self) -> String {
        match (&self.final_reply, self.aborted) {
            (Some(r), _) => format!("`{r}`"),
            (None, true) => match self.bytes {
                Some(b) => format!("nothing in time (aborted after {b} bytes)"),
                None => "nothing in time (aborted)".into(),
            },
            (None, false) => "nothing".into(),
        }
    }

    /// A 425 reply among the final and the abort replies.
    fn reply_425(&self) -> Option<&ServerReply> {
        self.final_reply
            .iter()
            .chain(&self.abort_replies)
            .find(|r| r.code == 425)
    }
}

/// How the wait ended.
enum End {
    /// Both sides are done (final reply or aborted).
    Finished,
    /// No progress for this long: both were aborted.
    Stalled(Duration),
}

/// Step 4: waits for both final replies, polling STAT and showing progress.
async fn wait(
    passive: &mut ControlClient,
    active: &mut ControlClient,
    p: &mut Watch,
    a: &mut Watch,
    job: &FileJob<'_>,
    progress: &mut Progress,
) -> Result<End, ClientError> {
    let timeout = passive.timeout().max(active.timeout());
    let grace = FINISH_GRACE.min(timeout);
    let started = Instant::now();
    let mut first_final: Option<Instant> = None;
    let mut tick = tokio::time::interval(POLL / 2);
    loop {
        if p.done() && a.done() {
            return Ok(End::Finished);
        }
        tokio::select! {
            r = passive.event(), if !p.done() => p.route(r?, Instant::now()),
            r = active.event(), if !a.done() => a.route(r?, Instant::now()),
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        p.expire_stat(now);
        a.expire_stat(now);
        if first_final.is_none() && (p.done() || a.done()) {
            first_final = Some(now);
        }
        let (dst_w, src_w) = match passive.role {
            Role::Destination => (&*p, &*a),
            Role::Source => (&*a, &*p),
        };
        match dst_w.bytes.or(src_w.bytes) {
            Some(b) => progress.update(job.offset + b),
            None => progress.tick(),
        }
        match first_final {
            None => {
                // Stall detector: only where some server reports a byte count.
                let visible = p.reports_bytes() || a.reports_bytes();
                let last = [p.changed_at, a.changed_at]
                    .into_iter()
                    .flatten()
                    .fold(started, Instant::max);
                if visible && now.duration_since(last) > timeout {
                    abort(passive, p).await?;
                    abort(active, a).await?;
                    return Ok(End::Stalled(now.duration_since(last)));
                }
            }
            Some(t0) => {
                let (client, w) = if p.done() {
                    (&mut *active, &mut *a)
                } else {
                    (&mut *passive, &mut *p)
                };
                if !w.done() {
                    let reporting = w.reports_bytes() && w.answered_at.is_some_and(|t| t > t0);
                    let since = w.changed_at.map_or(t0, |c| c.max(t0));
                    let limit = if reporting { grace } else { timeout };
                    if now.duration_since(since) > limit {
                        abort(client, w).await?;
                        continue;
                    }
                }
            }
        }
        for (client, w) in [(&mut *passive, &mut *p), (&mut *active, &mut *a)] {
            if w.wants_stat(now) {
                client.send("STAT").await?;
                w.stat_sent = Some(now);
                w.last_stat = Some(now);
            }
        }
    }
}

/// ABOR on one side, keeping what it answered.
async fn abort(client: &mut ControlClient, w: &mut Watch) -> Result<(), ClientError> {
    if w.done() {
        return Ok(());
    }
    w.aborted = true;
    w.abort_replies = client.abort().await?;
    Ok(())
}

/// Turns the two sides' outcomes into the attempt's result.
fn classify(
    passive: &ControlClient,
    active: &ControlClient,
    p: &Watch,
    a: &Watch,
    end: End,
    target: SocketAddr,
) -> Attempt {
    if let End::Stalled(d) = end {
        return Attempt::Failed(format!(
            "the transfer made no progress for {} s; both servers were told to abort (ABOR)",
            d.as_secs()
        ));
    }
    let completed = |w: &Watch| w.final_reply.as_ref().is_some_and(ServerReply::is_completion);
    if completed(p) && completed(a) {
        return Attempt::Done;
    }
    if let Some(reply) = p.reply_425() {
        return refused(passive, What::ForeignPassive, Some(target), Some(reply.clone()));
    }
    // The active side sent everything (or lost its connection) while the passive side never
    // saw a byte: the passive side turned the connection away (fxpd closes a refused
    // connection at once and keeps waiting for the client's own).
    let active_sent = a
        .final_reply
        .as_ref()
        .is_some_and(|r| r.is_completion() || r.code == 426);
    if p.aborted && p.bytes.unwrap_or(0) == 0 && active_sent {
        return refused(passive, What::ForeignPassive, Some(target), None);
    }
    if let Some(reply) = a.final_reply.as_ref().filter(|r| r.code == 425) {
        return refused(active, What::Connect, Some(target), Some(reply.clone()));
    }
    let (src, s, dst, d) = match passive.role {
        Role::Destination => (active, a, passive, p),
        Role::Source => (passive, p, active, a),
    };
    Attempt::Failed(format!(
        "the transfer failed: {} answered RETR with {} and {} answered STOR with {}",
        src.name(),
        s.outcome_text(),
        dst.name(),
        d.outcome_text()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> ServerReply {
        ServerReply {
            code,
            lines: vec![format!("{code} {text}")],
        }
    }

    fn stat(bytes: u64) -> ServerReply {
        ServerReply {
            code: 211,
            lines: vec![
                "211-status".into(),
                format!(" Data connection open: STOR /f, {bytes} bytes transferred"),
                "211 End".into(),
            ],
        }
    }

    #[test]
    fn watch_routes_stat_answers_and_finals() {
        let t = Instant::now();
        let mut w = Watch::default();
        assert!(w.wants_stat(t));
        w.stat_sent = Some(t);
        w.route(reply(150, "Opening"), t);
        w.route(stat(10), t);
        assert_eq!(
            (w.stat, w.bytes, w.final_reply.is_none()),
            (StatSupport::Answers, Some(10), true)
        );
        w.route(reply(226, "Transfer complete."), t);
        assert_eq!(w.final_reply.as_ref().map(|r| r.code), Some(226));
        assert!(w.done() && !w.wants_stat(t));
    }

    #[test]
    fn queued_stat_is_owed_and_not_repeated() {
        let t = Instant::now();
        let mut w = Watch {
            stat_sent: Some(t),
            last_stat: Some(t),
            ..Watch::default()
        };
        w.expire_stat(t + STAT_PROBE + Duration::from_millis(1));
        assert_eq!((w.stat, w.owed), (StatSupport::Queued, true));
        assert!(!w.wants_stat(t + Duration::from_secs(10)));
        // The final comes first, then the owed STAT answer.
        w.route(reply(226, "ok"), t);
        w.route(reply(211, "No data connection"), t);
        assert_eq!(w.final_reply.as_ref().map(|r| r.code), Some(226));
        assert!(!w.owed);
    }

    #[test]
    fn stat_refusal_is_not_a_final_reply() {
        let t = Instant::now();
        let mut w = Watch {
            stat_sent: Some(t),
            ..Watch::default()
        };
        w.route(reply(502, "STAT not implemented"), t);
        assert_eq!(w.stat, StatSupport::Unsupported);
        assert!(w.final_reply.is_none());
        w.route(reply(451, "local error"), t);
        assert_eq!(w.final_reply.as_ref().map(|r| r.code), Some(451));
    }

    #[test]
    fn arrangements_reverse() {
        let a = Arrangement::DestinationPassive;
        assert_eq!(a.reversed(), Arrangement::SourcePassive);
        assert_eq!(a.reversed().reversed(), a);
        assert!(a.describe().starts_with("PASV on the destination"));
    }
}

//! One handler per verb. Handlers answer with [`Reply`] values; address decisions are
//! asked of the policy, never made here.

use super::path::{file_name, quote, resolve};
use super::transfer::{object_reply, storage_reply};
use super::{AuthState, Flow, LoggedIn, Session};
use crate::auth::LoginError;
use crate::config::ListingStyle;
use crate::control::command::{Command, EpsvArg, OptsArg, SiteArg, TransferType, VERBS};
use crate::control::reply::{Code, Reply};
use crate::control::stream::ControlStream;
use crate::datachan::{Job, PassiveListener, Plan};
use crate::listing::{self, Entry};
use crate::policy::{normalize, DataSetup, Grant, PassiveGrant, Refusal, Who};
use crate::server::admission;
use crate::storage::{Backend, Storage};
use crate::tls::TlsRequire;
use std::io::{Seek, SeekFrom};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;
use unftp_core::storage::{Metadata, StorageBackend};
use unftp_sbe_fs::Filesystem;

type Io = std::io::Result<Flow>;

fn ok(code: Code, text: impl Into<String>) -> Reply {
    Reply::new(code, text)
}

impl Session {
    /// Answer one command.
    pub(super) async fn handle(&mut self, command: Command) -> Io {
        if !command.allowed_before_login() && self.logged_in().is_none() {
            self.send(ok(Code::NOT_LOGGED_IN, "Please login with USER and PASS."))
                .await?;
            return Ok(Flow::Continue);
        }
        // RNTO must immediately follow RNFR.
        let rename_from = self.rename_from.take();
        let reply = match command {
            Command::User(name) => self.user(name),
            Command::Pass(password) => return self.pass(password).await,
            Command::Acct => ok(Code::NOT_IMPLEMENTED_SUPERFLUOUS, "ACCT command not needed."),
            Command::Quit => return self.quit().await,
            Command::Noop => ok(Code::OK, "NOOP command successful."),
            Command::Syst => match self.settings.config.listing_style {
                ListingStyle::Msdos => ok(Code::SYSTEM_TYPE, "Windows_NT"),
                ListingStyle::Unix => ok(Code::SYSTEM_TYPE, "UNIX Type: L8"),
            },
            Command::Feat => feat(self.settings.tls.is_some()),
            Command::Help(_) => help(),
            Command::Opts(arg) => self.opts(arg),
            Command::Auth(mechanism) => return self.auth_tls(&mechanism).await,
            Command::Pbsz if self.conn.get_ref().is_tls() => ok(Code::OK, "PBSZ=0"),
            Command::Prot(private) if self.conn.get_ref().is_tls() => {
                self.prot_private = private;
                ok(
                    Code::OK,
                    if private {
                        "PROT now Private."
                    } else {
                        "PROT now Clear."
                    },
                )
            }
            Command::Pbsz | Command::Prot(_) => ok(Code::BAD_SEQUENCE, "PBSZ and PROT need AUTH TLS first."),
            // RFC 4217 12.3: clearing the control channel would expose later passwords and
            // policy decisions to tampering; fxpd refuses it.
            Command::Ccc => ok(
                Code::POLICY_REFUSED,
                "CCC refused: the control channel stays protected.",
            ),
            Command::Sscn(on) => {
                if let Some(on) = on {
                    self.sscn_client = on;
                }
                let method = if self.sscn_client { "CLIENT" } else { "SERVER" };
                ok(Code::OK, format!("SSCN:{method} METHOD"))
            }
            Command::Cpsv => self.set_up_data(DataSetup::Cpsv).await,
            Command::Allo => ok(Code::NOT_IMPLEMENTED_SUPERFLUOUS, "ALLO command ignored."),
            Command::ModeStream => ok(Code::OK, "MODE S command successful."),
            Command::StruFile => ok(Code::OK, "STRU F command successful."),
            Command::Type(t) => {
                self.transfer_type = t;
                match t {
                    TransferType::Ascii => ok(Code::OK, "Type set to A."),
                    TransferType::Image => ok(Code::OK, "Type set to I."),
                }
            }
            Command::Site(SiteArg::Help) => Reply::multi(
                Code::HELP,
                vec![
                    "The following SITE commands are recognized:".into(),
                    "HELP".into(),
                    "End of help.".into(),
                ],
            ),
            Command::Site(SiteArg::Other(what)) => ok(
                Code::NOT_IMPLEMENTED,
                format!("SITE {what}: command not implemented."),
            ),
            Command::Abor => return self.abor().await,
            Command::Stat(None) => self.stat_server(),
            Command::Stat(Some(path)) => self.stat_path(&path).await,
            Command::Pwd => {
                let cwd = &self.login().cwd;
                ok(
                    Code::PATH_CREATED,
                    format!("{} is current directory.", quote(cwd)),
                )
            }
            Command::Cwd(dir) => self.cwd(&dir).await,
            Command::Cdup => self.cwd("..").await,
            Command::Mkd(dir) => self.mkd(&dir).await,
            Command::Rmd(dir) => self.remove("RMD", &dir).await,
            Command::Dele(file) => self.remove("DELE", &file).await,
            Command::Rnfr(from) => self.rnfr(&from).await,
            Command::Rnto(to) => self.rnto(rename_from, &to).await,
            Command::Size(file) => self.size(&file).await,
            Command::Mdtm(file) => self.mdtm(&file).await,
            Command::Mlst(path) => self.mlst(path.as_deref()).await,
            Command::Hash(path) => self.hash(&path).await,
            Command::Rest(offset) => {
                self.rest = offset;
                ok(Code::PENDING_FURTHER_INFO, format!("Restarting at {offset}."))
            }
            Command::Port(target) => self.set_up_data(DataSetup::Port(SocketAddr::V4(target))).await,
            Command::Eprt(target) => self.set_up_data(DataSetup::Eprt(target)).await,
            Command::Pasv => self.set_up_data(DataSetup::Pasv).await,
            Command::Epsv(arg) => self.epsv(arg).await,
            // A REST offset holds until the next transfer command (clients send PASV between).
            Command::Retr(file) => {
                let rest = std::mem::take(&mut self.rest);
                return self.retr(&file, rest).await.map(|()| Flow::Continue);
            }
            Command::Stor(file) => {
                let rest = std::mem::take(&mut self.rest);
                return self.stor(&file, rest, false).await.map(|()| Flow::Continue);
            }
            Command::Appe(file) => {
                // APPE appends at the end of the file; a pending REST does not apply.
                self.rest = 0;
                return self.stor(&file, 0, true).await.map(|()| Flow::Continue);
            }
            Command::Stou => return self.stou().await.map(|()| Flow::Continue),
            Command::List(path) => return self.list("LIST", path.as_deref()).await.map(|()| Flow::Continue),
            Command::Nlst(path) => return self.list("NLST", path.as_deref()).await.map(|()| Flow::Continue),
            Command::Mlsd(path) => return self.list("MLSD", path.as_deref()).await.map(|()| Flow::Continue),
        };
        self.send(reply).await?;
        Ok(Flow::Continue)
    }

    /// The logged-in state; handlers past the login gate may rely on it.
    fn login(&self) -> &LoggedIn {
        self.logged_in().expect("login gate checked in handle()")
    }

    fn user(&mut self, name: String) -> Reply {
        if self.logged_in().is_some() {
            return ok(Code::BAD_SEQUENCE, "Already logged in.");
        }
        let anonymous = self.settings.login.is_anonymous_name(&name);
        if let Some(refusal) = self.tls_required_for_login(anonymous) {
            return refusal;
        }
        let text = if anonymous {
            "Anonymous access allowed, send identity (e-mail name) as password.".to_owned()
        } else {
            format!("Password required for {name}.")
        };
        self.auth = AuthState::UserGiven(name);
        ok(Code::NEED_PASSWORD, text)
    }

    /// `tls.require = login|all`: USER/PASS only on a protected control connection
    /// (anonymous may be exempt).
    fn tls_required_for_login(&self, anonymous: bool) -> Option<Reply> {
        let tls = &self.settings.config.tls;
        let exempt = anonymous && tls.anonymous_exempt;
        (tls.require != TlsRequire::None && !exempt && !self.conn.get_ref().is_tls()).then(|| {
            ok(
                Code::NOT_LOGGED_IN,
                "TLS required: use AUTH TLS before logging in.",
            )
        })
    }

    /// AUTH TLS (RFC 4217 4): answer 234, then run the TLS handshake on the control
    /// connection. A failed handshake ends the session (the stream state is unknown).
    async fn auth_tls(&mut self, mechanism: &str) -> Io {
        let Some(tls) = self.settings.tls.clone() else {
            self.send(ok(
                Code::NOT_IMPLEMENTED,
                "AUTH not available: TLS is not configured.",
            ))
            .await?;
            return Ok(Flow::Continue);
        };
        if !matches!(mechanism, "TLS" | "TLS-C" | "SSL" | "TLS-P") {
            self.send(ok(
                Code::PARAMETER_NOT_IMPLEMENTED,
                "Unsupported mechanism; use AUTH TLS.",
            ))
            .await?;
            return Ok(Flow::Continue);
        }
        if self.conn.get_ref().is_tls() {
            self.send(ok(Code::BAD_SEQUENCE, "Already using TLS.")).await?;
            return Ok(Flow::Continue);
        }
        if self.conn.has_pending_bytes() {
            // Commands pipelined behind AUTH would be read as clear text after the upgrade.
            self.send(ok(Code::BAD_SEQUENCE, "Commands pipelined after AUTH; closing."))
                .await?;
            return Ok(Flow::Close);
        }
        let acceptors = match tls.session_acceptors() {
            Ok(acceptors) => acceptors,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS for the session");
                self.send(ok(Code::TLS_UNAVAILABLE, "TLS is temporarily unavailable."))
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        self.send(ok(Code::AUTH_OK, format!("AUTH {mechanism} successful.")))
            .await?;
        let Some(tcp) = self.conn.get_mut().take_plain() else {
            return Ok(Flow::Close);
        };
        let timeout = Duration::from_secs(self.settings.config.limits.login_timeout_secs);
        match tokio::time::timeout(timeout, acceptors.control.accept(tcp)).await {
            Ok(Ok(stream)) => {
                *self.conn.get_mut() = ControlStream::Tls(Box::new(stream));
                self.tls_acceptors = Some(acceptors);
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "TLS handshake on the control connection failed");
                return Ok(Flow::Close);
            }
            Err(_) => {
                tracing::info!("TLS handshake on the control connection timed out");
                return Ok(Flow::Close);
            }
        }
        tracing::info!(mechanism, "control connection protected");
        // RFC 4217 4: after AUTH the login starts over; SSL/TLS-P imply protected data.
        if !matches!(self.auth, AuthState::LoggedIn(_)) {
            self.auth = AuthState::Fresh;
        }
        self.prot_private = matches!(mechanism, "SSL" | "TLS-P");
        Ok(Flow::Continue)
    }

    async fn pass(&mut self, password: String) -> Io {
        let name = match &self.auth {
            AuthState::UserGiven(name) => name.clone(),
            AuthState::LoggedIn(_) => {
                self.send(ok(Code::BAD_SEQUENCE, "Already logged in.")).await?;
                return Ok(Flow::Continue);
            }
            AuthState::Fresh => {
                self.send(ok(Code::BAD_SEQUENCE, "Login with USER first."))
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        let peer_ip = normalize(self.peer.ip());
        let result = self.settings.login.login(&name, &password, peer_ip).await;
        drop(password);
        let user = match result {
            // The user's own TLS requirement (users file `require_tls`): refused like a bad
            // password, and only after it, so it does not tell which accounts exist.
            Ok(user) if user.require_tls && !self.conn.get_ref().is_tls() => {
                self.auth = AuthState::Fresh;
                tracing::info!(target: "fxpd::security", user = %user.name, "login refused: this user requires TLS");
                self.send(ok(
                    Code::NOT_LOGGED_IN,
                    "TLS required: use AUTH TLS before logging in.",
                ))
                .await?;
                return Ok(Flow::Continue);
            }
            Ok(user) => user,
            Err(e) => {
                self.auth = AuthState::Fresh;
                self.login_failures += 1;
                let text = match e {
                    LoginError::LockedOut { .. } => {
                        "User cannot log in: too many failed attempts, try later."
                    }
                    LoginError::AnonymousDisabled => "User cannot log in: anonymous access is disabled.",
                    _ => "User cannot log in.",
                };
                self.send(ok(Code::NOT_LOGGED_IN, text)).await?;
                if self.login_failures >= self.settings.config.limits.max_login_failures {
                    self.send(ok(
                        Code::SERVICE_NOT_AVAILABLE,
                        "Too many failed logins, closing control connection.",
                    ))
                    .await?;
                    return Ok(Flow::Close);
                }
                return Ok(Flow::Continue);
            }
        };
        let storage = match open_home(&self.shared.backend, &self.settings.config.root, &user) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(user = %user.name, home = %user.home.display(), error = %e, "cannot open the home directory");
                self.auth = AuthState::Fresh;
                self.send(ok(
                    Code::NOT_LOGGED_IN,
                    "User cannot log in: home directory unavailable.",
                ))
                .await?;
                return Ok(Flow::Continue);
            }
        };
        // The login is good: it now needs a logged-in seat (the waiting one is given back).
        if let Err(refusal) = self.seat.log_in(&self.settings.config.limits) {
            tracing::warn!(user = %user.name, ?refusal, "login refused: no logged-in session free");
            let text = match refusal {
                admission::Refusal::Address => "Too many sessions from your address, try again later.",
                admission::Refusal::Full => "Too many users logged in, try again later.",
            };
            self.send(ok(Code::SERVICE_NOT_AVAILABLE, text)).await?;
            return Ok(Flow::Close);
        }
        let who = Who {
            peer: peer_ip,
            user: Some(user.name.clone()),
            anonymous: user.anonymous,
            fxp: user.fxp,
        };
        tracing::info!(user = %user.name, anonymous = user.anonymous, write = user.write, "logged in");
        let text = if user.anonymous {
            "Anonymous user logged in.".to_owned()
        } else {
            format!("User {} logged in.", user.name)
        };
        self.auth = AuthState::LoggedIn(Box::new(LoggedIn {
            user,
            who,
            storage,
            cwd: "/".into(),
        }));
        self.send(ok(Code::LOGGED_IN, text)).await?;
        Ok(Flow::Continue)
    }

    async fn quit(&mut self) -> Io {
        self.finish_transfer().await?;
        self.send(ok(Code::CLOSING, "Goodbye.")).await?;
        Ok(Flow::Close)
    }

    async fn abor(&mut self) -> Io {
        self.data = None;
        if let Some(running) = self.transfer.take() {
            running.transfer.abort().await;
            tracing::info!(command = running.verb, path = %running.path, "transfer aborted by the client");
            let text = match &running.upload {
                // The object upload is aborted before the reply says so.
                Some(upload) => {
                    upload.discard().await;
                    "Connection closed; transfer aborted; upload discarded, nothing stored."
                }
                None => "Connection closed; transfer aborted.",
            };
            self.send(ok(Code::CONNECTION_CLOSED, text)).await?;
        }
        self.send(ok(Code::TRANSFER_COMPLETE, "ABOR command successful."))
            .await?;
        Ok(Flow::Continue)
    }

    fn opts(&self, arg: OptsArg) -> Reply {
        match arg {
            // Names are UTF-8 either way (RFC 2640); the switch is acknowledged, not stored.
            OptsArg::Utf8(on) => ok(
                Code::OK,
                format!(
                    "OPTS UTF8 command successful - UTF8 encoding now {}.",
                    if on { "ON" } else { "OFF" }
                ),
            ),
            OptsArg::Mlst(_) => ok(Code::OK, "MLST OPTS type;size;modify;perm;unix.mode;"),
            OptsArg::Hash(name) => match name.as_deref() {
                None | Some("SHA-256") => ok(Code::OK, "SHA-256"),
                Some(_) => ok(
                    Code::PARAMETER_NOT_IMPLEMENTED,
                    "Unknown algorithm; SHA-256 is supported.",
                ),
            },
            OptsArg::Other(name) => ok(
                Code::PARAMETER_SYNTAX_ERROR,
                format!("Option {name} not understood."),
            ),
        }
    }

    /// STAT without argument (RFC 959 4.1.3): server and session status; during a transfer
    /// it names the command, the file and the bytes moved so far, otherwise it says
    /// `No data connection` (what the KB Q247132 procedure polls for).
    fn stat_server(&self) -> Reply {
        let mut lines = vec!["fxpd FTP server status:".to_owned()];
        lines.push(format!("Connected to {}", self.peer.ip()));
        match self.logged_in() {
            Some(l) => lines.push(format!("Logged in as {}", l.user.name)),
            None => lines.push("Not logged in".into()),
        }
        let ty = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        lines.push(format!("TYPE: {ty}; STRUcture: File; transfer MODE: Stream"));
        match &self.transfer {
            Some(t) => {
                let moved = t.transfer.moved();
                let of = t.size.map(|s| format!(" of {s}")).unwrap_or_default();
                lines.push(format!(
                    "Data connection open: {} {}, {moved}{of} bytes transferred",
                    t.verb, t.path
                ));
            }
            None => lines.push("No data connection".into()),
        }
        let fxp = self.shared.policy.config();
        lines.push(format!(
            "FXP: foreign PORT {}, foreign passive {}, privileged ports {}",
            if fxp.allow_foreign_port {
                "allowed"
            } else {
                "refused"
            },
            if fxp.allow_foreign_passive {
                "allowed"
            } else {
                "refused"
            },
            if fxp.allow_privileged_ports {
                "allowed"
            } else {
                "refused"
            },
        ));
        let stats = self.shared.policy.stats();
        let refused: Vec<String> = stats
            .refused
            .iter()
            .map(|(r, n)| format!("{}={n}", r.token()))
            .collect();
        lines.push(format!("Policy refusals: {}", refused.join(" ")));
        lines.push("End of status".into());
        Reply::multi(Code::SYSTEM_STATUS, lines)
    }

    /// `STAT path`: a listing over the control connection (RFC 959 4.1.3).
    async fn stat_path(&self, arg: &str) -> Reply {
        match self.entries(Some(arg)).await {
            Ok(entries) => {
                let body = listing::format_list(&entries, self.msdos(), SystemTime::now());
                let mut lines = vec![format!("Status of {}:", resolve(&self.login().cwd, arg))];
                lines.extend(String::from_utf8_lossy(&body).lines().map(str::to_owned));
                lines.push("End of status".into());
                Reply::multi(Code::FILE_STATUS, lines)
            }
            Err(reply) => reply,
        }
    }

    fn msdos(&self) -> bool {
        self.settings.config.listing_style == ListingStyle::Msdos
    }

    async fn cwd(&mut self, arg: &str) -> Reply {
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        let is_dir = match &login.storage {
            Storage::Local { fs, .. } => fs.metadata(&login.user, &target).await.map(|m| m.is_dir()).ok(),
            Storage::Object(o) => o.stat(&target).await.map(|m| m.is_dir()).ok(),
        };
        match is_dir {
            Some(true) => {
                if let AuthState::LoggedIn(l) = &mut self.auth {
                    l.cwd = target;
                }
                ok(Code::FILE_ACTION_OK, "CWD command successful.")
            }
            Some(false) => ok(Code::FILE_UNAVAILABLE, "The directory name is invalid."),
            None => ok(
                Code::FILE_UNAVAILABLE,
                "The system cannot find the file specified.",
            ),
        }
    }

    fn require_write(&self) -> Option<Reply> {
        (!self.login().user.write).then(|| ok(Code::FILE_UNAVAILABLE, "Access is denied: read-only account."))
    }

    async fn mkd(&mut self, arg: &str) -> Reply {
        if let Some(denied) = self.require_write() {
            return denied;
        }
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        let made = match &login.storage {
            Storage::Local { fs, .. } => fs.mkd(&login.user, &target).await.map_err(|e| storage_reply(&e)),
            Storage::Object(o) => o.mkd(&target).await.map_err(|e| object_reply(&e)),
        };
        match made {
            Ok(()) => ok(
                Code::PATH_CREATED,
                format!("{} directory created.", quote(&target)),
            ),
            Err(reply) => reply,
        }
    }

    /// DELE (a file) and RMD (an empty directory), answered with 250 on success.
    async fn remove(&mut self, verb: &str, arg: &str) -> Reply {
        if let Some(denied) = self.require_write() {
            return denied;
        }
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        let result = match &login.storage {
            Storage::Local { fs, .. } => if verb == "RMD" {
                fs.rmd(&login.user, &target).await
            } else {
                fs.del(&login.user, &target).await
            }
            .map_err(|e| storage_reply(&e)),
            Storage::Object(o) => if verb == "RMD" {
                o.rmd(&target).await
            } else {
                o.del(&target).await
            }
            .map_err(|e| object_reply(&e)),
        };
        match result {
            Ok(()) => {
                tracing::info!(command = verb, path = %target, "removed");
                ok(Code::FILE_ACTION_OK, format!("{verb} command successful."))
            }
            Err(reply) => reply,
        }
    }

    async fn rnfr(&mut self, arg: &str) -> Reply {
        if let Some(denied) = self.require_write() {
            return denied;
        }
        let from = resolve(&self.login().cwd, arg);
        let login = self.login();
        let found = match &login.storage {
            Storage::Local { fs, .. } => fs
                .metadata(&login.user, &from)
                .await
                .map(|_| ())
                .map_err(|e| storage_reply(&e)),
            Storage::Object(o) => o.stat(&from).await.map(|_| ()).map_err(|e| object_reply(&e)),
        };
        match found {
            Ok(()) => {
                self.rename_from = Some(from);
                ok(
                    Code::PENDING_FURTHER_INFO,
                    "Requested file action pending further information.",
                )
            }
            Err(reply) => reply,
        }
    }

    async fn rnto(&mut self, from: Option<String>, arg: &str) -> Reply {
        let Some(from) = from else {
            return ok(Code::BAD_SEQUENCE, "Bad sequence of commands: RNFR first.");
        };
        if let Some(denied) = self.require_write() {
            return denied;
        }
        let to = resolve(&self.login().cwd, arg);
        let login = self.login();
        let renamed = match &login.storage {
            Storage::Local { fs, .. } => fs
                .rename(&login.user, &from, &to)
                .await
                .map_err(|e| storage_reply(&e)),
            // Object storage has no rename: a server-side copy, then the original is deleted.
            Storage::Object(o) => o.rename(&from, &to).await.map_err(|e| object_reply(&e)),
        };
        match renamed {
            Ok(()) => {
                tracing::info!(from = %from, to = %to, "renamed");
                ok(Code::FILE_ACTION_OK, "RNTO command successful.")
            }
            Err(reply) => reply,
        }
    }

    /// The MLST entry of a path (named `/` for the home itself).
    async fn file_meta(&self, arg: &str) -> Result<(String, Entry), Reply> {
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        let name = if target == "/" { "/" } else { file_name(&target) };
        let entry = match &login.storage {
            Storage::Local { fs, .. } => {
                let meta = fs
                    .metadata(&login.user, &target)
                    .await
                    .map_err(|e| storage_reply(&e))?;
                let home = Home::of(&login.user);
                Entry::from_metadata(name, &meta, Some(&home.scope(&resolve(&target, ".."))))
            }
            Storage::Object(o) => {
                let meta = o.stat(&target).await.map_err(|e| object_reply(&e))?;
                Entry::from_metadata(name, &meta, None)
            }
        };
        Ok((target, entry))
    }

    /// The object store of this login, when files live in one.
    fn object_store(&self) -> Option<crate::storage::ObjectStore> {
        match &self.login().storage {
            Storage::Object(o) => Some(o.clone()),
            Storage::Local { .. } => None,
        }
    }

    /// The home directory handle of a file-system login.
    fn local_dir(&self) -> std::io::Result<&cap_std::fs::Dir> {
        match &self.login().storage {
            Storage::Local { dir, .. } => Ok(dir),
            Storage::Object(_) => Err(std::io::Error::other("not a file-system login")),
        }
    }

    /// Metadata straight from the home directory handle (a stat on this thread: no hop to
    /// the blocking pool for what costs microseconds). Follows symlinks inside the home.
    fn stat(&self, arg: &str) -> Result<(String, cap_std::fs::Metadata), Reply> {
        let target = resolve(&self.login().cwd, arg);
        let meta = self
            .local_dir()
            .and_then(|dir| dir.metadata(relative(&target)))
            .map_err(|e| storage_reply(&e.into()))?;
        Ok((target, meta))
    }

    async fn size(&self, arg: &str) -> Reply {
        if let Some(o) = self.object_store() {
            return match o.stat(&resolve(&self.login().cwd, arg)).await {
                Ok(m) if m.is_file() => ok(Code::FILE_STATUS, m.len().to_string()),
                Ok(_) => ok(Code::FILE_UNAVAILABLE, "Not a plain file."),
                Err(e) => object_reply(&e),
            };
        }
        match self.stat(arg) {
            Ok((_, m)) if m.is_file() => ok(Code::FILE_STATUS, m.len().to_string()),
            Ok(_) => ok(Code::FILE_UNAVAILABLE, "Not a plain file."),
            Err(r) => r,
        }
    }

    async fn mdtm(&self, arg: &str) -> Reply {
        if let Some(o) = self.object_store() {
            return match o.stat(&resolve(&self.login().cwd, arg)).await {
                Ok(m) => match m.modified() {
                    Ok(t) => ok(
                        Code::FILE_STATUS,
                        chrono::DateTime::<chrono::Utc>::from(t)
                            .format("%Y%m%d%H%M%S")
                            .to_string(),
                    ),
                    Err(e) => storage_reply(&e),
                },
                Err(e) => object_reply(&e),
            };
        }
        match self.stat(arg) {
            Ok((_, m)) => match m.modified().map(cap_std::time::SystemTime::into_std) {
                Ok(t) => ok(
                    Code::FILE_STATUS,
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .format("%Y%m%d%H%M%S")
                        .to_string(),
                ),
                Err(e) => storage_reply(&e.into()),
            },
            Err(r) => r,
        }
    }

    async fn mlst(&self, arg: Option<&str>) -> Reply {
        let arg = arg.unwrap_or(".");
        match self.file_meta(arg).await {
            Ok((target, entry)) => {
                if !listing::is_safe_name(&entry.name) {
                    return ok(Code::FILE_UNAVAILABLE, "File name cannot be shown.");
                }
                let is_dir = entry.kind == listing::Kind::Dir;
                let facts = listing::mlsx_facts(&entry, self.login().user.write, is_dir && arg == ".");
                Reply::multi(
                    Code::FILE_ACTION_OK,
                    vec![format!("Listing {target}"), facts, "End".into()],
                )
            }
            Err(r) => r,
        }
    }

    /// HASH (draft-bryan-ftp-hash): the SHA-256 of a whole file, computed on a blocking
    /// thread. Reply: `213 SHA-256 0-<size> <hex> <path>`.
    async fn hash(&self, arg: &str) -> Reply {
        if let Some(o) = self.object_store() {
            // Object storage: the object is streamed through the hash (bounded memory).
            let target = resolve(&self.login().cwd, arg);
            return match o.sha256(&target).await {
                Ok((hex, size)) => ok(Code::FILE_STATUS, format!("SHA-256 0-{size} {hex} {target}")),
                Err(e) => object_reply(&e),
            };
        }
        let (target, meta) = match self.stat(arg) {
            Ok(found) if found.1.is_file() => found,
            Ok(_) => return ok(Code::FILE_UNAVAILABLE, "Not a plain file."),
            Err(r) => return r,
        };
        let mut file = match self.open_for_read(&target) {
            Ok(f) => f,
            Err(e) => return storage_reply(&e.into()),
        };
        let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            std::io::copy(&mut file, &mut hasher)?;
            Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .await;
        match digest {
            Ok(Ok(hex)) => ok(
                Code::FILE_STATUS,
                format!("SHA-256 0-{} {hex} {target}", meta.len()),
            ),
            Ok(Err(e)) => storage_reply(&e.into()),
            Err(_) => ok(Code::LOCAL_ERROR, "Local error in processing."),
        }
    }

    /// Every command that sets up a data connection (PORT, EPRT, PASV, EPSV, CPSV) goes through
    /// here: the previous plan is dropped, the one gate is passed, and only its grant makes the
    /// new plan.
    async fn set_up_data(&mut self, setup: DataSetup) -> Reply {
        // A new setup command replaces the previous plan whatever its outcome; a refused one
        // leaves none (and a dropped passive listener stops accepting).
        self.data = None;
        self.cpsv_once = false;
        let grant = match self.data_gate(setup).await {
            Ok(grant) => grant,
            Err(refusal) => return refused(&refusal),
        };
        match grant {
            Grant::Active(approved) => {
                self.data = Some(Plan::Active(approved));
                ok(Code::OK, format!("{} command successful.", setup.verb()))
            }
            Grant::Passive(grant) => {
                let reply = self.passive(setup, grant).await;
                self.cpsv_once = setup == DataSetup::Cpsv && self.data.is_some();
                reply
            }
        }
    }

    /// The one gate for data-setup commands: a ban another node of the cluster set on this
    /// client reaches the policy first, then the policy decides (`EPSV ALL`, bans, the address
    /// table for PORT/EPRT).
    async fn data_gate(&self, setup: DataSetup) -> Result<Grant, Refusal> {
        self.shared
            .cluster
            .import_ban(&self.shared.policy, self.peer.ip())
            .await;
        let who = &self.login().who;
        // SECURITY: the one check point for every data-setup command, before anything is bound
        // or connected.
        self.shared.policy.approve_setup(who, setup, self.epsv_all)
    }

    /// EPSV (RFC 2428 section 3): `EPSV ALL` restricts the session to EPSV from now on; any
    /// other form sets up a passive listener for its address family.
    async fn epsv(&mut self, arg: EpsvArg) -> Reply {
        let local_is_v4 = local_v4(self.local.ip()).is_some();
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.data = None;
                ok(Code::OK, "EPSV ALL command successful.")
            }
            EpsvArg::V4 if !local_is_v4 => ok(
                Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (2)",
            ),
            EpsvArg::V6 if local_is_v4 => ok(
                Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1)",
            ),
            _ => self.set_up_data(DataSetup::Epsv).await,
        }
    }

    /// PASV/CPSV (227) or EPSV (229) after the gate: bind a listener on the control
    /// connection's local address.
    async fn passive(&mut self, setup: DataSetup, grant: PassiveGrant) -> Reply {
        // PASV and CPSV announce an IPv4 address (RFC 959); EPSV only the port.
        let announce = match (self.settings.config.passive.address, local_v4(self.local.ip())) {
            _ if setup == DataSetup::Epsv => None,
            (Some(IpAddr::V4(a)), _) | (None, Some(a)) => Some(a),
            _ => {
                return ok(
                    Code::PARAMETER_SYNTAX_ERROR,
                    format!("{} is IPv4 only; use EPSV on an IPv6 connection.", setup.verb()),
                )
            }
        };
        let port = match self.bind_passive(grant).await {
            Ok(port) => port,
            Err(reply) => return reply,
        };
        match announce {
            Some(a) => {
                let [a, b, c, d] = a.octets();
                let [p1, p2] = port.to_be_bytes();
                ok(
                    Code::PASSIVE,
                    format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2})."),
                )
            }
            None => ok(
                Code::EXTENDED_PASSIVE,
                format!("Entering Extended Passive Mode (|||{port}|)."),
            ),
        }
    }

    /// Bind a passive listener on the control connection's local address; it accepts (and
    /// screens) from now on.
    async fn bind_passive(&mut self, grant: PassiveGrant) -> Result<u16, Reply> {
        let ip = match local_v4(self.local.ip()) {
            Some(v4) => IpAddr::V4(v4),
            None => self.local.ip(),
        };
        let range = self.settings.config.passive.ports;
        match PassiveListener::bind(ip, range, grant, self.shared.policy.clone()).await {
            Ok(listener) => {
                let port = listener.local_addr().port();
                self.data = Some(Plan::Passive(listener));
                Ok(port)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot bind a passive port");
                Err(ok(
                    Code::CANT_OPEN_DATA,
                    "Can't open passive connection: no free port.",
                ))
            }
        }
    }

    async fn retr(&mut self, arg: &str, offset: u64) -> std::io::Result<()> {
        if let Some(o) = self.object_store() {
            return self.retr_object(o, arg, offset).await;
        }
        let target = resolve(&self.login().cwd, arg);
        // Open, then look at what was opened (no window between a check and the open).
        let opened = self
            .open_for_read(&target)
            .and_then(|f| f.metadata().map(|m| (f, m)));
        let (mut file, meta) = match opened {
            Ok((file, meta)) if meta.is_file() => (file, meta),
            Ok(_) => return self.send(ok(Code::FILE_UNAVAILABLE, "Not a plain file.")).await,
            Err(e) => return self.send(storage_reply(&e.into())).await,
        };
        let size = meta.len();
        if offset > size {
            return self.send(restart_beyond_end(offset, size)).await;
        }
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            return self.send(storage_reply(&e.into())).await;
        }
        if let Some(refusal) = self.transfer_precheck() {
            return self.send(refusal).await;
        }
        let job = Job::SendFile {
            file,
            left: size.saturating_sub(offset),
        };
        let preliminary = self.retr_opening(&target, size);
        // One info line per transfer, when it ends ("transfer complete" or why not).
        tracing::debug!(path = %target, size, offset, "RETR");
        self.start_transfer("RETR", target, Some(size), preliminary, job)
            .await
    }

    /// The 150 before a download, with the size as IIS words it.
    fn retr_opening(&self, target: &str, size: u64) -> Reply {
        ok(
            Code::OPENING,
            format!(
                "Opening {} mode data connection for {}({size} bytes).",
                self.mode_name(),
                file_name(target)
            ),
        )
    }

    /// RETR from object storage: a ranged read from `offset` (REST), copied asynchronously.
    async fn retr_object(
        &mut self,
        o: crate::storage::ObjectStore,
        arg: &str,
        offset: u64,
    ) -> std::io::Result<()> {
        let target = resolve(&self.login().cwd, arg);
        let (reader, size) = match o.open_read(&target, offset).await {
            Ok(opened) => opened,
            Err(e) => return self.send(object_reply(&e)).await,
        };
        if offset > size {
            return self.send(restart_beyond_end(offset, size)).await;
        }
        if let Some(refusal) = self.transfer_precheck() {
            return self.send(refusal).await;
        }
        let preliminary = self.retr_opening(&target, size);
        tracing::debug!(path = %target, size, offset, "RETR");
        self.start_transfer(
            "RETR",
            target,
            Some(size),
            preliminary,
            Job::SendObject(Box::new(reader)),
        )
        .await
    }

    /// STOR/APPE to object storage. Objects are written whole: APPE and REST+STOR cannot
    /// change an existing object and are refused before any data connection is used.
    async fn stor_object(
        &mut self,
        o: crate::storage::ObjectStore,
        arg: &str,
        offset: u64,
        append: bool,
    ) -> std::io::Result<()> {
        if append {
            return self
                .send(ok(
                    Code::FILE_UNAVAILABLE,
                    "APPE is not possible on object storage (objects cannot be appended to); upload the whole file with STOR.",
                ))
                .await;
        }
        if offset > 0 {
            return self
                .send(ok(
                    Code::FILE_UNAVAILABLE,
                    "REST with STOR is not possible on object storage (uploads cannot be resumed); upload the whole file again.",
                ))
                .await;
        }
        let target = resolve(&self.login().cwd, arg);
        let upload = match o.create(&target).await {
            Ok(upload) => upload,
            Err(e) => return self.send(object_reply(&e)).await,
        };
        let preliminary = self.stor_opening(&target);
        tracing::debug!(command = "STOR", path = %target, "upload");
        self.start_transfer("STOR", target, None, preliminary, Job::ReceiveObject(upload))
            .await
    }

    /// The 150 before an upload, as IIS words it.
    fn stor_opening(&self, target: &str) -> Reply {
        ok(
            Code::OPENING,
            format!(
                "Opening {} mode data connection for {}.",
                self.mode_name(),
                file_name(target)
            ),
        )
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    async fn stor(&mut self, arg: &str, offset: u64, append: bool) -> std::io::Result<()> {
        if let Some(denied) = self.require_write() {
            return self.send(denied).await;
        }
        if let Some(refusal) = self.transfer_precheck() {
            return self.send(refusal).await;
        }
        if let Some(o) = self.object_store() {
            return self.stor_object(o, arg, offset, append).await;
        }
        let target = resolve(&self.login().cwd, arg);
        let offset = if append {
            match self.stat(arg) {
                Ok((_, m)) if m.is_file() => m.len(),
                Ok(_) => return self.send(ok(Code::FILE_UNAVAILABLE, "Not a plain file.")).await,
                Err(_) => 0,
            }
        } else {
            offset
        };
        let verb = if append { "APPE" } else { "STOR" };
        let job = match self.receive_job(&target, offset).await {
            Ok(job) => job,
            Err(reply) => return self.send(reply).await,
        };
        let preliminary = self.stor_opening(&target);
        tracing::debug!(command = verb, path = %target, offset, "upload");
        self.start_transfer(verb, target, None, preliminary, job).await
    }

    async fn stou(&mut self) -> std::io::Result<()> {
        if let Some(denied) = self.require_write() {
            return self.send(denied).await;
        }
        if let Some(refusal) = self.transfer_precheck() {
            return self.send(refusal).await;
        }
        let object = self.object_store();
        let mut name = String::new();
        for _ in 0..16 {
            let candidate = format!("fxpd-{:016x}", random_u64());
            let taken = match &object {
                Some(o) => o.stat(&resolve(&self.login().cwd, &candidate)).await.is_ok(),
                None => self.stat(&candidate).is_ok(),
            };
            if !taken {
                name = candidate;
                break;
            }
        }
        if name.is_empty() {
            return self
                .send(ok(Code::LOCAL_ERROR, "Could not find a unique file name."))
                .await;
        }
        let target = resolve(&self.login().cwd, &name);
        let job = match &object {
            Some(o) => o
                .create(&target)
                .await
                .map(Job::ReceiveObject)
                .map_err(|e| object_reply(&e)),
            None => self.receive_job(&target, 0).await,
        };
        let job = match job {
            Ok(job) => job,
            Err(reply) => return self.send(reply).await,
        };
        let preliminary = ok(Code::OPENING, format!("FILE: {name}"));
        self.start_transfer("STOU", target, None, preliminary, job).await
    }

    /// Open a file in the home directory for reading (a download seeks to its REST offset
    /// once the offset is checked against the size).
    fn open_for_read(&self, target: &str) -> std::io::Result<std::fs::File> {
        Ok(self.local_dir()?.open(relative(target))?.into_std())
    }

    /// The upload job: the file is opened (created) now, before the 150 reply, so a refusal
    /// comes before any data. It keeps its first `offset` bytes (REST, APPE).
    async fn receive_job(&self, target: &str, offset: u64) -> Result<Job, Reply> {
        let io = |e: std::io::Error| storage_reply(&e.into());
        let mut options = cap_std::fs::OpenOptions::new();
        // SECURITY: a restart offset past the end would leave a hole, a sparse file of any
        // size (REST 1099511627776 made 1 TiB). Only an existing file at least `offset` bytes
        // long is resumed: it is opened without `create` and measured on the opened handle,
        // so a refusal creates, truncates and changes nothing.
        options.write(true).create(offset == 0);
        let opened = self
            .local_dir()
            .and_then(|dir| dir.open_with(relative(target), &options));
        let mut file = match opened {
            Ok(file) => file.into_std(),
            Err(e) if offset > 0 && e.kind() == std::io::ErrorKind::NotFound => {
                return Err(restart_beyond_end(offset, 0))
            }
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        if offset > len {
            return Err(restart_beyond_end(offset, len));
        }
        if len > offset + BIG_TRUNCATE {
            // Freeing gigabytes of an overwritten file can take a while: not on this task,
            // which other sessions share a thread with.
            file = tokio::task::spawn_blocking(move || file.set_len(offset).map(|()| file))
                .await
                .map_err(|_| std::io::Error::other("truncating thread failed"))
                .and_then(|truncated| truncated)
                .map_err(io)?;
        } else if len != offset {
            file.set_len(offset).map_err(io)?;
        }
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Job::ReceiveFile(file))
    }

    /// Directory entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name,
    /// or the single entry when the path names a file.
    async fn entries(&self, arg: Option<&str>) -> Result<Vec<Entry>, Reply> {
        let target = resolve(&self.login().cwd, arg.unwrap_or("."));
        let login = self.login();
        let fs = match &login.storage {
            Storage::Local { fs, .. } => fs,
            Storage::Object(o) => return o.entries(&target).await.map_err(|e| object_reply(&e)),
        };
        let meta = fs
            .metadata(&login.user, &target)
            .await
            .map_err(|e| storage_reply(&e))?;
        let home = Home::of(&login.user);
        if !meta.is_dir() {
            let parent = resolve(&target, "..");
            let scope = home.scope(&parent);
            return Ok(vec![Entry::from_metadata(
                file_name(&target),
                &meta,
                Some(&scope),
            )]);
        }
        let list = fs
            .list(&login.user, &target)
            .await
            .map_err(|e| storage_reply(&e))?;
        let scope = home.scope(&target);
        let mut entries: Vec<Entry> = list
            .iter()
            .filter_map(|item| Entry::from_fileinfo(item, Some(&scope)))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    async fn list(&mut self, verb: &'static str, arg: Option<&str>) -> std::io::Result<()> {
        if let Some(refusal) = self.transfer_precheck() {
            return self.send(refusal).await;
        }
        let entries = match self.entries(arg).await {
            Ok(e) => e,
            Err(r) => return self.send(r).await,
        };
        let body = match verb {
            "NLST" => listing::format_nlst(&entries),
            "MLSD" => listing::format_mlsd(&entries, self.login().user.write),
            _ => listing::format_list(&entries, self.msdos(), SystemTime::now()),
        };
        let path = resolve(&self.login().cwd, arg.unwrap_or("."));
        let preliminary = ok(Code::OPENING, "Opening ASCII mode data connection for file list.");
        let size = Some(body.len() as u64);
        self.start_transfer(verb, path, size, preliminary, Job::Listing(body))
            .await
    }
}

/// Cutting more than this off an existing file (STOR over a large file) happens on a
/// blocking thread.
const BIG_TRUNCATE: u64 = 16 * 1024 * 1024;

/// REST past the end of the file (RFC 3659 section 5 suggests 554 for an invalid restart
/// point): refused before anything is opened for writing, created or sent.
fn restart_beyond_end(offset: u64, size: u64) -> Reply {
    Reply::new(
        Code::INVALID_RESTART,
        format!("Restart offset {offset} is beyond the end of the file (size {size})."),
    )
}

/// A refusal as a reply: RFC 2577 suggests 504 for a refused PORT; the text carries the
/// reason token and the setting that would allow it.
fn refused(refusal: &Refusal) -> Reply {
    Reply::new(Code::PARAMETER_NOT_IMPLEMENTED, refusal.reply_text())
}

/// The user's home. On the file system, twice: as the storage back-end (metadata, listings,
/// names), confined to the home with cap-std (a home that is the root itself needs no
/// narrowing), and as a cap-std directory handle for file contents. On object storage: the
/// key prefix of the home.
fn open_home(
    backend: &Backend,
    root: &std::path::Path,
    user: &crate::auth::FtpUser,
) -> std::io::Result<Storage> {
    if let Backend::Object(store) = backend {
        return Ok(Storage::Object(store.for_home(root, &user.home)?));
    }
    let mut fs = Filesystem::new(root)?;
    if user.home != root {
        StorageBackend::enter(&mut fs, user)?;
    }
    let dir = cap_std::fs::Dir::open_ambient_dir(&user.home, cap_std::ambient_authority())?;
    Ok(Storage::Local {
        fs: Arc::new(fs),
        dir: Arc::new(dir),
    })
}

/// A file-system home on disk, as symlink targets in listings are checked against it.
struct Home<'a> {
    home: &'a std::path::Path,
    /// The home with symlinks resolved, when that is another path.
    real: Option<std::path::PathBuf>,
}

impl<'a> Home<'a> {
    fn of(user: &'a crate::auth::FtpUser) -> Home<'a> {
        let real = std::fs::canonicalize(&user.home)
            .ok()
            .filter(|real| *real != user.home);
        Home {
            home: &user.home,
            real,
        }
    }

    /// The scope of entries in the virtual directory `dir`.
    fn scope<'s>(&'s self, dir: &'s str) -> listing::LinkScope<'s> {
        listing::LinkScope {
            home: self.home,
            real_home: self.real.as_deref(),
            dir,
        }
    }
}

/// A virtual path as a path relative to the home directory handle.
fn relative(target: &str) -> &str {
    match target.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    }
}

/// The IPv4 address of a local address, also when it is IPv4-mapped on a dual-stack socket.
fn local_v4(ip: IpAddr) -> Option<std::net::Ipv4Addr> {
    match normalize(ip) {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

fn feat(tls: bool) -> Reply {
    let mut lines = vec!["Extensions supported:".to_owned()];
    if tls {
        for f in ["AUTH TLS", "CCC", "CPSV", "PBSZ", "PROT", "SSCN"] {
            lines.push(f.to_owned());
        }
    }
    for f in [
        "EPRT",
        "EPSV",
        "HASH SHA-256*",
        "MDTM",
        listing::MLST_FEAT,
        "PASV",
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    ] {
        lines.push(f.to_owned());
    }
    lines.push("End".into());
    Reply::multi(Code::SYSTEM_STATUS, lines)
}

fn help() -> Reply {
    let mut lines = vec!["The following commands are recognized:".to_owned()];
    for chunk in VERBS.chunks(8) {
        lines.push(
            chunk
                .iter()
                .map(|v| format!("{v:<6}"))
                .collect::<String>()
                .trim_end()
                .to_owned(),
        );
    }
    lines.push("Help OK.".into());
    Reply::multi(Code::HELP, lines)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_ne_bytes(b)
}

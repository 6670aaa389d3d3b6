//! Logging in and out: USER, PASS and QUIT (RFC 959 4.1.1), with the TLS requirements on
//! logins (`tls.require`, the users file's `require_tls`) and the logged-in seat.

use super::answer::{say, Answer, Failure, Handled, Then};
use super::{AuthState, LoggedIn, Session};
use crate::auth::LoginError;
use crate::control::reply::{Code, Reply};
use crate::policy::{normalize, Who};
use crate::server::metrics::LoginResult;
use crate::tls::TlsRequire;

impl Session {
    pub(super) fn user(&mut self, name: String) -> Handled {
        if self.logged_in().is_some() {
            return say(Code::BAD_SEQUENCE, "Already logged in.");
        }
        let anonymous = self.settings.login.is_anonymous_name(&name);
        self.tls_required_for_login(anonymous)?;
        let text = if anonymous {
            "Anonymous access allowed, send identity (e-mail name) as password.".to_owned()
        } else {
            format!("Password required for {name}.")
        };
        self.auth = AuthState::UserGiven(name);
        say(Code::NEED_PASSWORD, text)
    }

    /// `tls.require = login|all`: USER/PASS only on a protected control connection
    /// (anonymous may be exempt).
    fn tls_required_for_login(&self, anonymous: bool) -> Result<(), Failure> {
        let tls = &self.settings.config.tls;
        let exempt = anonymous && tls.anonymous_exempt;
        if tls.require != TlsRequire::None && !exempt && !self.conn.get_ref().is_tls() {
            return Err(Failure::TlsRequiredForLogin);
        }
        Ok(())
    }

    pub(super) async fn pass(&mut self, password: String) -> Handled {
        let name = match &self.auth {
            AuthState::UserGiven(name) => name.clone(),
            AuthState::LoggedIn(_) => return say(Code::BAD_SEQUENCE, "Already logged in."),
            AuthState::Fresh => return say(Code::BAD_SEQUENCE, "Login with USER first."),
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
                return Err(Failure::TlsRequiredForLogin);
            }
            Ok(user) => user,
            Err(e) => {
                let result = match e {
                    LoginError::LockedOut { .. } => LoginResult::LockedOut,
                    _ => LoginResult::Failed,
                };
                self.shared.metrics.login(result);
                return Ok(self.login_failed(e));
            }
        };
        // The account's `max_sessions` (anonymous sessions share one count).
        let account = self.settings.login.account(&user, peer_ip);
        let max_sessions = account.limits.max_sessions;
        let Some(user_seat) = self.shared.user_sessions.take(&user.name, max_sessions) else {
            self.auth = AuthState::Fresh;
            tracing::info!(target: "fxpd::security", user = %user.name, max_sessions = ?max_sessions, "login refused: the account has its most sessions open");
            return Err(Failure::TooManySessions);
        };
        let home = match self
            .shared
            .backend
            .open_home(&self.settings.config.root, &user, &account.folders)
        {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(user = %user.name, home = %user.home.display(), error = %e, "cannot open the home directory");
                self.auth = AuthState::Fresh;
                return Err(Failure::HomeUnavailable);
            }
        };
        // The login is good: it now needs a logged-in seat (the waiting one is given back).
        if let Err(refusal) = self.seat.log_in(&self.settings.config.limits) {
            tracing::warn!(user = %user.name, ?refusal, "login refused: no logged-in session free");
            return Err(Failure::NoSeat(refusal));
        }
        let who = Who {
            peer: peer_ip,
            user: Some(user.name.as_str().into()),
            anonymous: user.anonymous,
            fxp: user.fxp,
        };
        tracing::info!(user = %user.name, anonymous = user.anonymous, write = user.write, "logged in");
        self.shared.metrics.login(LoginResult::Ok);
        let text = if user.anonymous {
            "Anonymous user logged in.".to_owned()
        } else {
            format!("User {} logged in.", user.name)
        };
        self.auth = AuthState::LoggedIn(Box::new(LoggedIn {
            user,
            who,
            home,
            cwd: "/".into(),
            user_seat,
            mounted_with: None,
        }));
        // A new identity: nothing looked up for the login before may stand for it.
        self.account_now = std::sync::OnceLock::new();
        say(Code::LOGGED_IN, text)
    }

    /// A failed login: 530, and after `limits.max_login_failures` of them on this connection
    /// a 421 that closes it.
    fn login_failed(&mut self, e: LoginError) -> Answer {
        self.auth = AuthState::Fresh;
        self.login_failures += 1;
        let answer = Answer::from(Failure::Login(e));
        if self.login_failures < self.settings.login.max_failures() {
            return answer;
        }
        answer
            .and(Reply::new(
                Code::SERVICE_NOT_AVAILABLE,
                "Too many failed logins, closing control connection.",
            ))
            .then(Then::Close)
    }

    /// QUIT. A running transfer has ended (and been answered) before this: QUIT waits for it
    /// like any command other than STAT, ABOR and NOOP.
    pub(super) fn quit(&self) -> Handled {
        Ok(Answer::new(Reply::new(Code::CLOSING, "Goodbye.")).then(Then::Close))
    }
}

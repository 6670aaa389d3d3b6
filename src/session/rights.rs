//! The session's side of per-path rights: every file-touching handler calls [`Session::may`]
//! on the resolved virtual path before it acts. The account's rights are looked up in the
//! settings in force for each command, so a reload changes them for open sessions too.

use super::answer::Failure;
use super::Session;
use crate::addr::normalize;
use crate::auth::Account;
use crate::rights::Right;
use std::sync::Arc;

impl Session {
    /// The logged-in account's rights and limits now.
    pub(super) fn account(&self) -> Arc<Account> {
        self.settings
            .login
            .account(&self.login().user, normalize(self.peer.ip()))
    }

    /// The one rights check: may this session do `right` on `path` (resolved)? A refusal is
    /// logged and becomes the reply that names the right and the rule's path.
    pub(super) fn may(&self, path: &str, right: Right) -> Result<(), Failure> {
        self.account().rights.decide(path, right).map_err(|denied| {
            tracing::info!(target: "fxpd::security", user = %self.login().user.name, path, right = right.name(), reason = %denied, "refused by the rights");
            Failure::Denied(denied)
        })
    }

    /// CWD: `list` or `upload` (a drop box can be entered, not listed); a refusal names
    /// the missing `list`.
    pub(super) fn may_enter(&self, path: &str) -> Result<(), Failure> {
        let rights = &self.account().rights;
        if rights.decide(path, Right::Upload).is_ok() {
            return Ok(());
        }
        self.may(path, Right::List)
    }

    /// RNTO's target name against the denied upload patterns (a rename must not turn
    /// `a.txt` into `a.exe`).
    pub(super) fn may_name(&self, path: &str) -> Result<(), Failure> {
        self.account().rights.check_name(path).map_err(Failure::Denied)
    }
}

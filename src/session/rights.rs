//! The session's side of per-path rights: every file-touching handler calls [`Session::may`]
//! on the resolved virtual path before it acts. The account's rights are looked up in the
//! settings in force for each command, so a reload changes them for open sessions too.

use super::answer::Failure;
use super::{AuthState, Session};
use crate::addr::normalize;
use crate::auth::Account;
use crate::listing::Kind;
use crate::rights::links::Link;
use crate::rights::{Denied, Right, Rights};
use std::path::Path;
use std::sync::Arc;

impl Session {
    /// The logged-in account's rights and limits for the command being handled (looked up
    /// in the settings in force once per command).
    pub(super) fn account(&self) -> Arc<Account> {
        Arc::clone(self.account_now.get_or_init(|| {
            self.settings
                .login
                .account(&self.login().user, normalize(self.peer.ip()))
        }))
    }

    /// Before each command that no transfer runs under: mount the account's folders as they
    /// are after the last reload (a reload may have added, changed or removed some; nothing
    /// happens when they are the same). Between reloads there is nothing to look up.
    pub(super) fn remount_folders(&mut self) {
        let Some(l) = self.logged_in() else {
            return;
        };
        if l.mounted_with
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &self.settings))
        {
            return;
        }
        let account = self.account();
        let (shared, settings) = (Arc::clone(&self.shared), Arc::clone(&self.settings));
        if let AuthState::LoggedIn(l) = &mut self.auth {
            l.home.remount(&shared.backend, &l.user, &account.folders);
            l.mounted_with = Some(settings);
        }
    }

    /// The one rights check: may this session do `right` on `path` (resolved)? Judged on the
    /// path as named and on the path the file system reaches through symbolic links. A
    /// refusal is logged and becomes the reply that names the right and the rule's path.
    pub(super) fn may(&self, path: &str, right: Right) -> Result<(), Failure> {
        self.decide(&self.account().rights, path, right)
            .map_err(|denied| self.refused(path, right, denied))
    }

    /// [`Session::may`] for a command that then opens or stats `path` confined to its tree
    /// (RETR, STOR, APPE, SIZE, MDTM: openat2 with `RESOLVE_BENEATH` on Linux, cap-std
    /// elsewhere). When `right`
    /// is decided the same on every path ([`Rights::same_everywhere`]), the path a link
    /// reaches is judged like the path named, so the links are not read: the confined open
    /// reaches nothing outside the home, and a link that leads out, or loops, fails the open.
    /// A failed open is answered through [`Session::may`] again ([`Session::refused_open`]),
    /// so such a link is still answered as missing.
    pub(super) fn may_open(&self, path: &str, right: Right) -> Result<(), Failure> {
        let account = self.account();
        if !account.rights.same_everywhere(right) {
            return self.may(path, right);
        }
        account
            .rights
            .decide(path, right)
            .map_err(|denied| self.refused(path, right, denied))
    }

    /// The reply to an open that failed after [`Session::may_open`]: the rights' refusal with
    /// the links read (a link out of the home or a loop is answered as missing), else the
    /// storage's error.
    pub(super) fn refused_open(&self, path: &str, right: Right, error: crate::storage::Error) -> Failure {
        match self.may(path, right) {
            Err(refusal) => refusal,
            Ok(()) => Failure::from(error),
        }
    }

    /// Log a refusal by the rights and make it the reply's failure.
    fn refused(&self, path: &str, right: Right, denied: Denied) -> Failure {
        tracing::info!(target: "fxpd::security", user = %self.login().user.name, path, right = right.name(), reason = %denied, "refused by the rights");
        Failure::Denied(denied)
    }

    /// [`Rights::decide_reached`] for a path in the home directory on the file system (the
    /// links on the way are read from it); elsewhere (a virtual folder, object storage) the
    /// path as named.
    fn decide(&self, rights: &Rights, path: &str, right: Right) -> Result<(), Denied> {
        if self.home().in_home_directory(path) {
            let home = &self.login().user.home;
            // One buffer for the real path of every component the walk asks about.
            let mut real = std::ffi::OsString::with_capacity(home.as_os_str().len() + path.len() + 1);
            rights.decide_reached(path, right, |p| read_link(home, p, &mut real))
        } else {
            rights.decide(path, right)
        }
    }

    /// CWD: `list` or `upload` (a drop box can be entered, not listed); a refusal names
    /// the missing `list`.
    pub(super) fn may_enter(&self, path: &str) -> Result<(), Failure> {
        if self.decide(&self.account().rights, path, Right::Upload).is_ok() {
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

/// What the file system holds at the virtual `path` of the home directory `home`, as far as
/// links go (the parents of `path` are no links: [`crate::rights::links::reached`] asks in
/// order). An absolute target counts as inside only when it names the home (as configured,
/// or with its own links resolved). `real` is scratch space for the path on the system.
fn read_link(home: &Path, path: &str, real: &mut std::ffi::OsString) -> Link {
    real.clear();
    real.push(home.as_os_str());
    real.push(std::path::MAIN_SEPARATOR_STR);
    real.push(path.trim_start_matches('/'));
    let Ok(target) = std::fs::read_link(Path::new(real.as_os_str())) else {
        return Link::NotALink;
    };
    if !target.has_root() {
        return target
            .to_str()
            .map_or(Link::Outside, |t| Link::Target(t.to_owned()));
    }
    let homes = [Some(home.to_path_buf()), std::fs::canonicalize(home).ok()];
    for h in homes.into_iter().flatten() {
        if let Ok(rest) = target.strip_prefix(&h) {
            return rest
                .to_str()
                .map_or(Link::Outside, |rest| Link::Target(format!("/{rest}")));
        }
    }
    Link::Outside
}

/// The RFC 3659 `perm` fact of an entry at `path` (section 7.5.5), from the rights: what
/// MLSD and MLST tell a client it may do there. A virtual folder's `mount_point` is never
/// removed or renamed, whatever the rights say: no `d` or `f`.
pub(super) fn perm_fact(rights: &Rights, path: &str, kind: Kind, mount_point: bool) -> String {
    let may = |right| rights.decide(path, right).is_ok();
    let letters: &[(char, &[Right])] = match kind {
        Kind::File | Kind::Symlink => &[
            ('r', &[Right::Download]),
            ('a', &[Right::Append]),
            ('d', &[Right::Delete]),
            ('f', &[Right::Rename]),
            ('w', &[Right::Overwrite]),
        ],
        Kind::Dir => &[
            ('e', &[Right::List, Right::Upload]),
            ('l', &[Right::List]),
            ('c', &[Right::Upload]),
            ('d', &[Right::Rmdir]),
            ('f', &[Right::Rename]),
            ('m', &[Right::Mkdir]),
            ('p', &[Right::Delete]),
        ],
    };
    let symlink = kind == Kind::Symlink;
    letters
        .iter()
        // A link is read, deleted or renamed; it is not appended to or overwritten as such.
        .filter(|(c, _)| !(symlink && matches!(c, 'a' | 'w')))
        .filter(|(c, _)| !(mount_point && matches!(c, 'd' | 'f')))
        .filter(|(_, rights)| rights.iter().any(|r| may(*r)))
        .map(|(c, _)| *c)
        .collect()
}

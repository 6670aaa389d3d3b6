//! Files and directories: PWD, CWD, CDUP, MKD, RMD, DELE, RNFR, RNTO (RFC 959 4.1), SIZE,
//! MDTM, MLST (RFC 3659), HASH (draft-bryan-ftp-hash), and the directory reading that LIST,
//! NLST, MLSD and STAT share. Paths are resolved against the working directory here; the
//! storage back-end confines them to the home.

use super::answer::{say, Failure, Handled};
use super::path::{file_name, quote, resolve};
use super::{AuthState, Session};
use crate::control::reply::{Code, Reply};
use crate::listing::{self, Entry};
use crate::rights::Right;
use crate::storage::{FileStat, Home};

/// What DELE and RMD remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removal {
    /// DELE: a file.
    File,
    /// RMD: an empty directory.
    Directory,
}

impl Removal {
    /// The verb, for the reply and the log.
    fn verb(self) -> &'static str {
        match self {
            Removal::File => "DELE",
            Removal::Directory => "RMD",
        }
    }
}

impl Session {
    pub(super) fn pwd(&self) -> Handled {
        let cwd = &self.login().cwd;
        say(
            Code::PATH_CREATED,
            format!("{} is current directory.", quote(cwd)),
        )
    }

    pub(super) async fn cwd(&mut self, arg: &str) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        self.may_enter(&target)?;
        match self.home().is_dir(&target).await.ok() {
            Some(true) => {
                if let AuthState::LoggedIn(l) = &mut self.auth {
                    l.cwd = target;
                }
                say(Code::FILE_ACTION_OK, "CWD command successful.")
            }
            Some(false) => say(Code::FILE_UNAVAILABLE, "The directory name is invalid."),
            None => say(
                Code::FILE_UNAVAILABLE,
                "The system cannot find the file specified.",
            ),
        }
    }

    pub(super) async fn mkd(&mut self, arg: &str) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        self.may(&target, Right::Mkdir)?;
        self.home().mkdir(&target).await?;
        say(
            Code::PATH_CREATED,
            format!("{} directory created.", quote(&target)),
        )
    }

    /// DELE (a file) and RMD (an empty directory), answered with 250 on success.
    pub(super) async fn remove(&mut self, what: Removal, arg: &str) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        let right = match what {
            Removal::File => Right::Delete,
            Removal::Directory => Right::Rmdir,
        };
        self.may(&target, right)?;
        if target == "/" {
            // `RMD ..` at the top names the home itself: refused as such on every back-end (the
            // file system would answer 451, a local error, for removing `.`).
            return say(Code::FILE_UNAVAILABLE, "The home directory cannot be removed.");
        }
        match what {
            Removal::Directory => self.home().rmdir(&target).await?,
            Removal::File => {
                let limits = &self.account().limits;
                // SECURITY: a file in a virtual folder may be another account's: deleting it
                // frees nothing, or one account could make room by deleting another's files.
                let quota = (limits.quota_bytes.is_some() || limits.quota_files.is_some())
                    && !self.home().in_folder(&target);
                let before = match quota {
                    true => self.home().file_stat(&target).await.ok().map(|s| s.len),
                    false => None,
                };
                self.home().delete(&target).await?;
                // A deleted file frees its account's quota.
                if let Some(len) = before {
                    let account = &self.login().user.name;
                    self.shared.quotas.charge(account, -i128::from(len), -1);
                }
            }
        }
        let verb = what.verb();
        tracing::info!(command = verb, path = %target, "removed");
        say(Code::FILE_ACTION_OK, format!("{verb} command successful."))
    }

    pub(super) async fn rnfr(&mut self, arg: &str) -> Handled {
        let from = resolve(&self.login().cwd, arg);
        self.may(&from, Right::Rename)?;
        self.home().may_rename(&from)?;
        self.home().is_dir(&from).await?;
        self.rename_from = Some(from);
        say(
            Code::PENDING_FURTHER_INFO,
            "Requested file action pending further information.",
        )
    }

    pub(super) async fn rnto(&mut self, from: Option<String>, arg: &str) -> Handled {
        let Some(from) = from else {
            return say(Code::BAD_SEQUENCE, "Bad sequence of commands: RNFR first.");
        };
        let to = resolve(&self.login().cwd, arg);
        // Checked again: a reload may have changed the rights since RNFR.
        self.may(&from, Right::Rename)?;
        self.may(&to, Right::Rename)?;
        self.may_name(&to)?;
        // Renaming onto an existing file replaces it.
        let replaced = self.home().file_stat(&to).await.ok();
        if replaced.is_some() {
            self.may(&to, Right::Overwrite)?;
        }
        self.home().rename(&from, &to).await?;
        // A file replaced by the rename frees its account's quota (the renamed one stays
        // counted); not in a virtual folder, where it may be another account's (see DELE).
        if let Some(replaced) = replaced.filter(|r| r.is_file && !self.home().in_folder(&to)) {
            let limits = &self.account().limits;
            if limits.quota_bytes.is_some() || limits.quota_files.is_some() {
                let account = &self.login().user.name;
                self.shared.quotas.charge(account, -i128::from(replaced.len), -1);
            }
        }
        tracing::info!(from = %from, to = %to, "renamed");
        say(Code::FILE_ACTION_OK, "RNTO command successful.")
    }

    /// The home of the logged-in user.
    pub(super) fn home(&self) -> &Home {
        &self.login().home
    }

    /// The MLST entry of a path (named `/` for the home itself).
    async fn file_meta(&self, arg: &str) -> Result<(String, Entry), Failure> {
        let target = resolve(&self.login().cwd, arg);
        self.may(&target, Right::List)?;
        let name = if target == "/" { "/" } else { file_name(&target) };
        let entry = self.home().entry(&target, name).await?;
        Ok((target, entry))
    }

    /// SIZE and MDTM tell metadata, as a listing does: the `list` right. Their stat is
    /// confined to the path's tree like RETR's open, so the rights are checked as for an
    /// open ([`Session::may_open`]).
    async fn stat_listed(&self, arg: &str) -> Result<FileStat, Failure> {
        let target = resolve(&self.login().cwd, arg);
        self.may_open(&target, Right::List)?;
        self.home()
            .file_stat(&target)
            .await
            .map_err(|e| self.refused_open(&target, Right::List, e))
    }

    pub(super) async fn size(&self, arg: &str) -> Handled {
        let stat = self.stat_listed(arg).await?;
        match stat.is_file {
            true => say(Code::FILE_STATUS, stat.len.to_string()),
            false => Err(Failure::NotAFile),
        }
    }

    pub(super) async fn mdtm(&self, arg: &str) -> Handled {
        let modified = self.stat_listed(arg).await?.modified?;
        match listing::time_val(modified) {
            Some(time) => say(Code::FILE_STATUS, time),
            None => say(Code::FILE_UNAVAILABLE, "Modification time cannot be shown."),
        }
    }

    pub(super) async fn mlst(&self, arg: Option<&str>) -> Handled {
        let arg = arg.unwrap_or(".");
        let (target, entry) = self.file_meta(arg).await?;
        if !listing::is_safe_name(&entry.name) {
            return say(Code::FILE_UNAVAILABLE, "File name cannot be shown.");
        }
        let is_dir = entry.kind == listing::Kind::Dir;
        let mount_point = self.home().is_mount_point(&target);
        let perm = super::rights::perm_fact(&self.account().rights, &target, entry.kind, mount_point);
        let facts = listing::mlsx_facts_perm(&entry, &perm, is_dir && arg == ".");
        Ok(Reply::multi(
            Code::FILE_ACTION_OK,
            vec![format!("Listing {target}"), facts, "End".into()],
        )
        .into())
    }

    /// HASH (draft-bryan-ftp-hash): the SHA-256 of a whole file, streamed through the hash
    /// (on a blocking thread on the file system). Reply: `213 SHA-256 0-<size> <hex> <path>`.
    /// HASH reads the whole file: the `download` right.
    pub(super) async fn hash(&self, arg: &str) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        self.may(&target, Right::Download)?;
        let (hex, size) = self.home().sha256(&target).await?;
        say(Code::FILE_STATUS, format!("SHA-256 0-{size} {hex} {target}"))
    }

    /// Directory entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name,
    /// or the single entry when the path names a file.
    /// The `list` right on the path; hidden names are left out.
    pub(super) async fn entries(&self, arg: Option<&str>) -> Result<Vec<Entry>, Failure> {
        let target = resolve(&self.login().cwd, arg.unwrap_or("."));
        self.may(&target, Right::List)?;
        let mut entries = self.home().entries(&target).await?;
        let account = self.account();
        entries.retain(|e| !account.rights.hides(&e.name));
        Ok(entries)
    }
}

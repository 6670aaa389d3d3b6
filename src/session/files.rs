//! Files and directories: PWD, CWD, CDUP, MKD, RMD, DELE, RNFR, RNTO (RFC 959 4.1), SIZE,
//! MDTM, MLST (RFC 3659), HASH (draft-bryan-ftp-hash), and the directory reading that LIST,
//! NLST, MLSD and STAT share. Paths are resolved against the working directory here; the
//! storage back-end confines them to the home.

use super::answer::{say, Failure, Handled};
use super::path::{file_name, quote, resolve};
use super::{AuthState, Session};
use crate::control::reply::{Code, Reply};
use crate::listing::{self, Entry};
use crate::storage::Storage;
use unftp_core::storage::{Metadata, StorageBackend};

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
                say(Code::FILE_ACTION_OK, "CWD command successful.")
            }
            Some(false) => say(Code::FILE_UNAVAILABLE, "The directory name is invalid."),
            None => say(
                Code::FILE_UNAVAILABLE,
                "The system cannot find the file specified.",
            ),
        }
    }

    /// Refuses write commands of a read-only account.
    pub(super) fn require_write(&self) -> Result<(), Failure> {
        if !self.login().user.write {
            return Err(Failure::ReadOnly);
        }
        Ok(())
    }

    pub(super) async fn mkd(&mut self, arg: &str) -> Handled {
        self.require_write()?;
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        match &login.storage {
            Storage::Local { fs, .. } => fs.mkd(&login.user, &target).await?,
            Storage::Object(o) => o.mkd(&target).await?,
        }
        say(
            Code::PATH_CREATED,
            format!("{} directory created.", quote(&target)),
        )
    }

    /// DELE (a file) and RMD (an empty directory), answered with 250 on success.
    pub(super) async fn remove(&mut self, what: Removal, arg: &str) -> Handled {
        self.require_write()?;
        let target = resolve(&self.login().cwd, arg);
        if target == "/" {
            // `RMD ..` at the top names the home itself: refused as such on every back-end (the
            // file system would answer 451, a local error, for removing `.`).
            return say(Code::FILE_UNAVAILABLE, "The home directory cannot be removed.");
        }
        let login = self.login();
        match (&login.storage, what) {
            (Storage::Local { fs, .. }, Removal::Directory) => fs.rmd(&login.user, &target).await?,
            (Storage::Local { fs, .. }, Removal::File) => fs.del(&login.user, &target).await?,
            (Storage::Object(o), Removal::Directory) => o.rmd(&target).await?,
            (Storage::Object(o), Removal::File) => o.del(&target).await?,
        }
        let verb = what.verb();
        tracing::info!(command = verb, path = %target, "removed");
        say(Code::FILE_ACTION_OK, format!("{verb} command successful."))
    }

    pub(super) async fn rnfr(&mut self, arg: &str) -> Handled {
        self.require_write()?;
        let from = resolve(&self.login().cwd, arg);
        let login = self.login();
        match &login.storage {
            Storage::Local { fs, .. } => {
                fs.metadata(&login.user, &from).await?;
            }
            Storage::Object(o) => {
                o.stat(&from).await?;
            }
        }
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
        self.require_write()?;
        let to = resolve(&self.login().cwd, arg);
        let login = self.login();
        match &login.storage {
            Storage::Local { fs, .. } => fs.rename(&login.user, &from, &to).await?,
            // Object storage has no rename: a server-side copy, then the original is deleted.
            Storage::Object(o) => o.rename(&from, &to).await?,
        }
        tracing::info!(from = %from, to = %to, "renamed");
        say(Code::FILE_ACTION_OK, "RNTO command successful.")
    }

    /// The MLST entry of a path (named `/` for the home itself).
    async fn file_meta(&self, arg: &str) -> Result<(String, Entry), Failure> {
        let target = resolve(&self.login().cwd, arg);
        let login = self.login();
        let name = if target == "/" { "/" } else { file_name(&target) };
        let entry = match &login.storage {
            Storage::Local { fs, .. } => {
                let meta = fs.metadata(&login.user, &target).await?;
                let home = Home::of(&login.user);
                Entry::from_metadata(name, &meta, Some(&home.scope(&resolve(&target, ".."))))
            }
            Storage::Object(o) => {
                let meta = o.stat(&target).await?;
                Entry::from_metadata(name, &meta, None)
            }
        };
        Ok((target, entry))
    }

    /// The object store of this login, when files live in one.
    pub(super) fn object_store(&self) -> Option<crate::storage::ObjectStore> {
        match &self.login().storage {
            Storage::Object(o) => Some(o.clone()),
            Storage::Local { .. } => None,
        }
    }

    /// The home directory handle of a file-system login.
    pub(super) fn local_dir(&self) -> std::io::Result<&cap_std::fs::Dir> {
        match &self.login().storage {
            Storage::Local { dir, .. } => Ok(dir),
            Storage::Object(_) => Err(std::io::Error::other("not a file-system login")),
        }
    }

    /// Metadata straight from the home directory handle (a stat on this thread: no hop to
    /// the blocking pool for what costs microseconds). Follows symlinks inside the home.
    pub(super) fn stat(&self, arg: &str) -> Result<(String, cap_std::fs::Metadata), Failure> {
        let target = resolve(&self.login().cwd, arg);
        let meta = self.local_dir().and_then(|dir| dir.metadata(relative(&target)))?;
        Ok((target, meta))
    }

    /// Open a file in the home directory for reading (a download seeks to its REST offset
    /// once the offset is checked against the size).
    pub(super) fn open_for_read(&self, target: &str) -> std::io::Result<std::fs::File> {
        Ok(self.local_dir()?.open(relative(target))?.into_std())
    }

    pub(super) async fn size(&self, arg: &str) -> Handled {
        let len = match self.object_store() {
            Some(o) => {
                let meta = o.stat(&resolve(&self.login().cwd, arg)).await?;
                meta.is_file().then(|| meta.len())
            }
            None => {
                let (_, meta) = self.stat(arg)?;
                meta.is_file().then(|| meta.len())
            }
        };
        match len {
            Some(len) => say(Code::FILE_STATUS, len.to_string()),
            None => Err(Failure::NotAFile),
        }
    }

    pub(super) async fn mdtm(&self, arg: &str) -> Handled {
        let modified = match self.object_store() {
            Some(o) => o.stat(&resolve(&self.login().cwd, arg)).await?.modified()?,
            None => self.stat(arg)?.1.modified()?.into_std(),
        };
        say(
            Code::FILE_STATUS,
            chrono::DateTime::<chrono::Utc>::from(modified)
                .format("%Y%m%d%H%M%S")
                .to_string(),
        )
    }

    pub(super) async fn mlst(&self, arg: Option<&str>) -> Handled {
        let arg = arg.unwrap_or(".");
        let (target, entry) = self.file_meta(arg).await?;
        if !listing::is_safe_name(&entry.name) {
            return say(Code::FILE_UNAVAILABLE, "File name cannot be shown.");
        }
        let is_dir = entry.kind == listing::Kind::Dir;
        let facts = listing::mlsx_facts(&entry, self.login().user.write, is_dir && arg == ".");
        Ok(Reply::multi(
            Code::FILE_ACTION_OK,
            vec![format!("Listing {target}"), facts, "End".into()],
        )
        .into())
    }

    /// HASH (draft-bryan-ftp-hash): the SHA-256 of a whole file, computed on a blocking
    /// thread. Reply: `213 SHA-256 0-<size> <hex> <path>`.
    pub(super) async fn hash(&self, arg: &str) -> Handled {
        if let Some(o) = self.object_store() {
            // Object storage: the object is streamed through the hash (bounded memory).
            let target = resolve(&self.login().cwd, arg);
            let (hex, size) = o.sha256(&target).await?;
            return say(Code::FILE_STATUS, format!("SHA-256 0-{size} {hex} {target}"));
        }
        let (target, meta) = self.stat(arg)?;
        if !meta.is_file() {
            return Err(Failure::NotAFile);
        }
        let mut file = self.open_for_read(&target)?;
        let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            std::io::copy(&mut file, &mut hasher)?;
            Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .await;
        let hex = match digest {
            Ok(hashed) => hashed?,
            Err(_) => return say(Code::LOCAL_ERROR, "Local error in processing."),
        };
        say(
            Code::FILE_STATUS,
            format!("SHA-256 0-{} {hex} {target}", meta.len()),
        )
    }

    /// Directory entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name,
    /// or the single entry when the path names a file.
    pub(super) async fn entries(&self, arg: Option<&str>) -> Result<Vec<Entry>, Failure> {
        let target = resolve(&self.login().cwd, arg.unwrap_or("."));
        let login = self.login();
        let fs = match &login.storage {
            Storage::Local { fs, .. } => fs,
            Storage::Object(o) => return Ok(o.entries(&target).await?),
        };
        let meta = fs.metadata(&login.user, &target).await?;
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
        let list = fs.list(&login.user, &target).await?;
        let scope = home.scope(&target);
        let mut entries: Vec<Entry> = list
            .iter()
            .filter_map(|item| Entry::from_fileinfo(item, Some(&scope)))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
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
pub(super) fn relative(target: &str) -> &str {
    match target.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    }
}

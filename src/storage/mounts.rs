//! [`Home`]: a logged-in user's view of its files: the home directory, with the account's
//! virtual folders mounted at their virtual paths.
//!
//! Every path is resolved in one place ([`crate::path::locate`], pure path logic the rights
//! explanation shares): the folder whose mount path is the longest one that covers the path
//! (segment by segment, without regard to case, as rights rules are matched), else the home;
//! the rest of the path is then a path inside that tree, confined to it by the tree's own
//! back-end (cap-std on the file system, checked key components on object storage), so no
//! spelling leaves a folder's source.
//!
//! # Decisions
//! - Listings of a mount point's parent show the mount as a directory, whether or not the
//!   home has a directory of that name; a real entry of the same name is shadowed.
//! - A mount point itself cannot be removed (DELE, RMD), made (MKD), renamed (either end
//!   of RNFR/RNTO) or uploaded to (STOR, APPE), and a rename across a folder boundary (home
//!   and folder, or two folders) is refused: 550 with a reason. Copy the file instead.
//! - A folder that cannot be opened (its source removed since the users file was loaded) is
//!   still mounted but unavailable: its paths are refused, they never fall through to the
//!   home's directory of the same name.

use super::home::{Download, FileStat, Tree, Upload, WriteMode};
use super::{Backend, Error};
use crate::auth::{Folder, FtpUser};
use crate::listing::{Entry, Kind};
use crate::path::{locate, mount_of, mounted_children, MountPoint};
use std::borrow::Cow;

/// DELE, RMD, MKD, RNFR, RNTO or an upload naming a mount point.
const MOUNT_POINT: &str =
    "That name is a virtual folder's mount point: it cannot be removed, created or renamed.";
/// RNFR/RNTO across a folder boundary.
const ACROSS: &str = "Cannot rename across a virtual folder's boundary (between the home and a folder, or between two folders); copy the file instead.";
/// Any path in a folder that could not be opened.
const UNAVAILABLE: &str = "This virtual folder is unavailable.";

/// One mounted folder.
struct Mount {
    point: MountPoint,
    /// `None`: the folder could not be opened; its paths are refused.
    tree: Option<Tree>,
}

/// A user's home and its virtual folders. Every operation a session handler needs is here.
pub struct Home {
    /// The home directory.
    home: Tree,
    /// The mounted folders.
    mounts: Vec<Mount>,
    /// Their mount points, in the same order, for [`locate`].
    points: Vec<MountPoint>,
    /// The folders these were opened from (a reload that changes them remounts).
    folders: Vec<Folder>,
}

impl Home {
    /// The home `home` with `folders` mounted; a folder that cannot be opened is mounted as
    /// unavailable (and logged).
    pub(super) fn new(home: Tree, backend: &Backend, user: &FtpUser, folders: &[Folder]) -> Home {
        let mut this = Home {
            home,
            mounts: Vec::new(),
            points: Vec::new(),
            folders: Vec::new(),
        };
        this.remount(backend, user, folders);
        this
    }

    /// Mounts `folders` instead of the current ones, if they differ (a reload changed them).
    pub fn remount(&mut self, backend: &Backend, user: &FtpUser, folders: &[Folder]) {
        if self.folders == folders {
            return;
        }
        self.mounts = folders
            .iter()
            .map(|folder| {
                let tree = match backend.open_folder(user, &folder.target) {
                    Ok(tree) => Some(tree),
                    Err(e) => {
                        tracing::error!(user = %user.name, folder = %folder.path, target = %folder.target, error = %e, "cannot open the virtual folder");
                        None
                    }
                };
                Mount {
                    point: MountPoint::new(folder.path.as_str()),
                    tree,
                }
            })
            .collect();
        self.points = self.mounts.iter().map(|m| m.point.clone()).collect();
        if !self.folders.is_empty() || !folders.is_empty() {
            tracing::info!(user = %user.name, folders = folders.len(), "virtual folders mounted");
        }
        self.folders = folders.to_vec();
    }

    /// The tree holding `path` and the path inside it.
    fn at<'p>(&self, path: &'p str) -> Result<(&Tree, Cow<'p, str>), Error> {
        match locate(&self.points, path) {
            (None, inner) => Ok((&self.home, inner)),
            (Some(i), inner) => match &self.mounts[i].tree {
                Some(tree) => Ok((tree, inner)),
                None => Err(Error::Refused(UNAVAILABLE)),
            },
        }
    }

    /// Whether `path` is exactly a mount point.
    pub fn is_mount_point(&self, path: &str) -> bool {
        matches!(locate(&self.points, path), (Some(_), inner) if inner == "/")
    }

    /// Whether `path` is in a virtual folder (not in the home). A folder's files may be other
    /// accounts' files, so quota usage is never given back for them.
    pub fn in_folder(&self, path: &str) -> bool {
        mount_of(&self.points, path).is_some()
    }

    /// Whether `path` lies in the home directory on the file system: there the rights also
    /// judge the paths that symbolic links reach. Paths in virtual folders are judged as
    /// named (a folder's source is confined by its own handle), and object storage has no
    /// links.
    pub fn in_home_directory(&self, path: &str) -> bool {
        matches!(self.home, Tree::Fs(_)) && !self.in_folder(path)
    }

    /// Whether mounts lie below `path` (it is a directory on the way to one).
    fn leads_to_mounts(&self, path: &str) -> bool {
        !mounted_children(&self.points, path).is_empty()
    }

    /// Whether `path` is a directory (CWD); an error when it does not exist (RNFR).
    pub async fn is_dir(&self, path: &str) -> Result<bool, Error> {
        let (tree, inner) = self.at(path)?;
        match tree.is_dir(&inner).await {
            Ok(true) => Ok(true),
            _ if self.leads_to_mounts(path) => Ok(true),
            other => other,
        }
    }

    /// Size, kind and time of `path` (SIZE, MDTM, STOU's name check).
    pub async fn file_stat(&self, path: &str) -> Result<FileStat, Error> {
        let (tree, inner) = self.at(path)?;
        tree.file_stat(&inner).await
    }

    /// The listing entry of `path` itself, named `name` (MLST).
    pub async fn entry(&self, path: &str, name: &str) -> Result<Entry, Error> {
        let (tree, inner) = self.at(path)?;
        match tree.entry(&inner, name).await {
            Err(_) if self.leads_to_mounts(path) => Ok(virtual_dir(name)),
            other => other,
        }
    }

    /// Entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name (mounts below
    /// it shown as directories), or the single entry when `path` names a file.
    pub async fn entries(&self, path: &str) -> Result<Vec<Entry>, Error> {
        let (tree, inner) = self.at(path)?;
        let children = mounted_children(&self.points, path);
        if children.is_empty() {
            return tree.entries(&inner).await;
        }
        let mut entries = match tree.is_dir(&inner).await {
            Ok(true) => tree.entries(&inner).await?,
            _ => Vec::new(),
        };
        for (name, is_mount) in children {
            let lower = name.to_lowercase();
            let existing = entries.iter().position(|e| e.name.to_lowercase() == lower);
            let real_dir = existing.is_some_and(|i| entries[i].kind == Kind::Dir);
            // A directory on the way to a mount may be a real one; a mount point shadows
            // whatever the tree holds under its name.
            if !is_mount && real_dir {
                continue;
            }
            if let Some(i) = existing {
                entries.remove(i);
            }
            let child = format!("{}/{name}", path.trim_end_matches('/'));
            let entry = match (is_mount, self.at(&child)) {
                (true, Ok((folder, _))) => folder
                    .entry("/", &name)
                    .await
                    .unwrap_or_else(|_| virtual_dir(&name)),
                _ => virtual_dir(&name),
            };
            entries.push(Entry { name, ..entry });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// MKD.
    pub async fn mkdir(&self, path: &str) -> Result<(), Error> {
        self.not_a_mount_point(path)?;
        let (tree, inner) = self.at(path)?;
        tree.mkdir(&inner).await
    }

    /// RMD: an empty directory.
    pub async fn rmdir(&self, path: &str) -> Result<(), Error> {
        self.not_a_mount_point(path)?;
        let (tree, inner) = self.at(path)?;
        tree.rmdir(&inner).await
    }

    /// DELE: a file.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        self.not_a_mount_point(path)?;
        let (tree, inner) = self.at(path)?;
        tree.delete(&inner).await
    }

    /// RNFR/RNTO, inside one tree only.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        self.not_a_mount_point(from)?;
        self.not_a_mount_point(to)?;
        // SECURITY: a rename is one operation inside one tree; across trees it would be a
        // copy between two confined back-ends, which is not offered.
        if mount_of(&self.points, from) != mount_of(&self.points, to) {
            return Err(Error::Refused(ACROSS));
        }
        let (tree, from) = self.at(from)?;
        let (_, to) = self.at(to)?;
        tree.rename(&from, &to).await
    }

    /// RNFR's check: a mount point cannot be renamed.
    pub fn may_rename(&self, from: &str) -> Result<(), Error> {
        self.not_a_mount_point(from)
    }

    /// Open `path` for a download from `offset` (REST). Returns the download and the file's
    /// size.
    pub async fn open_read(&self, path: &str, offset: u64) -> Result<(Download, u64), Error> {
        let (tree, inner) = self.at(path)?;
        tree.open_read(&inner, offset).await
    }

    /// Open `path` for an upload, now (see `Tree::open_write`).
    pub async fn open_write(&self, path: &str, mode: WriteMode) -> Result<(Upload, u64), Error> {
        self.not_a_mount_point(path)?;
        let (tree, inner) = self.at(path)?;
        tree.open_write(&inner, mode).await
    }

    /// Undoes an upload stopped at its size limit (see `Tree::discard_upload`).
    pub async fn discard_upload(&self, path: &str, keep: u64) -> Result<(), Error> {
        let (tree, inner) = self.at(path)?;
        tree.discard_upload(&inner, keep).await
    }

    /// The SHA-256 of a whole file (HASH). Returns the hex digest and the size.
    pub async fn sha256(&self, path: &str) -> Result<(String, u64), Error> {
        let (tree, inner) = self.at(path)?;
        tree.sha256(&inner).await
    }

    fn not_a_mount_point(&self, path: &str) -> Result<(), Error> {
        match self.is_mount_point(path) {
            true => Err(Error::Refused(MOUNT_POINT)),
            false => Ok(()),
        }
    }
}

/// A directory entry for a mount (or a directory on the way to one) with nothing to stat.
fn virtual_dir(name: &str) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: Kind::Dir,
        size: 0,
        modified: None,
        mode: 0o755,
        links: 1,
        uid: 0,
        gid: 0,
        target: None,
    }
}

impl Backend {
    /// Open a folder's tree: a directory on the file system (confined to it exactly as a
    /// home is), a key prefix below `storage.prefix` on object storage.
    pub(super) fn open_folder(
        &self,
        user: &FtpUser,
        target: &crate::auth::FolderTarget,
    ) -> std::io::Result<Tree> {
        use crate::auth::FolderTarget;
        match (self, target) {
            (Backend::Fs, FolderTarget::Dir(dir)) => {
                // The folder's source is the "home" and the root of its own confined view.
                let folder_user = FtpUser {
                    home: dir.clone(),
                    ..user.clone()
                };
                super::FsHome::open(dir, &folder_user).map(Tree::Fs)
            }
            (Backend::Object(store), FolderTarget::Prefix(prefix)) => {
                store.for_prefix(prefix).map(Tree::Object)
            }
            _ => Err(std::io::Error::other(
                "the folder does not fit the storage back-end",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folders_are_confined_and_boundaries_hold() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("root");
        let shared = top.path().join("shared");
        std::fs::create_dir_all(root.join("h")).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(top.path().join("secret"), b"s").unwrap();
        std::fs::write(shared.join("f"), b"in shared").unwrap();
        std::fs::write(root.join("h/g"), b"in home").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(top.path().join("secret"), shared.join("link")).unwrap();
        let user = FtpUser {
            name: "u".into(),
            home: root.join("h"),
            write: true,
            anonymous: false,
            fxp: Default::default(),
            require_tls: false,
        };
        let folder = Folder {
            path: crate::rights::RulePath::parse("/shared").unwrap(),
            target: crate::auth::FolderTarget::Dir(shared.clone()),
            source: crate::rights::Source::Group("staff".into()),
        };
        let home = Backend::Fs.open_home(&root, &user, &[folder]).unwrap();
        let names: Vec<String> = home
            .entries("/")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["g", "shared"]);
        assert!(home.is_dir("/shared").await.unwrap());
        assert_eq!(home.sha256("/shared/f").await.unwrap().1, 9);
        #[cfg(unix)]
        assert!(home.open_read("/shared/link", 0).await.is_err());
        assert!(matches!(
            home.rename("/g", "/shared/g").await,
            Err(Error::Refused(ACROSS))
        ));
        assert!(matches!(
            home.rename("/shared/f", "/f").await,
            Err(Error::Refused(ACROSS))
        ));
        assert!(matches!(
            home.rename("/shared", "/x").await,
            Err(Error::Refused(MOUNT_POINT))
        ));
        assert!(matches!(
            home.rmdir("/shared").await,
            Err(Error::Refused(MOUNT_POINT))
        ));
        assert!(matches!(
            home.delete("/SHARED").await,
            Err(Error::Refused(MOUNT_POINT))
        ));
        home.rename("/shared/f", "/shared/f2").await.unwrap();
        assert!(shared.join("f2").exists());
        assert_eq!(std::fs::read(top.path().join("secret")).unwrap(), b"s");
    }
}

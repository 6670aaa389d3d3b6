//! Virtual folders: another directory (or, with `storage.kind = "s3"`, another key prefix of
//! the bucket) mounted at a virtual path of an account's tree.
//!
//! ```toml
//! [[group]]
//! name = "staff"
//! folders = [{ path = "/shared", source = "/srv/ftp/shared" }]   # file system
//! # folders = [{ path = "/archive", prefix = "archive/" }]       # object storage
//! ```
//!
//! A folder is written in the users file as a [`FolderSpec`] (parsed strictly: a mount path
//! that is absolute, normalised and not `/`; exactly one of `source` and `prefix`); the
//! account's effective folders ([`Folder`]) combine the layers like rules do: the most specific
//! layer's folder at a path replaces the others'. A relative `source` is resolved against the
//! users file's directory when the account is built. Whether a source exists, and whether the
//! folders fit the storage back-end, is checked when a server loads the file
//! ([`super::UserDb::check_folders`]).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::rights::{RulePath, Source};

/// Most folders in one table (a user, a group, `[anonymous]`, `[everyone]`).
pub(crate) const MAX_FOLDERS: usize = 64;

/// Longest `source` or `prefix` (bytes).
const MAX_SOURCE_LEN: usize = 1024;

/// One folder as written in the users file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FolderDe")]
pub struct FolderSpec {
    /// The virtual path it is mounted at (not `/`).
    pub path: RulePath,
    /// A directory (file system), as written: absolute, or relative to the users file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// A key prefix of the bucket, below `storage.prefix` (object storage), normalised to
    /// `a/b/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// The TOML layout of a folder, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderDe {
    path: RulePath,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
}

impl TryFrom<FolderDe> for FolderSpec {
    type Error = String;

    fn try_from(de: FolderDe) -> Result<FolderSpec, String> {
        let path = de.path;
        if path.depth() == 0 {
            return Err("a folder cannot be mounted at \"/\" (that is the home)".into());
        }
        let (source, prefix) = match (de.source, de.prefix) {
            (Some(source), None) => (Some(parse_source(&source)?), None),
            (None, Some(prefix)) => (None, Some(parse_prefix(&prefix)?)),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "folder {path}: give either source (a directory) or prefix (object storage), not both"
                ))
            }
            (None, None) => {
                return Err(format!(
                    "folder {path}: needs source (a directory) or prefix (object storage)"
                ))
            }
        };
        Ok(FolderSpec { path, source, prefix })
    }
}

impl FolderSpec {
    /// A folder from the command line: mounted at `path`, with either a directory `source`
    /// or a key `prefix`; checked as the users file checks one.
    pub(crate) fn new(path: &str, source: Option<&str>, prefix: Option<&str>) -> Result<FolderSpec, String> {
        FolderSpec::try_from(FolderDe {
            path: RulePath::parse(path)?,
            source: source.map(str::to_owned),
            prefix: prefix.map(str::to_owned),
        })
    }

    /// Whether it is mounted at `path` (any case, as mount paths are compared).
    pub(crate) fn is_at(&self, path: &RulePath) -> bool {
        self.path.as_str().to_lowercase() == path.as_str().to_lowercase()
    }
}

/// A folder's directory: not empty, bounded, no control character.
fn parse_source(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("a folder's source is empty".into());
    }
    if s.len() > MAX_SOURCE_LEN {
        return Err(format!("a folder's source is longer than {MAX_SOURCE_LEN} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("a folder's source contains a control character".into());
    }
    Ok(PathBuf::from(s))
}

/// A folder's key prefix: valid key names only (no `.`, `..`, control characters), not empty.
fn parse_prefix(s: &str) -> Result<String, String> {
    if s.len() > MAX_SOURCE_LEN {
        return Err(format!("a folder's prefix is longer than {MAX_SOURCE_LEN} bytes"));
    }
    // SECURITY: a prefix names one place under storage.prefix: `..` would leave it.
    match crate::path::normalise_prefix(s) {
        Some(p) if !p.is_empty() => Ok(p),
        Some(_) => Err("a folder's prefix is empty".into()),
        None => Err(format!(
            "folder prefix {s:?} has a segment that is '.', '..' or has a control character"
        )),
    }
}

/// A table's `folders`: at most [`MAX_FOLDERS`], no mount path twice (any case).
pub(crate) fn bounded_folders<'de, D>(d: D) -> Result<Vec<FolderSpec>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let folders = Vec::<FolderSpec>::deserialize(d)?;
    if folders.len() > MAX_FOLDERS {
        return Err(serde::de::Error::custom(format!(
            "more than {MAX_FOLDERS} folders"
        )));
    }
    let mut seen = HashSet::with_capacity(folders.len());
    for f in &folders {
        if !seen.insert(f.path.as_str().to_lowercase()) {
            return Err(serde::de::Error::custom(format!(
                "folder {} is mounted twice",
                f.path
            )));
        }
    }
    Ok(folders)
}

/// What a folder mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderTarget {
    /// A directory (absolute, the users file's directory joined to a relative source).
    Dir(PathBuf),
    /// A key prefix below `storage.prefix` (`a/b/`).
    Prefix(String),
}

impl fmt::Display for FolderTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderTarget::Dir(dir) => write!(f, "{}", dir.display()),
            FolderTarget::Prefix(prefix) => write!(f, "prefix {prefix}"),
        }
    }
}

/// One of an account's effective folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Its mount path.
    pub path: RulePath,
    /// What it mounts.
    pub target: FolderTarget,
    /// The layer it came from.
    pub source: Source,
}

impl Folder {
    /// The effective folder of `spec` from `source`; a relative directory is joined to `dir`
    /// (the users file's directory).
    pub(crate) fn of(spec: &FolderSpec, source: &Source, dir: &Path) -> Folder {
        let target = match (&spec.source, &spec.prefix) {
            (Some(s), _) if s.is_absolute() => FolderTarget::Dir(s.clone()),
            (Some(s), _) => FolderTarget::Dir(dir.join(s)),
            (None, Some(p)) => FolderTarget::Prefix(p.clone()),
            // Parsing makes one of them present.
            (None, None) => FolderTarget::Prefix(String::new()),
        };
        Folder {
            path: spec.path.clone(),
            target,
            source: source.clone(),
        }
    }
}

/// Adds `layer`'s folders (from `source`) to `folders`, replacing those at the same path (the
/// layers come least specific first).
pub(crate) fn overlay(folders: &mut Vec<Folder>, layer: &[FolderSpec], source: &Source, dir: &Path) {
    for spec in layer {
        let folder = Folder::of(spec, source, dir);
        let same = |f: &Folder| f.path.as_str().to_lowercase() == folder.path.as_str().to_lowercase();
        match folders.iter_mut().find(|f| same(f)) {
            Some(existing) => *existing = folder,
            None => folders.push(folder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cheap_hash;
    use super::super::{parse_users, UserDb};
    use super::*;
    use crate::config::StorageKind;

    fn file(rest: &str) -> String {
        format!(
            "[[group]]\nname = \"staff\"\nfolders = [{{ path = \"/shared\", source = \"shared\" }}, {{ path = \"/pub\", source = \"/srv/pub\" }}]\n\n\
             [[user]]\nname = \"alice\"\npassword = \"{}\"\ngroups = [\"staff\"]\n{rest}",
            cheap_hash("a")
        )
    }

    fn error(text: &str) -> String {
        parse_users(text, Path::new("/etc/fxpd/users.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_users_own_folder_overrides_its_groups_and_relative_sources_follow_the_file() {
        let text = file("folders = [{ path = \"/PUB\", source = \"/srv/alice-pub\" }]\n");
        let parsed = parse_users(&text, Path::new("/etc/fxpd/users.toml")).unwrap();
        let db = UserDb::from_doc_in(parsed.doc(), Path::new("/srv"), Path::new("/etc/fxpd"));
        let alice = db.account("alice").unwrap();
        let shown: Vec<(String, String, String)> = alice
            .folders
            .iter()
            .map(|f| (f.path.to_string(), f.target.to_string(), f.source.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "/shared".to_owned(),
                    "/etc/fxpd/shared".to_owned(),
                    "group staff".to_owned()
                ),
                (
                    "/PUB".to_owned(),
                    "/srv/alice-pub".to_owned(),
                    "user alice".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn bad_folders_are_refused_with_their_line() {
        let cases = [
            (
                "folders = [{ path = \"/\", source = \"/x\" }]",
                "cannot be mounted at \"/\"",
            ),
            (
                "folders = [{ path = \"x\", source = \"/x\" }]",
                "must start with '/'",
            ),
            ("folders = [{ path = \"/a/../b\", source = \"/x\" }]", "'..'"),
            ("folders = [{ path = \"/a\" }]", "needs source"),
            (
                "folders = [{ path = \"/a\", source = \"/x\", prefix = \"p/\" }]",
                "not both",
            ),
            (
                "folders = [{ path = \"/a\", source = \"/x\", mode = 1 }]",
                "unknown field `mode`",
            ),
            ("folders = [{ path = \"/a\", prefix = \"p/../q\" }]", "'..'"),
            ("folders = [{ path = \"/a\", prefix = \"/\" }]", "prefix is empty"),
            ("folders = [{ path = \"/a\", source = \"\" }]", "source is empty"),
            (
                "folders = [{ path = \"/a\", source = \"/x\" }, { path = \"/A/\", source = \"/y\" }]",
                "mounted twice",
            ),
        ];
        for (line, expected) in cases {
            let e = error(&file(&format!("{line}\n")));
            assert!(e.contains(expected), "{line}: {e}");
            assert!(e.contains("users.toml, line 9, column "), "{line}: {e}");
        }
        let many: Vec<String> = (0..=MAX_FOLDERS)
            .map(|i| format!("{{ path = \"/f{i}\", source = \"/x\" }}"))
            .collect();
        let e = error(&file(&format!("folders = [{}]\n", many.join(", "))));
        assert!(e.contains("more than 64 folders"), "{e}");
    }

    #[test]
    fn folders_must_fit_the_back_end_and_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        let text = file("").replace("/srv/pub", &dir.path().join("pub").display().to_string());
        let path = dir.path().join("users.toml");
        std::fs::write(&path, &text).unwrap();
        let db = UserDb::load(&path, dir.path()).unwrap();
        let e = db.check_folders(StorageKind::Fs).unwrap_err();
        assert!(
            e.contains("folder /pub (from group staff)") && e.contains("not an existing directory"),
            "{e}"
        );
        std::fs::create_dir(dir.path().join("pub")).unwrap();
        db.check_folders(StorageKind::Fs).unwrap();
        let e = db.check_folders(StorageKind::S3).unwrap_err();
        assert!(e.contains("is a prefix, not a source directory"), "{e}");

        let text = "[anonymous]\nfolders = [{ path = \"/archive\", prefix = \"archive\" }]\n";
        std::fs::write(&path, text).unwrap();
        let db = UserDb::load(&path, dir.path()).unwrap();
        db.check_folders(StorageKind::S3).unwrap();
        let e = db.check_folders(StorageKind::Fs).unwrap_err();
        assert!(
            e.starts_with("anonymous, folder /archive") && e.contains("needs storage.kind"),
            "{e}"
        );
    }
}

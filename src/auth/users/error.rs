//! Why a users file can not be loaded: every error names the file and, where it can, the line.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::file::{MAX_USERS, MAX_USERS_FILE_BYTES};
use super::profile::MAX_GROUPS;

/// Why the users file can not be loaded.
#[derive(Debug)]
pub enum UsersFileError {
    /// The file could not be opened or read.
    Read {
        /// The users file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is larger than 4 MiB.
    TooLarge {
        /// The users file.
        path: PathBuf,
    },
    /// The file is not valid UTF-8.
    NotUtf8 {
        /// The users file.
        path: PathBuf,
    },
    /// TOML syntax error, unknown key, or a field with an invalid value.
    Syntax {
        /// The users file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// What is wrong (from the TOML parser or the field's parser; never the file's text).
        message: String,
    },
    /// Two entries have the same name.
    DuplicateUser {
        /// The users file.
        path: PathBuf,
        /// The repeated name.
        name: String,
        /// 1-based line of the second entry's `[[user]]` header.
        line: usize,
    },
    /// More than 10 000 entries.
    TooManyUsers {
        /// The users file.
        path: PathBuf,
    },
    /// More than 10 000 groups.
    TooManyGroups {
        /// The users file.
        path: PathBuf,
    },
    /// Two groups have the same name.
    DuplicateGroup {
        /// The users file.
        path: PathBuf,
        /// The repeated name.
        name: String,
        /// 1-based line of the second group's `[[group]]` header.
        line: usize,
    },
    /// A user names a group that is not in the file.
    UnknownGroup {
        /// The users file.
        path: PathBuf,
        /// The user.
        user: String,
        /// The missing group.
        group: String,
        /// 1-based line of the user's `[[user]]` header.
        line: usize,
    },
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersFileError::Read { path, source } => {
                write!(f, "can not read users file {}: {source}", path.display())
            }
            UsersFileError::TooLarge { path } => {
                write!(
                    f,
                    "users file {} is larger than {MAX_USERS_FILE_BYTES} bytes",
                    path.display()
                )
            }
            UsersFileError::NotUtf8 { path } => write!(f, "users file {} is not valid UTF-8", path.display()),
            UsersFileError::Syntax {
                path,
                line,
                column,
                message,
            } => {
                write!(f, "users file {}", path.display())?;
                if let Some(line) = line {
                    write!(f, ", line {line}")?;
                }
                if let Some(column) = column {
                    write!(f, ", column {column}")?;
                }
                write!(f, ": {message}")
            }
            UsersFileError::DuplicateUser { path, name, line } => {
                write!(
                    f,
                    "users file {}, line {line}: user {name:?} is defined twice",
                    path.display()
                )
            }
            UsersFileError::TooManyUsers { path } => {
                write!(f, "users file {} has more than {MAX_USERS} users", path.display())
            }
            UsersFileError::TooManyGroups { path } => {
                write!(
                    f,
                    "users file {} has more than {MAX_GROUPS} groups",
                    path.display()
                )
            }
            UsersFileError::DuplicateGroup { path, name, line } => write!(
                f,
                "users file {}, line {line}: group {name:?} is defined twice",
                path.display()
            ),
            UsersFileError::UnknownGroup {
                path,
                user,
                group,
                line,
            } => write!(
                f,
                "users file {}, line {line}: user {user:?} is in group {group:?}, which is not defined",
                path.display()
            ),
        }
    }
}

impl std::error::Error for UsersFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UsersFileError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

//! What a handler gives back, and the one place where errors become replies.
//!
//! Every handler returns [`Handled`]: an [`Answer`] (the replies to write, in order, and what
//! the session does next) or a typed [`Failure`]. Handlers never write to the connection; the
//! session loop writes the replies of an answer and then acts on its [`Then`].
//! [`Failure::reply`] is the one function that turns errors (storage, object storage, login,
//! policy and seat refusals, and the refusals several commands share) into replies.

use super::security::Mechanism;
use super::transfers::Prepared;
use crate::auth::LoginError;
use crate::control::reply::{Code, Reply};
use crate::datachan::TlsUnavailable;
use crate::policy::Refusal;
use crate::rights::Denied;
use crate::server::admission;
use crate::storage;
use crate::tls::SessionTls;
use unftp_core::storage::{Error as StorageError, ErrorKind};

/// What every handler returns.
pub(super) type Handled = Result<Answer, Failure>;

/// A one-reply answer: the command is done and the session goes on.
pub(super) fn say(code: Code, text: impl Into<std::borrow::Cow<'static, str>>) -> Handled {
    Ok(Answer::new(Reply::new(code, text)))
}

/// The replies to a command and what follows them.
pub(super) struct Answer {
    /// The reply to the command.
    reply: Reply,
    /// A second reply right after it: ABOR's 226 after the aborted transfer's 426, the 421
    /// that closes the connection after a last failed login.
    also: Option<Reply>,
    /// What the session does once the replies are out.
    then: Then,
}

/// What the session does after writing an answer's replies.
// A transfer is prepared once per transfer command and moved, never stored: its size costs a
// copy, where a box would cost an allocation per transfer.
#[allow(clippy::large_enum_variant)]
pub(super) enum Then {
    /// Read the next command.
    Continue,
    /// Close the control connection.
    Close,
    /// AUTH: after the 234, run the TLS handshake on the control connection (RFC 4217 4).
    StartTls {
        /// The session's acceptors, made before the 234 so that a failure is still answered.
        acceptors: SessionTls,
        /// The mechanism the client named.
        mechanism: Mechanism,
    },
    /// Start the transfer, with the reply (its 150) as its preliminary reply; its final reply
    /// comes when it ends.
    Transfer(Box<Prepared>),
}

impl Answer {
    /// One reply; the session goes on.
    pub(super) fn new(reply: Reply) -> Answer {
        Answer {
            reply,
            also: None,
            then: Then::Continue,
        }
    }

    /// A second reply after the first.
    pub(super) fn and(mut self, reply: Reply) -> Answer {
        self.also = Some(reply);
        self
    }

    /// What the session does after the replies.
    pub(super) fn then(mut self, then: Then) -> Answer {
        self.then = then;
        self
    }

    /// Whether a transfer follows the reply (it is logged with its final reply).
    pub(super) fn starts_transfer(&self) -> bool {
        matches!(self.then, Then::Transfer(_))
    }

    /// The replies in order, and what follows them.
    pub(super) fn into_parts(self) -> (Reply, Option<Reply>, Then) {
        (self.reply, self.also, self.then)
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::new(reply)
    }
}

impl From<Failure> for Answer {
    fn from(failure: Failure) -> Answer {
        let closes = matches!(failure, Failure::NoSeat(_));
        let answer = Answer::new(failure.reply());
        if closes {
            answer.then(Then::Close)
        } else {
            answer
        }
    }
}

/// Why a command did not do what it asked.
#[derive(Debug)]
pub(super) enum Failure {
    /// A command that needs a login, before one.
    NotLoggedIn,
    /// The file system (or an object store, in the same terms) failed.
    Storage(StorageError),
    /// The storage back-end cannot do this (object storage: APPE, REST+STOR, renaming a
    /// directory); the text says what.
    Unsupported(&'static str),
    /// The password check failed.
    Login(LoginError),
    /// TLS is required before USER/PASS (`tls.require`, or the user's `require_tls`).
    TlsRequiredForLogin,
    /// The login was good but its home directory cannot be opened.
    HomeUnavailable,
    /// The login was good but no logged-in seat is free; the connection closes.
    NoSeat(admission::Refusal),
    /// The policy refused a data-connection setup.
    Refused(Refusal),
    /// The account's rights refuse the command on its path.
    Denied(Denied),
    /// The login was good but the account has `max_sessions` sessions already.
    TooManySessions,
    /// The upload would make a file larger than the account's `max_upload_bytes`.
    UploadTooLarge {
        /// The limit.
        max: u64,
    },
    /// The upload would take the account past its quota (`quota_bytes` or `quota_files`).
    QuotaExceeded {
        /// Which quota: `bytes` or `files`.
        what: &'static str,
        /// The quota.
        quota: u64,
    },
    /// The account has a quota but its usage file cannot be read: uploads are refused.
    QuotaUnavailable,
    /// The path names something other than a plain file.
    NotAFile,
    /// A REST offset past the end of the file.
    RestartBeyondEnd {
        /// The offset asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// A transfer command without PORT, EPRT, PASV or EPSV before it.
    NoDataConnection,
    /// Data connections must be protected (`tls.require = all`, the user's `require_tls`)
    /// and PROT P was not given.
    ProtectionRequired,
    /// PROT P is in force but TLS is no longer available.
    TlsUnavailable,
}

impl Failure {
    /// The reply for this failure: the one place where error kinds become codes and texts.
    pub(super) fn reply(&self) -> Reply {
        match self {
            Failure::NotLoggedIn => Reply::new(Code::NOT_LOGGED_IN, "Please login with USER and PASS."),
            Failure::Storage(e) => storage_reply(e),
            // What the storage back-end cannot do, with the reason.
            Failure::Unsupported(why) => Reply::new(Code::FILE_UNAVAILABLE, *why),
            Failure::Login(e) => Reply::new(
                Code::NOT_LOGGED_IN,
                match e {
                    LoginError::LockedOut { .. } => "User cannot log in: too many failed attempts, try later.",
                    LoginError::AnonymousDisabled => "User cannot log in: anonymous access is disabled.",
                    _ => "User cannot log in.",
                },
            ),
            Failure::TlsRequiredForLogin => Reply::new(
                Code::NOT_LOGGED_IN,
                "TLS required: use AUTH TLS before logging in.",
            ),
            Failure::HomeUnavailable => Reply::new(
                Code::NOT_LOGGED_IN,
                "User cannot log in: home directory unavailable.",
            ),
            Failure::NoSeat(refusal) => Reply::new(
                Code::SERVICE_NOT_AVAILABLE,
                match refusal {
                    admission::Refusal::Address => "Too many sessions from your address, try again later.",
                    admission::Refusal::Full => "Too many users logged in, try again later.",
                },
            ),
            // RFC 2577 suggests 504 for a refused PORT; the text carries the reason token and
            // the setting that would allow it.
            Failure::Refused(refusal) => Reply::new(Code::PARAMETER_NOT_IMPLEMENTED, refusal.reply_text()),
            Failure::Denied(denied) => denied_reply(denied),
            Failure::TooManySessions => Reply::new(
                Code::NOT_LOGGED_IN,
                "User cannot log in: this account has too many sessions open.",
            ),
            Failure::UploadTooLarge { max } => Reply::new(
                Code::EXCEEDED_STORAGE,
                format!("Upload too large: files may have at most {max} bytes."),
            ),
            Failure::QuotaExceeded { what, quota } => Reply::new(
                Code::EXCEEDED_STORAGE,
                format!("Quota exceeded: this account may hold at most {quota} {what}."),
            ),
            Failure::QuotaUnavailable => Reply::new(
                Code::LOCAL_ERROR,
                "Local error: this account's quota usage cannot be read.",
            ),
            Failure::NotAFile => Reply::new(Code::FILE_UNAVAILABLE, "Not a plain file."),
            // RFC 3659 section 5 suggests 554 for an invalid restart point: refused before
            // anything is opened for writing, created or sent.
            Failure::RestartBeyondEnd { offset, size } => Reply::new(
                Code::INVALID_RESTART,
                format!("Restart offset {offset} is beyond the end of the file (size {size})."),
            ),
            Failure::NoDataConnection => {
                Reply::new(Code::CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first.")
            }
            Failure::ProtectionRequired => Reply::new(
                Code::PROTECTION_REQUIRED,
                "Data connections must be protected: use PROT P.",
            ),
            // RFC 2228: 431, a resource needed for security is unavailable.
            Failure::TlsUnavailable => Reply::new(
                Code::TLS_UNAVAILABLE,
                "Data connections are protected (PROT P) but TLS is no longer available on this server; nothing is sent in clear text.",
            ),
        }
    }
}

/// A refusal by the rights: 550 naming the missing right and the rule's path, 553 for a
/// denied file name, and a hidden path answered as one that does not exist.
fn denied_reply(denied: &Denied) -> Reply {
    match denied {
        Denied::Missing { right, rule_path, .. } => Reply::new(
            Code::FILE_UNAVAILABLE,
            format!("Access is denied: no {right} right at {rule_path}."),
        ),
        // SECURITY: the same words as a missing file, so a hidden name is not confirmed.
        Denied::Hidden | Denied::Unreachable => Reply::new(
            Code::FILE_UNAVAILABLE,
            "The system cannot find the file specified.",
        ),
        Denied::FileName { pattern } => Reply::new(
            Code::BAD_FILENAME,
            format!("File name not allowed: it matches {pattern}."),
        ),
        Denied::NoAccount => Reply::new(
            Code::NOT_LOGGED_IN,
            "Access is denied: this account is no longer valid.",
        ),
    }
}

/// Storage error kinds as codes and texts.
fn storage_reply(e: &StorageError) -> Reply {
    // The back-end files an existing name under "not available"; its own words say better
    // why MKD (or a rename onto a directory) failed.
    if e.get_io_error()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
    {
        return Reply::new(
            Code::FILE_UNAVAILABLE,
            "Cannot create a file when that file already exists.",
        );
    }
    let (code, text) = match e.kind() {
        ErrorKind::TransientFileNotAvailable => (Code::FILE_UNAVAILABLE_BUSY, "File unavailable (busy)."),
        ErrorKind::PermanentFileNotAvailable => (
            Code::FILE_UNAVAILABLE,
            "The system cannot find the file specified.",
        ),
        ErrorKind::PermanentDirectoryNotAvailable => (
            Code::FILE_UNAVAILABLE,
            "The system cannot find the path specified.",
        ),
        ErrorKind::PermanentDirectoryNotEmpty => (Code::FILE_UNAVAILABLE, "The directory is not empty."),
        ErrorKind::PermissionDenied => (Code::FILE_UNAVAILABLE, "Access is denied."),
        ErrorKind::ConnectionClosed => (Code::CONNECTION_CLOSED, "Connection closed; transfer aborted."),
        ErrorKind::LocalError => (Code::LOCAL_ERROR, "Local error in processing."),
        ErrorKind::PageTypeUnknown => (Code::PAGE_TYPE_UNKNOWN, "Page type unknown."),
        ErrorKind::InsufficientStorageSpaceError => {
            (Code::INSUFFICIENT_STORAGE, "Insufficient storage space.")
        }
        ErrorKind::ExceededStorageAllocationError => (Code::EXCEEDED_STORAGE, "Exceeded storage allocation."),
        ErrorKind::FileNameNotAllowedError => (Code::BAD_FILENAME, "File name not allowed."),
        ErrorKind::CommandNotImplemented => (Code::NOT_IMPLEMENTED, "Command not implemented."),
    };
    Reply::new(code, text)
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Failure {
        Failure::Storage(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Storage(e.into())
    }
}

impl From<storage::Error> for Failure {
    fn from(e: storage::Error) -> Failure {
        match e {
            storage::Error::Storage(e) => Failure::Storage(e),
            storage::Error::Refused(why) => Failure::Unsupported(why),
            storage::Error::NotAFile => Failure::NotAFile,
            storage::Error::RestartBeyondEnd { offset, size } => Failure::RestartBeyondEnd { offset, size },
        }
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

impl From<TlsUnavailable> for Failure {
    fn from(_: TlsUnavailable) -> Failure {
        Failure::TlsUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_seat_closes() {
        let (reply, also, then) = Answer::from(Failure::NoSeat(admission::Refusal::Full)).into_parts();
        assert_eq!(reply.code, Code::SERVICE_NOT_AVAILABLE);
        assert!(also.is_none());
        assert!(matches!(then, Then::Close));
        let (reply, _, then) = Answer::from(Failure::NotAFile).into_parts();
        assert_eq!(reply, Reply::new(Code::FILE_UNAVAILABLE, "Not a plain file."));
        assert!(matches!(then, Then::Continue));
    }

    #[test]
    fn refusals_by_the_rights_name_the_right_and_the_rule() {
        use crate::rights::Right;
        let missing = Failure::Denied(Denied::Missing {
            right: Right::Download,
            rule_path: "/incoming".into(),
            source: None,
        });
        assert_eq!(
            missing.reply().to_bytes(),
            b"550 Access is denied: no download right at /incoming.\r\n"
        );
        let name = Failure::Denied(Denied::FileName {
            pattern: "*.exe".into(),
        });
        assert_eq!(name.reply().code, Code::BAD_FILENAME);
        let hidden = Failure::Denied(Denied::Hidden).reply();
        let missing_file = Failure::from(StorageError::from(ErrorKind::PermanentFileNotAvailable)).reply();
        assert_eq!(hidden, missing_file);
    }

    #[test]
    fn storage_errors_map_alike_from_files_and_objects() {
        let kind = ErrorKind::PermanentDirectoryNotEmpty;
        let file = Failure::from(StorageError::from(kind)).reply();
        let object = Failure::from(storage::Error::Storage(StorageError::from(kind))).reply();
        assert_eq!(file, object);
        assert_eq!(file.to_bytes(), b"550 The directory is not empty.\r\n");
        let refused = Failure::from(storage::Error::Refused("Objects cannot be appended to.")).reply();
        assert_eq!(refused.to_bytes(), b"550 Objects cannot be appended to.\r\n");
        let io = Failure::from(std::io::Error::from(std::io::ErrorKind::NotFound)).reply();
        assert_eq!(io.code, Code::FILE_UNAVAILABLE);
    }
}

//! Password hashes: argon2 PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
//!
//! A [`PhcHash`] can only be built from a string that parses as an argon2 PHC string with
//! bounded cost parameters, so the rest of the module never sees plain text or a foreign
//! algorithm in the `password` field of the users file.

use std::fmt;

use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password accepted anywhere (bytes). FTP clients send the password on one
/// command line, which the control codec bounds anyway.
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;

/// Longest PHC string accepted in the users file (bytes).
const MAX_PHC_LEN: usize = 512;

/// Upper bounds for the cost parameters of a stored hash, so that a users file can not make
/// one login verification use unbounded memory or time.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;

/// Why a string is not an acceptable stored password hash. The messages never repeat the
/// offending value: it may be a plain-text password that someone put in the file by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashError {
    /// Longer than the PHC strings argon2 produces.
    TooLong,
    /// Not a PHC string at all (for example a plain-text password).
    NotPhc,
    /// A PHC string of another algorithm (only argon2id, argon2i and argon2d are accepted).
    NotArgon2,
    /// The argon2 version, parameters, salt or output are missing or malformed.
    BadParams,
    /// The cost parameters exceed the bounds this server accepts.
    CostTooHigh,
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            HashError::TooLong => "the password hash is longer than any argon2 PHC string",
            HashError::NotPhc => {
                "the password is not an argon2 PHC string (\"$argon2id$v=19$...\"); \
                 plain-text passwords are not accepted, create users with `fxpd user add`"
            }
            HashError::NotArgon2 => "the password hash is not an argon2 hash (argon2id, argon2i or argon2d)",
            HashError::BadParams => {
                "the argon2 password hash has a missing or malformed version, parameter, salt or output"
            }
            HashError::CostTooHigh => {
                "the argon2 password hash asks for more than 256 MiB of memory, 16 iterations or 16 lanes"
            }
        };
        f.write_str(what)
    }
}

impl std::error::Error for HashError {}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// The password is empty.
    Empty,
    /// The password is longer than 1024 bytes.
    TooLong,
    /// The password contains CR, LF or NUL, which an FTP client can not send in `PASS`.
    ForbiddenChar,
    /// The password read from standard input is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::Empty => f.write_str("the password is empty"),
            PasswordError::TooLong => write!(f, "the password is longer than {MAX_PASSWORD_LEN} bytes"),
            PasswordError::ForbiddenChar => {
                f.write_str("the password contains a line break or NUL, which an FTP client can not send")
            }
            PasswordError::NotUtf8 => f.write_str("the password is not valid UTF-8"),
        }
    }
}

impl std::error::Error for PasswordError {}

/// Checks a password that is about to be hashed and stored.
pub(crate) fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    if password.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(PasswordError::ForbiddenChar);
    }
    Ok(())
}

/// A validated argon2 PHC string. `Debug` never shows the hash.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct PhcHash(String);

impl PhcHash {
    /// Parses and bounds a stored hash.
    pub(crate) fn parse(s: &str) -> Result<PhcHash, HashError> {
        if s.len() > MAX_PHC_LEN {
            return Err(HashError::TooLong);
        }
        let parsed = PasswordHash::new(s).map_err(|_| HashError::NotPhc)?;
        Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::NotArgon2)?;
        if let Some(version) = parsed.version {
            Version::try_from(version).map_err(|_| HashError::BadParams)?;
        }
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(HashError::BadParams);
        }
        let params = Params::try_from(&parsed).map_err(|_| HashError::BadParams)?;
        // SECURITY: a verification runs for every login attempt, so its cost is bounded.
        if params.m_cost() > MAX_M_COST_KIB || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST {
            return Err(HashError::CostTooHigh);
        }
        Ok(PhcHash(s.to_owned()))
    }

    /// The PHC string.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The work one verification takes, in KiB-passes (memory cost times iterations; the
    /// lanes share that memory and run one after another here), for comparing hashes.
    pub(crate) fn cost(&self) -> u64 {
        PasswordHash::new(&self.0)
            .ok()
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .map_or(0, |p| u64::from(p.m_cost()) * u64::from(p.t_cost()))
    }

    /// Checks `password` against this hash. CPU- and memory-heavy: call it off the async
    /// runtime (`spawn_blocking`).
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match PasswordHash::new(&self.0) {
            // The parameters come from the hash itself, not from `Argon2::default()`.
            Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// A hash that no password matches in practice, with the same algorithm, version and
    /// cost as `template` (or the argon2id defaults), so verifying against it costs as much
    /// as verifying a real user's password.
    pub(crate) fn dummy_like(template: Option<&PhcHash>) -> PhcHash {
        template
            .and_then(|t| dummy_from(&t.0))
            .or_else(default_dummy)
            // Unreachable in practice: the default parameters always encode.
            .unwrap_or_else(|| PhcHash(String::from(FALLBACK_DUMMY)))
    }
}

/// The argon2id default-parameter dummy, spelled out, used only if building one fails.
const FALLBACK_DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Sixteen zero bytes in unpadded base64, the salt length `SaltString::generate` uses.
const DUMMY_SALT: &str = "AAAAAAAAAAAAAAAAAAAAAA";

fn dummy_from(template: &str) -> Option<PhcHash> {
    let mut parsed = PasswordHash::new(template).ok()?;
    let len = parsed.hash.as_ref()?.len();
    parsed.salt = Some(Salt::from_b64(DUMMY_SALT).ok()?);
    parsed.hash = Some(Output::new(&vec![0u8; len]).ok()?);
    PhcHash::parse(&parsed.to_string()).ok()
}

fn default_dummy() -> Option<PhcHash> {
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&Params::DEFAULT).ok()?,
        salt: Some(Salt::from_b64(DUMMY_SALT).ok()?),
        hash: Some(Output::new(&[0u8; Params::DEFAULT_OUTPUT_LEN]).ok()?),
    };
    PhcHash::parse(&hash.to_string()).ok()
}

impl TryFrom<String> for PhcHash {
    type Error = HashError;

    fn try_from(s: String) -> Result<PhcHash, HashError> {
        PhcHash::parse(&s)
    }
}

impl From<PhcHash> for String {
    fn from(h: PhcHash) -> String {
        h.0
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhcHash(<redacted>)")
    }
}

/// Hashes `password` with argon2id, `params` and a random salt (no checks on the password).
pub(crate) fn hash_with_params(password: &str, params: Params) -> Result<PhcHash, String> {
    // 16 random bytes, like `SaltString::generate`; argon2's `rand_core` is built without an OS
    // source here, so the bytes come from getrandom directly.
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?;
    PhcHash::parse(&hash.to_string()).map_err(|e| e.to_string())
}

/// Cheap argon2 parameters for tests (8 KiB, one pass).
#[cfg(test)]
pub(crate) fn test_params() -> Params {
    Params::new(8, 1, 1, None).expect("valid test params")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify_round_trip() {
        let hash = hash_with_params("s3cret pass", test_params()).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(hash.verify(b"s3cret pass"));
        assert!(!hash.verify(b"s3cret pas"));
        assert!(!hash.verify(b""));
    }

    #[test]
    fn salts_differ() {
        let a = hash_with_params("pw", test_params()).unwrap();
        let b = hash_with_params("pw", test_params()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn plain_text_and_foreign_hashes_are_refused() {
        assert_eq!(PhcHash::parse("hunter2"), Err(HashError::NotPhc));
        assert_eq!(PhcHash::parse(""), Err(HashError::NotPhc));
        assert_eq!(
            PhcHash::parse("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
            Err(HashError::NotPhc)
        );
        assert_eq!(
            PhcHash::parse("$pbkdf2-sha256$i=1000$c29tZXNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo"),
            Err(HashError::NotArgon2)
        );
        // No output part.
        assert_eq!(
            PhcHash::parse("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA"),
            Err(HashError::BadParams)
        );
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(PhcHash::parse(huge), Err(HashError::CostTooHigh));
        let msg = HashError::NotPhc.to_string();
        assert!(msg.contains("plain-text"), "{msg}");
    }

    #[test]
    fn dummy_matches_template_cost() {
        let real = hash_with_params("pw", test_params()).unwrap();
        let dummy = PhcHash::dummy_like(Some(&real));
        assert!(dummy.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(!dummy.verify(b"pw"));
        let default = PhcHash::dummy_like(None);
        assert!(default.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(default.as_str(), FALLBACK_DUMMY);
    }

    #[test]
    fn cost_orders_hashes_by_memory_and_passes() {
        let cheap = hash_with_params("pw", test_params()).unwrap();
        let costly = hash_with_params("pw", Params::new(64, 3, 1, None).unwrap()).unwrap();
        assert_eq!(cheap.cost(), 8);
        assert_eq!(costly.cost(), 192);
        assert_eq!(PhcHash::dummy_like(None).cost(), 19_456 * 2);
    }

    #[test]
    fn debug_redacts() {
        let hash = hash_with_params("pw", test_params()).unwrap();
        assert_eq!(format!("{hash:?}"), "PhcHash(<redacted>)");
    }

    #[test]
    fn new_password_checks() {
        assert_eq!(check_new_password(""), Err(PasswordError::Empty));
        assert_eq!(
            check_new_password(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(check_new_password("a\nb"), Err(PasswordError::ForbiddenChar));
        assert_eq!(check_new_password(&"x".repeat(MAX_PASSWORD_LEN)), Ok(()));
    }
}

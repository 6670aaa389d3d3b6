//! Unit tests for the users file's parsing and the user database's lookups.

use super::file::{line_col, MAX_USERS_FILE_BYTES};
use super::*;
use crate::auth::password::{hash_with_params, test_params};
use unftp_core::auth::UserDetail;

/// A cheap hash of `pw` for test users files.
pub(crate) fn cheap_hash(pw: &str) -> String {
    hash_with_params(pw, test_params()).unwrap().as_str().to_owned()
}

fn parse(text: &str) -> Result<ParsedUsers, UsersFileError> {
    parse_users(text, Path::new("/etc/fxpd/users.toml"))
}

#[test]
fn parses_a_good_file() {
    let text = format!(
        "# comment\n[[user]]\nname = \"alice\"\npassword = \"{}\"\nhome = \"./alice/files/\"\nwrite = true\n\
             fxp = \"allow\"\n\n[[user]]\nname = \"bob.b@example-1\"\npassword = \"{}\"\n",
        cheap_hash("a"),
        cheap_hash("b")
    );
    let parsed = parse(&text).unwrap();
    let entries: Vec<&UserEntry> = parsed.entries().collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].name.as_str(), "alice");
    assert_eq!(
        entries[0].home.as_ref().unwrap().as_path(),
        Path::new("alice/files")
    );
    assert!(entries[0].write);
    assert_eq!(entries[0].fxp, FxpOverride::Allow);
    assert_eq!(entries[1].home, None);
    assert!(!entries[1].write);
    assert_eq!(entries[1].fxp, FxpOverride::Inherit);
    assert_eq!(&text[parsed.entries[1].0.clone()], "[[user]]");
}

#[test]
fn empty_file_has_no_users() {
    assert!(parse("").unwrap().entries.is_empty());
    assert!(parse("# nobody yet\n").unwrap().entries.is_empty());
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{}\"\nwritable = true\n",
        cheap_hash("a")
    );
    let err = parse(&text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("writable"), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("/etc/fxpd/users.toml"), "{msg}");
    let err = parse("[users]\n").unwrap_err().to_string();
    assert!(err.contains("users") && err.contains("line 1"), "{err}");
}

#[test]
fn bad_names_are_refused() {
    for (name, want) in [
        ("bad name", NameError::BadChar(' ')),
        ("", NameError::Empty),
        ("Anonymous", NameError::Reserved),
        ("ftp", NameError::Reserved),
        ("al/ice", NameError::BadChar('/')),
    ] {
        assert_eq!(UserName::parse(name), Err(want), "{name:?}");
        let text = format!(
            "[[user]]\nname = \"{name}\"\npassword = \"{}\"\n",
            cheap_hash("a")
        );
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains(&want.to_string()), "{msg}");
    }
    assert_eq!(UserName::parse(&"a".repeat(65)), Err(NameError::TooLong));
    assert!(UserName::parse(&"a".repeat(64)).is_ok());
}

#[test]
fn bad_homes_are_refused() {
    for (home, want) in [
        ("../etc", HomeError::ParentDir),
        ("alice/../../x", HomeError::ParentDir),
        ("/etc", HomeError::Absolute),
        ("", HomeError::Empty),
        ("a\0b", HomeError::BadChar('\0')),
        ("c:\\x", HomeError::BadChar(':')),
    ] {
        assert_eq!(RelHome::parse(home), Err(want), "{home:?}");
    }
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{}\"\nhome = \"../x\"\n",
        cheap_hash("a")
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("line 4") && msg.contains(".."), "{msg}");
    assert_eq!(
        RelHome::parse(".").unwrap().under(Path::new("/srv")),
        PathBuf::from("/srv")
    );
    assert_eq!(String::from(RelHome::parse("./a//b/").unwrap()), "a/b");
}

#[test]
fn plain_text_password_is_refused_without_echo() {
    let text = "[[user]]\nname = \"alice\"\npassword = \"hunter2\"\n";
    let msg = parse(text).unwrap_err().to_string();
    assert!(msg.contains("line 3") && msg.contains("PHC"), "{msg}");
    assert!(
        !msg.contains("hunter2"),
        "the error must not echo the password: {msg}"
    );
}

#[test]
fn duplicates_and_missing_fields() {
    let h = cheap_hash("a");
    let text =
        format!("[[user]]\nname = \"a\"\npassword = \"{h}\"\n[[user]]\nname = \"a\"\npassword = \"{h}\"\n");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("line 4") && msg.contains("defined twice"), "{msg}");
    let msg = parse("[[user]]\nname = \"a\"\n").unwrap_err().to_string();
    assert!(msg.contains("password"), "{msg}");
    let msg = parse(&format!(
        "[[user]]\nname = \"a\"\npassword = \"{h}\"\nfxp = \"maybe\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(msg.contains("line 4"), "{msg}");
}

#[test]
fn load_reports_missing_file_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = UserDb::load(&missing, dir.path()).unwrap_err();
    assert!(matches!(err, UsersFileError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"));
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; MAX_USERS_FILE_BYTES as usize + 1]).unwrap();
    assert!(matches!(
        UserDb::load(&big, dir.path()),
        Err(UsersFileError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn authenticate_and_details() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{}\"\nhome = \"alice\"\nwrite = true\nfxp = \"deny\"\n\
             [[user]]\nname = \"bob\"\npassword = \"{}\"\n",
        cheap_hash("pw-a"),
        cheap_hash("pw-b")
    );
    std::fs::write(&file, text).unwrap();
    let root = Path::new("/srv/ftp");
    let db = UserDb::load(&file, root).unwrap();
    assert_eq!(db.len(), 2);
    assert!(!db.is_empty());
    assert!(!format!("{db:?}").contains("argon2"));

    let p = db
        .authenticate("alice", &Credentials::from("pw-a"))
        .await
        .unwrap();
    let user = db.provide_user_detail(&p).await.unwrap();
    assert_eq!(user.home(), Some(Path::new("/srv/ftp/alice")));
    assert!(user.home.strip_prefix(root).is_ok());
    assert!(user.write && !user.anonymous);
    assert_eq!(user.fxp, FxpOverride::Deny);

    let p = db.authenticate("bob", &Credentials::from("pw-b")).await.unwrap();
    let user = db.provide_user_detail(&p).await.unwrap();
    assert_eq!(user.home, PathBuf::from("/srv/ftp"));
    assert!(!user.write);

    assert!(matches!(
        db.authenticate("alice", &Credentials::from("pw-b")).await,
        Err(AuthenticationError::BadPassword)
    ));
    assert!(matches!(
        db.authenticate("carol", &Credentials::from("pw-a")).await,
        Err(AuthenticationError::BadUser)
    ));
    let missing = Principal {
        username: "carol".into(),
    };
    assert!(db.provide_user_detail(&missing).await.is_err());
}

#[tokio::test]
async fn empty_db_refuses_everyone() {
    let db = UserDb::empty(Path::new("/srv"));
    assert!(db.is_empty());
    assert!(matches!(
        db.authenticate("alice", &Credentials::from("x")).await,
        Err(AuthenticationError::BadUser)
    ));
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("ab", 99), (1, 3));
}

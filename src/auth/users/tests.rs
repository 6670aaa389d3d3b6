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

/// A file with a group, `[anonymous]`, `[everyone]` and two users.
fn groups_file() -> String {
    format!(
        "[everyone]\nhidden = [\".git\"]\nmax_upload_bytes = 10\n\n\
         [anonymous]\nrules = [{{ path = \"/incoming\", allow = [\"upload\"], deny = [\"list\", \"download\"] }}]\n\n\
         [[group]]\nname = \"staff\"\nrules = [{{ path = \"/shared\", allow = [\"write\"] }}]\n\
         deny_files = [\"*.exe\"]\nmax_upload_bytes = 100\nallowed_networks = [\"192.0.2.0/24\"]\nmax_sessions = 2\n\
         quota_bytes = 1000\nquota_files = 7\n\n\
         [[user]]\nname = \"alice\"\npassword = \"{}\"\ngroups = [\"staff\"]\nmax_sessions = 5\n\
         quota_files = 3\n\
         expires = \"2020-01-31\"\n\n\
         [[user.rules]]\npath = \"/shared/keep\"\ndeny = [\"delete\"]\n\n\
         [[user]]\nname = \"bob\"\npassword = \"{}\"\ndisabled = true\n",
        cheap_hash("a"),
        cheap_hash("b")
    )
}

#[test]
fn groups_are_inherited_and_the_users_own_settings_win() {
    use crate::rights::Right;
    let parsed = parse(&groups_file()).unwrap();
    assert_eq!(parsed.groups().count(), 1);
    let db = UserDb::from_doc(parsed.doc(), Path::new("/srv"));
    let alice = db.account("alice").unwrap();
    let r = &alice.rights;
    assert!(r.decide("/shared/a", Right::Upload).is_ok());
    assert!(r.decide("/shared/keep/a", Right::Delete).is_err());
    assert!(r.decide("/shared/keep/a", Right::Upload).is_ok());
    assert!(r.decide("/other", Right::Upload).is_err());
    assert!(r.decide("/shared/x.EXE", Right::Upload).is_err());
    assert!(r.decide("/.git/x", Right::List).is_err());
    let l = &alice.limits;
    assert_eq!(l.max_sessions, Some(5), "the user's own limit wins");
    assert_eq!(l.max_upload_bytes, Some(100), "the group's beats everyone's");
    assert_eq!(
        l.quota_bytes,
        Some(1000),
        "the group's quota applies to its member"
    );
    assert_eq!(l.quota_files, Some(3), "the user's own quota wins");
    let inside: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    let outside: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    let before = chrono::DateTime::parse_from_rfc3339("2020-01-31T23:59:59Z")
        .unwrap()
        .to_utc();
    let after = chrono::DateTime::parse_from_rfc3339("2020-02-01T00:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(l.refusal(inside, || before), None);
    assert_eq!(
        l.refusal(outside, || before),
        Some("client network not allowed for this account")
    );
    assert_eq!(l.refusal(inside, || after), Some("account expired"));
    assert_eq!(
        db.account("bob").unwrap().limits.refusal(inside, || before),
        Some("account disabled")
    );
    let anon = db.anonymous_account(false);
    assert!(anon.rights.decide("/incoming/f", Right::Upload).is_ok());
    assert!(anon.rights.decide("/incoming/f", Right::List).is_err());
    assert!(anon.rights.decide("/incoming/f", Right::Overwrite).is_err());
    assert!(anon.rights.decide("/pub/f", Right::Download).is_ok());
    assert_eq!(anon.limits.max_upload_bytes, Some(10));
}

#[test]
fn group_errors_name_the_line() {
    let text = groups_file().replace("groups = [\"staff\"]", "groups = [\"stuff\"]");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("\"stuff\"") && err.contains("line 18"), "{err}");
    let text = format!("{}\n[[group]]\nname = \"staff\"\n", groups_file());
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("defined twice") && err.contains("line 35"), "{err}");
    for (bad, needle) in [
        ("path = \"/shared/keep\"", "path = \"shared\""),
        ("deny = [\"delete\"]", "deny = [\"remove\"]"),
        ("max_sessions = 2", "max_sessions = -1"),
        ("expires = \"2020-01-31\"", "expires = \"31.01.2020\""),
        (
            "allowed_networks = [\"192.0.2.0/24\"]",
            "allowed_networks = [\"192.0.2.1/24\"]",
        ),
        ("max_sessions = 2", "max_sesions = 2"),
    ] {
        let text = groups_file().replace(bad, needle);
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("line "), "{needle}: {err}");
    }
}

/// Every users-file example in docs/users.md and the README parses (with a real hash in
/// place of the elided one); the configuration snippets (`enabled = ...`) are left out.
#[test]
fn documented_examples_parse() {
    let hash = cheap_hash("x");
    let mut seen = 0;
    for doc in [
        include_str!("../../../docs/users.md"),
        include_str!("../../../README.md"),
    ] {
        for block in doc.split("```toml\n").skip(1) {
            let block = block.split("```").next().unwrap();
            if block.contains("enabled =") || !(block.contains("[[") || block.contains("[anonymous]")) {
                continue;
            }
            if block.contains("listen =") {
                continue;
            }
            let text = block.replace("$argon2id$v=19$m=19456,t=2,p=1$...", &hash);
            let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            UserDb::from_doc(parsed.doc(), Path::new("/srv"));
            seen += 1;
        }
    }
    assert!(seen >= 3, "only {seen} examples found");
}

/// An unknown name is verified against a hash as costly as the costliest in the file, wherever
/// that entry stands, so that the time of a failure does not tell whether the name exists.
#[test]
fn the_dummy_hash_has_the_costliest_parameters_in_the_file() {
    use argon2::Params;
    let hash = |m_kib: u32, t: u32| {
        let params = Params::new(m_kib, t, 1, None).unwrap();
        hash_with_params("pw", params).unwrap().as_str().to_owned()
    };
    // Costs (KiB x passes): 8, 192, 64; the costliest is neither first nor last.
    let text = format!(
        "[[user]]\nname = \"cheap\"\npassword = \"{}\"\n\n[[user]]\nname = \"costly\"\npassword = \"{}\"\n\n\
         [[user]]\nname = \"middle\"\npassword = \"{}\"\n",
        hash(8, 1),
        hash(64, 3),
        hash(32, 2)
    );
    let db = UserDb::from_doc(parse(&text).unwrap().doc(), Path::new("/srv/ftp"));
    assert_eq!(db.dummy.cost(), 64 * 3);
    assert_eq!(
        UserDb::empty(Path::new("/srv/ftp")).dummy.cost(),
        19_456 * 2,
        "no users: the defaults"
    );
}

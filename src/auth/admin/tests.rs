//! Unit tests for the CLI's user administration: add, remove, list and password reading.

use std::fs;

use super::*;
use crate::auth::password::{test_params, PhcHash};
use crate::auth::UserDb;

fn add(file: &Path, name: &str, home: Option<&str>, write: bool, fxp: FxpOverride) -> Result<(), AdminError> {
    user_add_with_params(
        file,
        name,
        "pw-of-a-user",
        home.map(Path::new),
        write,
        fxp,
        test_params(),
    )
}

fn names(file: &Path) -> Vec<String> {
    user_list(file).unwrap().into_iter().map(|u| u.name).collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn hash_password_uses_argon2id_defaults_and_verifies() {
    let hash = hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    let parsed = PhcHash::parse(&hash).unwrap();
    assert!(parsed.verify(b"correct horse"));
    assert!(!parsed.verify(b"correct horsE"));
    assert!(matches!(
        hash_password(""),
        Err(AdminError::InvalidPassword(PasswordError::Empty))
    ));
    assert!(matches!(
        hash_password(&"x".repeat(MAX_PASSWORD_LEN + 1)),
        Err(AdminError::InvalidPassword(PasswordError::TooLong))
    ));
}

#[test]
fn add_list_remove_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");

    add(&file, "alice", Some("alice"), true, FxpOverride::Allow).unwrap();
    assert!(file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    add(&file, "bob", None, false, FxpOverride::Inherit).unwrap();
    add(&file, "carol", Some("shared/carol"), false, FxpOverride::Deny).unwrap();

    let list = user_list(&file).unwrap();
    assert_eq!(
        list[0],
        UserSummary {
            name: "alice".into(),
            home: Some(PathBuf::from("alice")),
            write: true,
            fxp: FxpOverride::Allow,
            require_tls: false,
            groups: Vec::new(),
            expires: None,
            disabled: false,
        }
    );
    assert_eq!(list[1].home, None);
    assert_eq!(list[2].fxp, FxpOverride::Deny);
    assert_eq!(list[2].home, Some(PathBuf::from("shared/carol")));

    // Duplicate refused, file unchanged.
    let before = fs::read_to_string(&file).unwrap();
    let err = add(&file, "bob", None, true, FxpOverride::Allow).unwrap_err();
    assert!(matches!(err, AdminError::DuplicateUser { .. }));
    assert!(
        err.to_string().contains("\"bob\"") && err.to_string().contains("users.toml"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), before);

    // Remove the middle entry; the others stay intact, byte for byte.
    user_remove(&file, "bob").unwrap();
    assert_eq!(names(&file), ["alice", "carol"]);
    let after = fs::read_to_string(&file).unwrap();
    let alice_block = before.split("[[user]]").nth(1).unwrap();
    assert!(after.contains(alice_block.trim_end()));

    // Removing a missing user is refused.
    let err = user_remove(&file, "bob").unwrap_err();
    assert!(matches!(err, AdminError::UnknownUser { .. }));
    assert!(err.to_string().contains("\"bob\""), "{err}");

    user_remove(&file, "carol").unwrap();
    user_remove(&file, "alice").unwrap();
    assert!(names(&file).is_empty());
    assert!(leftovers(dir.path()).is_empty());

    // The file is loadable by the server at every step.
    add(&file, "dave", None, false, FxpOverride::Inherit).unwrap();
    assert_eq!(UserDb::load(&file, dir.path()).unwrap().len(), 1);
}

#[test]
fn hand_written_comments_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    add(&file, "tmp", None, false, FxpOverride::Inherit).unwrap();
    let hash = user_hash(&file);
    let text = format!(
        "# site users\n\n# the accountant\n[[user]]\nname = \"alice\"\npassword = \"{hash}\" # set 2024\n\n\
             # backups\n[[user]]\nname = \"backup\"\npassword = \"{hash}\"\nwrite = true\n"
    );
    fs::write(&file, &text).unwrap();
    add(&file, "bob", None, false, FxpOverride::Inherit).unwrap();
    let added = fs::read_to_string(&file).unwrap();
    assert!(added.starts_with(&text), "{added}");

    user_remove(&file, "alice").unwrap();
    let removed = fs::read_to_string(&file).unwrap();
    assert!(
        removed.starts_with("# site users\n\n# backups\n[[user]]\nname = \"backup\""),
        "{removed}"
    );
    assert!(!removed.contains("accountant") && !removed.contains("alice"));
    assert_eq!(names(&file), ["backup", "bob"]);

    // A changed entry is rewritten below the comments that describe it.
    let edit = ProfileEdit {
        max_sessions: Some(2),
        ..ProfileEdit::default()
    };
    user_set(&file, "backup", &edit).unwrap();
    let set = fs::read_to_string(&file).unwrap();
    assert!(
        set.starts_with("# site users\n\n# backups\n[[user]]\nname = \"backup\""),
        "{set}"
    );
    assert!(set.contains("max_sessions = 2"), "{set}");
}

#[test]
fn inline_array_layout_falls_back_to_rewriting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    add(&file, "tmp", None, false, FxpOverride::Inherit).unwrap();
    let hash = user_hash(&file);
    fs::write(
        &file,
        format!("user = [{{ name = \"a\", password = \"{hash}\" }}]\n"),
    )
    .unwrap();
    add(&file, "b", None, true, FxpOverride::Inherit).unwrap();
    assert_eq!(names(&file), ["a", "b"]);
    user_remove(&file, "a").unwrap();
    assert_eq!(names(&file), ["b"]);
}

#[test]
fn invalid_input_is_refused_before_touching_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let err = add(&file, "bad name", None, false, FxpOverride::Inherit).unwrap_err();
    assert!(matches!(
        err,
        AdminError::InvalidName {
            reason: NameError::BadChar(' '),
            ..
        }
    ));
    assert!(err.to_string().contains("\"bad name\""), "{err}");
    assert!(matches!(
        add(&file, "anonymous", None, false, FxpOverride::Inherit),
        Err(AdminError::InvalidName { .. })
    ));
    let err = add(&file, "alice", Some("../x"), false, FxpOverride::Inherit).unwrap_err();
    assert!(matches!(
        err,
        AdminError::InvalidHome {
            reason: HomeError::ParentDir,
            ..
        }
    ));
    assert!(matches!(
        add(&file, "alice", Some("/abs"), false, FxpOverride::Inherit),
        Err(AdminError::InvalidHome {
            reason: HomeError::Absolute,
            ..
        })
    ));
    let err = user_add_with_params(
        &file,
        "alice",
        "",
        None,
        false,
        FxpOverride::Inherit,
        test_params(),
    );
    assert!(matches!(
        err,
        Err(AdminError::InvalidPassword(PasswordError::Empty))
    ));
    assert!(!file.exists());
}

#[test]
fn invalid_existing_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    fs::write(&file, "[[user]]\nname = \"alice\"\npassword = \"plain\"\n").unwrap();
    let err = add(&file, "bob", None, false, FxpOverride::Inherit).unwrap_err();
    assert!(matches!(err, AdminError::File(UsersFileError::Syntax { .. })));
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(!err.to_string().contains("plain\""), "{err}");
    assert!(matches!(user_remove(&file, "alice"), Err(AdminError::File(_))));
    assert!(matches!(user_list(&file), Err(AdminError::File(_))));
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "[[user]]\nname = \"alice\"\npassword = \"plain\"\n"
    );
}

#[test]
fn missing_file_for_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("none.toml");
    assert!(matches!(
        user_list(&file),
        Err(AdminError::File(UsersFileError::Read { .. }))
    ));
    let err = user_remove(&file, "alice").unwrap_err();
    assert!(err.to_string().contains("none.toml"), "{err}");
    assert!(!file.exists());
}

#[cfg(unix)]
#[test]
fn mode_and_symlink_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.toml");
    add(&real, "alice", None, false, FxpOverride::Inherit).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("users.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    add(&link, "bob", None, false, FxpOverride::Inherit).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(names(&real), ["alice", "bob"]);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn password_lines() {
    let read = |s: &str| read_password_line(io::Cursor::new(s.as_bytes().to_vec()));
    assert_eq!(read("secret\r\nrest\n").unwrap(), "secret");
    assert_eq!(read("secret\n").unwrap(), "secret");
    assert_eq!(read("secret").unwrap(), "secret");
    assert_eq!(read(" spaced out \n").unwrap(), " spaced out ");
    assert!(matches!(
        read("\n"),
        Err(AdminError::InvalidPassword(PasswordError::Empty))
    ));
    assert!(matches!(
        read(""),
        Err(AdminError::InvalidPassword(PasswordError::Empty))
    ));
    let long = format!("{}\n", "x".repeat(MAX_PASSWORD_LEN + 1));
    assert!(matches!(
        read(&long),
        Err(AdminError::InvalidPassword(PasswordError::TooLong))
    ));
    assert_eq!(
        read(&format!("{}\r\n", "x".repeat(MAX_PASSWORD_LEN)))
            .unwrap()
            .len(),
        MAX_PASSWORD_LEN
    );
    let bad = read_password_line(io::Cursor::new(vec![0xff, b'\n']));
    assert!(matches!(
        bad,
        Err(AdminError::InvalidPassword(PasswordError::NotUtf8))
    ));
}

/// The hash of the only user in `file` (tests build hand-written files with it).
fn user_hash(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap();
    let parsed = parse_users(&text, file).unwrap();
    let entry = parsed.entries().next().unwrap();
    entry.password.as_str().to_owned()
}

#[test]
fn groups_and_user_settings_keep_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    add(&file, "alice", None, false, FxpOverride::Inherit).unwrap();
    add(&file, "bob", None, true, FxpOverride::Inherit).unwrap();
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str(
        "\n# the drop box\n[anonymous]\nrules = [{ path = \"/incoming\", allow = [\"upload\"] }]\n",
    );
    fs::write(&file, &text).unwrap();
    let edit = ProfileEdit {
        allow: vec!["/shared=write".into()],
        deny_files: Some(vec!["*.exe".into()]),
        ..ProfileEdit::default()
    };
    group_add(&file, "staff", &edit).unwrap();
    assert!(
        group_add(&file, "staff", &edit).is_err(),
        "a second group of one name"
    );
    let edit = ProfileEdit {
        groups: Some(vec!["staff".into()]),
        deny: vec!["/shared/keep=delete".into()],
        max_sessions: Some(3),
        expires: Some("2030-01-01".into()),
        ..ProfileEdit::default()
    };
    user_set(&file, "alice", &edit).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("# the drop box\n[anonymous]"), "{text}");
    let (allowed, why) = user_explain(&file, "alice", "/shared/keep/x", "delete", false).unwrap();
    assert!(!allowed && why.contains("user alice rule"), "{why}");
    let (allowed, why) = user_explain(&file, "alice", "/shared/x", "upload", false).unwrap();
    assert!(allowed && why.contains("group staff rule at /shared"), "{why}");
    let (allowed, _) = user_explain(&file, "anonymous", "/incoming/f", "upload", false).unwrap();
    assert!(allowed);
    let shown = user_show(&file, "alice", false).unwrap();
    assert!(
        shown.contains("max_sessions: 3 (user alice)") && shown.contains("expires: 2030-01-01"),
        "{shown}"
    );
    assert!(user_explain(&file, "alice", "/x", "fly", false).is_err());
    assert!(user_explain(&file, "alice", "x", "list", false).is_err());

    // A group with members stays; without members it goes, and the rest of the file stays.
    assert!(group_remove(&file, "staff").is_err());
    user_set(
        &file,
        "alice",
        &ProfileEdit {
            clear: vec!["groups".into(), "rules".into()],
            ..ProfileEdit::default()
        },
    )
    .unwrap();
    group_remove(&file, "staff").unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("staff") && text.contains("# the drop box"),
        "{text}"
    );
    assert_eq!(names(&file), ["alice", "bob"]);
    assert!(group_list(&file).unwrap().is_empty());
    // Bad values change nothing.
    let before = fs::read_to_string(&file).unwrap();
    for edit in [
        ProfileEdit {
            allow: vec!["/a/../b=list".into()],
            ..ProfileEdit::default()
        },
        ProfileEdit {
            groups: Some(vec!["ghost".into()]),
            ..ProfileEdit::default()
        },
        ProfileEdit {
            allowed_networks: Some(vec!["10.0.0.1/8".into()]),
            ..ProfileEdit::default()
        },
    ] {
        assert!(user_set(&file, "alice", &edit).is_err(), "{edit:?}");
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    assert!(leftovers(dir.path()).is_empty());
}

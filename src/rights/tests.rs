use super::*;
use proptest::prelude::*;

fn rule(path: &str, allow: &[&str], deny: &[&str], source: Source) -> Rule {
    Rule {
        spec: RuleSpec {
            path: RulePath::parse(path).unwrap(),
            allow: RightSet::parse(allow.iter().copied()).unwrap(),
            deny: RightSet::parse(deny.iter().copied()).unwrap(),
        },
        source,
    }
}

fn drop_box() -> Rights {
    Rights::new(
        vec![
            Rights::default_rules(false),
            rule("/incoming", &["upload"], &["list", "download"], Source::Anonymous),
        ],
        Vec::new(),
        Vec::new(),
    )
}

#[test]
fn deny_by_default_names_the_root() {
    let none = Rights::new(Vec::new(), Vec::new(), Vec::new());
    assert_eq!(
        none.decide("/a", Right::List),
        Err(Denied::Missing {
            right: Right::List,
            rule_path: "/".into(),
            source: None
        })
    );
}

#[test]
fn the_old_switch_is_a_default_rule() {
    let ro = Rights::new(vec![Rights::default_rules(false)], Vec::new(), Vec::new());
    for right in Right::ALL {
        let allowed = matches!(right, Right::List | Right::Download);
        assert_eq!(ro.decide("/x/y", right).is_ok(), allowed, "{right}");
    }
    let rw = Rights::new(vec![Rights::default_rules(true)], Vec::new(), Vec::new());
    assert!(Right::ALL.iter().all(|r| rw.decide("/x", *r).is_ok()));
}

#[test]
fn the_drop_box() {
    let r = drop_box();
    assert!(r.decide("/incoming/new.bin", Right::Upload).is_ok());
    assert!(r.decide("/incoming", Right::Upload).is_ok());
    for right in [Right::List, Right::Download] {
        let e = r.decide("/incoming/new.bin", right).unwrap_err();
        assert_eq!(
            e,
            Denied::Missing {
                right,
                rule_path: "/incoming".into(),
                source: Some(Source::Anonymous)
            }
        );
    }
    for right in [
        Right::Overwrite,
        Right::Delete,
        Right::Append,
        Right::Rename,
        Right::Mkdir,
    ] {
        assert!(r.decide("/incoming/new.bin", right).is_err(), "{right}");
    }
    assert!(r.decide("/pub/file", Right::Download).is_ok());
    assert!(r.decide("/pub/file", Right::Upload).is_err());
    assert!(r.decide("/incomingx/file", Right::Upload).is_err());
}

#[test]
fn deepest_path_then_source_then_deny() {
    let r = Rights::new(
        vec![
            rule("/", &["all"], &[], Source::Default),
            rule("/a", &[], &["delete"], Source::Group("g".into())),
            rule("/a", &["delete"], &[], Source::User("u".into())),
            rule("/a/b", &["upload"], &["upload"], Source::User("u".into())),
            rule("/a/b/c", &["rename"], &[], Source::Group("g".into())),
            rule("/a/b", &[], &["rename"], Source::User("u".into())),
        ],
        Vec::new(),
        Vec::new(),
    );
    // The user's rule overrides the group's at the same path.
    assert!(r.decide("/a/f", Right::Delete).is_ok());
    // Deny beats allow at the same path and source.
    assert_eq!(
        r.decide("/a/b/f", Right::Upload),
        Err(Denied::Missing {
            right: Right::Upload,
            rule_path: "/a/b".into(),
            source: Some(Source::User("u".into()))
        })
    );
    // A deeper group rule beats a shallower user rule.
    assert!(r.decide("/a/b/c/f", Right::Rename).is_ok());
    assert!(r.decide("/a/b/f", Right::Rename).is_err());
}

#[test]
fn hidden_segments_and_denied_names() {
    let r = Rights::new(
        vec![Rights::default_rules(true)],
        vec![Pattern::parse("*.exe").unwrap()],
        vec![Pattern::parse(".git").unwrap()],
    );
    assert_eq!(r.decide("/p/.GIT/config", Right::Download), Err(Denied::Hidden));
    assert_eq!(r.decide("/.git", Right::List), Err(Denied::Hidden));
    assert!(r.hides(".Git") && !r.hides("git"));
    assert_eq!(
        r.decide("/up/Setup.EXE", Right::Upload),
        Err(Denied::FileName {
            pattern: "*.exe".into()
        })
    );
    assert!(r.decide("/up/setup.exe", Right::Download).is_ok());
    assert!(r.decide("/up/setup.txt", Right::Upload).is_ok());
}

#[test]
fn revoked_refuses_everything() {
    assert_eq!(Rights::revoked().decide("/", Right::List), Err(Denied::NoAccount));
}

#[test]
fn rule_paths_are_strict() {
    assert_eq!(RulePath::parse("//a//b/").unwrap().as_str(), "/a/b");
    assert_eq!(RulePath::parse("/").unwrap().depth(), 0);
    assert!(RulePath::parse("a").is_err());
    assert!(RulePath::parse("/a/../b").is_err());
    assert!(RulePath::parse("/a/./b").is_err());
    assert!(RulePath::parse("/a\n").is_err());
    assert!(RightSet::parse(["read", "bogus"]).is_err());
    assert_eq!(RightSet::parse(["READ"]).unwrap(), RightSet::read());
    assert_eq!(RightSet::read().union(RightSet::write()), RightSet::all());
}

/// One spelling of a path segment, or a noise segment.
fn spelled(parts: Vec<(String, u8)>) -> String {
    let mut out = String::new();
    for (part, noise) in parts {
        match noise % 6 {
            0 => out.push_str(&format!("/{part}")),
            1 => out.push_str(&format!("//{part}/")),
            2 => out.push_str(&format!("/./{part}")),
            3 => out.push_str(&format!("/{part}/x/..")),
            4 => out.push_str(&format!("/{}", part.to_uppercase())),
            _ => out.push_str(&format!("/zz/../{part}/.")),
        }
    }
    out
}

proptest! {
    /// No spelling of a path (`..`, `//`, `.`, trailing `/`, case) reaches what the rules deny
    /// for its canonical form: the session resolves first, and the decision ignores case.
    #[test]
    fn no_spelling_reaches_a_denied_path(
        parts in prop::collection::vec(("[a-c]{1,2}", any::<u8>()), 1..5),
        cwd_parts in prop::collection::vec("[a-c]{1,2}", 0..3),
        right_index in 0usize..9,
    ) {
        let right = Right::ALL[right_index];
        let r = Rights::new(
            vec![
                rule("/", &["all"], &[], Source::Default),
                rule("/a", &[], &["all"], Source::User("u".into())),
                rule("/b/c", &[], &["download", "upload"], Source::Group("g".into())),
                rule("/b/c/a", &["download"], &[], Source::Group("g".into())),
            ],
            Vec::new(),
            vec![Pattern::parse("c?").unwrap()],
        );
        let canonical: String = parts.iter().map(|(p, _)| format!("/{p}")).collect();
        let canonical_decision = r.decide(&canonical, right);
        let cwd: String = cwd_parts.iter().map(|p| format!("/{p}")).collect();
        let cwd = if cwd.is_empty() { "/".to_owned() } else { cwd };
        // Absolute spellings, and the same path reached from a working directory.
        let absolute = spelled(parts.clone());
        let ups = "../".repeat(cwd_parts.len() + 1);
        let relative = format!("{ups}{}", absolute.trim_start_matches('/'));
        for arg in [absolute.clone(), format!("{absolute}/"), relative] {
            let resolved = crate::path::resolve(&cwd, &arg);
            prop_assert_eq!(resolved.to_lowercase(), canonical.to_lowercase());
            let decision = r.decide(&resolved, right);
            if canonical_decision.is_err() {
                prop_assert!(decision.is_err(), "{} ({}) reached a denied {}", arg, resolved, right);
            }
            prop_assert_eq!(decision.is_ok(), canonical_decision.is_ok());
        }
    }
}

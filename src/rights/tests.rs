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

/// A model file system's links: `(link path, target)`; names compared with or without case.
struct ModelLinks {
    links: Vec<(String, String)>,
    case_insensitive: bool,
}

impl ModelLinks {
    fn at(&self, path: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|(at, _)| {
                if self.case_insensitive {
                    at.to_lowercase() == path.to_lowercase()
                } else {
                    at == path
                }
            })
            .map(|(_, target)| target.as_str())
    }

    fn read_link(&self, path: &str) -> links::Link {
        match self.at(path) {
            Some(target) => links::Link::Target(target.to_owned()),
            None => links::Link::NotALink,
        }
    }

    /// Where the file system ends up, by another method than [`links::reached`]: rewrite the
    /// shortest prefix that is a link with its target and normalise the text, until no prefix
    /// is a link. (Exact because the targets below put `..` only in front.)
    fn reach(&self, path: &str) -> Option<String> {
        let mut path = path.to_owned();
        for _ in 0..=links::MAX_LINKS {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let found = (1..=parts.len()).find_map(|i| {
                let prefix = format!("/{}", parts[..i].join("/"));
                self.at(&prefix).map(|t| (i, t.to_owned()))
            });
            let Some((i, target)) = found else {
                return Some(format!("/{}", parts.join("/")));
            };
            let parent = format!("/{}", parts[..i - 1].join("/"));
            let base = if target.starts_with('/') {
                target
            } else {
                format!("{parent}/{target}")
            };
            let mut out: Vec<&str> = Vec::new();
            let joined = format!("{base}/{}", parts[i..].join("/"));
            for part in joined.split('/').filter(|p| !p.is_empty() && *p != ".") {
                if part == ".." {
                    out.pop()?;
                } else {
                    out.push(part);
                }
            }
            path = format!("/{}", out.join("/"));
        }
        None
    }
}

proptest! {
    // More cases than the default: the paths that go through a link two levels down are a
    // small share of the random ones, and each case costs microseconds.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Symbolic links cannot carry a path past the rules: whatever links a home holds (to a
    /// denied directory, in a loop, above the home) and however the path is spelled, an
    /// allowed action is allowed both on the path as named and on the path the file system
    /// reaches; and when both allow, it is not refused. Link names are matched with case (a
    /// case-sensitive file system) or without (a case-insensitive one): the rules hold either
    /// way, since they compare without case and the file system decides which links it
    /// follows.
    #[test]
    fn no_symbolic_link_reaches_a_denied_path(
        // Mostly one letter, so that paths often run through the links below (`/c/a`...).
        parts in prop::collection::vec(
            (prop_oneof![4 => "[a-c]", 1 => "[a-c]{2}"], any::<u8>()),
            1..5,
        ),
        cwd_parts in prop::collection::vec("[a-c]{1,2}", 0..3),
        links in prop::collection::vec(
            (
                prop::sample::select(vec!["/a", "/b", "/c/a", "/b/c", "/a/b", "/c", "/ab", "/B"]),
                prop::sample::select(vec![
                    "../a", "/b/c", "a", "..", "../../x", "b/c/a", "/a/b", "../b/c", "c", "/",
                    "ab/.", "../A",
                ]),
            ),
            0..4,
        ),
        case_insensitive in any::<bool>(),
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
        let model = ModelLinks {
            links: links.iter().map(|(a, t)| ((*a).to_owned(), (*t).to_owned())).collect(),
            case_insensitive,
        };
        let cwd: String = cwd_parts.iter().map(|p| format!("/{p}")).collect();
        let cwd = if cwd.is_empty() { "/".to_owned() } else { cwd };
        let absolute = spelled(parts.clone());
        let ups = "../".repeat(cwd_parts.len() + 1);
        let relative = format!("{ups}{}", absolute.trim_start_matches('/'));
        for arg in [absolute.clone(), format!("{absolute}/"), relative] {
            let named = crate::path::resolve(&cwd, &arg);
            let reached = model.reach(&named);
            prop_assert_eq!(
                links::reached(&named, |p| model.read_link(p)),
                reached.clone()
            );
            let decision = r.decide_reached(&named, right, |p| model.read_link(p));
            let both = r.decide(&named, right).is_ok()
                && reached.as_deref().is_some_and(|t| r.decide(t, right).is_ok());
            // SECURITY: the dangerous direction: allowed only if the reached path is allowed.
            if decision.is_ok() {
                prop_assert!(
                    both,
                    "{} ({} reaching {:?}) allowed {} through links {:?}",
                    arg, named, reached, right, links
                );
            }
            prop_assert_eq!(decision.is_ok(), both, "{} reaching {:?}", named, reached);
        }
    }
}

#[test]
fn a_link_to_a_denied_directory_is_refused_under_an_allowed_name() {
    let r = Rights::new(
        vec![
            rule("/", &["all"], &[], Source::Default),
            rule("/secret", &[], &["all"], Source::User("u".into())),
        ],
        Vec::new(),
        vec![Pattern::parse(".git").unwrap()],
    );
    let model = ModelLinks {
        links: vec![
            ("/pub/s".into(), "../secret".into()),
            ("/pub/g".into(), "../.git".into()),
            ("/pub/loop".into(), "loop".into()),
            ("/secret/back".into(), "../pub".into()),
        ],
        case_insensitive: false,
    };
    let decide = |p: &str, right| r.decide_reached(p, right, |q| model.read_link(q));
    assert!(decide("/pub/f", Right::Download).is_ok());
    assert_eq!(
        decide("/pub/s/f", Right::Download),
        Err(Denied::Missing {
            right: Right::Download,
            rule_path: "/secret".into(),
            source: Some(Source::User("u".into())),
        })
    );
    assert!(decide("/pub/s/new", Right::Upload).is_err());
    assert_eq!(decide("/pub/g/config", Right::Download), Err(Denied::Hidden));
    assert_eq!(decide("/pub/loop", Right::List), Err(Denied::Unreachable));
    // A link in the home's `/` to a denied sibling (`/b -> a`): its directory is `/`.
    let top = ModelLinks {
        links: vec![("/b".into(), "secret".into())],
        case_insensitive: false,
    };
    assert_eq!(
        r.decide_reached("/b/f", Right::Download, |q| top.read_link(q)),
        Err(Denied::Missing {
            right: Right::Download,
            rule_path: "/secret".into(),
            source: Some(Source::User("u".into())),
        })
    );
    // A denied name stays denied even when it leads somewhere allowed.
    assert!(decide("/secret/back/f", Right::Download).is_err());
}

//! Mount points of virtual folders: which tree a virtual path belongs to (the folder with the
//! longest mount path that covers it, else the home) and which directories a listing shows
//! because mounts lie below it. Segments are compared without regard to case, as rights
//! rules are (`/SHARED/x` is in `/shared`; `/sharedx` is not).

use std::borrow::Cow;

/// A mount point: its path as shown and its lower-case segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    shown: String,
    segments: Vec<String>,
}

impl MountPoint {
    /// The mount point of a normalised virtual path (a folder's path).
    pub fn new(path: &str) -> MountPoint {
        let segments: Vec<String> = segments(path).map(str::to_lowercase).collect();
        MountPoint {
            shown: path.to_owned(),
            segments,
        }
    }

    /// The `i`th segment as written.
    fn segment(&self, i: usize) -> Option<&str> {
        segments(&self.shown).nth(i)
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty())
}

/// Where a virtual path is: `Some(i)` in the `i`th mount (the longest that covers it), `None`
/// in the home; and the path inside that tree (`/` for its top). A path in normal form (as
/// [`crate::path::resolve`] makes them) is not copied.
pub fn locate<'p>(mounts: &[MountPoint], path: &'p str) -> (Option<usize>, Cow<'p, str>) {
    let (mount, depth) = covering(mounts, path);
    (mount, inside(path, depth))
}

/// The mount that holds `path` (`None`: the home), without the path inside it.
pub fn mount_of(mounts: &[MountPoint], path: &str) -> Option<usize> {
    covering(mounts, path).0
}

/// The longest mount covering `path`, and its depth in segments (0 for the home).
fn covering(mounts: &[MountPoint], path: &str) -> (Option<usize>, usize) {
    // Most accounts have no folders: then every path is in the home, and nothing is compared.
    if mounts.is_empty() {
        return (None, 0);
    }
    let lower: Vec<String> = segments(path).map(str::to_lowercase).collect();
    let best = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            m.segments.len() <= lower.len() && m.segments.iter().zip(&lower).all(|(a, b)| a == b)
        })
        .max_by_key(|(_, m)| m.segments.len());
    (best.map(|(i, _)| i), best.map_or(0, |(_, m)| m.segments.len()))
}

/// `path` without its first `depth` segments, as a path from `/`.
fn inside(path: &str, depth: usize) -> Cow<'_, str> {
    // `windows` rather than `contains("//")`: a substring search costs more to set up than
    // this whole scan of a short path.
    let doubled = path.as_bytes().windows(2).any(|w| w == b"//");
    let normal = path.starts_with('/') && !doubled && (path == "/" || !path.ends_with('/'));
    if normal {
        // Each segment is `/name`: skip `depth` of them.
        let mut at = 0;
        for _ in 0..depth {
            at = path[at + 1..].find('/').map_or(path.len(), |i| at + 1 + i);
        }
        return match &path[at..] {
            "" => Cow::Borrowed("/"),
            rest => Cow::Borrowed(rest),
        };
    }
    let mut inner = String::new();
    for part in segments(path).skip(depth) {
        inner.push('/');
        inner.push_str(part);
    }
    if inner.is_empty() {
        inner.push('/');
    }
    Cow::Owned(inner)
}

/// The directories a listing of `path` shows because mounts lie below it: each one's name as
/// written, and whether it is a mount point itself (not only a directory on the way to one).
pub fn mounted_children(mounts: &[MountPoint], path: &str) -> Vec<(String, bool)> {
    let lower: Vec<String> = segments(path).map(str::to_lowercase).collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    for m in mounts {
        let below = m.segments.len() > lower.len() && m.segments.iter().zip(&lower).all(|(a, b)| a == b);
        if !below {
            continue;
        }
        let Some(name) = m.segment(lower.len()) else {
            continue;
        };
        let is_mount = m.segments.len() == lower.len() + 1;
        match out
            .iter_mut()
            .find(|(n, _)| n.to_lowercase() == name.to_lowercase())
        {
            Some(existing) => existing.1 |= is_mount,
            None => out.push((name.to_owned(), is_mount)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn points(paths: &[&str]) -> Vec<MountPoint> {
        paths.iter().map(|p| MountPoint::new(p)).collect()
    }

    #[test]
    fn the_longest_mount_path_wins_segment_by_segment() {
        let m = points(&["/shared", "/shared/sub", "/a/b"]);
        assert_eq!(locate(&m, "/"), (None, "/".into()));
        assert_eq!(locate(&m, "/shared"), (Some(0), "/".into()));
        assert_eq!(locate(&m, "/shared/x/y"), (Some(0), "/x/y".into()));
        assert_eq!(locate(&m, "/shared/sub"), (Some(1), "/".into()));
        assert_eq!(locate(&m, "/shared/sub/f"), (Some(1), "/f".into()));
        assert_eq!(locate(&m, "/shared/subx"), (Some(0), "/subx".into()));
        // `/sharedx` is not under `/shared`.
        assert_eq!(locate(&m, "/sharedx"), (None, "/sharedx".into()));
        assert_eq!(locate(&m, "/sharedx/f"), (None, "/sharedx/f".into()));
        assert_eq!(locate(&m, "/a"), (None, "/a".into()));
        assert_eq!(locate(&m, "/a/b/c"), (Some(2), "/c".into()));
    }

    #[test]
    fn paths_not_in_normal_form_give_the_same_inner_path() {
        let m = points(&["/shared", "/a/b"]);
        for (odd, normal) in [
            ("/shared//x/", "/shared/x"),
            ("shared/x", "/shared/x"),
            ("//a/b//c", "/a/b/c"),
            ("/a/b/", "/a/b"),
            ("//", "/"),
            ("", "/"),
            ("/home//f", "/home/f"),
        ] {
            assert_eq!(locate(&m, odd), locate(&m, normal), "{odd:?}");
            assert_eq!(locate(&[], odd).1, normal, "{odd:?} without mounts");
        }
        assert!(matches!(locate(&[], "/d/f2").1, Cow::Borrowed("/d/f2")));
        assert!(matches!(locate(&m, "/shared/x/y").1, Cow::Borrowed("/x/y")));
    }

    #[test]
    fn mount_paths_match_any_case_and_keep_the_inner_spelling() {
        let m = points(&["/Shared"]);
        assert_eq!(locate(&m, "/SHARED/Doc.txt"), (Some(0), "/Doc.txt".into()));
        assert_eq!(locate(&m, "/shared"), (Some(0), "/".into()));
    }

    #[test]
    fn listings_show_mounts_and_the_directories_leading_to_them() {
        let m = points(&["/shared", "/a/b", "/a/c", "/shared/sub"]);
        assert_eq!(
            mounted_children(&m, "/"),
            vec![("shared".to_owned(), true), ("a".to_owned(), false)]
        );
        assert_eq!(
            mounted_children(&m, "/a"),
            vec![("b".to_owned(), true), ("c".to_owned(), true)]
        );
        assert_eq!(mounted_children(&m, "/shared"), vec![("sub".to_owned(), true)]);
        assert!(mounted_children(&m, "/sharedx").is_empty());
        assert!(mounted_children(&m, "/a/b").is_empty());
    }

    /// `parts` spelled with noise: `//`, `.`, a detour through `..`, upper case.
    fn spelled(parts: &[(String, u8)]) -> String {
        let mut out = String::new();
        for (part, noise) in parts {
            match noise % 5 {
                0 => out.push_str(&format!("/{part}")),
                1 => out.push_str(&format!("//{part}/")),
                2 => out.push_str(&format!("/./{part}")),
                3 => out.push_str(&format!("/{part}/x/..")),
                _ => out.push_str(&format!("/zz/../{}", part.to_uppercase())),
            }
        }
        out
    }

    proptest! {
        /// No spelling of a path puts it in another tree than its canonical form does (a
        /// folder, another folder or the home), and the path inside that tree is clean.
        #[test]
        fn every_spelling_lands_in_the_canonical_tree(
            parts in prop::collection::vec(("[a-c]{1,2}", any::<u8>()), 1..5),
            cwd_parts in prop::collection::vec("[a-c]{1,2}", 0..3),
        ) {
            let m = points(&["/a", "/a/b", "/b/c", "/ab"]);
            let canonical: String = parts.iter().map(|(p, _)| format!("/{p}")).collect();
            let (tree, inner) = locate(&m, &canonical);
            let cwd: String = cwd_parts.iter().map(|p| format!("/{p}")).collect();
            let cwd = if cwd.is_empty() { "/".to_owned() } else { cwd };
            let absolute = spelled(&parts);
            let ups = "../".repeat(cwd_parts.len() + 1);
            let relative = format!("{ups}{}", absolute.trim_start_matches('/'));
            for arg in [absolute.clone(), format!("{absolute}/"), relative] {
                let resolved = crate::path::resolve(&cwd, &arg);
                let (t, i) = locate(&m, &resolved);
                prop_assert_eq!(t, tree, "{} from {} ({})", arg, cwd, resolved);
                prop_assert_eq!(i.to_lowercase(), inner.to_lowercase());
                prop_assert!(i.starts_with('/'));
                prop_assert!(
                    i == "/" || i[1..].split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
                    "{}", i
                );
            }
        }
    }
}

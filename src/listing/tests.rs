//! Unit tests for the listing formats and the symlink scope.

use super::*;
use chrono::TimeZone;
use std::path::{Path, PathBuf};
use unftp_core::storage::{ErrorKind, Permissions};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().into()
}

/// "Now" for every test: 2026-11-24 21:00:00 UTC.
fn now() -> SystemTime {
    at(2026, 11, 24, 21, 0, 0)
}

fn file(name: &str, size: u64, modified: SystemTime) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: Kind::File,
        size,
        modified: Some(modified),
        mode: 0o644,
        links: 1,
        uid: 1000,
        gid: 1000,
        target: None,
    }
}

fn dir(name: &str, modified: SystemTime) -> Entry {
    Entry {
        kind: Kind::Dir,
        size: 4096,
        mode: 0o755,
        links: 2,
        ..file(name, 0, modified)
    }
}

fn symlink(name: &str, target: &str, modified: SystemTime) -> Entry {
    Entry {
        kind: Kind::Symlink,
        size: target.len() as u64,
        mode: 0o777,
        target: Some(target.to_owned()),
        ..file(name, 0, modified)
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn unix(entries: &[Entry]) -> String {
    text(format_list(entries, false, now()))
}

fn msdos(entries: &[Entry]) -> String {
    text(format_list(entries, true, now()))
}

#[test]
fn unix_recent_file() {
    let e = file("name", 1234, at(2026, 11, 24, 20, 4, 0));
    assert_eq!(
        unix(&[e]),
        "-rw-r--r--    1 ftp      ftp          1234 Nov 24 20:04 name\r\n"
    );
}

#[test]
fn unix_single_digit_day_is_space_padded() {
    let e = file("a.txt", 0, at(2026, 11, 5, 7, 9, 0));
    assert_eq!(
        unix(&[e]),
        "-rw-r--r--    1 ftp      ftp             0 Nov  5 07:09 a.txt\r\n"
    );
}

#[test]
fn unix_old_file_shows_year() {
    let e = file("old.tar", 99, at(2025, 3, 1, 12, 0, 0));
    assert_eq!(
        unix(&[e]),
        "-rw-r--r--    1 ftp      ftp            99 Mar  1  2025 old.tar\r\n"
    );
}

#[test]
fn unix_six_month_boundary() {
    // Just inside the window: time of day; just outside: the year.
    let inside = now() - SIX_MONTHS + Duration::from_secs(1);
    let outside = now() - SIX_MONTHS;
    assert_eq!(
        unix(&[file("in", 1, inside), file("out", 1, outside)]),
        "-rw-r--r--    1 ftp      ftp             1 May 26 06:05 in\r\n\
             -rw-r--r--    1 ftp      ftp             1 May 26  2026 out\r\n"
    );
}

#[test]
fn unix_future_dates() {
    let soon = file("soon", 1, now() + Duration::from_secs(3600));
    let later = file("later", 1, now() + Duration::from_secs(3601));
    assert_eq!(
        unix(&[soon, later]),
        "-rw-r--r--    1 ftp      ftp             1 Nov 24 22:00 soon\r\n\
             -rw-r--r--    1 ftp      ftp             1 Nov 24  2026 later\r\n"
    );
}

#[test]
fn unix_dir_symlink_and_large_size() {
    let entries = [
        dir("pub", at(2026, 11, 1, 8, 0, 0)),
        symlink("latest", "releases/v1.2", at(2026, 10, 31, 23, 59, 0)),
        Entry {
            links: 12345,
            ..file("huge.iso", 123_456_789_012_345, at(2024, 2, 29, 0, 0, 0))
        },
    ];
    assert_eq!(
        unix(&entries),
        "drwxr-xr-x    2 ftp      ftp          4096 Nov  1 08:00 pub\r\n\
             lrwxrwxrwx    1 ftp      ftp            13 Oct 31 23:59 latest -> releases/v1.2\r\n\
             -rw-r--r-- 12345 ftp      ftp      123456789012345 Feb 29  2024 huge.iso\r\n"
    );
}

#[test]
fn unix_mode_bits_and_no_ids() {
    let e = Entry {
        mode: 0o4751,
        uid: 0,
        gid: 0,
        ..file("x", 0, now())
    };
    // Special bits are not shown and uid/gid 0 never appear.
    assert_eq!(
        unix(&[e]),
        "-rwxr-x--x    1 ftp      ftp             0 Nov 24 21:00 x\r\n"
    );
}

#[test]
fn unix_unknown_time_is_epoch() {
    let e = Entry {
        modified: None,
        ..file("x", 0, now())
    };
    assert_eq!(
        unix(&[e]),
        "-rw-r--r--    1 ftp      ftp             0 Jan  1  1970 x\r\n"
    );
}

#[test]
fn msdos_dir_and_file() {
    let entries = [
        dir("name", at(2026, 11, 24, 20, 4, 0)),
        file("name", 1234, at(2026, 11, 24, 20, 4, 0)),
    ];
    assert_eq!(
        msdos(&entries),
        "11-24-26  08:04PM       <DIR>          name\r\n\
             11-24-26  08:04PM                 1234 name\r\n"
    );
}

#[test]
fn msdos_am_pm_midnight_noon() {
    let entries = [
        file("midnight", 0, at(2026, 1, 2, 0, 0, 0)),
        file("morning", 0, at(2026, 1, 2, 9, 30, 0)),
        file("noon", 0, at(2026, 1, 2, 12, 0, 0)),
        file("night", 0, at(2026, 1, 2, 23, 59, 59)),
    ];
    let out = msdos(&entries);
    let times: Vec<&str> = out.lines().map(|l| &l[10..17]).collect();
    assert_eq!(times, ["12:00AM", "09:30AM", "12:00PM", "11:59PM"]);
    assert!(out.starts_with("01-02-26  12:00AM "));
}

/// The IIS layout, column by column (0-based):
/// ```text
/// 0         1         2         3         4
/// 0123456789012345678901234567890123456789012
/// 11-24-26  08:04PM       <DIR>          name
/// 11-24-26  08:04PM                 1234 name
/// ```
/// date 0..8, time 10..17, `<DIR>` 24..29, a size ends at 37, the name starts at 39.
#[test]
fn msdos_column_positions() {
    let t = at(2026, 11, 24, 20, 4, 0);
    let entries = [
        dir("d", t),
        file("small", 0, t),
        file("big", 1234, t),
        file("max", u64::MAX, t),
        symlink("link", "target", t),
    ];
    let out = msdos(&entries);
    let lines: Vec<&str> = out.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert_eq!(&line[0..8], "11-24-26", "{line}");
        assert_eq!(&line[8..10], "  ");
        assert_eq!(&line[10..17], "08:04PM");
        assert_eq!(&line[38..39], " ", "{line}");
    }
    assert_eq!(&lines[0][17..39], "       <DIR>          ");
    assert_eq!(&lines[0][39..], "d");
    assert_eq!(lines[1][17..38].trim_start(), "0");
    assert_eq!(&lines[1][39..], "small");
    assert_eq!(&lines[2][34..38], "1234");
    assert_eq!(&lines[2][17..34].trim(), &"");
    assert_eq!(&lines[2][39..], "big");
    assert_eq!(&lines[3][17..38], " 18446744073709551615");
    assert_eq!(&lines[3][39..], "max");
    // A symlink is listed as a file, without its target.
    assert_eq!(&lines[4][39..], "link");
}

#[test]
fn list_times_are_utc() {
    // 23:30 UTC on Dec 31 is printed as such whatever the local time zone.
    let e = file("x", 0, at(2025, 12, 31, 23, 30, 0));
    let n = at(2026, 1, 1, 0, 0, 0);
    assert!(text(format_list(std::slice::from_ref(&e), false, n)).contains(" Dec 31 23:30 x"));
    assert!(text(format_list(&[e], true, n)).starts_with("12-31-25  11:30PM"));
}

#[test]
fn nlst_names_only() {
    let t = now();
    let entries = [dir("pub", t), file("a b.txt", 5, t), symlink("l", "pub", t)];
    assert_eq!(text(format_nlst(&entries)), "pub\r\na b.txt\r\nl\r\n");
    assert!(format_nlst(&[]).is_empty());
    assert!(format_list(&[], false, t).is_empty());
    assert!(format_mlsd(&[], true).is_empty());
}

#[test]
fn mlsx_file() {
    let e = file("name", 1234, at(2026, 11, 24, 20, 4, 0));
    assert_eq!(
        mlsx_facts(&e, false, false),
        "type=file;size=1234;modify=20261124200400;perm=r;unix.mode=0644; name"
    );
    assert_eq!(
        mlsx_facts(&e, true, false),
        "type=file;size=1234;modify=20261124200400;perm=radfw;unix.mode=0644; name"
    );
}

#[test]
fn mlsx_dir_cdir_pdir() {
    let d = dir("pub", at(2026, 1, 2, 3, 4, 5));
    assert_eq!(
        mlsx_facts(&d, false, false),
        "type=dir;modify=20260102030405;perm=el;unix.mode=0755; pub"
    );
    assert_eq!(
        mlsx_facts(&d, true, false),
        "type=dir;modify=20260102030405;perm=elcdfmp;unix.mode=0755; pub"
    );
    assert_eq!(
        mlsx_facts(&d, false, true),
        "type=cdir;modify=20260102030405;perm=el;unix.mode=0755; pub"
    );
    let dot = dir(".", at(2026, 1, 2, 3, 4, 5));
    assert!(mlsx_facts(&dot, false, false).starts_with("type=cdir;"));
    let dotdot = dir("..", at(2026, 1, 2, 3, 4, 5));
    assert!(mlsx_facts(&dotdot, false, false).starts_with("type=pdir;"));
}

#[test]
fn mlsx_symlink_and_unknown_time() {
    let t = at(2026, 1, 2, 3, 4, 5);
    let l = symlink("latest", "releases/v1", t);
    assert_eq!(
        mlsx_facts(&l, true, false),
        "type=OS.unix=slink:releases/v1;modify=20260102030405;perm=rdf;unix.mode=0777; latest"
    );
    let odd = symlink("odd", "a;b", t);
    assert!(mlsx_facts(&odd, false, false).starts_with("type=OS.unix=slink;modify="));
    let e = Entry {
        modified: None,
        mode: 0o100600,
        ..file("x", 0, t)
    };
    assert_eq!(
        mlsx_facts(&e, false, false),
        "type=file;size=0;perm=r;unix.mode=0600; x"
    );
}

#[test]
fn mlsx_modify_is_utc() {
    let e = file("x", 0, at(1999, 12, 31, 23, 59, 59) + Duration::from_millis(999));
    assert!(mlsx_facts(&e, false, false).contains(";modify=19991231235959;"));
    let before_epoch = file("x", 0, UNIX_EPOCH - Duration::from_secs(1));
    assert!(!mlsx_facts(&before_epoch, false, false).contains("modify="));
}

#[test]
fn time_vals_have_fourteen_digits_in_utc_or_none() {
    let val = |t| time_val(t);
    assert_eq!(val(UNIX_EPOCH).as_deref(), Some("19700101000000"));
    assert_eq!(val(at(2026, 2, 3, 4, 5, 6)).as_deref(), Some("20260203040506"));
    // Whole seconds, rounded down, on both sides of the epoch.
    assert_eq!(
        val(at(1999, 12, 31, 23, 59, 59) + Duration::from_millis(999)).as_deref(),
        Some("19991231235959")
    );
    assert_eq!(
        val(UNIX_EPOCH - Duration::from_millis(1)).as_deref(),
        Some("19691231235959")
    );
    assert_eq!(val(at(1, 1, 1, 0, 0, 0)).as_deref(), Some("00010101000000"));
    assert_eq!(
        val(at(9999, 12, 31, 23, 59, 59)).as_deref(),
        Some("99991231235959")
    );
    // Five-digit years and times no calendar holds are not shown.
    assert_eq!(val(at(9999, 12, 31, 23, 59, 59) + Duration::from_secs(1)), None);
    assert_eq!(val(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)), None);
}

#[test]
fn mlsd_lines() {
    let t = at(2026, 11, 24, 20, 4, 0);
    let out = text(format_mlsd(&[dir("pub", t), file("a", 7, t)], true));
    assert_eq!(
        out,
        "type=dir;modify=20261124200400;perm=elcdfmp;unix.mode=0755; pub\r\n\
             type=file;size=7;modify=20261124200400;perm=radfw;unix.mode=0644; a\r\n"
    );
}

#[test]
fn feat_line_lists_every_fact() {
    let e = symlink("x", "y", now());
    let facts = [
        mlsx_facts(&file("x", 1, now()), true, false),
        mlsx_facts(&e, true, false),
    ];
    for fact in facts
        .iter()
        .flat_map(|f| f.split(' ').next().unwrap().split_terminator(';'))
    {
        let name = fact.split('=').next().unwrap();
        assert!(
            MLST_FEAT.contains(&format!("{name}*;")),
            "{name} missing from {MLST_FEAT}"
        );
    }
}

#[test]
fn cr_lf_names_are_skipped() {
    let t = now();
    let entries = [
        file("a\r\n226 ok", 1, t),
        file("b\n550 x", 1, t),
        file("c\r", 1, t),
        symlink("d", "x\r\n226 ok", t),
        file("good", 1, t),
    ];
    for out in [
        text(format_list(&entries, false, t)),
        text(format_list(&entries, true, t)),
        text(format_nlst(&entries)),
        text(format_mlsd(&entries, true)),
    ] {
        assert!(!out.contains("226") && !out.contains("550"), "{out:?}");
        // Every CR or LF is part of a line terminator, and the last line is the good file.
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        assert!(lines.iter().all(|l| is_safe_name(l)), "{out:?}");
        assert!(lines.last().unwrap().ends_with("good"), "{out:?}");
    }
    // The symlink with a bad target is dropped from LIST (both styles) but kept elsewhere,
    // where the target is not printed.
    assert_eq!(text(format_list(&entries, false, t)).lines().count(), 1);
    assert_eq!(text(format_list(&entries, true, t)).lines().count(), 1);
    assert_eq!(text(format_mlsd(&entries, false)).lines().count(), 2);
    assert_eq!(text(format_nlst(&entries)), "d\r\ngood\r\n");
    assert!(!is_safe_name("x\ry") && !is_safe_name("x\ny") && is_safe_name("x y"));
}

struct Meta {
    dir: bool,
    link: Option<PathBuf>,
    modified: bool,
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        42
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir && self.link.is_none()
    }
    fn is_symlink(&self) -> bool {
        self.link.is_some()
    }
    fn modified(&self) -> unftp_core::storage::Result<SystemTime> {
        if self.modified {
            Ok(at(2026, 11, 24, 20, 4, 0))
        } else {
            Err(ErrorKind::PermanentFileNotAvailable.into())
        }
    }
    fn gid(&self) -> u32 {
        7
    }
    fn uid(&self) -> u32 {
        8
    }
    fn links(&self) -> u64 {
        3
    }
    fn permissions(&self) -> Permissions {
        Permissions(0o100640)
    }
    fn readlink(&self) -> Option<&Path> {
        self.link.as_deref()
    }
}

#[test]
fn from_fileinfo_and_metadata() {
    let fi = Fileinfo {
        path: PathBuf::from("sub/report.pdf"),
        metadata: Meta {
            dir: false,
            link: None,
            modified: true,
        },
    };
    let e = Entry::from_fileinfo(&fi, None).unwrap();
    assert_eq!(
        (e.name.as_str(), e.kind, e.size, e.mode),
        ("report.pdf", Kind::File, 42, 0o640)
    );
    assert_eq!((e.links, e.uid, e.gid, e.target), (3, 8, 7, None));
    assert_eq!(e.modified, Some(at(2026, 11, 24, 20, 4, 0)));

    let e = Entry::from_metadata(
        "d",
        &Meta {
            dir: true,
            link: None,
            modified: false,
        },
        None,
    );
    assert_eq!((e.kind, e.modified), (Kind::Dir, None));

    let link = Meta {
        dir: false,
        link: Some(PathBuf::from("../t")),
        modified: true,
    };
    let scope = LinkScope {
        home: Path::new("/srv/ftp/alice"),
        real_home: None,
        dir: "/sub",
    };
    let e = Entry::from_metadata("l", &link, Some(&scope));
    assert_eq!(
        (e.kind, e.target.as_deref(), e.size),
        (Kind::Symlink, Some("../t"), 4)
    );
    // Without a scope, or outside the home: no target, and no length of one.
    let e = Entry::from_metadata("l", &link, None);
    assert_eq!((e.kind, e.target, e.size), (Kind::Symlink, None, 0));
    let outside = Meta {
        link: Some(PathBuf::from("/etc/passwd")),
        ..link
    };
    let e = Entry::from_metadata("l", &outside, Some(&scope));
    assert_eq!((e.target, e.size), (None, 0));

    let nameless = Fileinfo {
        path: PathBuf::from("/"),
        metadata: Meta {
            dir: true,
            link: None,
            modified: true,
        },
    };
    assert!(Entry::from_fileinfo(&nameless, None).is_none());
}

#[cfg(unix)]
#[test]
fn from_fileinfo_skips_non_utf8_names() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let path = PathBuf::from(OsStr::from_bytes(b"caf\xe9.txt"));
    let fi = Fileinfo {
        path,
        metadata: Meta {
            dir: false,
            link: None,
            modified: true,
        },
    };
    assert!(Entry::from_fileinfo(&fi, None).is_none());
}

#[test]
fn symlink_targets_are_shown_only_inside_the_home() {
    let scope = |dir| LinkScope {
        home: Path::new("/srv/ftp/alice"),
        real_home: Some(Path::new("/data/ftp/alice")),
        dir,
    };
    let shown = |dir, target: &str| scope(dir).visible_target(Path::new(target));
    // Absolute inside (either spelling of the home): a virtual path.
    assert_eq!(
        shown("/", "/srv/ftp/alice/docs/a.txt").as_deref(),
        Some("/docs/a.txt")
    );
    assert_eq!(shown("/x", "/srv/ftp/alice").as_deref(), Some("/"));
    assert_eq!(shown("/", "/srv/ftp/alice/./b/../c").as_deref(), Some("/c"));
    assert_eq!(shown("/", "/data/ftp/alice/d").as_deref(), Some("/d"));
    // Relative inside: as written.
    assert_eq!(shown("/", "docs/a.txt").as_deref(), Some("docs/a.txt"));
    assert_eq!(shown("/docs", "../b.txt").as_deref(), Some("../b.txt"));
    assert_eq!(shown("/a/b", "./../../c").as_deref(), Some("./../../c"));
    assert_eq!(shown("/", "missing").as_deref(), Some("missing"));
    // Outside: never shown.
    for (dir, target) in [
        ("/", "/etc/passwd"),
        ("/", "/"),
        ("/", "/srv/ftp"),
        ("/", "/srv/ftp/alice2/x"),
        ("/", "/srv/ftp/alice/../bob/x"),
        ("/", "/srv/ftp/alice/../../../srv/ftp/alice/../x"),
        ("/", ".."),
        ("/", "../alice/x"),
        ("/docs", "../../etc"),
        ("/a/b", "../../../x"),
        ("/", "a/../../x"),
        ("/", ""),
    ] {
        assert_eq!(shown(dir, target), None, "{target:?} from {dir}");
    }
    #[cfg(unix)]
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Path::new(OsStr::from_bytes(b"caf\xe9"));
        assert_eq!(scope("/").visible_target(not_utf8), None);
    }
}

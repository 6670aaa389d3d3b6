//! Administration of rights, groups and limits: `fxpd group add|set|remove|list`, `fxpd user set`,
//! `fxpd user show` (effective rights per path and where each came from) and `fxpd user
//! explain` (one decision and the rule that made it: the rights' `config check`).

use std::fmt::Write as _;
use std::path::Path;

use super::edit::{apply_shared, invalid, ProfileEdit};
use super::rewrite::{
    attached_start, checked_or_rendered, next_foreign_table, read_existing, resolve_target, write_atomic,
};
use super::AdminError;
use crate::auth::users::{
    is_reserved_name, parse_users, read_users_text, render_entry, render_group, users_dir, Account, Expiry,
    GroupEntry, GroupName, ParsedUsers, UserDb, UsersDoc, UsersFileError,
};
use crate::rights::{Right, RulePath};

/// Reads the users file (it must exist) for a change.
fn current(file: &Path) -> Result<(std::path::PathBuf, super::rewrite::Current), AdminError> {
    let target = resolve_target(file)?;
    let current = read_existing(&target)?.ok_or_else(|| {
        AdminError::File(UsersFileError::Read {
            path: file.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    })?;
    Ok((target, current))
}

/// The text with `range` replaced by `with`, trailing blank lines trimmed to one newline.
fn splice(text: &str, range: std::ops::Range<usize>, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..range.start]);
    out.push_str(with);
    if !with.is_empty() && range.end < text.len() {
        out.push('\n');
    }
    out.push_str(&text[range.end..]);
    let kept = out.trim_end().len();
    out.truncate(kept);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Appends a table to the text, after a blank line.
fn append(mut text: String, table: &str) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(table);
    text
}

/// The byte range of group `index`'s table (comments above it included).
fn group_region(text: &str, parsed: &ParsedUsers, index: usize) -> Option<std::ops::Range<usize>> {
    let span = parsed.groups.get(index)?.0.clone();
    if !text.get(span.clone())?.starts_with("[[") {
        return None;
    }
    let start = attached_start(text, span.start);
    let body = text[span.start..]
        .find('\n')
        .map_or(text.len(), |i| span.start + i + 1);
    Some(start..next_foreign_table(text, body, text.len(), "group"))
}

/// `fxpd group add NAME`: a new `[[group]]` table with `edit`'s rules and limits.
pub fn group_add(file: &Path, name: &str, edit: &ProfileEdit) -> Result<(), AdminError> {
    let group_name = GroupName::parse(name).map_err(invalid)?;
    for_a_group(edit)?;
    let (target, current) = current(file)?;
    if current.parsed.groups().any(|g| g.name == group_name) {
        return Err(invalid(format!("group {name:?} already exists")));
    }
    let mut group = GroupEntry {
        name: group_name,
        rules: Vec::new(),
        deny_files: Vec::new(),
        hidden: Vec::new(),
        max_upload_bytes: None,
        quota_bytes: None,
        quota_files: None,
        allowed_networks: Vec::new(),
        denied_networks: Vec::new(),
        max_sessions: None,
        download_bytes_per_sec: None,
        upload_bytes_per_sec: None,
        folders: Vec::new(),
    };
    apply_shared(edit, group.shared_mut(), &users_dir(file))?;
    let rendered = render_group(&group).map_err(|e| AdminError::Hash(e.to_string()))?;
    let mut expected = current.parsed.doc();
    expected.group.push(group);
    let text = append(current.text, &rendered);
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, Some(&current.metadata))
}

/// `fxpd group set NAME`: changes a group's rules, filters, limits and folders (the table is
/// rewritten; comments inside it are lost, those above it and the rest of the file are kept).
pub fn group_set(file: &Path, name: &str, edit: &ProfileEdit) -> Result<(), AdminError> {
    for_a_group(edit)?;
    let (target, current) = current(file)?;
    let index = group_index(&current.parsed, name)?;
    let mut group = current.parsed.groups[index].1.clone();
    apply_shared(edit, group.shared_mut(), &users_dir(file))?;
    let rendered = render_group(&group).map_err(|e| AdminError::Hash(e.to_string()))?;
    let mut expected = current.parsed.doc();
    expected.group[index] = group;
    let header = current.parsed.groups[index].0.start;
    let text = match group_region(&current.text, &current.parsed, index) {
        Some(region) => splice(&current.text, below_comments(region, header), &rendered),
        None => String::new(),
    };
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, Some(&current.metadata))
}

/// The index of group `name` in the users file.
fn group_index(parsed: &ParsedUsers, name: &str) -> Result<usize, AdminError> {
    parsed
        .groups()
        .position(|g| g.name.as_str() == name)
        .ok_or_else(|| invalid(format!("group {name:?} does not exist")))
}

/// Refuses an edit with a part only a user has.
fn for_a_group(edit: &ProfileEdit) -> Result<(), AdminError> {
    match edit.user_only() {
        Some(only) => Err(invalid(format!("{only} is a user's setting, not a group's"))),
        None => Ok(()),
    }
}

/// The part of a table's `region` that a change rewrites: from its header on, so the comment
/// lines right above it, which describe it, stay.
fn below_comments(region: std::ops::Range<usize>, header: usize) -> std::ops::Range<usize> {
    header.clamp(region.start, region.end)..region.end
}

/// `fxpd group remove NAME`: refused while a user is in the group.
pub fn group_remove(file: &Path, name: &str) -> Result<(), AdminError> {
    let (target, current) = current(file)?;
    let index = group_index(&current.parsed, name)?;
    let members: Vec<&str> = current
        .parsed
        .entries()
        .filter(|u| u.groups.iter().any(|g| g.as_str() == name))
        .map(|u| u.name.as_str())
        .collect();
    if !members.is_empty() {
        return Err(invalid(format!(
            "group {name:?} still has members: {}; take them out first (fxpd user set NAME --groups ...)",
            members.join(", ")
        )));
    }
    let mut expected = current.parsed.doc();
    expected.group.remove(index);
    let text = match group_region(&current.text, &current.parsed, index) {
        Some(region) => splice(&current.text, region, ""),
        None => String::new(),
    };
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, Some(&current.metadata))
}

/// `fxpd group list`: one line per group with its members.
pub fn group_list(file: &Path) -> Result<String, AdminError> {
    let text = read_users_text(file)?;
    let parsed = parse_users(&text, file)?;
    let mut out = String::new();
    for group in parsed.groups() {
        let members: Vec<&str> = parsed
            .entries()
            .filter(|u| u.groups.contains(&group.name))
            .map(|u| u.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{}\trules={}\tmembers={}",
            group.name,
            group.rules.len(),
            if members.is_empty() {
                "-".to_owned()
            } else {
                members.join(",")
            }
        );
    }
    Ok(out)
}

/// `fxpd user set NAME`: changes a user's groups, rules and limits (the entry is rewritten;
/// comments inside it are lost, those above it and the rest of the file are kept).
pub fn user_set(file: &Path, name: &str, edit: &ProfileEdit) -> Result<(), AdminError> {
    let (target, current) = current(file)?;
    let index = current
        .parsed
        .entries()
        .position(|u| u.name.as_str() == name)
        .ok_or_else(|| AdminError::UnknownUser {
            path: file.to_path_buf(),
            name: name.to_owned(),
        })?;
    let mut entry = current.parsed.entries[index].1.clone();
    apply_shared(edit, entry.shared_mut(), &users_dir(file))?;
    if edit.clear.iter().any(|c| c == "groups") {
        entry.groups.clear();
    }
    if edit.clear.iter().any(|c| c == "expires") {
        entry.expires = None;
    }
    if let Some(groups) = &edit.groups {
        entry.groups = groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| GroupName::parse(g).map_err(invalid))
            .collect::<Result<_, _>>()?;
    }
    if let Some(expires) = &edit.expires {
        entry.expires = Some(Expiry::parse(expires).map_err(invalid)?);
    }
    if let Some(disabled) = edit.disabled {
        entry.disabled = disabled;
    }
    if let Some(write) = edit.write {
        entry.write = write;
    }
    let rendered = render_entry(&entry).map_err(|e| AdminError::Hash(e.to_string()))?;
    let mut expected = current.parsed.doc();
    expected.user[index] = entry;
    let header = current.parsed.entries[index].0.start;
    let text = match super::rewrite::entry_region(&current.text, &current.parsed, index) {
        Some(region) => splice(&current.text, below_comments(region, header), &rendered),
        None => String::new(),
    };
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, Some(&current.metadata))
}

/// The account of `name` in the users file at `file`: a user, or anonymous (`anonymous` or
/// `ftp`) with `anonymous_write` as its default.
fn account_of(file: &Path, name: &str, anonymous_write: bool) -> Result<(Account, UsersDoc), AdminError> {
    let text = read_users_text(file)?;
    let parsed = parse_users(&text, file)?;
    let doc = parsed.doc();
    let db = UserDb::from_doc_in(doc.clone(), Path::new("/"), &crate::auth::users::users_dir(file));
    let account = if is_reserved_name(name) {
        db.anonymous_account(anonymous_write)
    } else {
        let found = db.account(name).ok_or_else(|| AdminError::UnknownUser {
            path: file.to_path_buf(),
            name: name.to_owned(),
        })?;
        (*found).clone()
    };
    Ok((account, doc))
}

/// `fxpd user quota-scan NAME` on the file system: counts the files under the user's home
/// (`root` joined with its `home`) and writes that as its usage in the quota usage file next
/// to the users file (a running server uses it from its next upload or DELE). Returns the
/// usage written.
pub fn user_quota_scan(
    file: &Path,
    name: &str,
    root: &Path,
) -> Result<crate::auth::quota::Usage, AdminError> {
    let home = user_home(file, name, root)?;
    let usage = crate::auth::quota::scan(&home)
        .map_err(|e| AdminError::Quota(format!("cannot scan {}: {e}", home.display())))?;
    record_usage(file, name, usage)?;
    Ok(usage)
}

/// User `name`'s home: `root` joined with its `home` (the root when it has none).
pub fn user_home(file: &Path, name: &str, root: &Path) -> Result<std::path::PathBuf, AdminError> {
    let text = read_users_text(file)?;
    let parsed = parse_users(&text, file)?;
    let doc = parsed.doc();
    let entry = doc
        .user
        .iter()
        .find(|u| u.name.as_str() == name)
        .ok_or_else(|| AdminError::UnknownUser {
            path: file.to_path_buf(),
            name: name.to_owned(),
        })?;
    Ok(match &entry.home {
        Some(home) => home.under(root),
        None => root.to_path_buf(),
    })
}

/// Writes `usage` as `name`'s quota usage in the usage file next to the users file `file`.
pub fn record_usage(file: &Path, name: &str, usage: crate::auth::quota::Usage) -> Result<(), AdminError> {
    crate::auth::quota::set(&crate::auth::quota::state_path(file), name, usage).map_err(AdminError::Quota)
}

/// `fxpd user show NAME`: the effective rights on every path a rule names, each right with
/// the source of the rule that decides it, then the filters and limits.
pub fn user_show(file: &Path, name: &str, anonymous_write: bool) -> Result<String, AdminError> {
    let (account, doc) = account_of(file, name, anonymous_write)?;
    let mut out = String::new();
    let _ = writeln!(out, "account {name}");
    if let Some(user) = doc.user.iter().find(|u| u.name.as_str() == name) {
        let groups: Vec<&str> = user.groups.iter().map(GroupName::as_str).collect();
        let _ = writeln!(
            out,
            "groups: {}",
            if groups.is_empty() {
                "-".to_owned()
            } else {
                groups.join(", ")
            }
        );
    }
    if account.folders.is_empty() {
        let _ = writeln!(out, "folders: -");
    } else {
        let _ = writeln!(out, "folders (mount path -> what it mounts (from: its layer)):");
        let mut folders: Vec<_> = account.folders.iter().collect();
        folders.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
        for f in folders {
            let _ = writeln!(out, "  {} -> {} ({})", f.path, f.target, f.source);
        }
    }
    let mut paths: Vec<&RulePath> = account.rights.rules().iter().map(|r| &r.spec.path).collect();
    paths.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    paths.dedup_by(|a, b| a.as_str().eq_ignore_ascii_case(b.as_str()));
    let _ = writeln!(
        out,
        "rights (+ allowed, - refused; from: the rule's source and path):"
    );
    for path in paths {
        let _ = writeln!(out, "  {path}");
        for right in Right::ALL {
            let d = account.rights.decider(path.as_str(), right);
            let from = match &d.source {
                Some(source) => format!("{source} at {}", d.path),
                None => "no rule (deny by default)".to_owned(),
            };
            let _ = writeln!(
                out,
                "    {}{:<10} {from}",
                if d.allows { '+' } else { '-' },
                right.name()
            );
        }
    }
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let r = &account.rights;
    let _ = writeln!(
        out,
        "deny_files: {}",
        list(r.deny_files().iter().map(|p| p.to_string()).collect())
    );
    let _ = writeln!(
        out,
        "hidden: {}",
        list(r.hidden().iter().map(|p| p.to_string()).collect())
    );
    let l = &account.limits;
    let show = |v: Option<String>, from: &Option<crate::rights::Source>| match (v, from) {
        (Some(v), Some(from)) => format!("{v} ({from})"),
        (Some(v), None) => v,
        (None, _) => "-".to_owned(),
    };
    let _ = writeln!(
        out,
        "max_upload_bytes: {}",
        show(
            l.max_upload_bytes.map(|v| v.to_string()),
            &l.from.max_upload_bytes
        )
    );
    let quota = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let _ = writeln!(out, "quota_bytes: {}", quota(l.quota_bytes));
    let _ = writeln!(out, "quota_files: {}", quota(l.quota_files));
    let state = crate::auth::quota::state_path(file);
    let usage = match crate::auth::quota::read(&state) {
        Ok(accounts) => {
            let used = accounts.get(name).copied().unwrap_or_default();
            format!("{} bytes, {} files ({})", used.bytes, used.files, state.display())
        }
        Err(e) => format!("unreadable: {e}"),
    };
    let _ = writeln!(out, "quota usage: {usage}");
    let _ = writeln!(
        out,
        "max_sessions: {}",
        show(l.max_sessions.map(|v| v.to_string()), &l.from.max_sessions)
    );
    let rate = |v: Option<u64>| {
        v.map(|v| {
            if v == 0 {
                "0 (unlimited)".to_owned()
            } else {
                v.to_string()
            }
        })
    };
    let _ = writeln!(
        out,
        "download_bytes_per_sec: {}",
        show(rate(l.download_bytes_per_sec), &l.from.download_bytes_per_sec)
    );
    let _ = writeln!(
        out,
        "upload_bytes_per_sec: {}",
        show(rate(l.upload_bytes_per_sec), &l.from.upload_bytes_per_sec)
    );
    let networks: Vec<String> = l.allowed_networks.iter().map(|n| n.to_string()).collect();
    let networks = (!networks.is_empty()).then(|| networks.join(", "));
    let _ = writeln!(
        out,
        "allowed_networks: {}",
        show(networks, &l.from.allowed_networks)
    );
    let _ = writeln!(
        out,
        "denied_networks: {}",
        list(l.denied_networks.iter().map(|n| n.to_string()).collect())
    );
    let _ = writeln!(out, "expires: {}", l.expires().unwrap_or("-"));
    let _ = writeln!(out, "disabled: {}", if l.disabled { "yes" } else { "no" });
    Ok(out)
}

/// `fxpd user explain NAME PATH ACTION`: whether the account may do ACTION on PATH, and by
/// which rule. `Ok((allowed, text))`.
pub fn user_explain(
    file: &Path,
    name: &str,
    path: &str,
    action: &str,
    anonymous_write: bool,
) -> Result<(bool, String), AdminError> {
    let right = Right::parse(action).ok_or_else(|| {
        invalid(format!(
            "unknown action {action:?}; expected list, download, upload, overwrite, append, delete, rename, mkdir or rmdir"
        ))
    })?;
    if !path.starts_with('/') {
        return Err(invalid(format!(
            "path {path:?} must start with '/' (a virtual path, / is the home)"
        )));
    }
    let (account, _) = account_of(file, name, anonymous_write)?;
    let resolved = crate::path::resolve("/", path);
    let decided = account.rights.decide(&resolved, right);
    let d = account.rights.decider(&resolved, right);
    let rule = match &d.source {
        Some(source) => format!("the {source} rule at {}", d.path),
        None => "no rule names this right (deny by default)".to_owned(),
    };
    let points: Vec<crate::path::MountPoint> = account
        .folders
        .iter()
        .map(|f| crate::path::MountPoint::new(f.path.as_str()))
        .collect();
    let place = match crate::path::locate(&points, &resolved).0 {
        Some(i) => {
            let f = &account.folders[i];
            format!(
                "\n{resolved} is in the folder {} -> {} ({})",
                f.path, f.target, f.source
            )
        }
        None => String::new(),
    };
    Ok(match decided {
        Ok(()) => (
            true,
            format!("allowed: {right} on {resolved} for {name}, by {rule}{place}"),
        ),
        Err(denied) => (
            false,
            format!("refused: {right} on {resolved} for {name}: {denied}{place}"),
        ),
    })
}

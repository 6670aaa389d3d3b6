//! `fxpd user` and `fxpd group`: the users file's administration commands, and how their
//! results are printed.

use super::args::{GroupCmd, UserCmd};
use fxpd::auth::admin;
use std::path::Path;
use std::process::ExitCode;

pub fn user(cmd: UserCmd) -> ExitCode {
    let result = match cmd {
        UserCmd::Add {
            name,
            users,
            home,
            write,
            fxp,
            hash_memory_kib,
            hash_iterations,
            require_tls,
        } => {
            let cost = admin::HashCost {
                memory_kib: hash_memory_kib,
                iterations: hash_iterations,
            };
            admin::read_password(&format!("Password for {name}: "))
                .and_then(|password| {
                    admin::user_add_with_cost(
                        &users,
                        &name,
                        &password,
                        home.as_deref(),
                        write,
                        fxp,
                        cost,
                        require_tls,
                    )
                })
                .map(|()| println!("user {name} added to {}", users.display()))
        }
        UserCmd::Remove { name, users } => admin::user_remove(&users, &name)
            .map(|()| println!("user {name} removed from {}", users.display())),
        UserCmd::List { users } => admin::user_list(&users).map(|list| print_users(&users, &list)),
        UserCmd::Set {
            name,
            users,
            groups,
            expires,
            disabled,
            write,
            profile,
        } => {
            let edit = admin::ProfileEdit {
                groups,
                expires,
                disabled,
                write,
                ..(*profile).edit()
            };
            admin::user_set(&users, &name, &edit)
                .map(|()| println!("user {name} changed in {}", users.display()))
        }
        UserCmd::Show {
            name,
            users,
            anonymous_write,
        } => admin::user_show(&users, &name, anonymous_write).map(|text| print!("{text}")),
        UserCmd::QuotaScan {
            name,
            users,
            root,
            config,
        } => super::quota_scan::run(&users, &name, root, config.as_deref()).map(|u| {
            println!(
                "user {name}: {} bytes in {} files, written to {}",
                u.bytes,
                u.files,
                fxpd::auth::quota::state_path(&users).display()
            )
        }),
        UserCmd::Explain {
            name,
            path,
            action,
            users,
            anonymous_write,
        } => admin::user_explain(&users, &name, &path, &action, anonymous_write)
            .map(|(_, text)| println!("{text}")),
    };
    admin_exit(result)
}

pub fn group(cmd: GroupCmd) -> ExitCode {
    let result = match cmd {
        GroupCmd::Add { name, users, profile } => admin::group_add(&users, &name, &(*profile).edit())
            .map(|()| println!("group {name} added to {}", users.display())),
        GroupCmd::Set { name, users, profile } => admin::group_set(&users, &name, &(*profile).edit())
            .map(|()| println!("group {name} changed in {}", users.display())),
        GroupCmd::Remove { name, users } => admin::group_remove(&users, &name)
            .map(|()| println!("group {name} removed from {}", users.display())),
        GroupCmd::List { users } => admin::group_list(&users).map(|text| print!("{text}")),
    };
    admin_exit(result)
}

/// The exit code of an administration command; an error is printed.
pub fn admin_exit(result: Result<(), admin::AdminError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fxpd: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn print_users(file: &Path, list: &[admin::UserSummary]) {
    if list.is_empty() {
        println!("no users in {}", file.display());
    }
    for u in list {
        let home = u
            .home
            .as_ref()
            .map(|h| h.display().to_string())
            .unwrap_or_else(|| "/".into());
        let access = if u.write { "read-write" } else { "read-only" };
        let tls = if u.require_tls { " tls=required" } else { "" };
        let groups = if u.groups.is_empty() {
            String::new()
        } else {
            format!(" groups={}", u.groups.join(","))
        };
        let expires = u
            .expires
            .as_deref()
            .map(|e| format!(" expires={e}"))
            .unwrap_or_default();
        let disabled = if u.disabled { " disabled" } else { "" };
        println!(
            "{:<24} home={home:<20} {access:<10} fxp={:?}{tls}{groups}{expires}{disabled}",
            u.name, u.fxp
        );
    }
}

//! The `fxpd` command: run the server, manage users, check the configuration.

use clap::{Args, CommandFactory, Parser, Subcommand};
use fxpd::admin::client::Command as Ask;
use fxpd::auth::admin;
use fxpd::config::{self, Overrides};
use fxpd::policy::FxpOverride;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// fxpd: an FTP server with an explicit, enforced FXP (server-to-server) policy.
///
/// With no configuration at all (no --config, no /etc/fxpd/fxpd.toml) fxpd runs a quick
/// start: it serves ./ftproot read-only to anonymous users on 127.0.0.1:2121 only.
#[derive(Parser)]
#[command(name = "fxpd", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage the users file.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage the groups of the users file.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Copy a file or tree from one FTP server to another, server to server (FXP).
    Copy(fxpd_copy::CopyArgs),
    /// Windows only: install, control or run fxpd as the Windows service `fxpd`.
    #[command(subcommand)]
    Service(ServiceCmd),
    /// The admin listener's token.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// List the open sessions through the admin listener, or kick one.
    Sessions(SessionsArgs),
    /// List the banned and locked-out addresses through the admin listener, or lift one.
    Bans(BansArgs),
    /// Make the running server reload its configuration (as SIGHUP) through the admin
    /// listener, and print what changed or why it was refused.
    Reload(ServeArgs),
    /// Print the manual page (roff, section 8) generated from these command definitions;
    /// the Debian package installs it.
    #[command(hide = true)]
    Manpage,
}

#[derive(Subcommand)]
#[cfg_attr(not(windows), allow(dead_code))]
enum ServiceCmd {
    /// Register the service (automatic start, restart on failure) and create
    /// HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters with the hardened defaults
    /// (EnablePortAttack=0, EnablePASVTheft=0) where absent; existing values are kept.
    Install {
        /// Config file the service runs with. Default: %ProgramData%\fxpd\fxpd.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Stop the service if it runs, then remove it.
    Uninstall,
    /// Start the service and wait until it runs.
    Start,
    /// Stop the service: no new connections, transfers finish within limits.shutdown_grace_secs.
    Stop,
    /// Make the running service re-read its configuration (the parameter-change control).
    Reload,
    /// Show the service's state.
    Status,
    /// The service itself, as the Service Control Manager starts it (not for the console).
    Run(ServeArgs),
}

/// Where the configuration comes from. Precedence: defaults < file < FXPD__* environment
/// variables (e.g. FXPD__FXP__ALLOW_FOREIGN_PORT=true) < these flags.
#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Config file (TOML). Default: /etc/fxpd/fxpd.toml (Windows: %ProgramData%\fxpd\fxpd.toml)
    /// if it exists; with no file, no flags and no FXPD__ variables at all, the quick start.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control-channel listen address; repeat for several.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Server root directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Users file.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Set any configuration key, e.g. --set fxp.allow_foreign_port=true; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Log as JSON lines (same as --set log.format=json).
    #[arg(long)]
    log_json: bool,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from the terminal (twice) or the first line of stdin.
    Add {
        /// User name.
        name: String,
        /// Users file (created if missing).
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// Home directory, relative to the server root (default: the root).
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
        /// Allow uploads, deletes and renames (default: read-only).
        #[arg(long)]
        write: bool,
        /// FXP for this user: inherit the server setting, allow or deny.
        #[arg(long, value_name = "inherit|allow|deny", default_value = "inherit", value_parser = parse_fxp)]
        fxp: FxpOverride,
        /// argon2id memory cost of the password hash in KiB. Lower is faster to log in
        /// and cheaper to brute-force if the users file leaks.
        #[arg(long, value_name = "KIB", default_value_t = admin::HashCost::default().memory_kib)]
        hash_memory_kib: u32,
        /// This user must use TLS (AUTH TLS before the password, PROT P for data), whatever
        /// tls.require says.
        #[arg(long)]
        require_tls: bool,
        /// argon2id passes over that memory.
        #[arg(long, value_name = "N", default_value_t = admin::HashCost::default().iterations)]
        hash_iterations: u32,
    },
    /// Remove a user.
    Remove {
        /// User name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
    /// List users (never their password hashes).
    List {
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
    /// Change a user's groups, rules and limits.
    Set {
        /// User name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// The user's groups, in order of precedence (comma-separated; replaces the list).
        #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
        groups: Option<Vec<String>>,
        /// The last day the account works (YYYY-MM-DD, UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Disable (true) or enable (false) the account.
        #[arg(long, value_name = "BOOL")]
        disabled: Option<bool>,
        /// The default rights: read-write (true) or read-only (false).
        #[arg(long, value_name = "BOOL")]
        write: Option<bool>,
        #[command(flatten)]
        profile: Box<ProfileArgs>,
    },
    /// Print a user's effective rights per path (and where each came from) and limits;
    /// `anonymous` shows anonymous sessions'.
    Show {
        /// User name, or `anonymous`.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// For `anonymous`: the configuration's anonymous.write is on.
        #[arg(long)]
        anonymous_write: bool,
    },
    /// Recount the files under a user's home and write them as its quota usage (quota.json
    /// next to the users file).
    QuotaScan {
        /// User name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// The server root the user's home is relative to (the configuration's `root`).
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
    },
    /// Whether a user may do ACTION on PATH, and by which rule.
    Explain {
        /// User name, or `anonymous`.
        name: String,
        /// Virtual path (`/` is the user's home).
        path: String,
        /// list, download, upload, overwrite, append, delete, rename, mkdir or rmdir.
        action: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// For `anonymous`: the configuration's anonymous.write is on.
        #[arg(long)]
        anonymous_write: bool,
    },
}

/// Rules, request filters and limits shared by `user set` and `group add`.
#[derive(Args)]
struct ProfileArgs {
    /// Add a rule that allows: PATH=RIGHT[,RIGHT...] (rights: list, download, upload,
    /// overwrite, append, delete, rename, mkdir, rmdir, read, write, all).
    #[arg(long, value_name = "PATH=RIGHTS")]
    allow: Vec<String>,
    /// Add a rule that denies: PATH=RIGHT[,RIGHT...].
    #[arg(long, value_name = "PATH=RIGHTS")]
    deny: Vec<String>,
    /// Denied upload file names, e.g. '*.exe' (comma-separated; replaces the list).
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    deny_files: Option<Vec<String>>,
    /// Hidden path segments, e.g. '.git' (comma-separated; replaces the list).
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    hidden: Option<Vec<String>>,
    /// The largest file an upload may write (bytes).
    #[arg(long, value_name = "BYTES")]
    max_upload_bytes: Option<u64>,
    /// Networks logins may come from (CIDR, comma-separated; replaces the list).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    allowed_networks: Option<Vec<String>>,
    /// Networks logins may not come from (CIDR, comma-separated; replaces the list).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    denied_networks: Option<Vec<String>>,
    /// Most sessions logged in at once.
    #[arg(long, value_name = "N")]
    max_sessions: Option<u32>,
    /// The most bytes the account's files may hold (a group's: per member).
    #[arg(long, value_name = "BYTES")]
    quota_bytes: Option<u64>,
    /// The most files the account may hold (a group's: per member).
    #[arg(long, value_name = "N")]
    quota_files: Option<u64>,
    /// Empty a setting first: rules, deny-files, hidden, allowed-networks, denied-networks,
    /// max-upload-bytes, quota-bytes, quota-files, max-sessions, groups, expires (repeatable).
    #[arg(long, value_name = "SETTING")]
    clear: Vec<String>,
}

impl ProfileArgs {
    fn edit(self) -> admin::ProfileEdit {
        admin::ProfileEdit {
            clear: self.clear,
            allow: self.allow,
            deny: self.deny,
            deny_files: self.deny_files,
            hidden: self.hidden,
            max_upload_bytes: self.max_upload_bytes,
            allowed_networks: self.allowed_networks,
            denied_networks: self.denied_networks,
            max_sessions: self.max_sessions,
            quota_bytes: self.quota_bytes,
            quota_files: self.quota_files,
            ..admin::ProfileEdit::default()
        }
    }
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Add a group with rules and limits its members inherit.
    Add {
        /// Group name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        #[command(flatten)]
        profile: Box<ProfileArgs>,
    },
    /// Remove a group (refused while a user is in it).
    Remove {
        /// Group name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
    /// List groups and their members.
    List {
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Write a new random token to admin.token_file (mode 0600); the server reads it when it
    /// starts.
    Token {
        #[command(flatten)]
        args: ServeArgs,
        /// Replace an existing token file.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Args)]
struct SessionsArgs {
    #[command(subcommand)]
    action: Option<SessionsAction>,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Subcommand)]
enum SessionsAction {
    /// Close a session: it gets 421 and its transfer is aborted (an upload discarded).
    Kick {
        /// The session's id (`fxpd sessions` shows it).
        id: u64,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Args)]
struct BansArgs {
    #[command(subcommand)]
    action: Option<BansAction>,
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Subcommand)]
enum BansAction {
    /// Lift the ban and the login lockout of an address.
    Lift {
        /// The address.
        addr: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration and print every effective setting with its origin.
    Check {
        #[command(flatten)]
        args: ServeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_fxp(s: &str) -> Result<FxpOverride, String> {
    match s {
        "inherit" => Ok(FxpOverride::Inherit),
        "allow" => Ok(FxpOverride::Allow),
        "deny" => Ok(FxpOverride::Deny),
        _ => Err("expected inherit, allow or deny".into()),
    }
}

fn main() -> ExitCode {
    fxpd::service::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Cmd::Serve(args)) => serve(args),
        Some(Cmd::User(cmd)) => user(cmd),
        Some(Cmd::Group(cmd)) => group(cmd),
        Some(Cmd::Copy(args)) => fxpd_copy::run(args),
        Some(Cmd::Service(cmd)) => service(cmd),
        Some(Cmd::Admin(AdminCmd::Token { args, replace })) => admin_token(&args, replace),
        Some(Cmd::Sessions(SessionsArgs { action, json, args })) => match action {
            None => ask(&args, Ask::Sessions { json }),
            Some(SessionsAction::Kick { id, args }) => ask(&args, Ask::Kick(id)),
        },
        Some(Cmd::Bans(BansArgs { action, args })) => match action {
            None => ask(&args, Ask::Bans),
            Some(BansAction::Lift { addr, args }) => ask(&args, Ask::Lift(addr)),
        },
        Some(Cmd::Reload(args)) => ask(&args, Ask::Reload),
        Some(Cmd::Manpage) => {
            let man = clap_mangen::Man::new(Cli::command()).section("8");
            match man.render(&mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fxpd: cannot write the manual page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Config(ConfigCmd::Check { args, json })) => match load(&args) {
            Ok(loaded) => {
                let out = if json {
                    config::render_json(&loaded)
                } else {
                    config::render_text(&loaded)
                };
                println!("{}", out.trim_end());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// `fxpd admin token`: a new token in the configured `admin.token_file`.
fn admin_token(args: &ServeArgs, replace: bool) -> ExitCode {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let Some(file) = loaded.config.admin.token_file else {
        eprintln!("fxpd: admin.token_file is not set in the configuration: set it (and admin.listen) first");
        return ExitCode::from(2);
    };
    match fxpd::admin::token::create(&file, replace) {
        Ok(()) => {
            println!(
                "new admin token written to {} (fxpd reads it when it starts)",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fxpd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `fxpd sessions`, `fxpd bans`, `fxpd reload`: one request to the admin listener the
/// configuration names (read as `serve` reads it).
fn ask(args: &ServeArgs, command: Ask) -> ExitCode {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match fxpd::admin::client::run(&loaded.config, command) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fxpd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Load the configuration at start: an error is printed and becomes the exit code.
fn load(args: &ServeArgs) -> Result<config::Loaded, ExitCode> {
    load_sources(args).map_err(|e| {
        eprintln!("fxpd: configuration error: {e}");
        fxpd::service::report_error(&format!("configuration error: {e}"));
        ExitCode::from(2)
    })
}

/// Read every configuration source named by the command line (file, environment, flags).
fn load_sources(args: &ServeArgs) -> Result<config::Loaded, config::ConfigError> {
    let mut set = args.set.clone();
    if args.log_json {
        set.push("log.format=json".into());
    }
    let overrides = Overrides {
        listen: args.listen.clone(),
        root: args.root.clone(),
        users_file: args.users.clone(),
        set,
    };
    let env = config::env_vars()?;
    config::load(args.config.as_deref(), &env, &overrides)
}

fn serve(args: ServeArgs) -> ExitCode {
    let loaded = match load(&args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    fxpd::logging::init(&loaded.config.log);
    if loaded.quickstart {
        tracing::warn!(
            "quick start: no config file ({} not found); serving {} READ-ONLY to anonymous users on {} only. \
             Use --config FILE for a real deployment.",
            config::default_config_path().display(),
            loaded.config.root.display(),
            loaded.config.listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        );
        if let Err(e) = std::fs::create_dir_all(&loaded.config.root) {
            eprintln!("fxpd: cannot create {}: {e}", loaded.config.root.display());
            return ExitCode::FAILURE;
        }
    } else if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fxpd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let stopper = shutdown.clone();
        let stop_signal = fxpd::service::StopSignal::new();
        tokio::spawn(async move {
            stop_signal.recv().await;
            stopper.cancel();
        });
        // Each reload (SIGHUP, or POST /api/reload on the admin listener) re-reads every
        // source; only a valid result is applied.
        let reread_args = args.clone();
        let reread: fxpd::server::state::Reread = std::sync::Arc::new(move || {
            load_sources(&reread_args)
                .map(|l| l.config)
                .map_err(|e| e.to_string())
        });
        let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
        let reload_signal = fxpd::service::ReloadSignal::new();
        tokio::spawn(async move {
            let Some(mut reload_signal) = reload_signal else {
                return;
            };
            loop {
                reload_signal.recv().await;
                let _ = reload_tx.send(()).await;
            }
        });
        fxpd::run(loaded.config, shutdown, reread, reloads, |listening| {
            // Machine-readable: tests and scripts learn the bound ports from these lines.
            let mut out = std::io::stdout().lock();
            let _ = match listening {
                fxpd::Listening::Control {
                    addr,
                    implicit_tls: false,
                } => writeln!(out, "LISTENING {addr}"),
                fxpd::Listening::Control {
                    addr,
                    implicit_tls: true,
                } => writeln!(out, "LISTENING-FTPS {addr}"),
                fxpd::Listening::Admin { addr, https } => {
                    let scheme = if https { "https" } else { "http" };
                    writeln!(out, "ADMIN-LISTENING {scheme}://{addr}")
                }
            };
            let _ = out.flush();
        })
        .await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fxpd: {e}");
            fxpd::service::report_error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// `fxpd service ...`: the Windows service; `service run` runs [`serve`] under the SCM.
fn service(cmd: ServiceCmd) -> ExitCode {
    #[cfg(windows)]
    {
        use fxpd::service::windows as win;
        let result = match cmd {
            ServiceCmd::Install { config } => win::install(config.as_deref()),
            ServiceCmd::Uninstall => win::uninstall(),
            ServiceCmd::Start => win::start(),
            ServiceCmd::Stop => win::stop(),
            ServiceCmd::Reload => win::reload(),
            ServiceCmd::Status => win::status(),
            ServiceCmd::Run(args) => {
                let config = args.config.clone();
                return win::run(config.as_deref(), move || serve(args));
            }
        };
        match result {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fxpd: {e}");
                ExitCode::FAILURE
            }
        }
    }
    #[cfg(not(windows))]
    {
        let _ = cmd;
        eprintln!(
            "fxpd: `fxpd service` is Windows-only; on Linux use the systemd unit (packaging/fxpd.service)"
        );
        ExitCode::from(2)
    }
}

fn user(cmd: UserCmd) -> ExitCode {
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
        UserCmd::QuotaScan { name, users, root } => admin::user_quota_scan(&users, &name, &root).map(|u| {
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

fn group(cmd: GroupCmd) -> ExitCode {
    let result = match cmd {
        GroupCmd::Add { name, users, profile } => admin::group_add(&users, &name, &(*profile).edit())
            .map(|()| println!("group {name} added to {}", users.display())),
        GroupCmd::Remove { name, users } => admin::group_remove(&users, &name)
            .map(|()| println!("group {name} removed from {}", users.display())),
        GroupCmd::List { users } => admin::group_list(&users).map(|text| print!("{text}")),
    };
    admin_exit(result)
}

/// The exit code of an administration command; an error is printed.
fn admin_exit(result: Result<(), admin::AdminError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fxpd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_users(file: &Path, list: &[admin::UserSummary]) {
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

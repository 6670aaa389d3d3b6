//! The command line's shape: every subcommand and flag of `fxpd`, as clap reads them (the
//! manual page is rendered from the same definitions).

use clap::{Args, Parser, Subcommand};
use fxpd::auth::admin;
use fxpd::policy::FxpOverride;
use std::net::SocketAddr;
use std::path::PathBuf;

/// fxpd: an FTP server with an explicit, enforced FXP (server-to-server) policy.
///
/// With no configuration at all (no --config, no /etc/fxpd/fxpd.toml) fxpd runs a quick
/// start: it serves ./ftproot read-only to anonymous users on 127.0.0.1:2121 only.
#[derive(Parser)]
#[command(name = "fxpd", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Cmd {
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
pub enum ServiceCmd {
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
pub struct ServeArgs {
    /// Config file (TOML). Default: /etc/fxpd/fxpd.toml (Windows: %ProgramData%\fxpd\fxpd.toml)
    /// if it exists; with no file, no flags and no FXPD__ variables at all, the quick start.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Control-channel listen address; repeat for several.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Server root directory.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Users file.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Set any configuration key, e.g. --set fxp.allow_foreign_port=true; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Log as JSON lines (same as --set log.format=json).
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Subcommand)]
pub enum UserCmd {
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
    /// next to the users file). On the file system give --root; with `storage.kind = "s3"`
    /// give the server's --config (its `[storage]` says where the objects are).
    QuotaScan {
        /// User name.
        name: String,
        /// Users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// The server root the user's home is relative to (the configuration's `root`; with
        /// --config it overrides the file's).
        #[arg(long, value_name = "DIR", required_unless_present = "config")]
        root: Option<PathBuf>,
        /// The server's configuration file: its `[storage]` (file system or S3) and `root`
        /// decide where the user's files are (environment variables apply as for `serve`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
pub struct ProfileArgs {
    /// Add a rule that allows: PATH=RIGHT[,RIGHT...] (rights: list, download, upload,
    /// overwrite, append, delete, rename, mkdir, rmdir, read, write, all).
    #[arg(long, value_name = "PATH=RIGHTS")]
    pub allow: Vec<String>,
    /// Add a rule that denies: PATH=RIGHT[,RIGHT...].
    #[arg(long, value_name = "PATH=RIGHTS")]
    pub deny: Vec<String>,
    /// Denied upload file names, e.g. '*.exe' (comma-separated; replaces the list).
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    pub deny_files: Option<Vec<String>>,
    /// Hidden path segments, e.g. '.git' (comma-separated; replaces the list).
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    pub hidden: Option<Vec<String>>,
    /// The largest file an upload may write (bytes).
    #[arg(long, value_name = "BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Networks logins may come from (CIDR, comma-separated; replaces the list).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub allowed_networks: Option<Vec<String>>,
    /// Networks logins may not come from (CIDR, comma-separated; replaces the list).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub denied_networks: Option<Vec<String>>,
    /// Most sessions logged in at once.
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<u32>,
    /// The most bytes the account's files may hold (a group's: per member).
    #[arg(long, value_name = "BYTES")]
    pub quota_bytes: Option<u64>,
    /// The most files the account may hold (a group's: per member).
    #[arg(long, value_name = "N")]
    pub quota_files: Option<u64>,
    /// Download rate of all the account's sessions together, bytes per second (0: unlimited;
    /// a group's: per member).
    #[arg(long, value_name = "BYTES")]
    pub download_bytes_per_sec: Option<u64>,
    /// Upload rate of all the account's sessions together, bytes per second (0: unlimited;
    /// a group's: per member).
    #[arg(long, value_name = "BYTES")]
    pub upload_bytes_per_sec: Option<u64>,
    /// Mount a folder: PATH=DIR shows the directory DIR (absolute, or relative to the users
    /// file; it must exist) at the virtual path PATH (repeatable; replaces a folder at PATH).
    #[arg(long, value_name = "PATH=DIR")]
    pub folder: Vec<String>,
    /// Mount a key prefix of the bucket (storage.kind = "s3") at a virtual path: PATH=PREFIX
    /// (repeatable; replaces a folder at PATH).
    #[arg(long, value_name = "PATH=PREFIX")]
    pub folder_prefix: Vec<String>,
    /// Unmount the folder at PATH (repeatable; before any --folder).
    #[arg(long, value_name = "PATH")]
    pub unmount: Vec<String>,
    /// Empty a setting first: rules, deny-files, hidden, allowed-networks, denied-networks,
    /// max-upload-bytes, quota-bytes, quota-files, max-sessions, download-bytes-per-sec,
    /// upload-bytes-per-sec, folders, groups, expires (repeatable).
    #[arg(long, value_name = "SETTING")]
    pub clear: Vec<String>,
}

impl ProfileArgs {
    /// The edit these flags ask for.
    pub fn edit(self) -> admin::ProfileEdit {
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
            download_bytes_per_sec: self.download_bytes_per_sec,
            upload_bytes_per_sec: self.upload_bytes_per_sec,
            folders: self.folder,
            folder_prefixes: self.folder_prefix,
            unmount: self.unmount,
            ..admin::ProfileEdit::default()
        }
    }
}

#[derive(Subcommand)]
pub enum GroupCmd {
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
    /// Change a group's rules, filters, limits and folders (its members have them at once).
    Set {
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
pub enum AdminCmd {
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
pub struct SessionsArgs {
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub args: ServeArgs,
}

#[derive(Subcommand)]
pub enum SessionsAction {
    /// Close a session: it gets 421 and its transfer is aborted (an upload discarded).
    Kick {
        /// The session's id (`fxpd sessions` shows it).
        id: u64,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Args)]
pub struct BansArgs {
    #[command(subcommand)]
    pub action: Option<BansAction>,
    #[command(flatten)]
    pub args: ServeArgs,
}

#[derive(Subcommand)]
pub enum BansAction {
    /// Lift the ban and the login lockout of an address.
    Lift {
        /// The address.
        addr: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration and print every effective setting with its origin.
    Check {
        #[command(flatten)]
        args: ServeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn parse_fxp(s: &str) -> Result<FxpOverride, String> {
    match s {
        "inherit" => Ok(FxpOverride::Inherit),
        "allow" => Ok(FxpOverride::Allow),
        "deny" => Ok(FxpOverride::Deny),
        _ => Err("expected inherit, allow or deny".into()),
    }
}

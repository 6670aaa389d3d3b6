//! The `fxpd` command: run the server, manage users, check the configuration.

use clap::{CommandFactory, Parser};
use fxpd::admin::client::Command as Ask;
use fxpd::config::{self, Overrides};
use std::io::Write;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

mod cli;

use cli::args::{
    AdminCmd, BansAction, BansArgs, Cli, Cmd, ConfigCmd, ServeArgs, ServiceCmd, SessionsAction, SessionsArgs,
};
use cli::users::{group, user};

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

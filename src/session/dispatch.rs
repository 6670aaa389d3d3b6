//! The dispatch: the login gate, then one arm per verb into the handler of its concern
//! (`login`, `security`, `dataconn`, `files`, `transfers`, `info`).

use super::answer::{say, Failure, Handled};
use super::files::Removal;
use super::transfers::ListFormat;
use super::Session;
use crate::control::command::Command;
use crate::control::reply::Code;
use crate::policy::DataSetup;
use std::net::SocketAddr;

impl Session {
    /// Answer one command.
    pub(super) async fn handle(&mut self, command: Command) -> Handled {
        if !command.allowed_before_login() && self.logged_in().is_none() {
            return Err(Failure::NotLoggedIn);
        }
        // RNTO must immediately follow RNFR.
        let rename_from = self.rename_from.take();
        match command {
            // Logging in and out (login.rs).
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password).await,
            Command::Acct => say(Code::NOT_IMPLEMENTED_SUPERFLUOUS, "ACCT command not needed."),
            Command::Quit => self.quit(),
            // TLS (security.rs).
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz => self.pbsz(),
            Command::Prot(private) => self.prot(private),
            Command::Ccc => self.ccc(),
            Command::Sscn(on) => self.sscn(on),
            // Data connections (dataconn.rs).
            Command::Port(target) => self.set_up_data(DataSetup::Port(SocketAddr::V4(target))).await,
            Command::Eprt(target) => self.set_up_data(DataSetup::Eprt(target)).await,
            Command::Pasv => self.set_up_data(DataSetup::Pasv).await,
            Command::Cpsv => self.set_up_data(DataSetup::Cpsv).await,
            Command::Epsv(arg) => self.epsv(arg).await,
            // Files and directories (files.rs).
            Command::Pwd => self.pwd(),
            Command::Cwd(dir) => self.cwd(&dir).await,
            Command::Cdup => self.cwd("..").await,
            Command::Mkd(dir) => self.mkd(&dir).await,
            Command::Rmd(dir) => self.remove(Removal::Directory, &dir).await,
            Command::Dele(file) => self.remove(Removal::File, &file).await,
            Command::Rnfr(from) => self.rnfr(&from).await,
            Command::Rnto(to) => self.rnto(rename_from, &to).await,
            Command::Size(file) => self.size(&file).await,
            Command::Mdtm(file) => self.mdtm(&file).await,
            Command::Mlst(path) => self.mlst(path.as_deref()).await,
            Command::Hash(path) => self.hash(&path).await,
            // Transfers (transfers.rs). A REST offset holds until the next transfer command
            // (clients send PASV between).
            Command::Rest(offset) => self.rest(offset),
            Command::Retr(file) => {
                let rest = std::mem::take(&mut self.rest);
                self.allo = None;
                self.retr(&file, rest).await
            }
            Command::Stor(file) => {
                let rest = std::mem::take(&mut self.rest);
                let announced = self.allo.take();
                self.stor(&file, rest, false, announced).await
            }
            Command::Appe(file) => {
                // APPE appends at the end of the file; a pending REST does not apply.
                self.rest = 0;
                let announced = self.allo.take();
                self.stor(&file, 0, true, announced).await
            }
            Command::Stou => {
                let announced = self.allo.take();
                self.stou(announced).await
            }
            Command::List(path) => self.list(ListFormat::List, path.as_deref()).await,
            Command::Nlst(path) => self.list(ListFormat::Nlst, path.as_deref()).await,
            Command::Mlsd(path) => self.list(ListFormat::Mlsd, path.as_deref()).await,
            Command::Abor => self.abor().await,
            // Information and settings (info.rs).
            Command::Noop => say(Code::OK, "NOOP command successful."),
            Command::Syst => self.syst(),
            Command::Feat => self.feat(),
            Command::Help(_) => super::info::help(),
            Command::Opts(arg) => super::info::opts(arg),
            Command::Stat(None) => self.stat_server(),
            Command::Stat(Some(path)) => self.stat_path(&path).await,
            Command::Type(t) => self.set_type(t),
            Command::ModeStream => say(Code::OK, "MODE S command successful."),
            Command::StruFile => say(Code::OK, "STRU F command successful."),
            Command::Allo(None) => say(Code::NOT_IMPLEMENTED_SUPERFLUOUS, "ALLO command ignored."),
            Command::Allo(Some(size)) => self.allo(size),
            Command::Site(arg) => super::info::site(arg),
        }
    }
}

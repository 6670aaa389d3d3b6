//! Running a planned copy: log in to both servers, then for each file SIZE (and MDTM) on
//! the source, the resume decision, the FXP transfer ([`crate::fxp`]) and the check
//! ([`crate::verify`]); for `--recursive`, the tree walk and MKDs first ([`crate::tree`]).

use crate::client::{ClientError, ControlClient, ErrorKind, Role};
use crate::fxp::{self, Arrangement, FileJob, FxpError};
use crate::plan::{Endpoint, Plan};
use crate::progress::{human_bytes, Progress};
use crate::tls::TlsClient;
use crate::tree::{self, TreeError};
use crate::verify::{self, Method, VerifyError};
use crate::{wire, CopyError};
use std::time::Duration;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--resume`.
    pub resume: bool,
    /// `--recursive`.
    pub recursive: bool,
    /// `--timeout`: every reply wait, and the stall limit during transfers.
    pub timeout: Duration,
    /// `--verbose`: print the dialogue.
    pub trace: bool,
    /// The TLS client, when either URL is `ftps://`.
    pub tls: Option<TlsClient>,
    /// `--allow-clear-data`.
    pub allow_clear_data: bool,
}

/// What was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files copied (or found complete with `--resume`).
    pub files: u64,
    /// Directories made or found at the destination.
    pub dirs: u64,
    /// Size of the files.
    pub bytes: u64,
}

impl Summary {
    /// E.g. "7 files (4.2 MiB) and 3 directories".
    pub fn describe(&self) -> String {
        format!(
            "{} file{} ({}) and {} director{}",
            self.files,
            if self.files == 1 { "" } else { "s" },
            human_bytes(self.bytes),
            self.dirs,
            if self.dirs == 1 { "y" } else { "ies" }
        )
    }
}

/// Connects, logs in to both servers and copies.
pub async fn execute(plan: &Plan, opts: &Options, progress: &mut Progress) -> Result<Summary, CopyError> {
    let (src, dst) = tokio::join!(
        open(Role::Source, &plan.src, opts),
        open(Role::Destination, &plan.dst, opts)
    );
    let (mut src, mut dst) = (src?, dst?);
    protect(&mut src, &mut dst, opts.allow_clear_data).await?;
    let methods = verify::common_methods(&mut src, &mut dst).await.map_err(failed)?;
    let mut run = Run {
        src: &mut src,
        dst: &mut dst,
        methods,
        arrangement: Arrangement::DestinationPassive,
        resume: opts.resume,
        progress,
        summary: Summary::default(),
    };
    let result = if opts.recursive {
        run.tree(&plan.src.url.path, &plan.dst.url.path).await
    } else {
        let display = plan.dst.url.path.clone();
        run.file(&plan.src.url.path, &plan.dst.url.path, &display).await
    };
    let summary = std::mem::take(&mut run.summary);
    src.quit().await;
    dst.quit().await;
    result.map(|()| summary)
}

/// Connect, log in, FEAT, TYPE I (RFC 3659: SIZE and REST count bytes in image type).
async fn open(role: Role, ep: &Endpoint, opts: &Options) -> Result<ControlClient, CopyError> {
    let tls = if ep.url.tls { opts.tls.as_ref() } else { None };
    if ep.url.tls && tls.is_none() {
        return Err(CopyError::Config(format!(
            "{role} {}: ftps:// needs a TLS client",
            ep.url
        )));
    }
    let mut client = ControlClient::connect_with(role, &ep.url, opts.timeout, opts.trace, tls)
        .await
        .map_err(|e| match e.kind {
            // A certificate that does not check is a configuration matter.
            ErrorKind::Tls(_) => CopyError::Config(e.to_string()),
            _ => failed(e),
        })?;
    match client.login(&ep.user, &ep.password).await {
        Ok(()) => {}
        Err(e) if e.reply().is_some_and(|r| r.code == 530) => {
            return Err(CopyError::Config(format!("login failed: {e}")));
        }
        Err(e) => return Err(failed(e)),
    }
    client.load_features().await.map_err(failed)?;
    client.expect("TYPE I", &[200]).await.map_err(failed)?;
    Ok(client)
}

/// Data protection (RFC 4217 sections 8 and 9): with TLS on both control connections,
/// `PBSZ 0` and `PROT P` on both, and one server made the TLS client on the data connection:
/// `SSCN ON` on the source when it announces SSCN, else `CPSV` on the destination. When that
/// is impossible, a usage error unless `allow_clear_data`; then `PROT C` where TLS is on.
async fn protect(
    src: &mut ControlClient,
    dst: &mut ControlClient,
    allow_clear_data: bool,
) -> Result<(), CopyError> {
    if !src.is_tls() && !dst.is_tls() {
        return Ok(());
    }
    for client in [&mut *src, &mut *dst] {
        if client.is_tls() {
            client.expect("PBSZ 0", &[200]).await.map_err(failed)?;
        }
    }
    let both = src.is_tls() && dst.is_tls();
    let protected = both && (src.features.sscn || dst.features.cpsv);
    if !protected {
        if !allow_clear_data {
            return Err(CopyError::Config(format!(
                "the data connection cannot be protected: neither {} announces SSCN nor {} announces CPSV, \
                 so neither can be the TLS client; use --allow-clear-data to copy in clear text",
                src.name(),
                dst.name()
            )));
        }
        for client in [&mut *src, &mut *dst] {
            if client.is_tls() {
                client.expect("PROT C", &[200]).await.map_err(failed)?;
            }
        }
        return Ok(());
    }
    for client in [&mut *src, &mut *dst] {
        client.expect("PROT P", &[200]).await.map_err(failed)?;
        client.protected = true;
    }
    if src.features.sscn {
        src.expect("SSCN ON", &[200]).await.map_err(failed)?;
        src.sscn_on = true;
    } else {
        // CPSV makes the destination the TLS client only when it is the passive side, which
        // is the first arrangement tried (PASV on the destination).
        dst.pasv_command = "CPSV";
    }
    Ok(())
}

/// A server failure as a transfer failure.
fn failed(e: ClientError) -> CopyError {
    CopyError::Failed(e.to_string())
}

/// The state of one copy run.
struct Run<'a> {
    src: &'a mut ControlClient,
    dst: &'a mut ControlClient,
    /// Digest methods both servers offer.
    methods: Vec<Method>,
    /// The arrangement to try first (the one that worked last).
    arrangement: Arrangement,
    resume: bool,
    progress: &'a mut Progress,
    summary: Summary,
}

impl Run<'_> {
    /// Copies one file and verifies it.
    async fn file(&mut self, src_path: &str, dst_path: &str, display: &str) -> Result<(), CopyError> {
        let reply = self
            .src
            .command(&format!("SIZE {src_path}"))
            .await
            .map_err(failed)?;
        if reply.code == 550 {
            return Err(CopyError::Failed(format!(
                "{} has no file {src_path} (`{reply}`)",
                self.src.name()
            )));
        }
        let size = wire::parse_size(&reply);
        // For the record (shown with --verbose); not every server has MDTM.
        self.src
            .command(&format!("MDTM {src_path}"))
            .await
            .map_err(failed)?;
        let (offset, complete) = self.resume_point(dst_path, size).await?;
        self.progress.start_file(display, size, offset);
        if !complete {
            let job = FileJob {
                src_path,
                dst_path,
                size,
                offset,
            };
            fxp::transfer(self.src, self.dst, &job, &mut self.arrangement, self.progress)
                .await
                .map_err(|e| CopyError::Failed(format!("cannot copy {display}: {}", describe_fxp(e))))?;
        }
        let verified = verify::verify(self.src, self.dst, src_path, dst_path, &self.methods)
            .await
            .map_err(|e| match e {
                VerifyError::Mismatch(why) => {
                    CopyError::Failed(format!("the copy of {display} is wrong: {why}"))
                }
                VerifyError::ControlClient(e) => failed(e),
            })?;
        let bytes = verified.size.or(size).unwrap_or(0);
        let verdict = if complete {
            format!("already complete at the destination, {}", verified.describe())
        } else {
            verified.describe()
        };
        self.progress.finish_file(bytes, &verdict);
        self.summary.files += 1;
        self.summary.bytes += bytes;
        Ok(())
    }

    /// With `--resume`: where to restart (the destination's size when it is shorter), and
    /// whether the file is already complete.
    async fn resume_point(&mut self, dst_path: &str, size: Option<u64>) -> Result<(u64, bool), CopyError> {
        if !self.resume {
            return Ok((0, false));
        }
        let reply = self
            .dst
            .command(&format!("SIZE {dst_path}"))
            .await
            .map_err(failed)?;
        let Some(have) = wire::parse_size(&reply) else {
            return Ok((0, false));
        };
        match size {
            Some(total) if have < total => Ok((have, false)),
            Some(total) if have == total => Ok((have, true)),
            Some(total) => Err(CopyError::Failed(format!(
                "cannot resume {dst_path}: the destination file has {have} bytes, more than the source's {total}; \
                 delete it or copy without --resume"
            ))),
            None => Err(CopyError::Failed(format!(
                "cannot resume {dst_path}: {} does not tell the source file's size (SIZE)",
                self.src.name()
            ))),
        }
    }

    /// Copies the tree under `src_root` into `dst_root`.
    async fn tree(&mut self, src_root: &str, dst_root: &str) -> Result<(), CopyError> {
        if !self.src.features.mlst {
            return Err(CopyError::Failed(format!(
                "--recursive lists directories with MLSD (RFC 3659), and {} does not announce MLST in FEAT",
                self.src.name()
            )));
        }
        let home = self.dst.pwd().await.map_err(failed)?;
        let entries = tree::walk(self.src, src_root).await.map_err(|e| match e {
            TreeError::ControlClient(e) => failed(e),
            TreeError::Limit(why) => CopyError::Failed(why),
        })?;
        tree::ensure_dir_all(self.dst, dst_root, &home)
            .await
            .map_err(failed)?;
        for entry in entries {
            let dst_path = tree::join(dst_root, &entry.rel);
            if entry.is_dir {
                tree::ensure_dir(self.dst, &dst_path, &home)
                    .await
                    .map_err(failed)?;
                self.summary.dirs += 1;
            } else {
                let src_path = tree::join(src_root, &entry.rel);
                self.file(&src_path, &dst_path, &entry.rel).await?;
            }
        }
        Ok(())
    }
}

/// One clause for an FXP failure; refusals list both arrangements.
fn describe_fxp(e: FxpError) -> String {
    match e {
        FxpError::Failed(why) => why,
        FxpError::Refused(list) => {
            let parts: Vec<String> = list
                .iter()
                .map(|(arrangement, refusal)| {
                    format!("with {}, {}", arrangement.describe(), refusal.describe())
                })
                .collect();
            format!("FXP was refused both ways: {}", parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let s = Summary {
            files: 1,
            dirs: 3,
            bytes: 2048,
        };
        assert_eq!(s.describe(), "1 file (2.0 KiB) and 3 directories");
    }
}

//! From command-line arguments to a checked [`Plan`]: URLs, credentials and paths. Every
//! mistake found here is a usage or configuration error (exit status 2), reported before
//! any connection is made.
//!
//! Where a password comes from, first match wins: the URL, `--src-password-stdin` /
//! `--dst-password-stdin` (the first line of stdin), the environment
//! (`FXPD_COPY_SRC_PASSWORD` / `FXPD_COPY_DST_PASSWORD`), the netrc file. The user name comes
//! from the URL, else from the netrc entry for the host; without one the login is anonymous.

use crate::netrc::Netrc;
use crate::url::{FtpUrl, UrlError};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Environment variable with the source password.
pub const SRC_PASSWORD_ENV: &str = "FXPD_COPY_SRC_PASSWORD";
/// Environment variable with the destination password.
pub const DST_PASSWORD_ENV: &str = "FXPD_COPY_DST_PASSWORD";

/// The password sent for anonymous logins (RFC 1635 asks for an identity).
const ANONYMOUS_PASSWORD: &str = "fxpd-copy@";

/// One end of the copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host, port and path (the path is the one to use on this server).
    pub url: FtpUrl,
    /// Login name (`anonymous` when none was given).
    pub user: String,
    /// Password (never printed).
    pub password: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.to_string())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What the user asked for, in the terms this module needs.
pub struct Request<'a> {
    /// SRC as given.
    pub src: &'a str,
    /// DST as given.
    pub dst: &'a str,
    /// Read the source password from stdin.
    pub src_password_stdin: bool,
    /// Read the destination password from stdin.
    pub dst_password_stdin: bool,
    /// `--netrc FILE`.
    pub netrc: Option<&'a Path>,
    /// `--recursive`.
    pub recursive: bool,
}

/// The checked plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the file (or tree) comes from.
    pub src: Endpoint,
    /// Where it goes; for a single file `url.path` is the full destination file path.
    pub dst: Endpoint,
}

/// Builds the plan; `env` looks up environment variables, `stdin` gives the password line,
/// `home` is the user's home directory (for `~/.netrc`).
pub fn make_plan(
    req: &Request<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn BufRead,
    home: Option<PathBuf>,
) -> Result<Plan, String> {
    if req.src_password_stdin && req.dst_password_stdin {
        return Err(
            "--src-password-stdin and --dst-password-stdin cannot be used together (stdin holds one password); \
             give the other through the environment or a netrc file"
                .into(),
        );
    }
    let mut src_url = parse(req.src, "SRC")?;
    let mut dst_url = parse(req.dst, "DST")?;
    if req.recursive {
        trim_dir(&mut src_url.path);
        trim_dir(&mut dst_url.path);
    } else {
        if src_url.file_name().is_empty() {
            return Err(format!(
                "SRC {src_url} names no file; give a file path, or --recursive for a directory"
            ));
        }
        if dst_url.file_name().is_empty() {
            dst_url.path.push_str(src_url.file_name());
        }
    }
    let netrc = load_netrc(req.netrc, home)?;
    let stdin_password = if req.src_password_stdin || req.dst_password_stdin {
        Some(read_password(stdin)?)
    } else {
        None
    };
    let (src_stdin, dst_stdin) = if req.src_password_stdin {
        (stdin_password, None)
    } else {
        (None, stdin_password)
    };
    let src = endpoint(src_url, src_stdin, env(SRC_PASSWORD_ENV), netrc.as_ref(), "src")?;
    let dst = endpoint(dst_url, dst_stdin, env(DST_PASSWORD_ENV), netrc.as_ref(), "dst")?;
    if src.url.host.eq_ignore_ascii_case(&dst.url.host)
        && src.url.port == dst.url.port
        && src.user == dst.user
        && src.url.path == dst.url.path
    {
        return Err("SRC and DST are the same; copying onto itself would destroy the file".into());
    }
    Ok(Plan { src, dst })
}

/// A URL, or a clear usage error naming the argument.
fn parse(text: &str, which: &str) -> Result<FtpUrl, String> {
    FtpUrl::parse(text).map_err(|e| match e {
        UrlError::Invalid(why) => format!("{which} is not a valid ftp:// URL: {why}"),
    })
}

/// Drops a trailing `/` from a directory path (but keeps `/` itself).
fn trim_dir(path: &mut String) {
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
}

/// The netrc file: the one given (must exist), else `~/.netrc` when it exists.
fn load_netrc(given: Option<&Path>, home: Option<PathBuf>) -> Result<Option<Netrc>, String> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => match home.map(|h| h.join(".netrc")) {
            Some(p) if p.is_file() => p,
            _ => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the netrc file {}: {e}", path.display()))?;
    Netrc::parse(&text)
        .map(Some)
        .map_err(|e| format!("the netrc file {} is invalid: {e}", path.display()))
}

/// The first line of stdin, without its line end.
fn read_password(stdin: &mut dyn BufRead) -> Result<String, String> {
    let mut line = String::new();
    match stdin.read_line(&mut line) {
        Ok(0) => Err("a password was to be read from stdin, but stdin is empty".into()),
        Ok(_) => {
            while line.ends_with(['\n', '\r']) {
                line.pop();
            }
            Ok(line)
        }
        Err(e) => Err(format!("cannot read the password from stdin: {e}")),
    }
}

/// User and password for one end (see the module docs for the order).
fn endpoint(
    url: FtpUrl,
    stdin: Option<String>,
    env: Option<String>,
    netrc: Option<&Netrc>,
    side: &str,
) -> Result<Endpoint, String> {
    let user = url.user.clone().or_else(|| {
        netrc
            .and_then(|n| n.lookup(&url.host, None))
            .and_then(|e| e.login.clone())
    });
    let netrc_password = |user: &str| {
        netrc
            .and_then(|n| n.lookup(&url.host, Some(user)))
            .and_then(|e| e.password.clone())
    };
    let (user, password) = match user {
        None => {
            let password = url
                .password
                .clone()
                .or(stdin)
                .or(env)
                .unwrap_or_else(|| ANONYMOUS_PASSWORD.to_owned());
            ("anonymous".to_owned(), password)
        }
        Some(user) => {
            let password = url
                .password
                .clone()
                .or(stdin)
                .or(env)
                .or_else(|| netrc_password(&user))
                .ok_or_else(|| {
                    format!(
                        "no password for {user} at {}: give it with --{side}-password-stdin, {} or a netrc entry",
                        url.host_port(),
                        if side == "src" { SRC_PASSWORD_ENV } else { DST_PASSWORD_ENV }
                    )
                })?;
            (user, password)
        }
    };
    // SECURITY: user and password go into USER/PASS lines; a line break would add a command.
    if password.contains(['\r', '\n', '\0']) || user.contains(['\r', '\n', '\0']) {
        return Err(format!("the {side} user name or password contains a line break"));
    }
    Ok(Endpoint { url, user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(src: &'a str, dst: &'a str) -> Request<'a> {
        Request {
            src,
            dst,
            src_password_stdin: false,
            dst_password_stdin: false,
            netrc: None,
            recursive: false,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn plan(r: &Request<'_>, env: &dyn Fn(&str) -> Option<String>, stdin: &str) -> Result<Plan, String> {
        make_plan(r, env, &mut stdin.as_bytes(), None)
    }

    #[test]
    fn passwords_from_url_stdin_and_environment() {
        let mut r = req("ftp://a:pa@h1/f.bin", "ftp://b@h2:2121/dir/");
        let env = |k: &str| (k == DST_PASSWORD_ENV).then(|| "from-env".to_owned());
        let p = plan(&r, &env, "").unwrap();
        assert_eq!((p.src.user.as_str(), p.src.password.as_str()), ("a", "pa"));
        assert_eq!((p.dst.user.as_str(), p.dst.password.as_str()), ("b", "from-env"));
        assert_eq!(
            p.dst.url.path, "dir/f.bin",
            "a directory destination keeps the file name"
        );
        r.dst_password_stdin = true;
        let p = plan(&r, &env, "from-stdin\r\nnext line\n").unwrap();
        assert_eq!(p.dst.password, "from-stdin", "stdin beats the environment");
        assert!(plan(&r, &env, "").unwrap_err().contains("stdin is empty"));
    }

    #[test]
    fn anonymous_and_missing_passwords() {
        let p = plan(&req("ftp://h1/f", "ftp://h2/g"), &no_env, "").unwrap();
        assert_eq!(
            (p.src.user.as_str(), p.src.password.as_str()),
            ("anonymous", ANONYMOUS_PASSWORD)
        );
        let e = plan(&req("ftp://u@h1/f", "ftp://h2/g"), &no_env, "").unwrap_err();
        assert!(
            e.contains("no password for u at h1:21") && e.contains(SRC_PASSWORD_ENV),
            "{e}"
        );
    }

    #[test]
    fn netrc_supplies_login_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("netrc");
        std::fs::write(
            &file,
            "machine h1 login nina password n1na\ndefault login dee password d\n",
        )
        .unwrap();
        let mut r = req("ftp://h1/f", "ftp://zed@h2/g");
        r.netrc = Some(&file);
        let e = plan(&r, &no_env, "").unwrap_err();
        assert!(
            e.contains("no password for zed"),
            "the default entry's login differs: {e}"
        );
        let r2 = Request {
            dst: "ftp://h2/g",
            ..r
        };
        let p = plan(&r2, &no_env, "").unwrap();
        assert_eq!((p.src.user.as_str(), p.src.password.as_str()), ("nina", "n1na"));
        assert_eq!((p.dst.user.as_str(), p.dst.password.as_str()), ("dee", "d"));
        // ~/.netrc is used when it exists.
        std::fs::write(dir.path().join(".netrc"), "machine h1 login hh password hp\n").unwrap();
        let p = make_plan(
            &req("ftp://h1/f", "ftp://h2/g"),
            &no_env,
            &mut "".as_bytes(),
            Some(dir.path().into()),
        )
        .unwrap();
        assert_eq!(p.src.user, "hh");
        let missing = dir.path().join("nope");
        let r3 = Request {
            netrc: Some(&missing),
            ..req("ftp://h1/f", "ftp://h2/g")
        };
        assert!(plan(&r3, &no_env, "")
            .unwrap_err()
            .contains("cannot read the netrc file"));
    }

    #[test]
    fn usage_errors() {
        let mut both = req("ftp://u@h1/f", "ftp://v@h2/f");
        both.src_password_stdin = true;
        both.dst_password_stdin = true;
        assert!(plan(&both, &no_env, "x\n")
            .unwrap_err()
            .contains("cannot be used together"));
        assert!(plan(&req("ftp://h1/f", "http://h2/f"), &no_env, "")
            .unwrap_err()
            .starts_with("DST is not"));
        assert!(plan(&req("ftp://h1/dir/", "ftp://h2/f"), &no_env, "")
            .unwrap_err()
            .contains("--recursive"));
        let same = plan(&req("ftp://h1/f", "ftp://H1:21/"), &no_env, "").unwrap_err();
        assert!(same.contains("same"), "{same}");
        let mut tree = req("ftp://h1/dir/", "ftp://h2/copy/");
        tree.recursive = true;
        assert_eq!(plan(&tree, &no_env, "").unwrap().dst.url.path, "copy");
    }
}

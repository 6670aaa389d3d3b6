//! A lean FTP load client for the benchmark (Rust std only; tests/bench/run.sh compiles it
//! with `rustc -O`). lftp and Python spend more CPU per small file or login than the servers
//! under test do, and on a 2-core machine that CPU is taken from the servers; this client
//! spends a few microseconds per command, so what it measures is mostly the server.
//!
//!   ftpload get    HOST PORT USER PASS DIR OUTDIR NAME...   passive RETR of each name
//!   ftpload put    HOST PORT USER PASS DIR SRCDIR NAME...   passive STOR of each name
//!   ftpload logins HOST PORT USER PASS SECS THREADS         USER/PASS/QUIT in a loop
//!
//! get/put print `SECS` (the transfer phase, after login and CWD); logins prints
//! `COUNT FAILURES SECS`. With `FTPLOAD_CPU_STAT` naming a cgroup v2 `cpu.stat` file (the
//! server's), get/put print `SECS USAGE0 USAGE1`: its `usage_usec` read just before the
//! first transfer and just after the last, so the server CPU of the transfers alone is known
//! without the login's password hash or the session's end. Any protocol error ends the run with a message and exit code 1.
//! Every socket has a 30 s timeout.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
}

/// Acknowledge at once what arrives next (Linux TCP_QUICKACK; not sticky, so set before each
/// reply is read). Without it the client's delayed ACK of a `150` can hold a server's `226`
/// for ~40 ms when that server's control socket lacks TCP_NODELAY: a stall of the client's
/// making that no FTP client in real use shows, so the benchmark must not either.
fn quickack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: i32 = 1;
    // SAFETY: a valid socket descriptor and a 4-byte int option value.
    unsafe {
        setsockopt(s.as_raw_fd(), 6 /* IPPROTO_TCP */, 12 /* TCP_QUICKACK */, (&one as *const i32).cast(), 4);
    }
}

struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn fail(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

impl Control {
    fn open(host: &str, port: u16) -> io::Result<Control> {
        let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| fail("no address"))?;
        let s = connect(addr)?;
        let mut c = Control {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            host: host.to_string(),
        };
        c.expect(220)?;
        Ok(c)
    }

    /// The final line of the next reply (multi-line replies are skipped to their end).
    fn reply(&mut self) -> io::Result<(u16, String)> {
        let mut line = String::new();
        let mut first: Option<String> = None;
        loop {
            line.clear();
            quickack(&self.writer);
            if self.reader.read_line(&mut line)? == 0 {
                return Err(fail("control connection closed"));
            }
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            match (&first, code, line.as_bytes().get(3)) {
                (None, Some(code), Some(b' ')) => return Ok((code, line.trim_end().to_string())),
                (None, Some(_), Some(b'-')) => first = Some(line[..3].to_string()),
                (Some(f), Some(code), Some(b' ')) if line.starts_with(f.as_str()) => {
                    return Ok((code, line.trim_end().to_string()))
                }
                (Some(_), _, _) => {}
                _ => return Err(fail(format!("bad reply line {line:?}"))),
            }
        }
    }

    fn expect(&mut self, code: u16) -> io::Result<String> {
        let (got, text) = self.reply()?;
        if got != code {
            return Err(fail(format!("expected {code}, got {text}")));
        }
        Ok(text)
    }

    fn cmd(&mut self, line: &str, code: u16) -> io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(code)
    }

    fn login(&mut self, user: &str, pass: &str) -> io::Result<()> {
        self.cmd(&format!("USER {user}"), 331)?;
        self.cmd(&format!("PASS {pass}"), 230)?;
        Ok(())
    }

    /// PASV, then connect to the announced port (on the control connection's host).
    fn pasv(&mut self) -> io::Result<TcpStream> {
        let text = self.cmd("PASV", 227)?;
        let inner = text
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| fail(format!("bad 227: {text}")))?;
        let n: Vec<u16> = inner.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        if n.len() != 6 {
            return Err(fail(format!("bad 227: {text}")));
        }
        let port = n[4] * 256 + n[5];
        let addr = (self.host.as_str(), port).to_socket_addrs()?.next().ok_or_else(|| fail("no address"))?;
        connect(addr)
    }
}

fn transfer(put: bool, args: &[String]) -> io::Result<()> {
    let [host, port, user, pass, dir, local, names @ ..] = args else {
        return Err(fail("usage: get|put HOST PORT USER PASS DIR LOCALDIR NAME..."));
    };
    let mut c = Control::open(host, port.parse().map_err(fail)?)?;
    c.login(user, pass)?;
    c.cmd("TYPE I", 200)?;
    c.cmd(&format!("CWD {dir}"), 250)?;
    let local = Path::new(local);
    let mut buf = vec![0u8; 64 * 1024];
    let cpu_stat = std::env::var_os("FTPLOAD_CPU_STAT");
    let usage0 = cpu_stat.as_deref().map(usage_usec).transpose()?;
    let t0 = Instant::now();
    for name in names {
        let mut data = c.pasv()?;
        if put {
            let body = fs::read(local.join(name))?;
            c.cmd(&format!("STOR {name}"), 150)?;
            data.write_all(&body)?;
            drop(data);
        } else {
            c.cmd(&format!("RETR {name}"), 150)?;
            let mut body = Vec::with_capacity(8192);
            loop {
                quickack(&data);
                match data.read(&mut buf)? {
                    0 => break,
                    n => body.extend_from_slice(&buf[..n]),
                }
            }
            // Close at end of data, as clients do: a server may wait for it before its 226.
            drop(data);
            fs::write(local.join(name), &body)?;
        }
        c.expect(226)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let usage1 = cpu_stat.as_deref().map(usage_usec).transpose()?;
    let _ = c.cmd("QUIT", 221);
    match (usage0, usage1) {
        (Some(u0), Some(u1)) => println!("{secs:.6} {u0} {u1}"),
        _ => println!("{secs:.6}"),
    }
    Ok(())
}

/// `usage_usec` from a cgroup v2 `cpu.stat` file.
fn usage_usec(path: &std::ffi::OsStr) -> io::Result<u64> {
    fs::read_to_string(path)?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| fail("no usage_usec in the cpu.stat file"))
}

fn logins(args: &[String]) -> io::Result<()> {
    let [host, port, user, pass, secs, threads] = args else {
        return Err(fail("usage: logins HOST PORT USER PASS SECS THREADS"));
    };
    let port: u16 = port.parse().map_err(fail)?;
    let secs: f64 = secs.parse().map_err(fail)?;
    let threads: usize = threads.parse().map_err(fail)?;
    let count = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (host, user, pass) = (host.clone(), user.clone(), pass.clone());
            let (count, failures) = (count.clone(), failures.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let once = || -> io::Result<()> {
                        let mut c = Control::open(&host, port)?;
                        c.login(&user, &pass)?;
                        c.cmd("QUIT", 221)?;
                        Ok(())
                    };
                    match once() {
                        Ok(()) => count.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    println!(
        "{} {} {:.6}",
        count.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("get") => transfer(false, &args[1..]),
        Some("put") => transfer(true, &args[1..]),
        Some("logins") => logins(&args[1..]),
        _ => Err(fail("usage: ftpload get|put|logins ...")),
    };
    if let Err(e) = result {
        eprintln!("ftpload: {e}");
        std::process::exit(1);
    }
}

//! The binary fast path: file contents move between a regular file and the data socket on a
//! blocking thread, with `sendfile(2)` for downloads on Linux (no copy through user space)
//! and large reads and writes for uploads. This is what lets a RETR run at the loopback
//! ceiling: an async copy through small buffers costs several times the CPU per byte.
//!
//! The socket is switched to blocking mode with send and receive timeouts set to the data
//! timeout, so a stalled peer ends the transfer with an error instead of holding a thread.
//! [`KillSwitch`] shuts the socket down when the owning task is dropped (ABOR, session end),
//! which wakes the blocking thread at once.

use super::rate::Throttle;
use super::DataStream;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upload buffer: large writes keep the per-byte cost low; allocated per transfer only.
const RECV_BUF: usize = 1024 * 1024;

/// Pipe size asked for when splicing an upload.
#[cfg(target_os = "linux")]
const SPLICE_PIPE: usize = 1024 * 1024;

/// The first buffer of a copy: enough for a small file without zeroing a whole megabyte.
const FIRST_BUF: usize = 64 * 1024;

/// Bytes per `sendfile` call: small enough that STAT sees progress often, large enough that
/// the call overhead does not matter.
#[cfg(target_os = "linux")]
const SENDFILE_CHUNK: usize = 4 * 1024 * 1024;

/// Shuts a data socket down when dropped, so a blocking transfer on it ends promptly.
pub struct KillSwitch(TcpStream);

impl Drop for KillSwitch {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Turn an accepted or connected stream into a blocking std stream with timeouts,
/// plus the kill switch for it.
pub fn into_blocking(stream: DataStream, timeout: Duration) -> io::Result<(TcpStream, KillSwitch)> {
    let std = stream.into_std()?;
    std.set_nonblocking(false)?;
    std.set_read_timeout(Some(timeout))?;
    std.set_write_timeout(Some(timeout))?;
    let switch = KillSwitch(std.try_clone()?);
    Ok((std, switch))
}

/// Send `file` from its current position to the end. Returns the bytes sent.
pub fn send_file(
    file: &mut File,
    sock: &mut TcpStream,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    let total = send_file_inner(file, sock, progress, throttle)?;
    sock.flush()?;
    sock.shutdown(Shutdown::Write)?;
    Ok(total)
}

#[cfg(target_os = "linux")]
fn send_file_inner(
    file: &mut File,
    sock: &mut TcpStream,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    let chunk = throttle.chunk(SENDFILE_CHUNK);
    let mut total = 0u64;
    loop {
        match sendfile(&*sock, file, chunk as u64) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n;
                progress.store(total, Ordering::Relaxed);
                throttle.wait_blocking(n as usize);
            }
            Err(e) => match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // Not a file sendfile can read (some special files): copy instead.
                _ if total == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                    return copy(file, sock, progress, throttle)
                }
                io::ErrorKind::WouldBlock => return Err(io::Error::new(io::ErrorKind::TimedOut, e)),
                _ => return Err(e),
            },
        }
    }
}

/// One `sendfile(2)` of up to `want` bytes of `file`, from its position, to `socket`.
#[cfg(target_os = "linux")]
pub(super) fn sendfile(socket: &impl std::os::fd::AsRawFd, file: &File, want: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the call (borrowed); a null offset makes sendfile
    // use and advance the file's own position.
    let n = unsafe {
        libc::sendfile(
            socket.as_raw_fd(),
            file.as_raw_fd(),
            std::ptr::null_mut(),
            want as usize,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as u64)
    }
}

#[cfg(not(target_os = "linux"))]
fn send_file_inner(
    file: &mut File,
    sock: &mut TcpStream,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    copy(file, sock, progress, throttle)
}

/// Receive from the socket until the peer closes, appending to `file` at its position.
/// `already` bytes of this upload were received before (they count in `progress` and in the
/// total returned).
pub fn receive_file(
    sock: &mut TcpStream,
    file: &mut File,
    already: u64,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        splice_receive(sock, file, already, progress, throttle)
    }
    #[cfg(not(target_os = "linux"))]
    {
        copy_from(sock, file, already, progress, throttle)
    }
}

/// How much an upload lets the kernel gather before it wakes the receiving thread
/// (`SO_RCVLOWAT`). Waking once per 256 KiB instead of once per arriving segment spares
/// both the receiver and the sending side (which does the waking on loopback) most of
/// their scheduler work: an upload from a client that writes 64 KiB at a time runs about
/// 1.2x faster with it.
#[cfg(target_os = "linux")]
const GATHER_BYTES: usize = 256 * 1024;

/// The longest an upload waits for [`GATHER_BYTES`] before it takes what has arrived, so a
/// slow client's bytes still reach the file (and STAT) promptly.
#[cfg(target_os = "linux")]
const GATHER_WAIT: Duration = Duration::from_millis(20);

/// Upload with `splice(2)`: socket -> pipe -> file, so the bytes are not copied through user
/// space (one copy fewer than read + write). Falls back to the buffered copy where the file
/// system cannot take spliced pages.
///
/// The socket is non-blocking here and the wait is a `poll` with `SO_RCVLOWAT` set, so the
/// thread wakes for a batch of data, not for every segment. A blocking splice would be
/// woken only by that batch too, and would stall on a slow client's last few bytes. When a
/// whole [`GATHER_WAIT`] passes with nothing at all arrived, the peer has paused: the low
/// mark drops to one byte and the wait runs to the data timeout, until data flows again.
#[cfg(target_os = "linux")]
fn splice_receive(
    sock: &mut TcpStream,
    file: &mut File,
    already: u64,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return copy_from(sock, file, already, progress, throttle);
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let (pipe_r, pipe_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A larger pipe moves more per call; the default (64 KiB) still works.
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own.
    let size = unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, SPLICE_PIPE as libc::c_int) };
    let chunk = throttle.chunk(if size > 0 { size as usize } else { 64 * 1024 });
    let (sock_fd, file_fd) = (sock.as_raw_fd(), file.as_raw_fd());
    // The data timeout, set on the socket by `into_blocking`, now counts here.
    let idle_limit = sock.read_timeout()?.unwrap_or(Duration::MAX);
    sock.set_nonblocking(true)?;
    // Gather only when a batch fits in one call (not for a tightly throttled upload).
    let gather_at = if chunk >= GATHER_BYTES { GATHER_BYTES } else { 1 };
    let mut gathering = gather_at > 1 && set_rcvlowat(sock_fd, gather_at);
    let mut last_data = Instant::now();
    let mut waited_in_vain = false;
    let mut total = already;
    loop {
        // SAFETY: open descriptors; null offsets use (and advance) the descriptors' positions.
        let n = unsafe {
            libc::splice(
                sock_fd,
                std::ptr::null_mut(),
                pipe_w.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
            )
        };
        let n = match n {
            0 => break,
            n if n > 0 => n as usize,
            _ => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        let idle = last_data.elapsed();
                        if idle >= idle_limit {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "no data within the data timeout",
                            ));
                        }
                        if gathering && waited_in_vain {
                            // A whole gather wait brought nothing: wake for any byte.
                            gathering = !set_rcvlowat(sock_fd, 1);
                        }
                        let wait = if gathering {
                            GATHER_WAIT.min(idle_limit - idle)
                        } else {
                            idle_limit - idle
                        };
                        waited_in_vain = !wait_readable(sock_fd, wait)?;
                        continue;
                    }
                    _ if total == already && e.raw_os_error() == Some(libc::EINVAL) => {
                        to_plain_blocking(sock)?;
                        return copy_from(sock, file, already, progress, throttle);
                    }
                    _ => return Err(e),
                }
            }
        };
        last_data = Instant::now();
        waited_in_vain = false;
        if !gathering && gather_at > 1 {
            gathering = set_rcvlowat(sock_fd, gather_at);
        }
        let mut left = n;
        while left > 0 {
            // SAFETY: as above.
            let m = unsafe {
                libc::splice(
                    pipe_r.as_raw_fd(),
                    std::ptr::null_mut(),
                    file_fd,
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE,
                )
            };
            if m > 0 {
                left -= m as usize;
                continue;
            }
            if m == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes"));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // The file system takes no spliced pages: empty the pipe by hand, then go on
                // with the buffered copy.
                _ if e.raw_os_error() == Some(libc::EINVAL) => {
                    let mut buf = vec![0u8; left];
                    let mut pipe = File::from(pipe_r.try_clone()?);
                    pipe.read_exact(&mut buf)?;
                    file.write_all(&buf)?;
                    total += n as u64;
                    progress.store(total, Ordering::Relaxed);
                    to_plain_blocking(sock)?;
                    return copy_from(sock, file, total, progress, throttle);
                }
                _ => return Err(e),
            }
        }
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
        throttle.wait_blocking(n);
    }
    Ok(total)
}

/// Undo what `splice_receive` did to the socket, for the buffered copy it falls back to:
/// blocking reads that return whatever has arrived.
#[cfg(target_os = "linux")]
fn to_plain_blocking(sock: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    set_rcvlowat(sock.as_raw_fd(), 1);
    sock.set_nonblocking(false)
}

/// Set `SO_RCVLOWAT`; false if the kernel refused it (the upload then wakes per segment).
#[cfg(target_os = "linux")]
fn set_rcvlowat(fd: std::os::fd::RawFd, bytes: usize) -> bool {
    crate::control::stream::set_int_option(&fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT, bytes as libc::c_int)
        .is_ok()
}

/// Wait until `fd` is readable (its low mark reached, or the peer closed) or `wait` passes.
/// True if it became readable.
#[cfg(target_os = "linux")]
fn wait_readable(fd: std::os::fd::RawFd, wait: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd, count 1.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

fn copy(
    src: &mut impl Read,
    dst: &mut impl Write,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    copy_from(src, dst, 0, progress, throttle)
}

fn copy_from(
    src: &mut impl Read,
    dst: &mut impl Write,
    already: u64,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> io::Result<u64> {
    // Start small (most files are small) and grow to the full buffer once a read fills it.
    let full = throttle.chunk(RECV_BUF);
    let mut buf = vec![0u8; full.min(FIRST_BUF)];
    let mut total = already;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, e))
            }
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        if n == buf.len() && buf.len() < full {
            buf.resize(full, 0);
        }
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
        throttle.wait_blocking(n);
    }
    dst.flush()?;
    Ok(total)
}

//! A headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: the browser reads commands on its fd 3 and writes answers and
//! events on its fd 4, each a JSON message ended by a NUL byte), so a test can navigate, fill
//! and submit a form like a user, read the rendered DOM and take a screenshot. No WebSocket,
//! no port: nothing but the test can talk to the browser.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// How long one DevTools command or awaited event may take.
const CDP_DEADLINE: Duration = Duration::from_secs(30);

/// One headless Chromium with one page attached; killed when dropped.
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    /// Events read while waiting for an answer, oldest first.
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints; on success both are new open descriptors.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts `chromium` headless with an empty profile in a new temporary directory, and
    /// attaches to a new blank page. The caller has checked `require_client("chromium")`.
    pub fn start(work: &Path) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("fxpd-chromium-")
            .tempdir_in(work)
            .unwrap();
        let (cmd_read, cmd_write) = pipe();
        let (event_read, event_write) = pipe();
        let mut c = client_command("chromium", &work.join("chromium-home"));
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,700",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let (r, w) = (cmd_read.as_raw_fd(), event_write.as_raw_fd());
        // SAFETY: only async-signal-safe calls (dup2, setpgid) between fork and exec. dup2
        // clears FD_CLOEXEC on the copies, so the browser keeps fds 3 and 4; the originals
        // close on exec. fd 3 is moved out of the way first if it is the write end.
        unsafe {
            c.pre_exec(move || {
                let w = if w == 3 { libc::dup(w) } else { w };
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let child = c.spawn().expect("start chromium");
        drop((cmd_read, event_write));
        let (tx, rx) = mpsc::channel();
        let reader = File::from(event_read);
        thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                            continue;
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to_browser: File::from(cmd_write),
            from_browser: rx,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = b.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("chromium pipe ({method}): {e}"));
        let deadline = Instant::now() + CDP_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer from chromium to {method}: {e}"));
            if msg["id"].as_u64() == Some(id) {
                if let Some(err) = msg.get("error") {
                    panic!("chromium refused {method}: {err}");
                }
                return msg["result"].clone();
            }
            if msg.get("method").is_some() {
                self.events.push_back(msg);
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A DevTools command to the page; its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Forgets the events read so far (call before the action whose event is awaited).
    pub fn forget_events(&mut self) {
        while let Ok(msg) = self.from_browser.try_recv() {
            if msg.get("method").is_some() {
                self.events.push_back(msg);
            }
        }
        self.events.clear();
    }

    /// Waits for the page event `method`; panics after the deadline.
    pub fn wait_event(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + CDP_DEADLINE;
        loop {
            if let Some(pos) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(pos).unwrap();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("chromium never sent {method}: {e}"));
            if msg.get("method").is_some() {
                self.events.push_back(msg);
            }
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub fn navigate(&mut self, url: &str) {
        self.forget_events();
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "navigate {url}: {r}");
        self.wait_event("Page.loadEventFired");
    }

    /// Evaluates `expr` in the page; its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// The rendered document, as markup.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG screenshot of the page as it is shown, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64_decode(r["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group the child made for itself.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (with padding, no line breaks), as DevTools sends binary data.
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    }
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

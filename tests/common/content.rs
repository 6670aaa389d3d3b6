//! Test content: random and text files, SHA-256 of bytes and files, trees of files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `n` pseudo-random bytes (splitmix64, seeded from time, pid and a counter).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut state = nanos
        ^ ((std::process::id() as u64) << 32)
        ^ SEED_COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Writes `n` random bytes to `path` (creating parents) and returns their SHA-256.
pub fn write_random_file(path: &Path, n: usize) -> String {
    let data = random_bytes(n);
    write_file(path, &data);
    sha256_bytes(&data)
}

/// Writes `data` to `path`, creating parent directories.
pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A text file of `lines` LF-terminated lines.
pub fn text_content(lines: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..lines {
        s.push_str(&format!(
            "line {i}: the quick brown fox jumps over the lazy dog\n"
        ));
    }
    s.into_bytes()
}

pub fn sha256_bytes(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Waits (up to 20 s) until the file at `path` holds `len` bytes: a server has written what
/// a client sent, though the transfer has not ended.
pub fn wait_for_size(path: &Path, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::metadata(path).map(|m| m.len()).unwrap_or(0) != len {
        assert!(
            Instant::now() < deadline,
            "{} never held {len} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SHA-256 of a file (streamed).
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Relative path -> SHA-256 for every file under `dir`, and `path/` -> "<dir>" for every
/// directory, so two trees compare equal only if both files and directories match.
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), "<dir>".into());
                walk(base, &p, out);
            } else {
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Creates a tree of random, empty and text files with nested subdirectories under `dir`.
pub fn make_tree(dir: &Path) -> BTreeMap<String, String> {
    write_random_file(&dir.join("big.bin"), 3 * 1024 * 1024 + 17);
    write_file(&dir.join("empty.dat"), b"");
    write_file(&dir.join("notes.txt"), &text_content(200));
    write_random_file(&dir.join("sub1/mid.bin"), 200 * 1024 + 3);
    write_file(&dir.join("sub1/readme.txt"), &text_content(5));
    write_random_file(&dir.join("sub1/sub2/deep.bin"), 1024 * 1024 + 1);
    write_random_file(&dir.join("sub3/one.bin"), 4096);
    tree_hashes(dir)
}

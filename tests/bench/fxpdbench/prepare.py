"""What a run prepares on the machine and undoes: the bench user, hashes, the data tree.

The system user and its throwaway password, SHA-512 crypt and argon2id timings, the
tmpfs tree with one copy of the data hard-linked into every root (Ctx), mounts,
the self-signed certificate and fxpd's users files.
"""

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time

from .clients import curl_tls_args
from .util import (
    BenchError, FXPD_HOST, GIB, KIB, MIB, USER, USER_HOME, VSFTPD_HOST, WORKLOADS, log, run,
)


def ensure_user(password):
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--home-dir", USER_HOME,
             "--shell", "/bin/bash", USER])
    pw = pwd.getpwnam(USER)
    if not os.path.isdir(pw.pw_dir):
        os.makedirs(pw.pw_dir, exist_ok=True)
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    # SHA-512 crypt (~1-3 ms), the hash cost the reference figures used for C servers.
    run(["chpasswd", "-c", "SHA512"], input=f"{USER}:{password}\n")
    return pw.pw_uid, pw.pw_gid


def lock_user():
    subprocess.run(["passwd", "-l", USER], capture_output=True, timeout=30)


def shadow_hash():
    """The bench user's password hash in /etc/shadow (SHA-512 crypt, see ensure_user)."""
    with open("/etc/shadow") as f:
        return next(l.split(":")[1] for l in f if l.startswith(USER + ":"))


def time_sha512crypt(password):
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        h = shadow_hash()
        t0 = time.perf_counter()
        for _ in range(20):
            crypt.crypt(password, h)
        return (time.perf_counter() - t0) / 20 * 1e3
    except Exception:
        return None


def argon2_phc(password, t, m_kib, p):
    """(PHC string, seconds) from Debian's argon2 CLI, or None without it."""
    if not shutil.which("argon2"):
        return None
    salt = secrets.token_hex(8)
    logk = None
    # The CLI takes memory as -k KiB (newer) or -m log2(KiB) (all versions).
    args = ["argon2", salt, "-id", "-t", str(t), "-k", str(m_kib), "-p", str(p)]
    pr = subprocess.run(args, input=password, capture_output=True, text=True, timeout=60)
    if pr.returncode != 0:
        logk = max(1, m_kib.bit_length() - 1)
        args = ["argon2", salt, "-id", "-t", str(t), "-m", str(logk), "-p", str(p)]
        pr = subprocess.run(args, input=password, capture_output=True, text=True, timeout=60)
    if pr.returncode != 0:
        return None
    enc = re.search(r"(\$argon2id\$\S+)", pr.stdout)
    secs = re.search(r"^([\d.]+) seconds", pr.stdout, re.M)
    if not enc:
        return None
    return enc.group(1), float(secs.group(1)) if secs else None


def fill_file(path, size, block):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            k = min(left, len(block))
            f.write(block[:k])
            left -= k


class Ctx:
    pass


def mount_big_tmpfs(ctx, path, size):
    """With --huge, the big files (RETR, STOR, FXP, TLS) get a tmpfs of their own with 2 MiB
    pages: on a VM that hands freed memory back to its host, that makes 512 times fewer
    page events per upload. Not the default: the first write into each new 2 MiB page of a
    tmpfs file zeroes the rest of it, a pass over every byte uploaded that no disk file
    system makes (their page cache has 4 KiB pages, which a full-page write fills without
    zeroing), and it hides the difference between one copy per byte and two. Small files
    stay on the ordinary tmpfs (a huge page per 4 KiB file would swamp them). Returns False
    (the caller uses a plain directory) when mounting is not possible."""
    os.makedirs(path)
    p = run(["mount", "-t", "tmpfs", "-o", f"size={size},huge=always,mode=0755",
             "fxpd-bench", path], check=False)
    if p.returncode != 0:
        log(f"cannot mount a huge-page tmpfs ({p.stderr.strip()}); big files on the data dir")
        return False
    ctx.mounts.append(path)
    return True


def bind_mount(ctx, src, dst):
    os.makedirs(dst)
    run(["mount", "--bind", src, dst])
    ctx.mounts.append(dst)


def unmount_all(ctx):
    for path in reversed(getattr(ctx, "mounts", None) or []):
        run(["umount", path], check=False)
    if ctx is not None:
        ctx.mounts = []


def setup(args, cfg, cgroot):
    ctx = Ctx()
    try:
        return setup_in(ctx, args, cfg, cgroot)
    except BaseException:
        unmount_all(ctx)
        raise


def setup_in(ctx, args, cfg, cgroot):
    ctx.cfg = cfg
    ctx.quick = args.quick
    ctx.ftpload = args.ftpload
    ctx.big_digest = {}
    ctx.password = "bench" + secrets.token_hex(12)
    ctx.uid, ctx.gid = ensure_user(ctx.password)

    workloads = args.only.split(",") if args.only else WORKLOADS
    # big.bin, one upload at a time, the FXP copy and the reference program's file.
    nbig = 3 + ("fxp" in workloads)
    need = nbig * cfg["big"] + cfg["small_n"] * cfg["small_size"] * 6 + 4 * cfg["conc_size"] + 256 * MIB
    ctx.mounts = []
    base = args.data_dir
    st = shutil.disk_usage(base)
    with open("/proc/meminfo") as f:
        avail = next(int(l.split()[1]) * KIB for l in f if l.startswith("MemAvailable:"))
    if st.free < need or avail < need + GIB:
        raise BenchError(f"{base} has {st.free / GIB:.1f} GiB free and the machine "
                         f"{avail / GIB:.1f} GiB available; this run needs {need / GIB:.1f} GiB "
                         f"(use --quick or --big-mib)")
    ctx.work = tempfile.mkdtemp(prefix="fxpd-bench.", dir=base)
    os.chmod(ctx.work, 0o755)
    log(f"data on {base} (free {st.free / GIB:.1f} GiB): {ctx.work}")

    block = os.urandom(4 * MIB)
    data = os.path.join(ctx.work, "data")
    os.mkdir(data)
    # Each server root's big/ directory is a plain directory, or with --huge a bind mount
    # of its own directory in one huge-page tmpfs (hard links need one file system).
    ctx.big_dir = os.path.join(ctx.work, "big")
    huge = args.huge and mount_big_tmpfs(ctx, ctx.big_dir, nbig * cfg["big"] + GIB)
    if not huge:
        os.makedirs(ctx.big_dir, exist_ok=True)
    ctx.data_dir_desc = base + (" (big files on a tmpfs with huge=always)" if huge else "")
    ctx.big_src = os.path.join(ctx.big_dir, "big.bin")
    fill_file(ctx.big_src, cfg["big"], block)
    conc = os.path.join(data, "conc.bin")
    fill_file(conc, cfg["conc_size"], block[1:])
    ctx.client_small = os.path.join(ctx.work, "client-small")
    os.mkdir(ctx.client_small)
    ctx.small_names = [f"f{i:05d}.dat" for i in range(cfg["small_n"])]
    for i, nm in enumerate(ctx.small_names):
        with open(os.path.join(ctx.client_small, nm), "wb") as f:
            f.write(block[i * 7 % MIB:][:cfg["small_size"]])

    def big_subdir(name, root):
        if not huge:
            os.makedirs(os.path.join(root, "big"))
            return os.path.join(root, "big")
        own = os.path.join(ctx.big_dir, name)
        os.makedirs(own)
        bind_mount(ctx, own, os.path.join(root, "big"))
        return own

    ctx.roots = {}
    for name in ("vsftpd", "fxpd") + (("pure-ftpd",) if args.pure_ftpd else ()):
        root = os.path.join(ctx.work, name, "root")
        os.makedirs(os.path.join(root, "small"))
        # Hard links: one copy of the data on tmpfs, the same inodes for both servers.
        os.link(ctx.big_src, os.path.join(big_subdir(name, root), "big.bin"))
        os.link(conc, os.path.join(root, "conc.bin"))
        for nm in ctx.small_names:
            os.link(os.path.join(ctx.client_small, nm), os.path.join(root, "small", nm))
        ctx.roots[name] = root
    ctx.roots["fxpd-eqhash"] = ctx.roots["fxpd"]
    ctx.roots["fxpd-tls"] = ctx.roots["fxpd"]
    ctx.roots["vsftpd-tls"] = ctx.roots["vsftpd"]
    for name in ("vsftpd-fxp", "fxpd-fxp"):
        # FXP destinations: an empty root of their own.
        ctx.roots[name] = os.path.join(ctx.work, name, "root")
        os.makedirs(ctx.roots[name])
        big_subdir(name, ctx.roots[name])
    os.makedirs(os.path.join(ctx.work, "vsftpd", "empty"))
    for dirpath, dirnames, filenames in os.walk(ctx.work):
        os.chown(dirpath, ctx.uid, ctx.gid)
        for fn in filenames:
            os.chown(os.path.join(dirpath, fn), ctx.uid, ctx.gid)
    os.chown(os.path.join(ctx.work, "vsftpd", "empty"), 0, 0)
    os.chmod(os.path.join(ctx.work, "vsftpd", "empty"), 0o755)
    os.chown(ctx.work, 0, 0)
    ctx.cgroot = cgroot
    ctx.cert = ctx.key = None
    if {"tls_retr", "tls_stor"} & set(workloads):
        ctx.cert, ctx.key = make_cert(ctx)
    return ctx


def make_cert(ctx):
    """A throwaway self-signed RSA certificate for both TLS instances. The key is readable
    by root (vsftpd loads it before dropping privileges) and the bench group (fxpd)."""
    d = os.path.join(ctx.work, "tls")
    os.mkdir(d)
    os.chmod(d, 0o750)
    os.chown(d, 0, ctx.gid)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=fxpd-bench",
         "-addext", f"subjectAltName=IP:{VSFTPD_HOST},IP:{FXPD_HOST}"], timeout=60)
    for f, mode in ((cert, 0o644), (key, 0o640)):
        os.chown(f, 0, ctx.gid)
        os.chmod(f, mode)
    return cert, key


def tls_params(ctx, srv):
    """The TLS version and cipher curl negotiates with a TLS instance (from curl -v)."""
    url = f"ftp://{USER}:{ctx.password}@{srv.host}:{srv.port}/"
    p = run(["curl", "-sS", "-v", "--max-time", "30", "-l", "-o", "/dev/null"]
            + curl_tls_args(srv) + [url], timeout=40, check=False)
    if p.returncode != 0:
        raise BenchError(f"{srv.name}: TLS listing failed: {p.stderr.strip()[-300:]}")
    m = re.search(r"SSL connection using (\S+) / (\S+)", p.stderr)
    return f"{m.group(1)} {m.group(2)}" if m else None


def make_users_file(ctx, binary, name, phc=None):
    path = os.path.join(ctx.work, name, "users.toml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.perf_counter()
    run([binary, "user", "add", USER, "--users", path, "--write"],
        input=ctx.password + "\n", timeout=60)
    add_secs = time.perf_counter() - t0
    if phc:
        with open(path) as f:
            text = f.read()
        new, k = re.subn(r'"\$argon2[^"]*"', lambda _m: '"' + phc + '"', text)
        if k != 1:
            raise BenchError(f"could not find the password hash in {path}")
        with open(path, "w") as f:
            f.write(new)
    os.chown(path, ctx.uid, ctx.gid)
    os.chmod(path, 0o600)
    with open(path) as f:
        m = re.search(r"\$argon2id\$v=19\$(m=\d+,t=\d+,p=\d+)", f.read())
    return path, (m.group(1) if m else "?"), add_secs

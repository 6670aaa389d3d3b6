#!/usr/bin/env bash
# Build the Windows zip, cross-compiled on Linux with Debian's mingw-w64:
#   bash packaging/build-windows.sh [--profile release|dev] [OUTDIR]
#       -> OUTDIR/fxpd-<version>-x86_64-windows.zip   (OUTDIR default: target/windows)
# Contents, at the top of the zip: fxpd.exe (x86_64-pc-windows-gnu, stripped), fxpd.toml (the
# hardened production config of packaging/windows/: the Debian package's settings with Windows
# paths), fxpd.example.toml, README.md, docs/, LICENSE, install.cmd and uninstall.cmd (text
# files with CRLF line endings). Nothing else: the ProcessPrng shim the Wine tests need
# (tests/windows/bcryptprimitives.c) is never shipped, real Windows has the function.
#
# `--profile dev` builds the debug fxpd.exe into ...-x86_64-windows-dev.zip instead: the Wine
# tests check the zip and the install scripts with the build they already have; only a release
# zip is for shipping. The last line printed is the zip's path.
#
# Installs what is missing, as tests/windows/run.sh does: the Debian package
# gcc-mingw-w64-x86-64-win32 (linker, import libraries, x86_64-w64-mingw32-strip), python3 (its
# zipfile module writes the zip) and the Rust target x86_64-pc-windows-gnu.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
profile=release
if [ "${1:-}" = "--profile" ]; then
    profile=${2:?--profile needs release or dev}
    shift 2
fi
case $profile in
    release | dev) ;;
    *)
        echo "build-windows: unknown profile $profile (release or dev)" >&2
        exit 2
        ;;
esac
out=${1:-$repo/target/windows}
target=${CARGO_TARGET_DIR:-$repo/target}
triple=x86_64-pc-windows-gnu

packages=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || packages+=(gcc-mingw-w64-x86-64-win32)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
if ((${#packages[@]} > 0)); then
    echo "build-windows: installing ${packages[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
if ! rustup target list --installed | grep -qx "$triple"; then
    echo "build-windows: adding the Rust target $triple" >&2
    rustup target add "$triple"
fi

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
name=fxpd-$version-x86_64-windows
if [ "$profile" = release ]; then
    cargo build --quiet --release --locked --target "$triple" --bin fxpd --manifest-path "$repo/Cargo.toml"
    exe=$target/$triple/release/fxpd.exe
else
    cargo build --quiet --locked --target "$triple" --bin fxpd --manifest-path "$repo/Cargo.toml"
    exe=$target/$triple/debug/fxpd.exe
    name=$name-dev
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# Stripped: no debug symbols in the shipped binary.
x86_64-w64-mingw32-strip --strip-unneeded -o "$stage/fxpd.exe" "$exe"
mkdir -p "$out"
zip=$out/$name.zip
# name in the zip <- file in the repository; CRLF for the files Notepad and cmd.exe read.
python3 - "$repo" "$stage/fxpd.exe" "$zip" <<'PY'
import os, sys, zipfile
repo, exe, zip_path = sys.argv[1:]
files = [
    ("fxpd.exe", exe, False),
    ("fxpd.toml", "packaging/windows/fxpd.toml", True),
    ("fxpd.example.toml", "config/fxpd.example.toml", True),
    ("install.cmd", "packaging/windows/install.cmd", True),
    ("uninstall.cmd", "packaging/windows/uninstall.cmd", True),
    ("README.md", "README.md", False),
    ("LICENSE", "LICENSE", True),
]
docs = os.path.join(repo, "docs")
files += [("docs/" + f, "docs/" + f, False) for f in sorted(os.listdir(docs)) if f.endswith(".md")]
tmp = zip_path + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for name, path, crlf in files:
        with open(os.path.join(repo, path), "rb") as f:
            data = f.read()
        if crlf:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        info = zipfile.ZipInfo(name, date_time=zipfile.ZipInfo.from_file(os.path.join(repo, path)).date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        z.writestr(info, data)
os.replace(tmp, zip_path)
PY
echo "$zip"

#!/usr/bin/env bash
# Build the Debian package from a release build, with dpkg-deb only (no extra tools):
#   bash packaging/build-deb.sh [OUTDIR]      -> OUTDIR/fxpd_<version>_<arch>.deb
# Contents: /usr/bin/fxpd, the hardened systemd unit, /etc/fxpd/fxpd.toml (a conffile
# with the hardened production defaults), the documentation; maintainer scripts create
# the unprivileged `ftp` account, /srv/ftp and an empty users file.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/target/debian}
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release --locked --manifest-path "$repo/Cargo.toml"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$target/release/fxpd" "$stage/usr/bin/fxpd"
install -D -m 0644 "$repo/packaging/fxpd.service" "$stage/lib/systemd/system/fxpd.service"
install -D -m 0644 "$repo/config/fxpd.toml" "$stage/etc/fxpd/fxpd.toml"
install -D -m 0644 "$repo/config/fxpd.example.toml" "$stage/usr/share/doc/fxpd/fxpd.example.toml"
install -D -m 0644 "$repo/README.md" "$stage/usr/share/doc/fxpd/README.md"
# The reference the README links to (relative links: docs/NAME.md).
for doc in "$repo"/docs/*.md; do
    install -D -m 0644 "$doc" "$stage/usr/share/doc/fxpd/docs/$(basename "$doc")"
done
install -d "$stage/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$repo/packaging/debian/$script" "$stage/DEBIAN/$script"
done
install -m 0644 "$repo/packaging/debian/conffiles" "$stage/DEBIAN/conffiles"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: fxpd
Version: $version
Architecture: $arch
Maintainer: fxpd developers <fxpd@localhost>
Installed-Size: $size
Depends: adduser, libc6
Section: net
Priority: optional
Homepage: file:///usr/share/doc/fxpd/README.md
Description: FTP/FTPS server with an enforced FXP (server-to-server) policy
 fxpd serves files over FTP and FTPS. Whether a data connection may involve an
 address other than the client's (FXP, the FTP bounce attack when abused) is
 decided in one place by explicit settings, off by default.
CONTROL
mkdir -p "$out"
deb="$out/fxpd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

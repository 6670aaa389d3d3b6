#!/usr/bin/env bash
# Build the Debian package from a release build, with dpkg's own tools (dpkg-deb,
# dpkg-shlibdeps) and binutils' strip:
#   bash packaging/build-deb.sh [OUTDIR]      -> OUTDIR/fxpd_<version>_<arch>.deb
# Contents: /usr/bin/fxpd (stripped), its manual page, the hardened systemd unit,
# /etc/fxpd/fxpd.toml (a conffile with the hardened production defaults), the
# documentation, copyright and changelog; maintainer scripts create the unprivileged `ftp`
# account, /srv/ftp and an empty users file. tests/packaging/run.sh checks it with lintian.
#
# Why not cargo-deb: it would have to be built from source on every fresh CI machine (a
# few minutes on 2 cores) for what these lines do; the one thing it adds, Depends: derived
# from the binary's shared libraries, dpkg-shlibdeps does here.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/target/debian}
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release --locked --manifest-path "$repo/Cargo.toml"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Stripped: the package carries no debug symbols (lintian: unstripped-binary-or-object).
install -D -m 0755 "$target/release/fxpd" "$stage/usr/bin/fxpd"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/fxpd"
# The manual page, generated from the command-line definitions.
install -d "$stage/usr/share/man/man8"
"$target/release/fxpd" manpage | gzip -9n >"$stage/usr/share/man/man8/fxpd.8.gz"
install -D -m 0644 "$repo/packaging/fxpd.service" "$stage/lib/systemd/system/fxpd.service"
install -D -m 0644 "$repo/config/fxpd.toml" "$stage/etc/fxpd/fxpd.toml"
install -D -m 0644 "$repo/config/fxpd.example.toml" "$stage/usr/share/doc/fxpd/fxpd.example.toml"
install -D -m 0644 "$repo/README.md" "$stage/usr/share/doc/fxpd/README.md"
# The reference the README links to (relative links: docs/NAME.md).
for doc in "$repo"/docs/*.md; do
    install -D -m 0644 "$doc" "$stage/usr/share/doc/fxpd/docs/$(basename "$doc")"
done
install -D -m 0644 "$repo/packaging/debian/copyright" "$stage/usr/share/doc/fxpd/copyright"
# A native package: its changelog is changelog.gz.
gzip -9n <"$repo/packaging/debian/changelog" >"$stage/usr/share/doc/fxpd/changelog.gz"
chmod 0644 "$stage/usr/share/doc/fxpd/changelog.gz"
install -d "$stage/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$repo/packaging/debian/$script" "$stage/DEBIAN/$script"
done
install -m 0644 "$repo/packaging/debian/conffiles" "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# The shared libraries the binary links, as package dependencies with the least versions its
# symbols need (dpkg-shlibdeps reads a minimal debian/control of its own).
shlibs=$(mktemp -d)
mkdir "$shlibs/debian"
printf 'Source: fxpd\n\nPackage: fxpd\nArchitecture: any\n' >"$shlibs/debian/control"
libs=$(cd "$shlibs" && dpkg-shlibdeps -O -e"$stage/usr/bin/fxpd" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlibs"
[ -n "$libs" ] || { echo "build-deb: dpkg-shlibdeps found no libraries" >&2; exit 1; }
cat > "$stage/DEBIAN/control" <<CONTROL
Package: fxpd
Version: $version
Architecture: $arch
Maintainer: fxpd developers <maintainers@fxpd.invalid>
Installed-Size: $size
Depends: adduser, $libs
Section: net
Priority: optional
Description: FTP/FTPS server with an enforced FXP (server-to-server) policy
 fxpd serves files over FTP and FTPS. Whether a data connection may involve an
 address other than the client's (FXP, the FTP bounce attack when abused) is
 decided in one place by explicit settings, off by default.
CONTROL
mkdir -p "$out"
deb="$out/fxpd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

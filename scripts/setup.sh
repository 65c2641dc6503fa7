#!/usr/bin/env bash
# Bring a Debian 12 machine (run as root) and this checkout to the state `npm run demo` and `npm test` need.
# Idempotent and quick when nothing is missing: every step checks first and only acts when needed.
#
#   1. apt packages: busybox-static (test rootfs), runc and crun (tests and benchmarks compare cordon with them),
#      nats-server (NATS tests start their own), containernetworking-plugins (CNI tests), libseccomp2, util-linux
#      (ipcmk, dmesg, nsenter, unshare), mount, bsdutils (script), procps (ps, used by `cordon ps`), e2fsprogs (chattr: the
#      event-log failure tests make a journal immutable), iproute2
#      (network tests make bridges and look inside namespaces with `ip`; cordon itself uses rtnetlink), plus CORDON_EXTRA_PACKAGES
#      (space- or comma-separated);
#      `apt-get update` runs only when something must be installed
#   2. `npm ci` when node_modules is missing or older than package-lock.json
#   3. `npm run build` when dist/ is missing or a .ts source is newer than dist/.build-stamp
#   4. the busybox rootfs (scripts/rootfs.sh)
#   5. CRIU >= 4 passing `criu check` (scripts/criu.sh: builds it from source once, ~2 min; then a version
#      check). Skipped with CORDON_SETUP_CRIU=0 (the demo does not need it); a failure is a warning here, and
#      the checkpoint/restore tests then fail naming the reason.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages ---------------------------------------------------------------------------------------
packages=(busybox-static runc crun libseccomp2 util-linux mount bsdutils procps nats-server containernetworking-plugins iproute2 e2fsprogs)
if [[ -n ${CORDON_EXTRA_PACKAGES:-} ]]; then
  read -r -a extra <<<"${CORDON_EXTRA_PACKAGES//,/ }"
  packages+=("${extra[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  ((EUID == 0)) || die "missing packages (${missing[*]}); run as root to install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  log "packages present: ${packages[*]}"
fi

# --- 2. node modules ------------------------------------------------------------------------------------------
# npm ci writes node_modules/.package-lock.json last, so it dates the install. Optional dependencies are
# required (koffi's native binary is one), so they are included explicitly even if npm config says otherwise.
# (vite is pinned to 8.3.4 in package.json: 8.4 declares an optional dependency the registry does not serve,
# which makes this npm reject its own lock file.)
installed_lock=node_modules/.package-lock.json
npm_flags=(--include=dev --include=optional --no-audit --no-fund)
if [[ ! -d node_modules || ! -f $installed_lock || package-lock.json -nt $installed_lock ]]; then
  log "npm ci"
  npm ci "${npm_flags[@]}" >&2 || die "npm ci failed"
  touch "$installed_lock"
else
  log "node_modules up to date"
fi

# --- 3. build -------------------------------------------------------------------------------------------------
stamp=dist/.build-stamp
src_dirs=(errors cli client actors machines events kernel config bench)
need_build=
if [[ ! -d dist || ! -f $stamp ]]; then
  need_build=1
elif [[ tsconfig.json -nt $stamp || package-lock.json -nt $stamp ]]; then
  need_build=1
else
  existing=()
  for d in "${src_dirs[@]}"; do [[ -d $d ]] && existing+=("$d"); done
  for f in index.ts nats.ts scripts/bundle-cli.mjs; do [[ -f $f ]] && existing+=("$f"); done
  if ((${#existing[@]})) && [[ -n $(find "${existing[@]}" \( -name '*.ts' -o -name '*.mjs' \) -newer "$stamp" -print -quit) ]]; then
    need_build=1
  fi
fi
if [[ -n $need_build ]]; then
  log "npm run build"
  # Stamp the start time, so a source saved during the build is newer than the stamp and triggers the next one.
  mkdir -p dist
  start=$(mktemp dist/.build-stamp.XXXXXX)
  trap 'rm -f "$start"' EXIT
  npm run --silent build >&2
  chmod 0644 "$start"
  mv -f "$start" "$stamp"
  trap - EXIT
else
  log "dist up to date"
fi

# --- 4. rootfs ------------------------------------------------------------------------------------------------
bash scripts/rootfs.sh
log "rootfs ready: ${CORDON_ROOTFS:-.cache/rootfs/busybox}"

# --- 5. CRIU --------------------------------------------------------------------------------------------------
if [[ ${CORDON_SETUP_CRIU:-1} != 0 ]]; then
  bash scripts/criu.sh || log "warning: no usable CRIU (see above); the checkpoint/restore tests will fail"
fi

#!/usr/bin/env bash
# Make sure a CRIU >= 4 that passes `criu check` is on PATH (installed as /usr/local/sbin/criu), for the
# checkpoint/restore tests (issue 14). Idempotent and fast when present: one `criu --version`, then
# `criu check` once per binary (remembered in .cache/criu/checked).
#
# When missing (Debian 12's criu 3.17.1 fails `criu check` on recent kernels), it builds CRIU from source:
#   1. the build dependencies from the machine's own apt sources (apt-get install);
#   2. CRIU's upstream source with `apt-get source --download-only criu` from Debian's trixie suite, through a
#      PRIVATE apt configuration in .cache/criu/apt (its own sources list, no source parts, its own lists and
#      cache) holding one deb-src line for trixie on the same mirror URI the machine's apt sources use; the
#      system's apt sources and lists are untouched. Only the orig tarball is used (the .dsc/debian parts of
#      that version may be missing on the mirror);
#   3. `make -j2 criu` in .cache/criu/build, then install criu/criu as /usr/local/sbin/criu and run `criu check`.
# Environment: CORDON_CRIU_SUITE (default trixie), CORDON_CRIU_PREFIX (default /usr/local/sbin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'criu: %s\n' "$*" >&2; }
die() { printf 'criu: error: %s\n' "$*" >&2; exit 1; }

suite=${CORDON_CRIU_SUITE:-trixie}
prefix=${CORDON_CRIU_PREFIX:-/usr/local/sbin}
cache=$PWD/.cache/criu
min_major=4

# The major version of a criu binary ("Version: 4.1.1" → 4), empty when it does not run.
criu_major() { "$1" --version 2>/dev/null | sed -n 's/^Version: *\([0-9][0-9]*\)\..*/\1/p' | head -1; }

# A criu binary that is recent enough and passes `criu check` (checked once per binary identity).
usable() {
  local bin=$1 major id
  major=$(criu_major "$bin")
  [[ -n $major && $major -ge $min_major ]] || return 1
  id="$(readlink -f "$bin") $(stat -c '%s %Y' "$bin")"
  if [[ -f $cache/checked && $(cat "$cache/checked") == "$id" ]]; then return 0; fi
  if "$bin" check >/dev/null 2>&1; then
    mkdir -p "$cache" && printf '%s\n' "$id" >"$cache/checked"
    return 0
  fi
  log "$bin ($("$bin" --version 2>/dev/null | head -1)) fails 'criu check':"
  "$bin" check 2>&1 | tail -5 | sed 's/^/  /' >&2 || true
  return 1
}

existing=$(PATH=$prefix:$PATH command -v criu || true)
if [[ -n $existing ]] && usable "$existing"; then
  [[ $(command -v criu || true) == "$existing" ]] || log "note: $existing is not first on this PATH; add $prefix"
  log "present: $existing ($("$existing" --version | head -1))"
  exit 0
fi

((EUID == 0)) || die "no usable criu >= $min_major on PATH; run as root to build and install it"
command -v apt-get >/dev/null || die "no usable criu >= $min_major and no apt-get to build one; install CRIU >= $min_major yourself"
export DEBIAN_FRONTEND=noninteractive

# --- 1. build dependencies ------------------------------------------------------------------------------------
deps=(build-essential pkg-config libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  python3-protobuf libnl-3-dev libnet1-dev libcap-dev libbsd-dev libnftables-dev libaio-dev libgnutls28-dev
  libdrm-dev uuid-dev xz-utils)
missing=()
for pkg in "${deps[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing build dependencies: ${missing[*]}"
  mkdir -p "$cache"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$cache/apt.log" 2>&1 \
    || { tail -20 "$cache/apt.log" >&2; die "could not install CRIU's build dependencies (${missing[*]}; log: $cache/apt.log)"; }
fi

# --- 2. the source, through a private apt configuration -------------------------------------------------------
# The mirror: the first URI of a `deb` entry of the machine's own sources that is not a security or updates
# suite (deb822 .sources files and one-line .list files).
mirror_uri() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) uris = $i
          if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /[ \t]deb([ \t]|$)/ && suites !~ /-security/ && uris != "") {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) !~ /-security/) { print $i; exit }
      }' "$f"
  done
}
uri=$(mirror_uri | grep -E '^(https?|ftp|file|mirror)' | head -1 || true)
[[ -n $uri ]] || die "found no 'deb' entry in /etc/apt/sources.list or /etc/apt/sources.list.d/ to take a mirror from"

apt_dir=$cache/apt
rm -rf "$apt_dir" && mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/src"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=
[[ -f $keyring ]] && signed="[signed-by=$keyring] "
printf 'deb-src %s%s %s main\n' "$signed" "$uri" "$suite" >"$apt_dir/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Get::List-Cleanup=false"
  -o "APT::Sandbox::User=root")
log "fetching CRIU's source from $suite on $uri (private apt configuration in $apt_dir)"
apt-get "${apt_private[@]}" update -qq >&2 || die "apt-get update of the private $suite deb-src configuration failed"
# The orig tarball is what we build; the .dsc and debian tarball may be missing (404) and are not needed.
(cd "$cache/src" && apt-get "${apt_private[@]}" source --download-only criu >"$cache/source.log" 2>&1) || true
tarball=$(ls -t "$cache"/src/criu_*.orig.tar.* 2>/dev/null | head -1 || true)
[[ -n $tarball ]] || { tail -20 "$cache/source.log" >&2; die "apt-get source --download-only criu ($suite on $uri) fetched no criu_*.orig.tar.* (log: $cache/source.log)"; }
log "source: $(basename "$tarball")"

# --- 3. build, install, check ---------------------------------------------------------------------------------
build=$cache/build
rm -rf "$build" && mkdir -p "$build"
tar -C "$build" --strip-components=1 -xf "$tarball" || die "could not unpack $tarball"
start=$SECONDS
log "make -j2 criu (in $build)"
make -C "$build" -j2 criu >"$cache/build.log" 2>&1 || { tail -30 "$cache/build.log" >&2; die "building CRIU failed (log: $cache/build.log)"; }
log "built in $((SECONDS - start)) s"
install -D -m 0755 "$build/criu/criu" "$prefix/criu"
rm -f "$cache/checked"
usable "$prefix/criu" || die "$prefix/criu was built but fails 'criu check' (see above)"
log "installed $prefix/criu ($("$prefix/criu" --version | head -1)); criu check: looks good"

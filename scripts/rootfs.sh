#!/usr/bin/env bash
# Build the minimal busybox rootfs the tests and the demo run containers from.
#
#   scripts/rootfs.sh            # builds ${CORDON_ROOTFS:-.cache/rootfs/busybox} if missing or outdated
#
# Relative paths are taken from the repository root. The tree is built in a temporary directory next to the
# target and renamed into place, so a half-built rootfs is never visible. Bump ROOTFS_VERSION whenever the
# layout below changes: a rootfs whose .cordon-rootfs-version differs is rebuilt.
#
# Env: CORDON_ROOTFS  target directory (default .cache/rootfs/busybox)
#      CORDON_BUSYBOX statically linked busybox to copy (default /bin/busybox, from busybox-static)
set -euo pipefail

ROOTFS_VERSION=1
MARKER=.cordon-rootfs-version

cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=${CORDON_ROOTFS:-.cache/rootfs/busybox}
target=${target%/}
busybox=${CORDON_BUSYBOX:-/bin/busybox}

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

# Fast path: already built at this version.
if [[ -f $target/$MARKER && $(<"$target/$MARKER") == "$ROOTFS_VERSION" ]]; then
  exit 0
fi

[[ -f $busybox && -x $busybox ]] || die "$busybox not found (install busybox-static)"

# Reads N little-endian bytes at OFFSET of FILE as an unsigned integer.
read_le() {
  local file=$1 offset=$2 size=$3 value=0 i
  local -a bytes
  read -r -a bytes < <(od -An -v -tu1 -j "$offset" -N "$size" "$file")
  ((${#bytes[@]} == size)) || die "$file: truncated ELF header"
  for ((i = size - 1; i >= 0; i--)); do value=$((value * 256 + bytes[i])); done
  printf '%s' "$value"
}

# A statically linked ELF has no PT_INTERP program header (static-pie included). Checked by hand so the
# script does not depend on file(1) being installed.
is_static_elf() {
  local file=$1 magic class data phoff phentsize phnum i type
  magic=$(od -An -v -tx1 -N 4 "$file" | tr -d ' \n')
  [[ $magic == 7f454c46 ]] || return 1
  class=$(read_le "$file" 4 1)
  data=$(read_le "$file" 5 1)
  ((data == 1)) || die "$file: big-endian ELF not supported by this check"
  case $class in
    1) phoff=$(read_le "$file" 28 4); phentsize=$(read_le "$file" 42 2); phnum=$(read_le "$file" 44 2) ;;
    2) phoff=$(read_le "$file" 32 8); phentsize=$(read_le "$file" 54 2); phnum=$(read_le "$file" 56 2) ;;
    *) return 1 ;;
  esac
  for ((i = 0; i < phnum; i++)); do
    type=$(read_le "$file" $((phoff + i * phentsize)) 4)
    ((type == 3)) && return 1 # PT_INTERP
  done
  return 0
}

is_static_elf "$busybox" ||
  die "$busybox is not a statically linked ELF (the dynamic 'busybox' package? install busybox-static)"

log "building $target (version $ROOTFS_VERSION)"
parent=$(dirname "$target")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.$(basename "$target").tmp.XXXXXX")
old=
cleanup() {
  [[ -n ${tmp:-} && -d $tmp ]] && rm -rf --one-file-system -- "$tmp"
  [[ -n ${old:-} && -d $old ]] && rm -rf --one-file-system -- "$old"
  return 0
}
trap cleanup EXIT

chmod 0755 "$tmp"
for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp root var run home; do
  mkdir -p "$tmp/$d"
  chmod 0755 "$tmp/$d"
done
chmod 1777 "$tmp/tmp"
chmod 0700 "$tmp/root"

cp -- "$busybox" "$tmp/bin/busybox"
chmod 0755 "$tmp/bin/busybox"

# One relative symlink per applet, at the path busybox itself reports (bin/sh, usr/bin/id, sbin/init, linuxrc).
count=0
while IFS= read -r applet; do
  [[ -n $applet && $applet != bin/busybox ]] || continue
  [[ $applet != /* && $applet != *..* ]] || die "unexpected applet path: $applet"
  up=
  if [[ $applet == */* ]]; then
    dir=${applet%/*}
    [[ -d $tmp/$dir ]] || mkdir -p "$tmp/$dir"
    slashes=${applet//[!\/]/}
    for ((i = 0; i < ${#slashes}; i++)); do up+=../; done
  fi
  if [[ $applet == bin/* && $applet != bin/*/* ]]; then
    ln -sfn -- busybox "$tmp/$applet"
  else
    ln -sfn -- "${up}bin/busybox" "$tmp/$applet"
  fi
  count=$((count + 1))
done < <("$busybox" --list-full)
((count > 0)) || die "$busybox --list-full listed no applets"

cat >"$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$tmp/etc/group" <<'EOF'
root:x:0:
tty:x:5:
app:x:1000:
extra:x:2000:
nogroup:x:65534:
EOF
: >"$tmp/etc/hostname"
chmod 0644 "$tmp/etc/passwd" "$tmp/etc/group" "$tmp/etc/hostname"
mkdir -p "$tmp/home/app"
chown 1000:1000 "$tmp/home/app"
chmod 0755 "$tmp/home/app"

printf '%s\n' "$ROOTFS_VERSION" >"$tmp/$MARKER"

# Swap into place. mv -T refuses to move into an existing directory, so a concurrent build that won the race
# is detected instead of getting ours nested inside it.
if [[ -e $target ]]; then
  old=$(mktemp -d "$parent/.$(basename "$target").old.XXXXXX")
  rmdir "$old"
  mv -T -- "$target" "$old"
fi
if ! mv -T -- "$tmp" "$target" 2>/dev/null; then
  if [[ -f $target/$MARKER && $(<"$target/$MARKER") == "$ROOTFS_VERSION" ]]; then
    log "another build finished first; keeping it"
    exit 0
  fi
  die "could not move the new rootfs to $target"
fi
tmp=
log "built $target ($count applets)"

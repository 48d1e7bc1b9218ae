#!/usr/bin/env bash
# Runs a command in a fresh Debian made by debootstrap, as a new user's machine would be: nothing but
# the chosen variant, this machine's node and npm, and this network's CA bundle.
#
#   scripts/ci/chroot.sh [--suite bookworm] [--variant minbase] [--include pkg,pkg] [--bind SRC:DST]... \
#                        -- COMMAND [ARG...]
#
# The pristine tree is made once and cached in /var/cache/lep-ci/<suite>-<variant>[-<includes>]/ (about
# 2.5 minutes); every run gets a throw-away overlayfs on top of it, so the cache never changes. The
# mirror is the one this machine's apt uses (/etc/apt/sources.list.d/*, then /etc/apt/sources.list).
# COMMAND runs as root with cwd / and HOME=/root; --bind mounts a host directory into the chroot.
# Needs root, debootstrap and overlayfs.
set -euo pipefail

suite=bookworm variant=minbase include="" binds=()
while (($#)); do
  case "$1" in
    --suite) suite=$2; shift 2 ;;
    --variant) variant=$2; shift 2 ;;
    --include) include=$2; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "chroot.sh: unknown argument $1 (usage: see the head of $0)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "chroot.sh: no command given after --" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "chroot.sh: needs root (debootstrap, mount, chroot)" >&2; exit 2; }

cache_root=${LEP_CI_CACHE:-/var/cache/lep-ci}
name="$suite-$variant${include:+-${include//,/+}}"
pristine="$cache_root/$name"

# The Debian mirror apt uses here: deb822 "URIs:" lines first, one-line "deb URL" entries second.
mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v -- '-security' | head -1 || true)
  [ -n "$uri" ] || uri=$(cat /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
    awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | grep -v -- '-security' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Make the pristine tree once; a lock keeps two concurrent runs from both building it, and the rename
# makes a half-made tree (an interrupted debootstrap) never look cached.
mkdir -p "$cache_root"
exec 9>"$cache_root/.$name.lock"
flock 9
if [ ! -f "$pristine/.lep-ci-complete" ]; then
  rm -rf "$pristine" "$pristine.tmp"
  m=$(mirror)
  echo "chroot.sh: creating $pristine from $m (debootstrap --variant=$variant $suite, ~2.5 min, cached afterwards)" >&2
  debootstrap --variant="$variant" ${include:+--include="$include"} "$suite" "$pristine.tmp" "$m" \
    >"$cache_root/$name.debootstrap.log" 2>&1 || {
      tail -20 "$cache_root/$name.debootstrap.log" >&2; echo "chroot.sh: debootstrap failed" >&2; exit 1; }
  rm -rf "$pristine.tmp"/var/cache/apt/archives/*.deb
  touch "$pristine.tmp/.lep-ci-complete"
  mv "$pristine.tmp" "$pristine"
fi
flock -u 9

# The throw-away overlay for this run.
run=$(mktemp -d "$cache_root/run.XXXXXX")
mkdir -p "$run/upper" "$run/work" "$run/root"
root="$run/root"
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true; done
  # Never remove through a mount that is still attached: the bind mounts include this checkout and /dev.
  if grep -qF " $run/" /proc/self/mounts; then
    echo "chroot.sh: $run still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$run"
  fi
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$pristine,upperdir=$run/upper,workdir=$run/work" "$root"
mounted+=("$root")
for d in proc dev dev/pts; do mount --bind "/$d" "$root/$d"; mounted+=("$root/$d"); done
# /sys with the file systems mounted under it (the cgroup hierarchies, which tests make memory limits in),
# as slaves: nothing unmounted in the chroot's tree reaches the host's. Its cleanup is umount -l's.
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"; mounted+=("$root/sys")
for b in "${binds[@]}"; do
  src=${b%%:*} dst=${b#*:}
  mkdir -p "$root$dst"
  mount --bind "$src" "$root$dst"; mounted+=("$root$dst")
done

# This network re-signs TLS with its own CA: the chroot gets the host's bundle where Debian keeps it,
# and npm is told to use it (the host's npm does the same through `cafile`).
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/etc"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# node and npm from this machine, nothing else: no compiler, no cmake, no -dev package.
cp "$(command -v node)" "$root/usr/local/bin/node"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# The tree is thrown away after the run: dpkg need not fsync every file it unpacks (minutes saved on
# libtorch's closure; what gets installed is unchanged).
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/lep-ci-unsafe-io"
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' \
  >"$root/usr/local/etc/npmrc"

set +e
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive ${CI:+CI=$CI} "$@"
rc=$?
exit "$rc"

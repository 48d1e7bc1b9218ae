#!/usr/bin/env bash
# A new user's machine, reproduced: a minimal Debian 12 (debootstrap --variant=minbase, scripts/ci/chroot.sh)
# with this machine's node and npm and nothing else (no compiler, no cmake, no -dev package), where lep is
# installed from the tarballs `npm run release:pack` writes, the way the README's Install section says.
# Prints one "✔ fresh machine: <check>" / "✘ fresh machine: <check>" line per check (.ci/run counts them)
# and exits non-zero when any check fails. The checks run in scripts/ci/fresh-machine-checks.sh.
# Debian packages downloaded inside are kept in /var/cache/lep-ci/apt-archives-<suite> between runs
# (the pristine tree itself never changes).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
suite=bookworm

echo "fresh machine: packing release/ (npm run release:pack)"
if ! npm run --silent release:pack; then
  echo "✘ fresh machine: release:pack"
  exit 1
fi
echo "✔ fresh machine: release:pack"

archives=${LEP_CI_CACHE:-/var/cache/lep-ci}/apt-archives-$suite
mkdir -p "$archives/partial"
# One run at a time uses the shared Debian package cache (apt locks it; a second apt would fail, not wait).
flock "$archives/.lock" bash scripts/ci/chroot.sh --suite "$suite" --variant minbase \
  --bind "$repo:/src" \
  --bind "$archives:/var/cache/apt/archives" \
  -- bash /src/scripts/ci/fresh-machine-checks.sh

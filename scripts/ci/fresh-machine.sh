#!/usr/bin/env bash
# A new user's machine, reproduced: a minimal Debian (debootstrap --variant=minbase, scripts/ci/chroot.sh)
# with this machine's node and npm and nothing else (no compiler, no cmake, no -dev package), where lep is
# installed from the tarballs `npm run release:pack` writes, the way the README's Install section says.
#
#   scripts/ci/fresh-machine.sh [SUITE...]     (as root; SUITE: bookworm (default) = Debian 12, trixie = Debian 13)
#
# Packs release/ once (every libtorch flavour: the Debian 13 one needs build-libtorch2.6/Release from
# scripts/ci/libtorch26.sh), then runs the checks in scripts/ci/fresh-machine-checks.sh in a fresh chroot
# of each suite. Prints one "✔ fresh machine (<suite>): <check>" / "✘ ..." line per check (.ci/run counts
# them) and exits non-zero when any check fails.
# Debian packages downloaded inside are kept in /var/cache/lep-ci/apt-archives-<suite> between runs
# (the pristine tree itself never changes).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
suites=("$@")
((${#suites[@]})) || suites=(bookworm)

echo "fresh machine: packing release/ (npm run release:pack)"
if ! npm run --silent release:pack; then
  echo "✘ fresh machine: release:pack"
  exit 1
fi
echo "✔ fresh machine: release:pack"

rc=0
for suite in "${suites[@]}"; do
  t0=$SECONDS
  archives=${LEP_CI_CACHE:-/var/cache/lep-ci}/apt-archives-$suite
  mkdir -p "$archives/partial"
  # One run at a time uses the shared Debian package cache (apt locks it; a second apt would fail, not wait).
  flock "$archives/.lock" bash scripts/ci/chroot.sh --suite "$suite" --variant minbase \
    --bind "$repo:/src" \
    --bind "$archives:/var/cache/apt/archives" \
    -- bash /src/scripts/ci/fresh-machine-checks.sh "$suite" || rc=1
  echo "fresh machine ($suite): $((SECONDS - t0)) s"
done
exit "$rc"

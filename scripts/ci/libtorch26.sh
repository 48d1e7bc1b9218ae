#!/usr/bin/env bash
# Builds lep against libtorch 2.6 (Debian 13 "trixie") in a throw-away chroot and runs the native and
# distributed tests there; the rest of CI uses this machine's libtorch.
#
#   scripts/ci/libtorch26.sh [AVA FILE...]     (as root, from anywhere; after `npm run setup`)
#
# - The chroot comes from scripts/ci/chroot.sh: a cached pristine trixie tree with the build packages
#   below (made once, ~10 minutes of downloads), a fresh overlay per run.
# - This checkout is bind-mounted at /lep: node_modules/ and dist/ are the host's (platform-independent
#   JavaScript; `npm run setup` made them), the addons are built into build-libtorch2.6/ (Release/lep.node
#   and lep_spm.node: the release packer ships them as the libtorch-2.6 prebuilt; build/ stays the host's).
# - ccache lives on the host in /var/cache/lep-ci/ccache-trixie and build-libtorch2.6/ is kept, so a
#   rebuild takes minutes (a cold build ~12 minutes on 2 cores).
# - The tests load the 2.6 addons through LEP_NATIVE; PyTorch references run on trixie's python3-torch.
#   ava's own lines go to stdout (`✔`/`✘` per test), which .ci/run counts.
# Default tests: dist/test/native/*.test.js (but report.test.js, which needs Chromium; load-native.test.js
# checks the loader with this build as the libtorch-2.6 prebuilt package) and
# dist/test/e2e/distributed.test.js.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LEP_CI_CACHE:-/var/cache/lep-ci}
out=build-libtorch2.6

if [ "${1:-}" != "--inside" ]; then
  [ -x "$repo/node_modules/.bin/ava" ] && [ -d "$repo/dist/test" ] ||
    { echo "libtorch26.sh: $repo has no node_modules/ or dist/: run \`npm run setup\` first" >&2; exit 2; }
  packages=(libtorch-dev libdnnl-dev libopenblas0-pthread libgloo-dev libsentencepiece-dev sentencepiece nlohmann-json3-dev
            cmake g++ make ninja-build ccache python3-torch)
  mkdir -p "$cache/ccache-trixie"
  include=$(IFS=,; echo "${packages[*]}")
  exec "$repo/scripts/ci/chroot.sh" --suite trixie --include "$include" \
    --bind "$repo:/lep" --bind "$cache/ccache-trixie:/ccache" -- /bin/bash /lep/scripts/ci/libtorch26.sh --inside "$@"
fi

# --- inside the chroot
shift
cd /lep
export CCACHE_DIR=/ccache CCACHE_MAXSIZE=3G CCACHE_BASEDIR=/lep CMAKE_CXX_COMPILER_LAUNCHER=ccache
# cmake's precompiled torch/torch.h: ccache reuses objects built with it only with this sloppiness.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
echo "libtorch26.sh: building lep against $(dpkg-query -W -f='libtorch ${Version}' libtorch-dev) into $out/ (log: $out.log)"
t0=$(date +%s)
ccache -z >/dev/null
# Configured each time with the device check (test/native/device-check.test.ts runs it), also in a kept
# build folder configured without it.
if ! { nice -n 10 node node_modules/cmake-js/bin/cmake-js configure --out "$out" --CDLEP_DEVICE_CHECK=ON &&
       nice -n 10 node node_modules/cmake-js/bin/cmake-js build --out "$out"; } >"$out.log" 2>&1; then
  tail -40 "$out.log"
  echo "libtorch26.sh: the libtorch 2.6 build failed; full log in $out.log"
  exit 1
fi
hits=$(ccache -s | grep -iE '^ *hits' | head -1 | tr -s ' ' || true)
echo "libtorch26.sh: built in $(($(date +%s) - t0)) s${hits:+ (ccache${hits})}"

tests=("$@")
if ! ((${#tests[@]})); then
  # Left out: report.test.js renders HTML in Chromium (not installed here, and not about libtorch).
  # load-native.test.js runs on this build (LEP_NATIVE) as the libtorch 2.6 prebuilt flavour.
  for f in dist/test/native/*.test.js dist/test/e2e/distributed.test.js; do
    case "$f" in dist/test/native/report.test.js) ;; *) tests+=("$f") ;; esac
  done
fi
t0=$(date +%s)
set +e
# Debian 13's libtorch links OpenMPI and with it UCX, whose memory hooks patch mmap/malloc in every process
# that loads lep.node; one run in three crashed (SIGSEGV in V8 while the addon loaded, UCX's handler
# printing the backtrace; not reproduced since). lep uses Gloo, never UCX, so its hooks are switched off as a
# precaution: not proven to be the cause.
UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_MALLOC_HOOKS=no \
LEP_NATIVE=/lep/$out/Release LEP_REFERENCE_PYTHON=/usr/bin/python3 node node_modules/ava/entrypoints/cli.mjs "${tests[@]}"
rc=$?
echo "libtorch26.sh: tests on libtorch 2.6 took $(($(date +%s) - t0)) s (exit $rc)"
exit "$rc"

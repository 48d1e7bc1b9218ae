#!/usr/bin/env bash
# Installs everything lep's development needs on Debian 12 and builds it. Idempotent: a second run only checks.
#   scripts/setup.sh          what building and running lep needs (`npm start`)
#   scripts/setup.sh --test   plus what only the tests use (`npm test`): python3-torch, the independent PyTorch
#                             reference tests and bench/ compare lep's training against, and chromium, which
#                             renders the HTML report in its test; debootstrap for the fresh-machine and libtorch-2.6
#                             chroots (scripts/ci/); clang with its sanitizer runtime for the C++ fuzz targets (fuzz/)
#   1. Debian packages (libtorch, OpenBLAS, SentencePiece, nlohmann-json, the compiler) — skipped when present
#   2. npm packages (npm install against package-lock.json; `npm ci` refuses the lock because some of
#      node-llama-cpp's optional platform packages are not on the registry; CUDA/Vulkan builds of llama.cpp are optional deps and are left out)
#   3. native addons (cmake-js) and TypeScript — rebuilt only when sources changed
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libtorch-dev libdnnl-dev libopenblas0-pthread libgloo-dev libsentencepiece-dev sentencepiece nlohmann-json3-dev cmake g++ make)
if [ "${1:-}" = --test ]; then APT_PACKAGES+=(python3-torch chromium debootstrap ccache clang-14 libclang-rt-14-dev); fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm: reinstall only when package-lock.json changed since the last install.
stamp=node_modules/.lep-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: installing npm packages"
  # --omit=optional keeps node-llama-cpp's hundreds-of-MB CUDA/Vulkan binaries out; the CPU prebuilt
  # (@node-llama-cpp/linux-x64) is a direct devDependency. Install scripts are not needed.
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --ignore-scripts --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

# Native build: when any C++ source or CMakeLists.txt is newer than the last build (a stamp: an edit that
# relinks one target only, the device check's, leaves lep.node older than the sources for good).
if [ ! -f build/Release/lep.node ] || [ ! -f build/Release/lep_spm.node ] || [ ! -f build/lep_device_check ] ||
   [ ! -f build/.native-stamp ] || [ -n "$(find cpp CMakeLists.txt -newer build/.native-stamp -print -quit)" ]; then
  echo "setup: building native addons (a few minutes the first time)"
  # ccache, where installed, makes rebuilds in other clones and after a clean take seconds; the
  # precompiled torch header needs the sloppiness below, or ccache refuses every call.
  if command -v ccache >/dev/null; then
    export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
    export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
  fi
  mkdir -p build
  # With the device check (cpp/check/device_check.cpp), which test/native/device-check.test.ts runs on the
  # CPU: configured each time, as a build folder may have been configured without it.
  { npx cmake-js configure --out build --CDLEP_DEVICE_CHECK=ON && CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" npx cmake-js build --out build; } >build/cmake-js.log 2>&1 || {
    tail -50 build/cmake-js.log; echo "setup: native build failed; full log in build/cmake-js.log"; exit 1; }
  touch build/.native-stamp
fi

# TypeScript (sources and tests): incremental.
if [ ! -f dist/.stamp ] || [ -n "$(find ts test bench scripts tsconfig.json -name '*.ts' -newer dist/.stamp -print -quit 2>/dev/null)" ] ||
   [ tsconfig.json -nt dist/.stamp ]; then
  echo "setup: compiling TypeScript"
  npx tsc -p tsconfig.json
  touch dist/.stamp
fi

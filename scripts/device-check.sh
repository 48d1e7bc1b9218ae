#!/usr/bin/env bash
# lep's core on a GPU, checked against the CPU (cpp/check/device_check.cpp; docs/testing.md, "On a GPU").
#
#   bash scripts/device-check.sh --prepare      here, once: copies nlohmann-json's headers into .device/
#   bash scripts/device-check.sh [OUT_DIR]      on the GPU machine, from the repository root, with .device/
#                                               carried; OUT_DIR defaults to $OUT, else ./device-check
#
# The GPU machine has PyTorch with CUDA (its libtorch and CMake files), CMake, ninja and nvcc, but no Node,
# no SentencePiece and no network. So this builds the core alone (-DLEP_ADDONS=OFF) and lep_device_check
# against that PyTorch into build-device/, then runs the check: float32 and bf16 at the toy shape, bf16 at
# the small shape, each against the CPU in float32 in the same process. Logs and reports (NAME.log,
# NAME.json) go to OUT_DIR; the exit status is the first failure's. About 3-5 minutes on 16 cores, most of it the build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ "${1:-}" = "--prepare" ]; then
  # nlohmann-json is header-only; Debian's package (scripts/setup.sh installs it) with its CMake files,
  # which find the headers relative to themselves.
  [ -f /usr/include/nlohmann/json.hpp ] && [ -d /usr/share/cmake/nlohmann_json ] ||
    { echo "device-check: nlohmann-json3-dev is not installed here (apt-get install nlohmann-json3-dev)" >&2; exit 2; }
  rm -rf .device && mkdir -p .device/nlohmann/include .device/nlohmann/share/cmake
  cp -r /usr/include/nlohmann .device/nlohmann/include/
  cp -r /usr/share/cmake/nlohmann_json .device/nlohmann/share/cmake/
  echo "device-check: .device/ is ready; carry it: run(command='bash scripts/device-check.sh', carry=['.device'])"
  exit 0
fi

out=${1:-${OUT:-device-check}}
mkdir -p "$out"
torch_cmake=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' | tee "$out/machine.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$out/machine.txt" 2>&1 || true

echo "device-check: building lep_core and lep_device_check into build-device/ (log: $out/build.log)"
t0=$(date +%s)
if ! { cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEP_ADDONS=OFF -DLEP_ONEDNN=OFF -DLEP_DEVICE_CHECK=ON \
         -DCMAKE_PREFIX_PATH="$torch_cmake;$repo/.device/nlohmann" &&
       cmake --build build-device --target lep_device_check -j "$(nproc)"; } >"$out/build.log" 2>&1; then
  grep -m 40 -E "error|Error|fatal" "$out/build.log" || true
  echo "device-check: the build failed; full log in $out/build.log"
  exit 1
fi
echo "device-check: built in $(($(date +%s) - t0)) s"

status=0
run() {  # NAME ARGS...: one run of the check; its log and report as OUT_DIR/NAME.log and NAME.json
  local name=$1
  shift
  echo "device-check: $name"
  # The models, checkpoints and propagated files (2 GB at the small shape) stay in build-device/.
  local work="build-device/check-$name"
  rm -rf "$work"
  set +e
  ./build-device/lep_device_check "$@" --out "$work" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$status" -ne 0 ] || status=$rc
  cp "$work/report.json" "$out/$name.json" 2>/dev/null || true
  rm -rf "$work"
}
run cuda-f32 --device cuda --dtype f32
run cuda-bf16 --device cuda --dtype bf16
run cuda-bf16-small --device cuda --dtype bf16 --size small
exit $status

#!/usr/bin/env bash
# The numerical parity tests again as on each class of x86-64 CPU lep chooses kernels for, as far as this
# CPU can stand in for it: OpenBLAS's core and oneDNN's instruction set forced together.
#
#   core         ONEDNN_MAX_CPU_ISA  stands for                          float32 products (runtime.h)
#   PRESCOTT     SSE41               the generic fallback (a probe rejected a better core), SSE only
#   SANDYBRIDGE  AVX                 an AVX CPU                           the BLAS
#   HASWELL      AVX2                an AVX2 + FMA CPU                    oneDNN
#   SKYLAKEX     AVX512_CORE         an AVX-512 CPU                       oneDNN
#
# The main suite only ever runs what this CI machine ends up with; this shows the other kernels compute
# correctly with this OpenBLAS and oneDNN too, against independent references: llama.cpp's own kernels
# (gguf-parity) and PyTorch (score- and train-torch-parity, float32 products in oneDNN and in the BLAS).
#
#   scripts/ci/blas-cores.sh [CORE...]       (after `npm run setup`; default: the rows above this CPU runs)
#
# A user's OPENBLAS_CORETYPE wins over lep's choice (ts/binding/blasCore.ts, rule 1), so setting it here
# forces the core; `lep info` must then report it and the float32 products the table says, or the run
# fails (OpenBLAS silently falls back on a name it does not know). The PyTorch reference runs with the
# libraries' own choices (LEP_REFERENCE_CPU_DEFAULTS=1), so wrong kernels cannot agree with themselves.
# ava's lines are prefixed with the core (`✔ [OpenBLAS HASWELL] ...`), which .ci/run counts. The tokenizer
# comparisons of gguf-parity are left out: no BLAS in them. Below AVX512_CORE the bf16 tests are left out
# too: libtorch 1.13 sends bf16 products to oneDNN by the CPU's own flags (AVX-512 here; libtorch 2.x asks
# oneDNN, so the cap holds there), which a capped oneDNN then refuses ("could not create a primitive
# descriptor iterator"; lep refuses them with LEP_BAD_DTYPE, test/native/f32-products.test.ts); a real
# AVX2 CPU's flags send them to libtorch's own kernels, so that failure is the stand-in's, met only by a
# user who caps oneDNN on libtorch 1.13.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -x node_modules/.bin/ava ] && [ -d dist/test ] || { echo "blas-cores.sh: no node_modules/ or dist/: run \`npm run setup\` first" >&2; exit 2; }

declare -A isa=([PRESCOTT]=SSE41 [SANDYBRIDGE]=AVX [HASWELL]=AVX2 [SKYLAKEX]=AVX512_CORE)
cores=("$@")
if ! ((${#cores[@]})); then
  # The cores of every level up to this CPU's, by the rule lep itself chooses with (blasCore.ts).
  read -ra cores < <(node --input-type=module -e "
    import { readFileSync } from 'node:fs';
    import { coreForLevel, cpuLevel, parseCpuinfo } from './dist/ts/binding/blasCore.js';
    const level = cpuLevel(parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8')));
    console.log(['PRESCOTT', ...Array.from({ length: level }, (_, i) => coreForLevel(i + 1))].join(' '));")
fi
tests=(dist/test/native/gguf-parity.test.js dist/test/native/score-torch-parity.test.js dist/test/native/train-torch-parity.test.js)
rc=0
for core in "${cores[@]}"; do
  t0=$(date +%s)
  cap=${isa[$core]:-}
  [ -n "$cap" ] || { echo "  ✘ [OpenBLAS $core] a core this script knows (${!isa[*]})"; rc=1; continue; }
  case $cap in AVX2|AVX512_CORE) want='^f32 products +oneDNN' ;; *) want='^f32 products +the BLAS' ;; esac
  info=$(OPENBLAS_CORETYPE=$core ONEDNN_MAX_CPU_ISA=$cap node dist/ts/cli/main.js info 2>&1)
  line=$(grep '^BLAS core' <<<"$info" || true)
  products=$(grep '^f32 products' <<<"$info" || true)
  # OpenBLAS's names: Prescott, Sandybridge, Haswell, SkylakeX.
  if ! grep -qi "^BLAS core *$core\b" <<<"$line" || ! grep -qE "$want" <<<"$products"; then
    echo "  ✘ [OpenBLAS $core] lep info reports the forced core and ${want#^f32 products +} products (it says: ${line:-nothing}; ${products:-nothing})"
    rc=1
    continue
  fi
  echo "blas-cores.sh: OPENBLAS_CORETYPE=$core ONEDNN_MAX_CPU_ISA=$cap: $line; $products"
  skip=(--match '!*tokenises like lep*')
  [ "$cap" = AVX512_CORE ] || skip+=(--match '!*bfloat16*' --match '!*bf16*')
  OPENBLAS_CORETYPE=$core ONEDNN_MAX_CPU_ISA=$cap LEP_REFERENCE_CPU_DEFAULTS=1 node_modules/.bin/ava "${tests[@]}" "${skip[@]}" 2>&1 |
    sed -u "s/✔ /✔ [OpenBLAS $core] /; s/✘ /✘ [OpenBLAS $core] /"
  step=${PIPESTATUS[0]}; [ "$step" -ne 0 ] && rc=$step
  echo "blas-cores.sh: $core took $(($(date +%s) - t0)) s"
done
exit "$rc"

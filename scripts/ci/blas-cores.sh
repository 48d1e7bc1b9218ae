#!/usr/bin/env bash
# The numerical parity tests again under every OpenBLAS core lep may choose on some CPU, as far as this
# CPU runs it: the fallback (PRESCOTT, OpenBLAS's generic core, which stays when a probe rejects a
# better one) and the core of each instruction-set level ts/binding/blasCore.ts picks (SANDYBRIDGE for
# AVX, HASWELL for AVX2 + FMA, SKYLAKEX for AVX-512). The main suite only ever runs the core this CI
# machine ends up with; this shows the others compute correctly with this OpenBLAS too, against
# independent references: llama.cpp's own kernels (gguf-parity) and PyTorch (score- and train-torch-parity).
#
#   scripts/ci/blas-cores.sh [CORE...]       (after `npm run setup`; default: the cores above this CPU runs)
#
# A user's OPENBLAS_CORETYPE wins over lep's choice (blasCore.ts, rule 1), so setting it here forces the
# core; `lep info` must then report it, or the run fails (OpenBLAS silently falls back on an unknown
# name). The PyTorch reference runs under OpenBLAS's own choice (LEP_REFERENCE_OPENBLAS_CORETYPE empty),
# so a wrong core cannot agree with itself. ava's lines are prefixed with the core (`✔ [OpenBLAS HASWELL]
# ...`), which .ci/run counts. The tokenizer comparisons of gguf-parity are left out: no BLAS in them.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -x node_modules/.bin/ava ] && [ -d dist/test ] || { echo "blas-cores.sh: no node_modules/ or dist/: run \`npm run setup\` first" >&2; exit 2; }

cores=("$@")
if ! ((${#cores[@]})); then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  cores=(PRESCOTT)
  has avx && cores+=(SANDYBRIDGE)
  has avx2 fma && cores+=(HASWELL)
  has avx512f avx512cd avx512bw avx512dq avx512vl && cores+=(SKYLAKEX)
fi
tests=(dist/test/native/gguf-parity.test.js dist/test/native/score-torch-parity.test.js dist/test/native/train-torch-parity.test.js)
rc=0
for core in "${cores[@]}"; do
  t0=$(date +%s)
  line=$(OPENBLAS_CORETYPE=$core node dist/ts/cli/main.js info 2>&1 | grep '^BLAS core' || true)
  # OpenBLAS's names: Prescott, Sandybridge, Haswell, SkylakeX.
  if ! grep -qi "^BLAS core *$core\b" <<<"$line"; then
    echo "  ✘ [OpenBLAS $core] lep info reports the forced core (it says: ${line:-nothing})"
    rc=1
    continue
  fi
  echo "blas-cores.sh: OPENBLAS_CORETYPE=$core: $line"
  OPENBLAS_CORETYPE=$core LEP_REFERENCE_OPENBLAS_CORETYPE='' node_modules/.bin/ava "${tests[@]}" --match '!*tokenises like lep*' 2>&1 |
    sed -u "s/✔ /✔ [OpenBLAS $core] /; s/✘ /✘ [OpenBLAS $core] /"
  step=${PIPESTATUS[0]}; [ "$step" -ne 0 ] && rc=$step
  echo "blas-cores.sh: $core took $(($(date +%s) - t0)) s"
done
exit "$rc"

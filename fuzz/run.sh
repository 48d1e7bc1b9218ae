#!/usr/bin/env bash
# Coverage-guided fuzzing of lep's byte readers. C++ targets (fuzz/*.cpp) run under libFuzzer with
# AddressSanitizer and UndefinedBehaviorSanitizer (Debian: apt-get install clang-14 libclang-rt-14-dev);
# TS targets (fuzz/*.fuzz.mjs, property tests with fast-check over the compiled dist/: run `npx tsc` first)
# run under node.
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 30 s per target, every target
# Every target runs with FUZZ_SEED (default 1; libFuzzer's -seed, fast-check's seed; FUZZ_SEED=random for
# the TS targets draws one and prints it), so a short CI run explores the same sequence of inputs each time,
# as far as the machine's speed allows (set another seed for long runs); libFuzzer's per-input timeout is
# 30 s, as ASan on two busy cores is slow. A failure prints the end of its log, so CI's output alone says why.
# Prints one line per target: "✔ fuzz <target> (<runs> runs, <s> s)" or "✘ fuzz <target>: <why>", and
# exits non-zero if any target failed. A crashing input is kept in build/fuzz/crashes/<target>/; add it to
# fuzz/corpus/<target>/ once fixed, so every later run replays it first.
set -u
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
cxx_targets=$(ls fuzz/*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
ts_targets=$(ls fuzz/*.fuzz.mjs 2>/dev/null | xargs -rn1 basename | sed 's/\.fuzz\.mjs$//')
targets=${*:-$cxx_targets $ts_targets}
clang=$(command -v clang++ || command -v clang++-14 || true)
out=build/fuzz
mkdir -p "$out"
failed=0
for t in $targets; do
  mkdir -p "$out/crashes/$t" "$out/corpus-$t"
  if [ -f "fuzz/$t.cpp" ]; then
    if [ -z "$clang" ]; then echo "✘ fuzz $t: no clang++ (apt-get install clang-14 libclang-rt-14-dev)"; failed=1; continue; fi
    if ! "$clang" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icpp \
        "fuzz/$t.cpp" $(sed -n 's|^// sources: ||p' "fuzz/$t.cpp") -o "$out/$t" 2> "$out/$t.build.log"; then
      echo "✘ fuzz $t: build failed (see $out/$t.build.log)"; failed=1; continue
    fi
    # New inputs go to a scratch corpus; the committed seeds (and past crashers) are replayed first.
    if "$out/$t" -max_total_time="$secs" -timeout=30 -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$out/crashes/$t/" "$out/corpus-$t" "fuzz/corpus/$t" > "$out/$t.log" 2>&1; then
      runs=$(grep -o 'Done [0-9]* runs' "$out/$t.log" | tail -1 | grep -o '[0-9]*')
      echo "✔ fuzz $t (${runs:-?} runs, ${secs} s)"
    else
      echo "✘ fuzz $t: crash or hang, input kept in $out/crashes/$t/ (log: $out/$t.log)"; failed=1
      tail -n 30 "$out/$t.log" | sed 's/^/    | /'
    fi
  else
    # A hang shows as the timeout killing node.
    if FUZZ_SEED=${FUZZ_SEED:-1} timeout $((secs + 120)) node "fuzz/$t.fuzz.mjs" "$secs" > "$out/$t.log" 2>&1; then
      echo "✔ fuzz $t ($(tail -1 "$out/$t.log"))"
    else
      # A native abort or a hang leaves the input in flight behind.
      [ -f "$out/last-$t" ] && cp "$out/last-$t" "$out/crashes/$t/last-input"
      echo "✘ fuzz $t: property failed, crash or hang (log: $out/$t.log; input kept in $out/crashes/$t/)"; failed=1
      tail -n 30 "$out/$t.log" | cut -c1-400 | sed 's/^/    | /'
      [ -f "$out/last-$t" ] && { echo "    | input in flight (first 2000 bytes):"; head -c 2000 "$out/last-$t" | sed 's/^/    | /'; echo; }
    fi
  fi
done
exit $failed

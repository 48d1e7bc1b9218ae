#!/usr/bin/env bash
# Runs inside the fresh chroot (scripts/ci/fresh-machine.sh): the repository is at /src (read only by
# convention: the user's project is /root/app), the tarballs at /src/release. One ✔/✘ line per check.
#   fresh-machine-checks.sh SUITE     (the suite names the check lines)
set -uo pipefail
suite=${1:?usage: fresh-machine-checks.sh SUITE}
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
src=/src
app=/root/app
log=/tmp/check.log
failed=0
mkdir -p "$app" && cd "$app" || exit 1

# check NAME COMMAND...: runs COMMAND, prints ✔/✘; on failure the command's last output lines.
check() {
  local name=$1; shift
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "✔ fresh machine ($suite): $name ($((SECONDS - t0)) s)"
  else
    echo "✘ fresh machine ($suite): $name"
    tail -25 "$log" | sed 's/^/    /'
    failed=1
  fi
}

main_tgz=$(ls "$src"/release/lep-[0-9]*.tgz)
# Every flavour's platform package, as `npm install lep` brings every optional dependency that fits
# os/cpu/libc: the loader must pick the one of the libtorch this distribution has.
prebuilt_tgz=("$src"/release/lep-linux-x64-*.tgz)
echo "fresh machine ($suite): $(. /etc/os-release; echo "$PRETTY_NAME"), node $(node --version), npm $(npm --version);" \
  "compilers: $(command -v cc gcc g++ c++ cmake | tr '\n' ' ')none expected"

check "no compiler or cmake on the machine" bash -c '! command -v cc && ! command -v c++ && ! command -v cmake && ! dpkg-query -W -f="\${Package}\n" | grep -- "-dev$"'

# 1. npm install of the released tarballs (the registry serves lep's JS dependencies).
install() {
  npm init -y >/dev/null && npm pkg set type=module >/dev/null &&
    npm install --no-audit --no-fund "$main_tgz" "${prebuilt_tgz[@]}" &&
    test ! -e node_modules/lep/build &&
    # one du per folder: du counts a folder inside an earlier argument zero times
    for d in node_modules node_modules/lep node_modules/lep-linux-x64-*; do du -sk "$d"; done |
    awk '{printf "node_modules: %s %.1f MB\n", $2, $1 / 1024}'
}
check "npm install of release/ (main + ${#prebuilt_tgz[@]} prebuilt flavours)" install
sed -n 's/^node_modules: /    installed: /p' "$log"

# 2. Before the runtime libraries: the first call fails with one error naming the apt line.
# (Output is matched with `grep PATTERN >/dev/null`, never `grep -q` behind a pipe: -q exits at the first
# match and, under pipefail, the writer's SIGPIPE would fail the check.)
missing_libs() {
  if npx lep info >/tmp/info.err 2>&1; then echo "lep info worked without libtorch"; return 1; fi
  cat /tmp/info.err
  grep 'LEP_NATIVE_NOT_FOUND' /tmp/info.err >/dev/null && grep -E '^  apt-get update && ' /tmp/info.err >/dev/null
}
check "without libtorch: lep info fails naming the runtime apt line" missing_libs
runtime_line=$(grep -E '^  apt-get update && ' /tmp/info.err 2>/dev/null | sed 's/^  //')
echo "    runtime line: $runtime_line"
# The README shows it with sudo (the error adds sudo only when not root).
check "the README's runtime line is the one the error prints" bash -c 'sed "s/sudo //g" "$1" | grep -xF "$2" >/dev/null' _ "$src/README.md" "$runtime_line"

# 3. Exactly that line (as root: no sudo), then lep works.
check "runtime line installs" bash -c "$runtime_line"
sed -n 's/^[0-9]* upgraded, \([0-9]*\) newly installed.*/    runtime packages: \1 newly installed/p; s/^After this operation, \(.*\) of additional disk space.*/    runtime packages: \1 on disk/p' "$log"
check "lep info (OpenBLAS in use)" bash -c 'npx lep info | tee /tmp/lep-info.txt | grep "^BLAS .*openblas" >/dev/null'
# The prebuilt in use (the lep info above) is the one of the libtorch that line installed (its soname,
# read from the disk).
flavour_in_use() {
  local torch
  torch=$(ls /usr/lib/x86_64-linux-gnu/ | sed -n 's/^libtorch_cpu\.so\.\([0-9]*\.[0-9]*\)$/\1/p')
  echo "libtorch on this machine: ${torch:-none}"
  cat /tmp/lep-info.txt &&
    grep -E "^addon .*/node_modules/lep-linux-x64-libtorch${torch//./\\.}/lep\.node \(prebuilt for libtorch ${torch//./\\.}," /tmp/lep-info.txt >/dev/null &&
    grep -E "^libtorch +${torch//./\\.}\." /tmp/lep-info.txt >/dev/null
}
check "lep info: the prebuilt of this distribution's libtorch is the one loaded" flavour_in_use

# 4. The CLI on a small text.
find "$app/node_modules" -name README.md -size +4k | head -60 | xargs cat >corpus.txt
check "lep tokenizer train" npx lep tokenizer train --corpus corpus.txt --out tok --vocab-size 400
models() {
  npx lep model create --tokenizer tok --out base --hidden-size 32 --layers 2 --heads 2 --intermediate-size 64 --seed 1 &&
    npx lep model create --tokenizer tok --out instruct --hidden-size 32 --layers 2 --heads 2 --intermediate-size 64 --seed 2
}
check "lep model create" models
check "lep generate" bash -c 'npx lep generate base --prompt "The model" --max-new-tokens 8 | tee /dev/stderr | grep . >/dev/null'
check "lep export gguf" bash -c 'npx lep export gguf base --out base.gguf && [ "$(head -c 4 base.gguf)" = GGUF ]'

# 5. The README's API script (tokenizer -> init -> train -> propagate), as written there, through ESM import.
readme_script() {
  awk '/^```js$/ {inside = 1; next} /^```$/ {inside = 0} inside && /^\/\/ adapt\.mjs/ {found = 1} inside && found {print} /^```$/ && found {exit}' \
    "$src/README.md" >adapt.mjs && grep -q "from 'lep'" adapt.mjs && node adapt.mjs base instruct corpus.txt adapted | tee /dev/stderr | grep 'adapted/adapted: 1000 tokens' >/dev/null
}
check "README API script (ESM import from 'lep': tokenizer, init, train, propagate, LepModel)" readme_script

# 6. CommonJS consumers: require(esm) of lep on node >= 20.19.
cat >consumer.cjs <<'JS'
const { LepModel, lepInfo } = require('lep');
LepModel.load('base').then(async (m) => {
  const { text } = await m.generate('The', { maxNewTokens: 4 });
  console.log(`require(esm): lep ${lepInfo().lepVersion}, generated ${JSON.stringify(text)}`);
  m.dispose();
});
JS
check "CommonJS require('lep') (require(esm), node >= 20.19)" bash -c 'node consumer.cjs 2>&1 | tee /dev/stderr | grep "require(esm): lep" >/dev/null'

# 7. A strict TypeScript consumer, module nodenext, no @types/node: the root and two subpath exports.
typescript() {
  mkdir -p ts-consumer && cd ts-consumer || return 1
  npm init -y >/dev/null && npm pkg set type=module >/dev/null &&
    npm install --no-audit --no-fund "$main_tgz" "${prebuilt_tgz[@]}" typescript@5 >/dev/null &&
    test ! -e node_modules/@types/node &&
    cat >tsconfig.json <<'JSON' &&
{ "compilerOptions": { "strict": true, "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "noEmit": true } }
JSON
    cat >main.ts <<'TS' &&
import { LepModel, trainTokenizer, propagate, lepInfo, type LepInfo, type PropagateOptions } from 'lep';
import { readSafetensors, type TensorData } from 'lep/checkpoint';
import { compareResults } from 'lep/eval';
export const subpaths: [typeof readSafetensors, typeof compareResults, TensorData | undefined] = [readSafetensors, compareResults, undefined];
const info: LepInfo = lepInfo();
const options: PropagateOptions = { base: 'b', donor: 'd', instruct: 'i', out: 'o', method: 'conversion' };
export async function adapt(dir: string): Promise<string> {
  await trainTokenizer('corpus.txt', 'tok', { vocabSize: 1000 });
  await propagate(options);
  const model = await LepModel.load(dir);
  return (await model.generate('Hi', { maxNewTokens: 2 })).text + info.lepVersion;
}
TS
    npx tsc -p .
}
check "strict nodenext TypeScript consumer type-checks without @types/node" typescript
cd "$app" || exit 1

# 8. lep demo without the toy family says how to get it.
check "lep demo without the toy family names lep-toy-family" bash -c 'npx lep demo --out demo 2>&1 | tee /dev/stderr | grep "npm install lep-toy-family" >/dev/null'

# 9. With the lep-toy-family tarball installed, lep demo finds the family and its corpora (stopped once
# training has started: the whole demo is the main job's test, not this one's).
toy_demo() {
  npm install --no-audit --no-fund "$(ls "$src"/release/lep-toy-family-*.tgz)" >/dev/null || return 1
  ./node_modules/.bin/lep demo --quick --out demo >demo.log 2>&1 &
  local pid=$! found=1
  for _ in $(seq 480); do
    # --quick runs the Optimized vocabulary on the LLaMa-3 family (llama3/ in the package); the recipe's
    # paths are the clone's, so reaching the training stage shows the demo found the family and corpora.
    if grep -E "\[4/6 train\]" demo.log >/dev/null; then found=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  cat demo.log
  # Its corpora go to the user's cache folder, never into the installed package.
  if [ -e node_modules/lep/.cache ] || [ ! -d "${XDG_CACHE_HOME:-$HOME/.cache}/lep/corpora" ]; then
    echo "lep demo wrote its cache into node_modules/lep, or not into ~/.cache/lep"; found=1
  fi
  return "$found"
}
check "lep demo with lep-toy-family installed finds the toy family and caches in ~/.cache/lep" toy_demo

exit "$failed"

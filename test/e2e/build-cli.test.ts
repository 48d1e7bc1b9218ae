// `lep build` (ts/cli/build.ts) refuses what cannot work before starting a multi-minute compile. The
// build itself runs in a copy of the published package: see the README, Install ("Other platforms").
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { LEP_CLI as LEP, tempDir } from '../helpers.js';


test('lep build --libtorch DIR without share/cmake/Torch: LEP_BUILD_LIBTORCH naming the folder', (t) => {
  const dir = tempDir();
  const r = spawnSync(process.execPath, [LEP, 'build', '--libtorch', dir], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.true(r.stderr.includes(`${dir} (--libtorch or LIBTORCH) is not an unpacked libtorch: it has no share/cmake/Torch`), r.stderr);
  t.regex(r.stderr, /HINT: point it at the folder that holds lib\/ and share\/cmake\/Torch/);
});

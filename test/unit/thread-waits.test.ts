/**
 * lep's idle-spin settings for OpenBLAS and libgomp (ts/binding/threadWaits.ts): set where the user has
 * not set them, the library is not loaded yet and process.env reaches native code; the user's own
 * (OMP_WAIT_POLICY counts for OpenMP) win; values a lep parent set are reported as lep's.
 */
import test from 'ava';

import { decideThreadWaits, SET_BY_LEP, THREAD_WAIT_DEFAULTS } from '../../ts/binding/threadWaits.js';

const MAPS_BOTH = '7f00-7f10 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libopenblasp-r0.3.21.so\n7f20-7f30 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0\n';

test('unset and not loaded: lep sets both defaults', (t) => {
  const c = decideThreadWaits({}, '');
  t.deepEqual(c.set, { OPENBLAS_THREAD_TIMEOUT: '20', GOMP_SPINCOUNT: '10000' });
  t.is(c.reason, "OPENBLAS_THREAD_TIMEOUT=20 (lep's), GOMP_SPINCOUNT=10000 (lep's)");
  t.deepEqual(Object.keys(c.set), THREAD_WAIT_DEFAULTS.map((d) => d.name));
});

test("the user's settings win, OMP_WAIT_POLICY included; a lep parent's are lep's", (t) => {
  const c = decideThreadWaits({ OPENBLAS_THREAD_TIMEOUT: '0', OMP_WAIT_POLICY: 'active' }, '');
  t.deepEqual(c.set, {});
  t.is(c.reason, 'OPENBLAS_THREAD_TIMEOUT=0 (yours), OMP_WAIT_POLICY=active (yours)');
  t.deepEqual(decideThreadWaits({ GOMP_SPINCOUNT: '5' }, '').set, { OPENBLAS_THREAD_TIMEOUT: '20' });
  const inherited = decideThreadWaits({ OPENBLAS_THREAD_TIMEOUT: '20', GOMP_SPINCOUNT: '99', [SET_BY_LEP]: 'OPENBLAS_THREAD_TIMEOUT=20 GOMP_SPINCOUNT=10000' }, '');
  t.is(inherited.reason, "OPENBLAS_THREAD_TIMEOUT=20 (lep's, inherited), GOMP_SPINCOUNT=99 (yours)");
});

test('a library loaded before lep read its environment already, and a worker thread cannot set it: nothing is set', (t) => {
  const c = decideThreadWaits({}, MAPS_BOTH);
  t.deepEqual(c.set, {});
  t.regex(c.reason, /OPENBLAS_THREAD_TIMEOUT unset \(its library was loaded before lep\), GOMP_SPINCOUNT unset/);
  t.deepEqual(decideThreadWaits({}, MAPS_BOTH.split('\n')[1]!).set, { OPENBLAS_THREAD_TIMEOUT: '20' });
  const worker = decideThreadWaits({}, '', false);
  t.deepEqual(worker.set, {});
  t.regex(worker.reason, /^OPENBLAS_THREAD_TIMEOUT unset \(lep loaded in a worker thread.*GOMP_SPINCOUNT unset/);
});

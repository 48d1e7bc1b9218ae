import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { loadedNative } from '../../ts/binding/loadNative.js';
import { debInfo } from '../../ts/corpus/debianPackages.js';
import { LepModel } from '../../ts/index.js';
import { corpora, CORPORA } from '../corpora.js';
import { rejectsAborted, tinyModel } from '../helpers.js';

async function biggerModel(): Promise<LepModel> {
  // big enough that 200 tokens take a noticeable while on 2 cores
  return LepModel.load(await tinyModel({ hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 8, numKeyValueHeads: 4, maxPositionEmbeddings: 1024 }));
}

test('the event loop keeps turning while generate runs; progress arrives in order', async (t) => {
  const m = await biggerModel();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const steps: number[] = [];
  const started = performance.now();
  const [r] = await m.generateTokens([[1, 415, 2936]], { maxNewTokens: 60, stopTokens: [], onProgress: (e) => steps.push(e.done) });
  const ms = performance.now() - started;
  clearInterval(timer);
  t.is(r!.tokens.length, 60);
  t.deepEqual(steps, Array.from({ length: 60 }, (_, i) => i + 1));
  // A loop blocked by the job would fire the 1 ms timer at most once, when it is free again. How many more
  // fire depends on the machine's speed and load (7 in a loaded CI run on libtorch 2.6, where 60 tokens
  // took a few milliseconds): a fixed count above a handful tested the speed, not the loop.
  t.true(ticks >= 3, `only ${ticks} timer ticks during ${ms.toFixed(0)} ms of generation`);
  m.dispose();
});

test('aborting rejects with LEP_ABORTED (cause: the caller reason) and stops early', async (t) => {
  const m = await biggerModel();
  const controller = new AbortController();
  const reason = new Error('user pressed stop');
  let last = 0;
  // The job sees the abort at its first report after the event loop has run the abort; until then it
  // keeps decoding, so how far it gets depends on the load (118 steps after the abort at 20 were seen
  // under a loaded CI run). What is checked: it stops long before its 1000 tokens, and rejects.
  const p = m.generateTokens([[1, 415]], {
    maxNewTokens: 1000,
    stopTokens: [],
    signal: controller.signal,
    onProgress: (e) => {
      last = e.done;
      if (e.done === 20) controller.abort(reason);
    },
  });
  await rejectsAborted(t, p, reason);
  t.log(`the last progress event seen: step ${last} (abort at 20)`);
  t.true(last < 1000, `ran to step ${last} of 1000 after the abort at 20`);
  // an already-aborted signal rejects before any work
  await rejectsAborted(t, m.generateTokens([[1]], { signal: AbortSignal.abort(reason) }), reason);
  // the model is usable afterwards
  const [ok] = await m.generateTokens([[1, 415]], { maxNewTokens: 3, stopTokens: [] });
  t.is(ok!.tokens.length, 3);
  m.dispose();
});

test('a throwing progress callback stops the job and rejects with that error', async (t) => {
  const m = await biggerModel();
  const boom = new Error('callback failed');
  let calls = 0;
  const e = await t.throwsAsync(
    m.generateTokens([[1, 415]], {
      maxNewTokens: 300,
      stopTokens: [],
      onProgress: () => {
        calls++;
        throw boom;
      },
    }),
  );
  t.is(e, boom);
  t.true(calls < 50);
  m.dispose();
});

// Serial, so no other test's job runs meanwhile. Node starts a child with fork(), and a fork while a job
// is inside a multithreaded OpenBLAS call hung that job for good (OpenBLAS's pre-fork handler): lep's
// own child processes (here dpkg-deb, as the corpus fetch runs it) wait until no job runs.
test.serial('a child process lep starts during a job waits for the job to settle (a fork inside OpenBLAS hangs the job)', async (t) => {
  await corpora();
  const deb = readdirSync(join(CORPORA, 'debs')).find((f) => f.startsWith('fortunes-ru_'))!;
  const m = await biggerModel();
  let settled = false;
  const generating = m.generateTokens([[1, 415, 2936]], { maxNewTokens: 60, stopTokens: [] }).then((r) => {
    settled = true;
    return r;
  });
  t.is(loadedNative()!.runningJobs(), 1);
  const info = await debInfo(join(CORPORA, 'debs', deb));
  t.true(settled, 'dpkg-deb started only after the job had settled');
  t.is(info.package, 'fortunes-ru');
  t.is((await generating)[0]!.tokens.length, 60);
  t.is(loadedNative()!.runningJobs(), 0);
  m.dispose();
});

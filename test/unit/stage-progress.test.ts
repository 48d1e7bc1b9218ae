// The one stage progress event (ts/stage/stageProgress.ts): counts, a straight-line ETA per phase, the
// mapping from lep adapt's reports, and the same ETA in the CLI's progress line.
import test from 'ava';

import type { AdaptProgress } from '../../ts/adapt/adapt.js';
import { stageProgressOf } from '../../ts/cli/adapt.js';
import { ProgressLine } from '../../ts/cli/progressLine.js';
import { etaSeconds, PhaseClock } from '../../ts/stage/stageProgress.js';

test('the ETA scales a phase\'s elapsed time by what is left; each phase starts its own clock', (t) => {
  t.is(etaSeconds(10, 0.25), 30);
  t.is(etaSeconds(10, 1), 0);
  t.is(etaSeconds(10, 0), undefined);
  let now = 0;
  const clock = new PhaseClock(() => now);
  t.deepEqual(clock.event('train', 'train', 0, 100, 'step 0/100'), { stage: 'train', phase: 'train', done: 0, total: 100, detail: 'step 0/100' });
  now = 20_000;
  t.deepEqual(clock.event('train', 'train', 40, 100), { stage: 'train', phase: 'train', done: 40, total: 100, etaSeconds: 30 });
  now = 25_000;
  t.deepEqual(clock.event('train', 'eval', 1, 4), { stage: 'train', phase: 'eval', done: 1, total: 4, etaSeconds: 0 }, 'a new phase: its clock starts now');
  t.deepEqual(clock.event('propagate', 'write', 3, 0), { stage: 'propagate', phase: 'write', done: 3, total: 0 }, 'no ETA without a total');
});

test('lep adapt reports become stage progress events: counts where the stage has them, else done of 1', (t) => {
  const now = 0;
  const clock = new PhaseClock(() => now);
  const base: AdaptProgress = { stage: 'train', index: 4, stages: 5, detail: 'step 3/6 loss 2.000' };
  t.deepEqual(stageProgressOf(clock, { ...base, fraction: 0.5, phase: 'train', done: 3, total: 6 }), { stage: 'train', phase: 'train', done: 3, total: 6, etaSeconds: 0, detail: 'step 3/6 loss 2.000' });
  t.deepEqual(stageProgressOf(clock, { ...base, stage: 'init', detail: 'started', fraction: 0 }), { stage: 'init', phase: 'stage', done: 0, total: 1, detail: 'started' });
  t.deepEqual(stageProgressOf(clock, { ...base, stage: 'data', detail: 'packing training text' }), { stage: 'data', phase: 'stage', done: 0, total: 0, detail: 'packing training text' });
});

test('the CLI progress line shows the same ETA', (t) => {
  const line = new ProgressLine({ stream: { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream });
  try {
    const start = Date.now();
    line.update('train', 'training', 0.25);
    t.regex(line.line(start + 10_000), /^training  25% \(10 s, ETA 30 s\)$/);
    line.update('train', 'training', 1);
    t.regex(line.line(start + 10_000), /100% \(10 s, ETA 0 s\)$/);
  } finally {
    line.close();
  }
});

test('jobs side by side report in lanes, each with its own phase clock, and a kept line names its lane only', (t) => {
  const written: string[] = [];
  const line = new ProgressLine({ stream: { isTTY: false, write: (s: string) => void written.push(s) } as unknown as NodeJS.WriteStream });
  try {
    const start = Date.now();
    line.update('train', '   A [4/6 train] step 10/40', 0.25, false, 'A');
    line.update('eval', '   evaluating B: text:ru', 0.5, false, 'B');
    t.deepEqual(written, [], 'nothing printed in a log until a line is kept or the timer fires');
    t.regex(line.line(start + 10_000), /^ {3}A \[4\/6 train\] step 10\/40 {2}25% \(10 s, ETA 30 s\) {2}\| {2}evaluating B: text:ru {2}50% \(10 s, ETA 10 s\)$/);
    line.update('eval', '   B done', 1, true, 'B');
    t.is(written.length, 1);
    t.regex(written[0]!, /^ {3}B done 100% \(\d+ s, ETA 0 s\)\n$/);
    line.done('B');
    t.regex(line.line(start + 10_000), /^ {3}A \[4\/6 train\] step 10\/40 {2}25% \(10 s, ETA 30 s\)$/, 'one lane left: printed as labelled');
    line.update('propagate', '   A [5/6 propagate]', 0, false, 'A');
    t.regex(line.line(Date.now()), /0% \(0 s, ETA \?\)$/, 'a new phase in a lane restarts its clock');
    line.note('a heading');
    t.is(written.at(-1), 'a heading\n');
  } finally {
    line.close();
  }
});

test('on a terminal the live line fits its width: every lane keeps its numbers, labels are cut short', (t) => {
  // \r\x1b[K clears one screen row: a live line wider than the terminal wrapped and left rows behind.
  const written: string[] = [];
  const line = new ProgressLine({ stream: { isTTY: true, columns: 100, write: (s: string) => void written.push(s) } as unknown as NodeJS.WriteStream });
  try {
    line.update('train', `   Extended [4/6 train] step 160/300 loss 5.069 ${'x'.repeat(40)}`, 0.53, false, 'A');
    line.update('eval', `   evaluating Optimized/overlap: copy_sent_ru 48/50 (task 3/15) ${'y'.repeat(40)}`, 0.2, false, 'B');
    const live = written.at(-1)!;
    t.true(live.startsWith('\r\x1b[K'));
    const text = live.slice('\r\x1b[K'.length);
    t.true(text.length <= 99, `${text.length} characters: ${text}`);
    t.regex(text, /^ {3}Extended \[4\/6 train\].*… {2}53% \(\d+ s, ETA [^)]+\) {2}\| {2}evaluating Optimized.*… {2}20% \(\d+ s, ETA [^)]+\)$/);
    // A kept line is printed whole (it stays, so wrapping is harmless), then the fitted live line.
    line.update('eval', `   Optimized overlap Micro-Avg 0.168 ${'z'.repeat(80)}`, 1, true, 'B');
    const [kept, after] = written.at(-1)!.slice('\r\x1b[K'.length).split('\n');
    t.true(kept!.includes('z'.repeat(80)));
    t.true(after!.length <= 99);
  } finally {
    line.close();
  }
});

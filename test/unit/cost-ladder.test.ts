/** The cost ladder's own logic (bench/cost-ladder.ts): the stage chain, and reading GNU time and errors. */
import test from 'ava';

import { errorLine, ladder, parseTime, shapes, trainRows, unreadStandIns, withStandIn, type LadderOptions } from '../../bench/cost-ladder.js';

const o: LadderOptions = { scratch: '/s', corpora: '/c', steps: 2, batchSize: 1, seqLen: 128, maxNewTokens: 4, limit: 2, textMaxChars: 300, donorVocab: 8000, trainRows: ['all'] };

test('every stage reads only what an earlier stage made, the donor tokenizer or a fixture; frees nothing a later stage reads', (t) => {
  for (const shape of Object.values(shapes('/llama3'))) {
    const stages = ladder(shape, o, '/s/donor');
    const made = new Set<string>(['/s/donor', ...(shape.base ? [shape.base, shape.instruct!] : [])]);
    for (const [i, s] of stages.entries()) {
      for (const n of s.needs) t.true(made.has(n), `${shape.name} ${s.name} needs ${n}`);
      if (s.makes) made.add(s.makes);
      const later = stages.slice(i + 1).flatMap((x) => [...x.needs, ...(x.standIn ?? [])]);
      for (const f of s.frees ?? []) t.false(later.includes(f), `${shape.name} ${s.name} frees ${f} that a later stage reads`);
    }
    // The fixtures are read, never freed.
    if (shape.base) t.false(stages.some((s) => s.frees?.includes(shape.base!)));
  }
});

test('--train-rows all,new: both trainings from the initialised model, only the second with --rows new; propagation reads the last, then the first, then the initialised model', (t) => {
  const stages = ladder(shapes('/llama3')['8b']!, { ...o, trainRows: trainRows('all,new') }, '/s/donor');
  const train = stages.filter((s) => s.args[0] === 'train');
  t.deepEqual(train.map((s) => [s.name, s.makes, s.args.includes('--rows') ? s.args[s.args.indexOf('--rows') + 1] : undefined]), [
    ['train', '/s/8b/donor', undefined],
    ['train new rows', '/s/8b/donor-new-rows', 'new'],
  ]);
  const propagate = stages.find((s) => s.name === 'propagate')!;
  t.deepEqual(propagate.standIn, ['/s/8b/donor-new-rows', '/s/8b/donor', '/s/8b/init']);
  t.is(propagate.args[propagate.args.indexOf('--donor') + 1], '/s/8b/donor-new-rows');
  // Both trainings failed: the initialised model stands in; the new-rows donor trained: nothing stands
  // in, and the initialised model and the other donor go before propagation runs.
  const models = (...dirs: string[]) => (d: string) => dirs.includes(d);
  const alone = withStandIn(propagate, models('/s/8b/init', '/s/8b/base'));
  t.is(alone.stage.args[alone.stage.args.indexOf('--donor') + 1], '/s/8b/init');
  t.regex(alone.note!, /\/s\/8b\/init stood in for \/s\/8b\/donor-new-rows/);
  t.deepEqual(unreadStandIns(propagate, models('/s/8b/init', '/s/8b/base')), []);
  const trained = models('/s/8b/donor-new-rows', '/s/8b/init', '/s/8b/base');
  t.is(withStandIn(propagate, trained).stage, propagate);
  t.deepEqual(unreadStandIns(propagate, trained), ['/s/8b/donor', '/s/8b/init']);
  t.deepEqual(trainRows('new'), ['new']);
  t.throws(() => trainRows('all,some'), { message: /--train-rows/ });
  t.throws(() => trainRows('new,new'), { message: /at most once/ });
});

test('GNU time output: the last "seconds KiB" line, also after a signal line', (t) => {
  t.deepEqual(parseTime('12.34 2097152\n'), { wallS: 12.34, peakRssMiB: 2048 });
  t.deepEqual(parseTime('Command terminated by signal 9\n3.50 1048576\n'), { wallS: 3.5, peakRssMiB: 1024 });
  t.is(parseTime(''), undefined);
});

test("a failed stage's error is the lep: line with its hint", (t) => {
  const log = 'progress 10%\nlep: training x needs at least 33.2 GiB\nHINT: use a GPU\n(code LEP_OUT_OF_MEMORY)\n';
  t.is(errorLine(log), 'lep: training x needs at least 33.2 GiB HINT: use a GPU');
});

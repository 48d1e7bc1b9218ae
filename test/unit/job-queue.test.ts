// The main job's side-by-side runner (ts/util/jobQueue.ts): at most `width` jobs at once, in queue order,
// jobs that queue more, and the failure rule (abort the others, throw once every started job settled).
import test from 'ava';

import { runJobQueue, type QueuedJob } from '../../ts/util/jobQueue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('runs at most width jobs at once, in queue order, including jobs queued while running', async (t) => {
  let running = 0;
  let most = 0;
  const started: string[] = [];
  const job = (name: string, more: string[] = []): QueuedJob => async (add) => {
    started.push(name);
    running++;
    most = Math.max(most, running);
    await tick();
    running--;
    for (const m of more) add(job(m));
  };
  await runJobQueue(2, [job('a', ['a1', 'a2']), job('b'), job('c'), job('d')]);
  t.is(most, 2);
  t.deepEqual(started, ['a', 'b', 'c', 'd', 'a1', 'a2']);
});

test('a job queued by the last running job still runs on every free worker', async (t) => {
  // One long job queues four short ones when it ends: both workers must take them (the idle one waited).
  let running = 0;
  let most = 0;
  const short: QueuedJob = async () => {
    running++;
    most = Math.max(most, running);
    await tick(20);
    running--;
  };
  await runJobQueue(2, [async (add) => {
    await tick(10);
    for (let i = 0; i < 4; i++) add(short);
  }]);
  t.is(most, 2);
});

test('the first failure aborts the controller, starts nothing more and is thrown after the running jobs settle', async (t) => {
  const controller = new AbortController();
  let slowSettled = false;
  let laterStarted = false;
  const slow: QueuedJob = async () => {
    while (!controller.signal.aborted) await tick();
    await tick(20);
    slowSettled = true;
    throw new Error('aborted too');
  };
  const failing: QueuedJob = async () => {
    await tick();
    throw new Error('boom');
  };
  const later: QueuedJob = async () => void (laterStarted = true);
  const err = await t.throwsAsync(runJobQueue(2, [slow, failing, later], controller));
  t.is(err?.message, 'boom', 'the first failure, not the aborted job\'s');
  t.true(controller.signal.aborted);
  t.true(slowSettled, 'thrown only after the running job settled');
  t.false(laterStarted);
});

test('width below one runs one at a time', async (t) => {
  const order: number[] = [];
  await runJobQueue(0, [1, 2, 3].map((i) => async () => void order.push(i)));
  t.deepEqual(order, [1, 2, 3]);
});

test('an abort from outside starts no queued job and rejects with LEP_ABORTED; a width that is not a number runs one at a time', async (t) => {
  const controller = new AbortController();
  const ran: number[] = [];
  const jobs = [0, 1, 2].map((i) => async () => {
    ran.push(i);
    if (i === 0) controller.abort('stop');
  });
  const e = await t.throwsAsync(runJobQueue(1, jobs, controller));
  t.is((e as { code?: string }).code, 'LEP_ABORTED');
  t.deepEqual(ran, [0], 'jobs 1 and 2 never started');
  const order: number[] = [];
  await runJobQueue(Number.NaN, [1, 2, 3].map((i) => async () => void order.push(i)));
  t.deepEqual(order, [1, 2, 3], 'NaN ran every job (it ran none before)');
});

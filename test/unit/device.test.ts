// The one device check behind every --device flag and `device` option.
import test from 'ava';

import { deviceFlag } from '../../ts/cli/args.js';
import { LepError } from '../../ts/errors.js';
import { propagate } from '../../ts/propagate/propagate.js';
import { checkDevice } from '../../ts/util/device.js';

test('cpu, cuda and cuda:N pass; anything else is a LepError naming the option, the flag and the choices', async (t) => {
  for (const ok of ['cpu', 'cuda', 'cuda:0', 'cuda:12']) t.is(checkDevice(ok), ok);
  for (const bad of ['tpu', 'cuda:', 'cuda:x', 'CPU', '', 3, null]) {
    const e = t.throws(() => checkDevice(bad), { instanceOf: LepError });
    t.is(e!.code, 'LEP_BAD_OPTION');
    t.regex(e!.message, /cpu, cuda or cuda:N.*--device|--device.*cpu, cuda or cuda:N/s);
  }
  t.regex(t.throws(() => deviceFlag('tpu', '--solve-device'))!.message, /--solve-device/);
  t.is(deviceFlag(undefined), undefined);
  // The API checks it before reading its inputs.
  await t.throwsAsync(propagate({ base: '/nonexistent', donor: '/nonexistent', instruct: '/nonexistent', out: '/tmp/x', device: 'tpu' }), { message: /cpu, cuda or cuda:N/ });
});

/** The one check of a device option (API and CLI alike): `cpu`, `cuda` (the current GPU) or `cuda:N`. */
import { optionError } from '../errors.js';

export function checkDevice(value: unknown, option = 'device', flag = '--device'): string {
  if (typeof value !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(value)) throw optionError(option, 'cpu, cuda or cuda:N', value, flag);
  return value;
}

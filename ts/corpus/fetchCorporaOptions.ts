/**
 * The options of `lep corpora fetch` / `fetchCorpora`, written once (see options/optionSpec.ts): the TS
 * options type, the validation, the CLI flags and their help derive from this table.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf, type OptionsOf } from '../options/optionSpec.js';
import { DEFAULT_HELDOUT_PERCENT } from './heldout.js';

export const CORPUS_OUTPUTS = ['ru', 'en', 'pairs'] as const;
export type CorpusOutput = (typeof CORPUS_OUTPUTS)[number];
export const CORPUS_SOURCE_NAMES = ['fortunes-ru', 'manpages-ru', 'manpages-en', 'libreoffice-help'] as const;
export type CorpusSource = (typeof CORPUS_SOURCE_NAMES)[number];

export const DEFAULT_CORPUS_CACHE_DIR = '.cache/corpora';
/** English man pages are many; their text is capped (pages taken in sorted path order). */
export const DEFAULT_EN_MANPAGES_MAX_BYTES = 8 * 1024 * 1024;

/** `ru,en` -> ['ru', 'en']; a repeated flag's values are read one by one and joined (optionSpec's fromFlags). */
const commaList = (text: string): string[] => text.split(',').map((x) => x.trim()).filter(Boolean);

export const FETCH_CORPORA_SPEC = defineOptions({
  cacheDir: {
    schema: Type.String({ minLength: 1 }),
    flag: 'out',
    arg: 'DIR',
    default: DEFAULT_CORPUS_CACHE_DIR,
    doc: 'Where the downloads, the unpacked packages and the corpora go (lep eval looks in the default).',
  },
  outputs: {
    schema: Type.Array(oneOf(...CORPUS_OUTPUTS), { minItems: 1 }),
    flag: 'only',
    arg: 'LIST',
    parse: commaList,
    defaultDoc: 'all',
    doc: `Outputs to write, each with its held-out twin: comma-separated (or the flag repeated), of ${CORPUS_OUTPUTS.join(', ')}.`,
  },
  sources: {
    schema: Type.Array(oneOf(...CORPUS_SOURCE_NAMES), { minItems: 1 }),
    arg: 'LIST',
    parse: commaList,
    defaultDoc: 'all',
    doc: `Sources, comma-separated (or the flag repeated), of ${CORPUS_SOURCE_NAMES.join(', ')}; packages of a source that feeds no requested output are not fetched.`,
  },
  heldoutPercent: {
    schema: Type.Number({ minimum: 0, exclusiveMaximum: 100 }),
    default: DEFAULT_HELDOUT_PERCENT,
    doc: 'Share of documents held out, in percent.',
  },
  enManpagesMaxBytes: {
    schema: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    default: DEFAULT_EN_MANPAGES_MAX_BYTES,
    doc: 'Cap on the UTF-8 bytes of English man-page text.',
  },
  force: { schema: Type.Boolean(), default: false, doc: 'Rebuild the outputs even when they are current (downloads stay cached).' },
});

/** Keys of `fetchCorpora`'s options outside the spec (no flag: API only). */
export const FETCH_CORPORA_NON_SPEC_KEYS = ['log'] as const;

/** Options of `fetchCorpora` (its lists may be readonly, as `CORPUS_OUTPUTS` is). */
export type FetchCorporaOptions = Omit<OptionsOf<typeof FETCH_CORPORA_SPEC>, 'outputs' | 'sources'> & {
  outputs?: readonly CorpusOutput[];
  sources?: readonly CorpusSource[];
  /** Progress messages. Defaults to none. */
  log?: (message: string) => void;
};

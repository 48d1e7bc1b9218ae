/**
 * The options of `lep tokenizer train` / `trainTokenizer`, written once (see options/optionSpec.ts): the TS
 * type, the validation, the CLI flags and help, the recipe's `tokenizer` keys of a trained tokenizer and the
 * resolved run (lep_tokenizer_run.json) derive from this table. The defaults are SentencePiece's plus split
 * digits and byte fallback, as the method's authors trained.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';

/** SentencePiece reads its integers as int32. */
const int32 = (minimum: number, maximum = 2 ** 31 - 1) => Type.Integer({ minimum, maximum });
const dir = Type.String({ minLength: 1 });

export const TOKENIZER_TRAIN_TYPES = ['bpe', 'unigram'] as const;
export type TokenizerTrainType = (typeof TOKENIZER_TRAIN_TYPES)[number];

export const TOKENIZER_TRAIN_SPEC = defineOptions({
  type: { schema: oneOf(...TOKENIZER_TRAIN_TYPES), default: 'bpe', recipe: true, doc: "SentencePiece model (docs/method.md's BPE and Unigram variants)." },
  vocabSize: { schema: int32(1), default: 32000, recipe: true, doc: 'Pieces in the vocabulary, special, byte-fallback and user-defined pieces included.' },
  characterCoverage: {
    schema: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
    default: 0.9995,
    doc: 'Share of the corpus characters that get a piece of their own; the rarest rest fall back to bytes (or unk).',
  },
  byteFallback: { schema: Type.Boolean(), default: true, flag: 'no-byte-fallback', doc: '256 <0xNN> pieces so that no character is unknown; --no-byte-fallback leaves them out.' },
  splitDigits: { schema: Type.Boolean(), default: true, flag: 'no-split-digits', doc: 'Never join digits into multi-digit pieces; --no-split-digits allows it.' },
  userDefinedSymbols: {
    schema: Type.Array(Type.String()),
    flag: 'user-defined-symbol',
    arg: 'S',
    doc: '(repeatable) A string that always stays one token (a non-special added token); none may equal a special token.',
  },
  inputSentenceSize: {
    schema: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    default: 0,
    recipe: true,
    doc: "Lines SentencePiece trains on (0 = all), its input_sentence_size; the sample is held in memory while the corpus is read.",
  },
  shuffleInputSentence: { schema: Type.Boolean(), default: true, flag: 'no-shuffle', doc: 'With inputSentenceSize, sample lines at random (reservoir); --no-shuffle takes the first ones.' },
  // SentencePiece's seeds are uint32 with 2^32 - 1 meaning "random".
  seed: { schema: Type.Integer({ minimum: 0, maximum: 2 ** 32 - 2 }), default: 0, recipe: true, doc: "Seed of the input sample (lep's own sampler: SentencePiece 0.1.97 samples with a fixed seed)." },
  threads: { schema: int32(1, 1024), flag: 'spm-threads', defaultDoc: 'one per core', doc: 'SentencePiece training threads.' },
  maxSentenceLength: { schema: int32(1), default: 4192, arg: 'BYTES', doc: 'Lines longer than this many UTF-8 bytes are left out (counted in the stats), as SentencePiece would.' },
  maxPieceLength: { schema: int32(1, 512), default: 16, doc: 'Longest piece in characters.' },
  like: { schema: dir, arg: 'MODEL_DIR', doc: 'A model directory whose special tokens and chat template the new tokenizer carries.' },
  tmpDir: { schema: dir, arg: 'DIR', defaultDoc: 'the system temp folder', doc: 'Folder for the temporary corpus file (as large as the text read).' },
  verbose: { schema: Type.Boolean(), default: false, doc: "Also print SentencePiece's own log to stderr." },
});

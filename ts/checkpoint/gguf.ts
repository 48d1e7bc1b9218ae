/**
 * GGUF export (llama.cpp's format). This module decides every key, type and tensor mapping; the native
 * writer streams tensors from the checkpoint. The rules follow llama.cpp's convert_hf_to_gguf.py, with
 * one deliberate difference: SentencePiece-style BPE vocabularies get score = -(rank of the first merge
 * producing the token), not the converter's flat -1000, because llama.cpp's SPM tokenizer picks merges by
 * score. Whether llama.cpp then tokenises exactly as lep is checked before anything is written
 * (`ggufTokenizerParity.ts`); a vocabulary the format cannot express is refused unless `force`.
 */
import { LepError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { GgufValue, NativeGgufTensor } from '../binding/NativeTypes.js';
import type { JobProgress } from '../binding/progress.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { GGUF_SPEC, type GgufOutType } from './ggufOptions.js';
import type { ModelConfig } from './config.js';
import {
  byteLevelInexpressible,
  describeAgreement,
  describeInexpressible,
  inexpressibleCount,
  measureSpmAgreement,
  readCheckText,
  spmInexpressible,
  spmScores,
  TokenType,
  type GgufTokenizerParity,
  type SpmVocab,
} from './ggufTokenizerParity.js';
import { inspectWeights, readModelDir } from './modelDir.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { prepareFileOutput } from '../util/prepareFileOutput.js';

export { GGUF_OUT_TYPES, type GgufOutType } from './ggufOptions.js';
/** llama.cpp's general.file_type for each output type (LlamaFileType). */
const FILE_TYPE: Record<GgufOutType, number> = { f32: 0, f16: 1, bf16: 32 };

export { TokenType } from './ggufTokenizerParity.js';

/** The export options: GGUF_SPEC (ggufOptions.ts) gives each one's type, default and doc. */
export type ExportGgufOptions = OptionsOf<typeof GGUF_SPEC> & JobOptions;

/** The keys of ExportGgufOptions that are not options of the spec. */
const GGUF_NON_SPEC_KEYS = ['signal', 'onProgress'];

export interface ExportGgufResult {
  bytes: number;
  /** How llama.cpp's tokenizer agrees with lep's on this GGUF. */
  tokenizer: GgufTokenizerParity;
  /** Set when `force` wrote a GGUF that llama.cpp tokenises differently. */
  warning?: string;
}

type Json = Record<string, unknown>;

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });
const str = (value: string): GgufValue => ({ type: 'string', value });
const bool = (value: boolean): GgufValue => ({ type: 'bool', value });

/** llama.cpp's pre-tokenizer names for the byte-level Split regexes it implements. */
const PRE_TOKENIZERS: [string, string][] = [
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'llama-bpe',
  ],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'qwen2',
  ],
];

function findNodes(node: unknown, type: string, out: Json[] = []): Json[] {
  if (!node || typeof node !== 'object') return out;
  const n = node as Json;
  if (n.type === type) out.push(n);
  for (const key of ['pretokenizers', 'normalizers', 'decoders'])
    if (Array.isArray(n[key])) for (const c of n[key] as unknown[]) findNodes(c, type, out);
  return out;
}

/** The llama.cpp pre-tokenizer name for a byte-level tokenizer.json. */
export function byteLevelPre(json: Json): string {
  const splits = findNodes(json.pre_tokenizer, 'Split');
  const byteLevel = findNodes(json.pre_tokenizer, 'ByteLevel');
  if (splits.length === 0 && byteLevel.some((b) => b.use_regex !== false)) return 'gpt-2';
  for (const s of splits) {
    const pattern = (s.pattern as Json | undefined)?.Regex;
    const hit = PRE_TOKENIZERS.find(([re]) => re === pattern);
    if (hit) return hit[1];
  }
  throw new LepError(
    'LEP_GGUF_UNSUPPORTED_TOKENIZER',
    `the tokenizer's pre-tokenizer regex is not one llama.cpp implements under a known name (llama-bpe, qwen2, gpt-2)` +
      '\nHINT: llama.cpp tokenises byte-level vocabularies with hard-coded regexes; use a tokenizer derived from LLaMa-3, Qwen2 or GPT-2.',
  );
}

function mergeStrings(model: Json): string[] {
  const merges = (model.merges as unknown[] | undefined) ?? [];
  return merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m)));
}

interface VocabMeta {
  entries: [string, GgufValue][];
  /** What the parity check needs. */
  parity:
    | { kind: 'spm'; vocab: SpmVocab; merges: string[]; ignoreMerges: boolean }
    | { kind: 'byte-level'; tokens: string[]; types: Int32Array; merges: string[]; ignoreMerges: boolean; pre: string };
}

/** Tokenizer keys: tokens, scores or merges, token types, special ids, flags, chat template. */
export function tokenizerMetadata(tok: Tokenizer, rows: number): VocabMeta {
  const model = tok.json.model as Json;
  if (tok.modelType !== 'BPE')
    throw new LepError(
      'LEP_GGUF_UNSUPPORTED_TOKENIZER',
      `GGUF export supports BPE tokenizers (SentencePiece-style with byte fallback, or byte-level); this one is ${tok.modelType}` +
        (tok.modelType === 'Unigram'
          ? "\nHINT: llama.cpp's Unigram tokenizer (\"t5\") has no byte fallback (unknown characters become <unk>, not bytes) and needs SentencePiece's compiled normaliser, so it would tokenise lep's Unigram vocabularies differently; train a BPE for models meant for llama.cpp (lep tokenizer train --type bpe)."
          : ''),
    );
  const byteLevel = tok.byteLevel;
  if (!byteLevel && model.byte_fallback !== true)
    throw new LepError('LEP_GGUF_UNSUPPORTED_TOKENIZER', 'a SentencePiece-style BPE tokenizer needs byte_fallback for llama.cpp');
  const vocab = tok.vocab();
  if (tok.size > rows)
    throw new LepError('LEP_VOCAB_MISMATCH', `the tokenizer has ${tok.size} tokens but the model only ${rows} embedding rows`);
  const tokens: string[] = new Array<string>(rows);
  for (const [t, id] of Object.entries(vocab)) {
    // Every token must land on its own row: an id past the rows was silently dropped and became [PAD…].
    if (!Number.isInteger(id) || id < 0 || id >= rows)
      throw new LepError(
        'LEP_VOCAB_MISMATCH',
        `token ${JSON.stringify(t)} has id ${id}, outside the model's ${rows} embedding rows` +
          '\nHINT: the tokenizer belongs to another model; after changing the vocabulary run `lep init` to resize the embeddings.',
      );
    if (tokens[id] !== undefined)
      throw new LepError('LEP_BAD_TOKENIZER', `tokens ${JSON.stringify(tokens[id])} and ${JSON.stringify(t)} share id ${id}`);
    tokens[id] = t;
  }
  const added = new Map<number, Json>();
  for (const a of (tok.json.added_tokens as Json[] | undefined) ?? []) added.set(a.id as number, a);
  const unk = tok.specialId('unk');
  const types = new Int32Array(rows);
  for (let id = 0; id < rows; id++) {
    const t = tokens[id];
    const a = added.get(id);
    if (t === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TokenType.UNUSED;
    } else if (id === unk) types[id] = TokenType.UNKNOWN;
    else if (a) types[id] = a.special === true ? TokenType.CONTROL : TokenType.USER_DEFINED;
    else if (!byteLevel && /^<0x[0-9A-F]{2}>$/.test(t)) types[id] = TokenType.BYTE;
    else types[id] = TokenType.NORMAL;
  }
  const entries: [string, GgufValue][] = [];
  const merges = mergeStrings(model);
  const ignoreMerges = model.ignore_merges === true;
  let parity: VocabMeta['parity'];
  if (byteLevel) {
    const pre = byteLevelPre(tok.json);
    entries.push(['tokenizer.ggml.model', str('gpt2')], ['tokenizer.ggml.pre', str(pre)]);
    entries.push(['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }]);
    entries.push(['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }]);
    entries.push(['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }]);
    parity = { kind: 'byte-level', tokens, types, merges, ignoreMerges, pre };
  } else {
    // score = -rank of the first merge producing the token: llama.cpp's SPM tokenizer then merges in lep's order.
    const scores = spmScores(tokens, merges);
    const addSpacePrefix = addsSpacePrefix(tok.json);
    entries.push(['tokenizer.ggml.model', str('llama')], ['tokenizer.ggml.pre', str('default')]);
    entries.push(['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }]);
    entries.push(['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: scores }]);
    entries.push(['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }]);
    entries.push(['tokenizer.ggml.add_space_prefix', bool(addSpacePrefix)]);
    parity = { kind: 'spm', vocab: { tokens, scores, types, addSpacePrefix }, merges, ignoreMerges };
  }
  for (const [kind, key] of [['bos', 'bos_token_id'], ['eos', 'eos_token_id'], ['unk', 'unknown_token_id'], ['pad', 'padding_token_id']] as const) {
    const id = tok.specialId(kind);
    if (id !== undefined && id < rows) entries.push([`tokenizer.ggml.${key}`, u32(id)]);
  }
  const cfg = tok.config;
  entries.push(['tokenizer.ggml.add_bos_token', bool(typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : !byteLevel)]);
  entries.push(['tokenizer.ggml.add_eos_token', bool(cfg.add_eos_token === true)]);
  const template = tok.chatTemplate;
  if (template) entries.push(['tokenizer.chat_template', str(template)]);
  return { entries, parity };
}

/**
 * Whether llama.cpp tokenises the GGUF exactly as lep: checked from the vocabulary and merges; when not,
 * measured on the built-in English and Russian sample and `checkText` lines (SentencePiece-style).
 */
export async function ggufTokenizerParity(tok: Tokenizer, meta: VocabMeta, checkText?: readonly string[]): Promise<GgufTokenizerParity> {
  const p = meta.parity;
  const inexpressible =
    p.kind === 'spm' ? spmInexpressible(p.vocab, p.merges, p.ignoreMerges) : byteLevelInexpressible(p.tokens, p.types, p.merges, p.ignoreMerges, p.pre);
  const exact = inexpressibleCount(inexpressible) === 0;
  const samples = !exact && p.kind === 'spm' ? await measureSpmAgreement(tok, p.vocab, checkText) : [];
  return { exact, inexpressible, samples };
}

/** The refusal (or, with `force`, the warning) for a vocabulary the GGUF format cannot express. */
function parityMessage(p: GgufTokenizerParity): string {
  const measured = p.samples.length
    ? `llama.cpp would tokenise ${describeAgreement(p.samples)} exactly as lep`
    : 'llama.cpp would tokenise some text differently from lep';
  return `${measured}: the GGUF format cannot express this vocabulary (${describeInexpressible(p.inexpressible)})`;
}

/** SentencePiece-style tokenizers that prepend "▁" to the text (Prepend normalizer or Metaspace). */
function addsSpacePrefix(json: Json): boolean {
  if (findNodes(json.normalizer, 'Prepend').some((p) => p.prepend === '▁')) return true;
  return findNodes(json.pre_tokenizer, 'Metaspace').some((m) => m.prepend_scheme !== 'never' && m.add_prefix_space !== false);
}

/** Hyper-parameter keys for arch `llama` (llama, mistral) or `qwen2`. */
export function modelMetadata(cfg: ModelConfig, outType: GgufOutType, name: string): [string, GgufValue][] {
  const arch = cfg.modelType === 'qwen2' ? 'qwen2' : 'llama';
  const out: [string, GgufValue][] = [
    ['general.architecture', str(arch)],
    ['general.name', str(name)],
    ['general.file_type', u32(FILE_TYPE[outType])],
    [`${arch}.context_length`, u32(cfg.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(cfg.hiddenSize)],
    [`${arch}.block_count`, u32(cfg.numHiddenLayers)],
    [`${arch}.feed_forward_length`, u32(cfg.intermediateSize)],
    [`${arch}.attention.head_count`, u32(cfg.numAttentionHeads)],
    [`${arch}.attention.head_count_kv`, u32(cfg.numKeyValueHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(cfg.rmsNormEps)],
    [`${arch}.rope.freq_base`, f32(cfg.ropeTheta)],
    [`${arch}.rope.dimension_count`, u32(cfg.headDim)],
    [`${arch}.attention.key_length`, u32(cfg.headDim)],
    [`${arch}.attention.value_length`, u32(cfg.headDim)],
  ];
  if (arch === 'llama') out.push(['llama.vocab_size', u32(cfg.vocabSize)]);
  return out;
}

/** Llama 3.1 rope scaling as llama.cpp wants it: per-frequency divisors in a rope_freqs tensor. */
export function llama3RopeFreqs(cfg: ModelConfig): Float32Array | undefined {
  const s = cfg.ropeScaling;
  if (!s) return undefined;
  const dim = cfg.headDim;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / cfg.ropeTheta ** ((2 * i) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** HF tensor name -> GGUF tensor list with types and the llama q/k permutation. */
export function tensorPlan(cfg: ModelConfig, names: Set<string>, outType: GgufOutType): NativeGgufTensor[] {
  const arch = cfg.modelType === 'qwen2' ? 'qwen2' : 'llama';
  const plan: NativeGgufTensor[] = [];
  const add = (name: string, source: string, permuteHeads = 0): void => {
    if (!names.has(source)) throw new LepError('LEP_MISSING_TENSOR', `checkpoint lacks tensor '${source}'`);
    const matrix = !source.endsWith('.bias') && !source.endsWith('norm.weight');
    plan.push({ name, source, type: matrix ? outType : 'f32', permuteHeads });
  };
  add('token_embd.weight', 'model.embed_tokens.weight');
  const rope = arch === 'llama' ? llama3RopeFreqs(cfg) : undefined;
  if (rope) plan.push({ name: 'rope_freqs.weight', source: '', type: 'f32', permuteHeads: 0, data: rope });
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const hf = `model.layers.${i}.`;
    const gg = `blk.${i}.`;
    // llama.cpp's "llama" rope rotates adjacent pairs; HF rotates halves: permute q/k rows (qwen2 is NEOX: no permute).
    const qHeads = arch === 'llama' ? cfg.numAttentionHeads : 0;
    const kHeads = arch === 'llama' ? cfg.numKeyValueHeads : 0;
    add(`${gg}attn_norm.weight`, `${hf}input_layernorm.weight`);
    add(`${gg}attn_q.weight`, `${hf}self_attn.q_proj.weight`, qHeads);
    add(`${gg}attn_k.weight`, `${hf}self_attn.k_proj.weight`, kHeads);
    add(`${gg}attn_v.weight`, `${hf}self_attn.v_proj.weight`);
    if (cfg.attentionBias) {
      add(`${gg}attn_q.bias`, `${hf}self_attn.q_proj.bias`, qHeads);
      add(`${gg}attn_k.bias`, `${hf}self_attn.k_proj.bias`, kHeads);
      add(`${gg}attn_v.bias`, `${hf}self_attn.v_proj.bias`);
    }
    add(`${gg}attn_output.weight`, `${hf}self_attn.o_proj.weight`);
    add(`${gg}ffn_norm.weight`, `${hf}post_attention_layernorm.weight`);
    add(`${gg}ffn_gate.weight`, `${hf}mlp.gate_proj.weight`);
    add(`${gg}ffn_up.weight`, `${hf}mlp.up_proj.weight`);
    add(`${gg}ffn_down.weight`, `${hf}mlp.down_proj.weight`);
  }
  add('output_norm.weight', 'model.norm.weight');
  // Tied models: llama.cpp falls back to token_embd when output.weight is absent.
  if (!cfg.tieWordEmbeddings) add('output.weight', 'lm_head.weight');
  return plan;
}

const INT_RANGE: Partial<Record<GgufValue['type'], [number, number]>> = { u32: [0, 2 ** 32 - 1], i32: [-(2 ** 31), 2 ** 31 - 1] };

/**
 * Every value must fit its GGUF type: a config.json value narrowed to uint32 (intermediate_size 2^40
 * became 0) gives a file llama.cpp aborts on.
 */
export function checkGgufValues(metadata: [string, GgufValue][]): void {
  for (const [key, v] of metadata) {
    const type = v.type === 'array' ? v.itemType : v.type;
    const values: ArrayLike<unknown> = v.type === 'array' ? (v.value as ArrayLike<unknown>) : [v.value];
    const range = INT_RANGE[type];
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      const ok = range
        ? Number.isInteger(x) && (x as number) >= range[0] && (x as number) <= range[1]
        : type === 'f32' ? typeof x === 'number' && Number.isFinite(x) && Math.abs(x) <= 3.4028234663852886e38 : true;
      if (!ok)
        throw new LepError(
          'LEP_GGUF_OUT_OF_RANGE',
          `GGUF key ${key}${v.type === 'array' ? `[${i}]` : ''} = ${String(x)} does not fit its type ${type}` +
            '\nHINT: the value comes from config.json or the tokenizer; check it against the weights.',
        );
    }
  }
}

/** Exports a model directory to a GGUF file that llama.cpp loads. */
export async function exportGguf(modelDir: string, path: string, options: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  checkOptions(GGUF_SPEC, options, { kind: 'options' }, GGUF_NON_SPEC_KEYS);
  const { outType } = withDefaults(GGUF_SPEC, options);
  // A .gguf file may go into the model's own directory, where llama.cpp's converter writes it: lep reads
  // nothing of that name. Any other name there (model.safetensors, config.json) is refused; a directory
  // of that name too (prepareFileOutput).
  const ggufName = typeof path === 'string' && path.toLowerCase().endsWith('.gguf');
  checkOutputPath(path, '--out', { ...(ggufName ? {} : { MODEL_DIR: modelDir }), '--check-text': options.checkText }, 'file');
  const release = prepareFileOutput(path, '--out');
  try {
    const dir = readModelDir(modelDir);
    const tok = Tokenizer.fromDir(modelDir);
    const names = new Set(inspectWeights(dir).keys());
    const name = options.name ?? modelDir.replace(/\/+$/, '').split('/').pop() ?? 'model';
    const checkText = options.checkText === undefined ? undefined : readCheckText(options.checkText);
    const vocabMeta = tokenizerMetadata(tok, dir.config.vocabSize);
    const metadata: [string, GgufValue][] = [
      ...modelMetadata(dir.config, outType, name),
      ...vocabMeta.entries,
      ['general.quantization_version', u32(2)],
    ];
    checkGgufValues(metadata);
    const tensors = tensorPlan(dir.config, names, outType);
    const parity = await ggufTokenizerParity(tok, vocabMeta, checkText);
    let warning: string | undefined;
    if (!parity.exact) {
      if (!options.force)
        throw new LepError(
          'LEP_GGUF_TOKENIZER_MISMATCH',
          `${modelDir}: ${parityMessage(parity)}` +
            '\nHINT: pass --force to write it anyway (prompts may be tokenised differently in llama.cpp than in training); --check-text FILE measures your own held-out lines.',
        );
      warning = `${parityMessage(parity)}; written anyway (--force)`;
    }
    const r = await runJob(
      (p: (e: JobProgress) => boolean) => getNative().writeGguf({ path, files: dir.weightFiles, metadata, tensors }, p),
      options,
    );
    return { bytes: r.bytes, tokenizer: parity, ...(warning ? { warning } : {}) };
  } finally {
    release();
  }
}

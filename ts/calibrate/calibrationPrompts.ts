/**
 * Instruction prompts for self-calibration in the built-in (toy) case, made from the **training** corpora
 * only (`.cache/corpora/{ru,en}.txt` and `pairs.jsonl`, never `heldout/`, which the evaluation suites
 * are built from): copy a paragraph, translate a help paragraph (EN→RU, RU→EN), and ask what a help page
 * says, in Russian and English. The prompts are the user turns of `buildInstructExamples`
 * (ts/train/instructData.ts), so they use the wording the toy instruct model was tuned with; the original
 * instruct model then writes the answers (`generateAnswers`). Deterministic: a seed and a count.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { readTexts } from '../corpus/readCorpus.js';
import { buildInstructExamples, COPY_PROMPT, FAQ_PROMPT, TRANSLATE_PROMPT, type HelpPair } from '../train/instructData.js';
import { isSeed } from '../util/random.js';
import { LANG_SCRIPTS } from './filterAnswers.js';
import type { CalibrationPrompt } from './generateAnswers.js';

/** What a prompt asks for, and the language its answer should be in (the filter's `scriptByLang` reads `lang`). */
export const PROMPT_KINDS = {
  copy_ru: 'ru',
  copy_en: 'en',
  translate_en_ru: 'ru',
  translate_ru_en: 'en',
  faq_ru: 'ru',
  faq_en: 'en',
} as const;
export type PromptKind = keyof typeof PROMPT_KINDS;

/** A built-in prompt: `kind` and the answer's `lang` travel to the answer line. */
export interface BuiltinPrompt extends CalibrationPrompt {
  kind: PromptKind;
  lang: 'ru' | 'en';
}

/**
 * Shares of the prompts: Russian copy, English copy, translation per direction, help questions per
 * language (the last two count twice). Russian is the target language, so it has the largest share.
 */
export interface PromptMix {
  copyRu: number;
  copyEn: number;
  translate: number;
  faq: number;
}

export const DEFAULT_PROMPT_MIX: Readonly<PromptMix> = { copyRu: 0.25, copyEn: 0.15, translate: 0.15, faq: 0.15 };
/** Paragraph (and translated help paragraph) lengths in characters: long enough to say something, short enough for a 512-token toy context. */
export const DEFAULT_PROMPT_CHARS = { min: 30, max: 300 } as const;
export const DEFAULT_PROMPT_SEED = 7;

export interface CalibrationPromptsOptions {
  /** Prompts to make. */
  count: number;
  /** Seed of the choice and order. Defaults to `DEFAULT_PROMPT_SEED`. */
  seed?: number;
  /** Shares of the kinds (must add up to 1 with translate and faq counted twice). Defaults to `DEFAULT_PROMPT_MIX`. */
  mix?: PromptMix;
}

/** The text of a help question before its heading. */
const faqPrefix = (lang: 'en' | 'ru') => FAQ_PROMPT[lang]('\u0000').split('\u0000')[0]!;

function kindOf(user: string): PromptKind {
  if (user.startsWith(COPY_PROMPT.ru)) return 'copy_ru';
  if (user.startsWith(COPY_PROMPT.en)) return 'copy_en';
  if (user.startsWith(TRANSLATE_PROMPT.en)) return 'translate_en_ru';
  if (user.startsWith(TRANSLATE_PROMPT.ru)) return 'translate_ru_en';
  if (user.startsWith(faqPrefix('ru'))) return 'faq_ru';
  if (user.startsWith(faqPrefix('en'))) return 'faq_en';
  throw new LepError('LEP_INTERNAL', `an instruction prompt of no known kind: ${JSON.stringify(user.slice(0, 60))}`);
}

/** Kind counts for `count` prompts: floors of the shares, the remainder to Russian copy. */
export function promptCounts(count: number, mix: PromptMix = DEFAULT_PROMPT_MIX): { copyRu: number; copyEn: number; translate: number; faq: number } {
  if (!Number.isSafeInteger(count) || count < 1) throw optionError('count', 'a positive integer', count, '--prompts');
  const shares = [mix.copyRu, mix.copyEn, mix.translate, mix.faq];
  const sum = mix.copyRu + mix.copyEn + 2 * mix.translate + 2 * mix.faq;
  if (shares.some((s) => !(s >= 0)) || Math.abs(sum - 1) > 1e-9)
    throw optionError('mix', 'non-negative shares with copyRu + copyEn + 2·translate + 2·faq = 1', mix, '--prompt-mix');
  const copyEn = Math.floor(count * mix.copyEn);
  const translate = Math.floor(count * mix.translate);
  const faq = Math.floor(count * mix.faq);
  return { copyRu: count - copyEn - 2 * translate - 2 * faq, copyEn, translate, faq };
}

/**
 * Prompts from paragraphs and help pairs (pure; see `builtinCalibrationPrompts` for the corpora). Ids are
 * `kind-` plus a hash of the prompt text, so they do not change with the count; a prompt that occurs
 * twice gets `-2`, `-3`, ... Throws `LEP_NOT_ENOUGH_TEXT` when the material gives fewer than `count`.
 */
export function calibrationPrompts(paragraphs: { en: string[]; ru: string[] }, pairs: HelpPair[], options: CalibrationPromptsOptions): BuiltinPrompt[] {
  const seed = options.seed ?? DEFAULT_PROMPT_SEED;
  if (!isSeed(seed)) throw optionError('seed', 'an integer from 0 to 2^32 - 1', seed, '--seed');
  const counts = promptCounts(options.count, options.mix);
  const examples = buildInstructExamples(paragraphs, pairs, counts, seed);
  if (examples.length < options.count)
    throw new LepError(
      'LEP_NOT_ENOUGH_TEXT',
      `${options.count} calibration prompts were asked for (${JSON.stringify(counts)}) but the corpora give only ${examples.length}\nHINT: ask for fewer prompts, or give more paragraphs and help pairs.`,
    );
  const uses = new Map<string, number>();
  return examples.map((e) => {
    const user = e.messages[0]!;
    const kind = kindOf(user.content);
    const base = `${kind}-${createHash('sha1').update(user.content, 'utf8').digest('hex').slice(0, 12)}`;
    const k = (uses.get(base) ?? 0) + 1;
    uses.set(base, k);
    return { id: k === 1 ? base : `${base}-${k}`, messages: [user], kind, lang: PROMPT_KINDS[kind] };
  });
}

/**
 * Distinct non-blank lines (paragraphs) of a corpus file with a length in [min, max] characters and, given
 * a `script`, at least half of their letters in it (Russian man pages quote English command lines, which
 * would make a "Russian" copy prompt with a Latin answer).
 */
export async function corpusParagraphs(file: string, chars: { min: number; max: number } = DEFAULT_PROMPT_CHARS, script?: string): Promise<string[]> {
  const out = new Set<string>();
  for await (const line of readTexts(file, { mode: 'line', script })) {
    const t = line.trim();
    if (t.length >= chars.min && t.length <= chars.max) out.add(t);
  }
  return [...out];
}

/** The training material of `corporaDir` (written by `fetchCorpora`), never its `heldout/` split. */
export async function readTrainingMaterial(corporaDir: string, chars: { min: number; max: number } = DEFAULT_PROMPT_CHARS): Promise<{ paragraphs: { en: string[]; ru: string[] }; pairs: HelpPair[] }> {
  const file = (name: string) => join(corporaDir, name);
  let pairsText: string;
  try {
    pairsText = readFileSync(file('pairs.jsonl'), 'utf8');
  } catch (e) {
    throw new LepError('LEP_CORPUS_NOT_FOUND', `${file('pairs.jsonl')} cannot be read: ${(e as Error).message}\nHINT: fetch the corpora first: lep corpora fetch (API: fetchCorpora()), and pass their folder as --corpora.`, { cause: e });
  }
  // Translation paragraphs within the length bounds (a long help paragraph would not fit the toy
  // context); headings stay, they are the help-page questions.
  const inBounds = (s: string) => s.length >= chars.min && s.length <= chars.max;
  const pairs = pairsText
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as HelpPair)
    .filter((p) => !p.id.startsWith('par_id') || (inBounds(p.en) && inBounds(p.ru)));
  const paragraphs = { en: await corpusParagraphs(file('en.txt'), chars, LANG_SCRIPTS.en), ru: await corpusParagraphs(file('ru.txt'), chars, LANG_SCRIPTS.ru) };
  return { paragraphs, pairs };
}

/** `count` built-in prompts from the training corpora in `corporaDir`. */
export async function builtinCalibrationPrompts(corporaDir: string, options: CalibrationPromptsOptions & { chars?: { min: number; max: number } }): Promise<BuiltinPrompt[]> {
  const { paragraphs, pairs } = await readTrainingMaterial(corporaDir, options.chars);
  return calibrationPrompts(paragraphs, pairs, options);
}

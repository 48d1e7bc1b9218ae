/**
 * Turns a model's output for one item into its record (taskScores.ts aggregates records).
 */
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { difflibOverlap, lcsOverlap, lengthRatio, PARAGRAPH_COPY_THRESHOLD } from './metrics/copy.js';
import { chrfFromStats, chrfStats } from './metrics/chrf.js';
import { exactMatch, maxOverGold, tokenF1 } from './metrics/qa.js';
import { rougeN, rougeWords } from './metrics/rouge.js';
import { stemmedRougeWords } from './metrics/rougeStem.js';
import { useTaskPoints } from './metrics/useGrade.js';
import type { ItemRecord } from './taskScores.js';
import type { TaskHeader, TaskItem } from './taskFile.js';

export const PARAGRAPH_OVERLAPS = ['paper', 'llmtf'] as const;
/** `paper`: LCS tokens / reference tokens; `llmtf`: difflib matched characters / prediction characters. */
export type ParagraphOverlap = (typeof PARAGRAPH_OVERLAPS)[number];

export interface Generation {
  /** Text after cutting at the first stop string, trimmed. */
  text: string;
  /** Generated tokens before the stop (stop token and stop string excluded). */
  tokens: number;
  stopped: boolean;
}

const golds = (g: TaskItem['gold']): string[] => (typeof g === 'string' ? [g] : (g as unknown[]).map(String));

export async function generationRecord(
  tok: Tokenizer,
  header: TaskHeader,
  item: TaskItem,
  gen: Generation,
  paragraphOverlap: ParagraphOverlap,
  rougeStem = false,
): Promise<ItemRecord> {
  const base = { id: item.id, prediction: gen.text, stopped: gen.stopped };
  const ref = golds(item.gold)[0]!;
  switch (header.metric) {
    case 'copy_sentence': {
      const refTokens = (await tok.encode(ref)).length;
      return { ...base, values: { len: gen.text === '' ? 0 : lengthRatio(gen.tokens, refTokens, header.maxNewTokens), pred_tokens: gen.tokens, ref_tokens: refTokens } };
    }
    case 'copy_paragraph': {
      const overlap =
        paragraphOverlap === 'llmtf' ? difflibOverlap(ref, gen.text) : lcsOverlap(await tok.encode(ref.trim()), gen.text === '' ? [] : await tok.encode(gen.text));
      return { ...base, values: { overlap, copied: overlap >= PARAGRAPH_COPY_THRESHOLD ? 1 : 0 } };
    }
    case 'qa': {
      const gs = golds(item.gold);
      return { ...base, values: { em: maxOverGold(exactMatch, gen.text, gs), f1: maxOverGold(tokenF1, gen.text, gs) } };
    }
    case 'chrf': {
      const stats = chrfStats(gen.text, ref);
      return { ...base, stats, values: { chrf: chrfFromStats(stats) } };
    }
    case 'rouge': {
      const words = rougeStem ? stemmedRougeWords : rougeWords;
      const r1 = rougeN(gen.text, ref, 1, words);
      const r2 = rougeN(gen.text, ref, 2, words);
      return { ...base, values: { rouge1_recall: r1.recall, rouge2_recall: r2.recall, rouge1_f: r1.f, rouge2_f: r2.f } };
    }
    case 'use_grade': {
      // meta was checked when the task file was read (checkUseMeta).
      const m = item.meta!;
      return { ...base, values: { points: useTaskPoints(String(m.type), String(m.id_task), ref, gen.text), variant: Number(m.variant) } };
    }
    default:
      throw new Error(`${header.metric} is not a generation metric`);
  }
}

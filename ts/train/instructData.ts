/**
 * Instruction data built from the Debian corpora, for the toy instruct model (issue 4): copy this text,
 * translate this paragraph (EN→RU, RU→EN, from the LibreOffice help pairs), and answer a help-page
 * question (the page's heading as the question, one of its paragraphs as the answer), in English and
 * Russian. Deterministic: a seeded shuffle, no sampling at run time.
 */
import { seededRandom, shuffle } from '../util/random.js';
import type { ChatExample } from './packChat.js';

export interface HelpPair {
  en: string;
  ru: string;
  path: string;
  id: string;
}

export const COPY_PROMPT = { en: 'Copy this text exactly:\n\n', ru: 'Скопируй этот текст без изменений:\n\n' } as const;
export const TRANSLATE_PROMPT = { en: 'Translate this paragraph into Russian:\n\n', ru: 'Переведи этот абзац на английский:\n\n' } as const;
export const FAQ_PROMPT = { en: (h: string) => `What does the help page "${h}" say?`, ru: (h: string) => `Что говорится на странице справки «${h}»?` } as const;


const chat = (user: string, assistant: string): ChatExample => ({
  messages: [
    { role: 'user', content: user },
    { role: 'assistant', content: assistant },
  ],
});

export const copyExample = (lang: 'en' | 'ru', text: string): ChatExample => chat(COPY_PROMPT[lang] + text, text);

export interface InstructCounts {
  copyEn: number;
  copyRu: number;
  translate: number;
  faq: number;
}

/**
 * Builds the examples: `counts.copyEn` / `copyRu` paragraphs from each language, `translate` pairs in each
 * direction, `faq` help-page questions in each language. Paragraphs are given; pairs are the help pairs.
 */
export function buildInstructExamples(
  paragraphs: { en: string[]; ru: string[] },
  pairs: HelpPair[],
  counts: InstructCounts,
  seed: number,
): ChatExample[] {
  const rand = seededRandom(seed);
  const out: ChatExample[] = [];
  for (const p of shuffle(paragraphs.en, rand).slice(0, counts.copyEn)) out.push(copyExample('en', p));
  for (const p of shuffle(paragraphs.ru, rand).slice(0, counts.copyRu)) out.push(copyExample('ru', p));
  const body = shuffle(
    pairs.filter((p) => p.id.startsWith('par_id')),
    rand,
  );
  for (const p of body.slice(0, counts.translate)) out.push(chat(TRANSLATE_PROMPT.en + p.en, p.ru));
  for (const p of body.slice(counts.translate, 2 * counts.translate)) out.push(chat(TRANSLATE_PROMPT.ru + p.ru, p.en));
  // Help-page questions: a page's heading asks, the shortest of its paragraphs answers.
  const pages = new Map<string, { heading?: HelpPair; paras: HelpPair[] }>();
  for (const p of pairs) {
    const page = pages.get(p.path) ?? { paras: [] };
    if (p.id.startsWith('hd_id')) page.heading ??= p;
    else if (p.id.startsWith('par_id')) page.paras.push(p);
    pages.set(p.path, page);
  }
  const faqs = shuffle(
    [...pages.values()].filter((p) => p.heading && p.paras.length > 0),
    rand,
  ).slice(0, counts.faq);
  for (const page of faqs) {
    const answer = page.paras.reduce((a, b) => (b.en.length < a.en.length ? b : a));
    out.push(chat(FAQ_PROMPT.en(page.heading!.en), answer.en));
    out.push(chat(FAQ_PROMPT.ru(page.heading!.ru), answer.ru));
  }
  return shuffle(out, rand);
}

/**
 * The chat template of the toy family v1: Mistral-Instruct's [INST] markup, with one space between
 * `[/INST]` and the answer written by the template (so the generation prompt ends at `[/INST]` and the
 * answer's first token is a word-initial "▁" piece, as when the model generates it). Text markup: a new
 * vocabulary spells `[INST]` with pieces the instruct model never saw, so v2 marks turns with special tokens.
 */
export const TOY_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";

/**
 * ChatML (Qwen, OpenHermes): every turn is `<|im_start|>ROLE\nTEXT<|im_end|>\n`, the two markers being
 * special added tokens, so they stay single tokens under any new vocabulary. Toy family v2 (Mistral
 * tokenizer) keeps `{{ bos_token }}` in front because its base was pretrained on blocks that start with it.
 */
export const CHATML_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** Meta-Llama-3-8B-Instruct's chat template, verbatim: header tokens around the role, `<|eot_id|>` closing each turn. */
export const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

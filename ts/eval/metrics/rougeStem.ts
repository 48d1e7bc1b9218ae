/**
 * Stemmed ROUGE words (`--rouge-stem`): Cyrillic words through the Snowball Russian stemmer
 * (npm @orama/stemmers), Latin words through Porter's 1980 stemmer (npm stemmer, as Google's
 * rouge_score stems English). The reference summarisation code lemmatises; a stemmer only cuts
 * endings ("кошкой" → "кошк"), so scores come closer to, but are not, the lemmatised ones.
 */
import { stemmer as russianStem } from '@orama/stemmers/russian';
import { stemmer as porterStem } from 'stemmer';

import { rougeWords } from './rouge.js';

const CYRILLIC = /\p{Script=Cyrillic}/u;
const LATIN = /^[a-z]+$/;

/** One word's stem: by its script; words of digits or other scripts stay as they are. */
export function stemWord(word: string): string {
  if (CYRILLIC.test(word)) return russianStem(word);
  return LATIN.test(word) ? porterStem(word) : word;
}

/** rougeWords, each stemmed. */
export function stemmedRougeWords(text: string): string[] {
  return rougeWords(text).map(stemWord);
}

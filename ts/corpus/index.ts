/** `lep/corpus`: target-language text: Debian's documentation corpora, corpus readers. Re-exports only. */
export { fetchCorpora, CORPUS_SOURCES, CORPUS_OUTPUTS, DEFAULT_CORPUS_CACHE_DIR, type FetchCorporaOptions, type FetchCorporaResult, type CorpusManifest } from './fetchDebian.js';
export { readTexts, type ReadTextsOptions, type CorpusMode, type CorpusFormat, type CorpusNormalization } from './readCorpus.js';
export { listCorpusFiles } from './listCorpusFiles.js';

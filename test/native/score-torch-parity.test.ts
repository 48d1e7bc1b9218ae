/**
 * lep's scoring and decoding against PyTorch (scripts/torch_reference.py's "logprobs": the HF LLaMA
 * definition in eager PyTorch, log_softmax over the whole head) on a deliberately peaked GQA model, where
 * most log-probabilities lie far below -87: the range in which exp() of a logit is a denormal float and
 * lep's score clamps the terms of its log-sum-exp (cpp/core/score.cpp). The per-token log-probabilities,
 * the last position's full distribution and the greedy continuation (one-row decoding with the KV cache)
 * must agree with the reference.
 */
import test from 'ava';

import { LepModel, lepInfo } from '../../ts/index.js';
import { checkTorchReference, runTorchReference } from '../../scripts/torchReference.js';
import { maxAbsDiff, tinyModel } from '../helpers.js';

/** float32 on both sides, log-probs of magnitude ~100 (measured: 7e-6 on the tokens, 2e-5 on the last distribution). */
const LOGPROB_ABS = 1e-3;

interface Logprobs {
  token_logprobs: number[][];
  last_logprobs: number[][];
  argmax: number[][];
}

// serial: it sets LEP_F32_PRODUCTS in this process's environment, which the other tests must not see.
test.serial('score and greedy decoding agree with PyTorch on a peaked model, far below the denormal range of exp, with the products in the BLAS and in oneDNN', async (t) => {
  checkTorchReference();  // fails (never skips) without python3-torch, saying to run scripts/setup.sh
  const dir = await tinyModel({ hiddenSize: 128, numAttentionHeads: 8, numKeyValueHeads: 2, embedStd: 3, seed: 11 });
  const m = await LepModel.load(dir);
  const prompt = [1, 415, 2936, 302, 4843, 349, 264, 1628];
  // Both ways a float32 prompt's products run (cpp/core/compute_threads.h); decoding is the BLAS's in both.
  const paths = lepInfo().onednn ? ['blas', 'onednn'] : ['blas'];
  let ref: Logprobs | undefined;
  try {
    for (const products of paths) {
      process.env.LEP_F32_PRODUCTS = products;
      const [g] = await m.generateTokens([prompt], { maxNewTokens: 12, stopTokens: [] });
      const seq = [...prompt, ...g!.tokens];
      const [lep] = await m.score([seq], { lastLogprobs: true });
      ref ??= (await runTorchReference<Logprobs[]>([{ task: 'logprobs', model: dir, tokens: [seq] }]))[0]!;
      const tok = ref.token_logprobs[0]!;
      const last = ref.last_logprobs[0]!;
      // The test covers the clamped range: some scored tokens and most of the vocabulary lie below -87.
      t.true(tok.some((x) => x < -87), `lowest token log-prob ${Math.min(...tok)}`);
      t.true(last.filter((x) => x < -87).length > last.length / 2);
      const dTok = maxAbsDiff(lep!.tokenLogprobs, tok);
      const dLast = maxAbsDiff(lep!.lastLogprobs!, last);
      t.log(`${products}: max |Δ log p|: tokens ${dTok.diff.toExponential(2)}, last distribution ${dLast.diff.toExponential(2)}`);
      t.true(dTok.diff < LOGPROB_ABS, products);
      t.true(dLast.diff < LOGPROB_ABS, products);
      // Greedy decoding (one row at a time through the KV cache) picked the reference's argmax at every
      // step, so both paths give the same continuation and score the same sequence.
      t.deepEqual(ref.argmax[0]!.slice(prompt.length - 1, seq.length - 1), Array.from(g!.tokens), products);
    }
  } finally {
    delete process.env.LEP_F32_PRODUCTS;
    m.dispose();
  }
});

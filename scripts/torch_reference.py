#!/usr/bin/python3
"""Eager PyTorch reference for lep's training engine: the independent side of the parity test
(test/native/train-torch-parity.test.ts) and of the throughput benchmark (bench/train-torch.ts).

The model is written from Hugging Face's LLaMA definition (modeling_llama.py / modeling_qwen2.py:
RMSNorm in float32, rotate-half RoPE incl. Llama 3.1 "llama3" frequency scaling, grouped-query
attention via repeat_kv, SwiGLU MLP, optional q/k/v bias, tied or untied head) and trained with
PyTorch's own autograd, torch.optim.AdamW and clip_grad_norm_. Nothing here calls lep.

Run with Debian's /usr/bin/python3 (python3-torch, installed by scripts/setup.sh). Reads one JSON
request, or a list of them, on stdin and writes the answer (or the list of answers) as JSON on stdout.
Any request may set `threads` (torch.set_num_threads) and `blas_threads` (OpenBLAS's own pool).
Every request except matmul_peak names `model` (a lep/HF directory: config.json + model.safetensors, f32/bf16/f64) and
the data: `blocks` (a lep blocks file: safetensors with `tokens` I32 (N, T+1), optional `loss_mask` U8)
or `tokens` (a list of rows) with an optional `loss_mask` (same shape; 1 = the token is a target).
`dtype`: "float32" (default) or "float64". Tasks:

  {"task": "grads", "params": "all" | "embeddings" | [both], "out": "g.safetensors"}
      -> {"loss": {params: loss}, "names": {params: [...]}}; gradients saved as "<params>/<name>"
  {"task": "train", "steps": N, "lr", "embedding_lr" (optional), "warmup_steps", "min_lr_ratio", "beta1", "beta2", "eps",
   "weight_decay", "clip", "params", "rows": [token ids] (optional, params "embeddings": only these rows
   train), "batches": [[block indices] per step] (default: all blocks every step), "out": "w.safetensors"}
      -> {"losses": [...], "grad_norms": [...], "lrs": [...]}; trained parameters saved to `out`
  {"task": "time", "steps": N, "warmup": 1, "batch_size": B, "threads": n, "blas_threads": n, "autocast": false, ...}
      -> {"step_seconds": [...], "tokens_per_step": B*T}: the "train" step ("params", default all; f32)
         on blocks taken in file order, wall-clock per step after `warmup` untimed steps; with
         "autocast": true the loss runs under torch.autocast("cpu", bfloat16) (PyTorch's mixed precision)
  {"task": "logprobs"}  (with `tokens`: rows of one length)
      -> {"token_logprobs": [[log p(x_i | x_<i), i = 1..T-1] per row], "last_logprobs": [[V values] per row],
          "argmax": [[most likely next token after each position] per row]}: log_softmax over the whole
         head, what lep's score returns, and what greedy decoding picks
  {"task": "matmul_peak", "size": 2048, "reps": 5, "blas_threads": n}
      -> {"gflops": best over reps of a size x size float32 torch.mm}
"""
import ctypes
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

from safetensors_io import read_safetensors, write_safetensors

# --- allocator and threads: the same settings lep uses (cpp/core/runtime.cpp), so timings compare ----

def tune_allocator():
    # glibc returns large freed blocks to the OS; the next step then page-faults on fresh memory
    # (measured 3.3x slower eager steps here, docs/architecture.md). Same thresholds as lep's tune_allocator.
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
    # lep also sets M_TOP_PAD, for its jobs' threads, whose per-thread arenas glibc unmaps when free
    # whatever the trim threshold. This script allocates on its main thread (the main heap, which the trim
    # threshold keeps), so the same pad is set for parity only.
    libc.mallopt(-2, 64 << 20)  # M_TOP_PAD


def set_threads(threads, blas_threads):
    # torch.set_num_threads sets libtorch's OpenMP pool only; OpenBLAS (which does the matmuls here)
    # keeps its own pool, set through its C API. libopenblas is already loaded by torch: same handle.
    if threads:
        torch.set_num_threads(int(threads))
    if blas_threads:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(int(blas_threads))


# --- safetensors, by hand (no safetensors module on Debian): 8-byte LE header size, JSON, raw bytes ---

# --- the model, from HF modeling_llama.py -----------------------------------------------------------

class Config:
    def __init__(self, j):
        self.vocab = j["vocab_size"]
        self.hidden = j["hidden_size"]
        self.layers = j["num_hidden_layers"]
        self.heads = j["num_attention_heads"]
        self.kv_heads = j.get("num_key_value_heads") or self.heads
        self.head_dim = j.get("head_dim") or self.hidden // self.heads
        self.eps = j.get("rms_norm_eps", 1e-6)
        self.theta = j.get("rope_theta", 10000.0)
        self.rope_scaling = j.get("rope_scaling")
        self.tied = bool(j.get("tie_word_embeddings", False))
        self.bias = j["model_type"] == "qwen2" or bool(j.get("attention_bias", False))


def rope_inv_freq(c):
    # HF: 1 / base^(arange(0, d, 2) / d) in float32; llama3 scaling as _compute_llama3_parameters.
    inv_freq = 1.0 / (c.theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).float() / c.head_dim))
    s = c.rope_scaling
    if s and (s.get("rope_type") or s.get("type")) == "llama3":
        factor, low, high = s.get("factor", 8.0), s.get("low_freq_factor", 1.0), s.get("high_freq_factor", 4.0)
        old_ctx = s.get("original_max_position_embeddings", 8192)
        low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_ctx / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    return inv_freq


def upcast(dtype):
    # HF does norms, RoPE tables, softmax and logits in float32. A float64 model stays in float64
    # (HF would round it through float32), so a float64 comparison checks the maths, not roundings.
    return torch.float64 if dtype == torch.float64 else torch.float32


def rms_norm(x, w, eps):
    xf = x.to(upcast(x.dtype))
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def forward_hidden(c, W, ids):
    """ids (B, T) -> final hidden states (B, T, C), after the last norm."""
    B, T = ids.shape
    x = F.embedding(ids, W["model.embed_tokens.weight"])  # (B, T, C)
    dt = x.dtype
    freqs = torch.arange(T, dtype=upcast(dt))[:, None] * rope_inv_freq(c).to(upcast(dt))[None, :]  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dt), emb.sin().to(dt)  # (T, D)
    causal = torch.full((T, T), torch.finfo(upcast(dt)).min, dtype=upcast(dt)).triu(1)  # (T, T) additive
    H, Hkv, D = c.heads, c.kv_heads, c.head_dim
    for i in range(c.layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], c.eps)
        lin = lambda n, t: F.linear(t, W[p + n + ".weight"], W.get(p + n + ".bias") if c.bias else None)
        q = lin("self_attn.q_proj", h).view(B, T, H, D).transpose(1, 2)      # (B, H, T, D)
        k = lin("self_attn.k_proj", h).view(B, T, Hkv, D).transpose(1, 2)    # (B, Hkv, T, D)
        v = lin("self_attn.v_proj", h).view(B, T, Hkv, D).transpose(1, 2)    # (B, Hkv, T, D)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        # repeat_kv: query head j reads key/value head j // (H / Hkv)
        k = k[:, :, None].expand(B, Hkv, H // Hkv, T, D).reshape(B, H, T, D)
        v = v[:, :, None].expand(B, Hkv, H // Hkv, T, D).reshape(B, H, T, D)
        scores = q.to(upcast(dt)) @ k.to(upcast(dt)).transpose(2, 3) / math.sqrt(D) + causal  # (B, H, T, T)
        probs = torch.softmax(scores, dim=-1).to(dt)
        att = (probs @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + F.linear(att, W[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], c.eps)
        mlp = F.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)
        x = x + F.linear(mlp, W[p + "mlp.down_proj.weight"])
    return rms_norm(x, W["model.norm.weight"], c.eps)


def lm_loss(c, W, blocks, mask):
    """Mean next-token cross-entropy over target positions. blocks (B, T+1) int64, mask (B, T+1) or None."""
    ids, targets = blocks[:, :-1], blocks[:, 1:]
    hidden = forward_hidden(c, W, ids)
    head = W["model.embed_tokens.weight"] if c.tied else W["lm_head.weight"]
    logits = F.linear(hidden, head).to(upcast(hidden.dtype))  # (B, T, V)
    tok = F.cross_entropy(logits.reshape(-1, c.vocab), targets.reshape(-1), reduction="none")
    if mask is None:
        return tok.mean()
    m = mask[:, 1:].reshape(-1).to(tok.dtype)
    return (tok * m).sum() / m.sum()


# --- requests ------------------------------------------------------------------------------------------

def load(req):
    with open(req["model"] + "/config.json") as f:
        c = Config(json.load(f))
    dtype = {"float32": torch.float32, "float64": torch.float64}[req.get("dtype", "float32")]
    W = {n: t.to(dtype) for n, t in read_safetensors(req["model"] + "/model.safetensors").items()}
    if c.tied:
        W.pop("lm_head.weight", None)  # some tied checkpoints store a copy; the head is embed_tokens
    if "blocks" in req:
        data = read_safetensors(req["blocks"])
        tokens, mask = data["tokens"].long(), data.get("loss_mask")
    else:
        tokens = torch.tensor(req["tokens"], dtype=torch.int64)
        mask = torch.tensor(req["loss_mask"], dtype=torch.uint8) if req.get("loss_mask") is not None else None
    return c, W, tokens, mask


def trainable(c, W, params):
    if params == "all":
        return list(W)
    if params == "embeddings":
        return ["model.embed_tokens.weight"] + ([] if c.tied else ["lm_head.weight"])
    raise ValueError(f"params must be 'all' or 'embeddings', got {params!r}")


def lr_at(req, step):
    # HF get_cosine_schedule_with_warmup (num_cycles 0.5), with lep's optional floor min_lr_ratio.
    lr, warm, total = req["lr"], req.get("warmup_steps", 0), req["steps"]
    if step < warm:
        return lr * step / max(1, warm)
    progress = (step - warm) / max(1, total - warm)
    return lr * (req.get("min_lr_ratio", 0.0) + (1 - req.get("min_lr_ratio", 0.0)) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def task_grads(req):
    c, W, tokens, mask = load(req)
    selections = req.get("params", "all")
    out, result = {}, {"loss": {}, "names": {}}
    for params in [selections] if isinstance(selections, str) else selections:
        names = trainable(c, W, params)
        for n, t in W.items():
            t.grad = None
            t.requires_grad_(n in names)
        loss = lm_loss(c, W, tokens, mask)
        loss.backward()
        result["loss"][params] = loss.item()
        result["names"][params] = names
        for n in names:
            out[f"{params}/{n}"] = W[n].grad
    write_safetensors(req["out"], out)
    return result


def train_steps(req, c, W, tokens, mask, batches, on_step=None):
    names = trainable(c, W, req.get("params", "all"))
    # rows (params embeddings): only these token rows train. Written the plain PyTorch way, independent of
    # lep's gather/scatter: each matrix is a frozen copy with a (k, C) leaf parameter put into its rows,
    # and torch.optim.AdamW (decay included) and the clipping see only those leaves.
    rows = req.get("rows")
    if rows is not None:
        if req.get("params") != "embeddings":
            raise ValueError("rows needs params 'embeddings'")
        ridx = torch.tensor(sorted(set(rows)), dtype=torch.int64)
        frozen = {n: W[n].detach().clone() for n in names}
        leaves = {n: W[n].detach()[ridx].clone().requires_grad_(True) for n in names}
        weights = lambda: {**W, **{n: frozen[n].index_put((ridx,), leaves[n]) for n in names}}
    else:
        leaves = {n: W[n] for n in names}
        weights = lambda: W
    params = [leaves[n].requires_grad_(True) for n in names]
    # embedding_lr: a second parameter group (input embeddings, LM head) whose lr is scaled likewise.
    emb = set(trainable(c, W, "embeddings"))
    scale = req["embedding_lr"] / req["lr"] if req.get("embedding_lr") else 1.0
    groups = [{"params": [leaves[n] for n in names if n not in emb], "scale": 1.0},
              {"params": [leaves[n] for n in names if n in emb], "scale": scale}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=req["lr"], betas=(req.get("beta1", 0.9), req.get("beta2", 0.95)),
                            eps=req.get("eps", 1e-5), weight_decay=req.get("weight_decay", 0.1))
    losses, norms, lrs = [], [], []
    for step, rows in enumerate(batches):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(req, step) * g["scale"]
        opt.zero_grad(set_to_none=True)
        idx = torch.tensor(rows, dtype=torch.int64)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(req.get("autocast", False))):
            loss = lm_loss(c, weights(), tokens[idx], None if mask is None else mask[idx])
        loss.backward()
        clip = req.get("clip", 1.0)
        norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else torch.sqrt(sum(p.grad.double().pow(2).sum() for p in params))
        opt.step()
        if on_step:
            on_step(time.perf_counter() - t0)  # before .item(): logging is not part of the step
        losses.append(loss.item())
        norms.append(float(norm))
        lrs.append(lr_at(req, step))
    if rows is not None:
        with torch.no_grad():
            W.update({n: w.detach() for n, w in weights().items() if n in names})
    return names, losses, norms, lrs


def task_train(req):
    c, W, tokens, mask = load(req)
    batches = req.get("batches") or [list(range(tokens.shape[0]))] * req["steps"]
    if len(batches) != req["steps"]:
        raise ValueError(f"batches lists {len(batches)} steps but steps is {req['steps']}")
    names, losses, norms, lrs = train_steps(req, c, W, tokens, mask, batches)
    write_safetensors(req["out"], {n: W[n] for n in names})
    return {"losses": losses, "grad_norms": norms, "lrs": lrs}


def task_time(req):
    c, W, tokens, mask = load({**req, "dtype": "float32"})
    B, N, warm = req["batch_size"], tokens.shape[0], req.get("warmup", 1)
    batches = [[(s * B + i) % N for i in range(B)] for s in range(warm + req["steps"])]
    times = []
    train_steps({**req, "steps": len(batches), "params": req.get("params", "all")}, c, W, tokens, mask, batches, times.append)
    return {"step_seconds": times[warm:], "tokens_per_step": B * (tokens.shape[1] - 1),
            "threads": torch.get_num_threads(), "blas_threads": ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads()}


def task_logprobs(req):
    c, W, tokens, _ = load(req)
    with torch.no_grad():
        hidden = forward_hidden(c, W, tokens)
        head = W["model.embed_tokens.weight"] if c.tied else W["lm_head.weight"]
        lp = torch.log_softmax(F.linear(hidden, head).to(upcast(hidden.dtype)), dim=-1)  # (B, T, V)
        tok = lp[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return {"token_logprobs": tok.tolist(), "last_logprobs": lp[:, -1].tolist(), "argmax": lp.argmax(-1).tolist()}


def task_matmul_peak(req):
    n, best = req.get("size", 2048), 0.0
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up: threads started, pages touched
    for _ in range(req.get("reps", 5)):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return {"gflops": best, "size": n}


TASKS = {"grads": task_grads, "train": task_train, "time": task_time, "logprobs": task_logprobs,
         "matmul_peak": task_matmul_peak}


def main():
    tune_allocator()
    req = json.load(sys.stdin)
    def run(r):
        set_threads(r.get("threads"), r.get("blas_threads"))
        return TASKS[r["task"]](r)
    answer = [run(r) for r in req] if isinstance(req, list) else run(req)
    json.dump(answer, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

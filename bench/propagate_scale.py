#!/usr/bin/python3
"""Helpers for bench/propagate-scale.ts (Debian's /usr/bin/python3 with python3-torch).

  synth DIR OLD NEW D SEED   writes DIR/{base,instruct,donor}/model.safetensors: bf16 model.embed_tokens.weight
                             and lm_head.weight, base E ~ N(0, 0.02); instruct = E + N(0, 0.005) (an instruct
                             model stays near its base); donor = E + N(0, 0.002) on old ids, N(0, 0.02) on new.
                             Written a chunk of rows at a time (memory: one chunk).
  instruct2 DIR OLD D SEED   writes DIR/instruct2/model.safetensors: a second fine-tune of the same base,
                             base E + N(0, 0.005) with other noise than DIR/instruct (for `--instructs 2`).
  compare A.safetensors B.safetensors   max relative difference of their embedding matrices, chunked
  naive DIR T.bin OUT        the naive propagation (--method conversion): all three embedding pairs loaded as
                             float64 at once, T·E dense-by-gather, torch.linalg.lstsq (gelsy) per side, like the
                             reference code. Writes OUT (float64 new matrices) and prints timings as JSON.
"""
import json
import struct
import sys
import time

import numpy as np
import torch

NAMES = ["model.embed_tokens.weight", "lm_head.weight"]


def write_bf16(path, rows, d, make_chunk, chunk=8192):
    header, offset = {}, 0
    for name in NAMES:
        header[name] = {"dtype": "BF16", "shape": [rows, d], "data_offsets": [offset, offset + rows * d * 2]}
        offset += rows * d * 2
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for side in range(len(NAMES)):
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                t = make_chunk(side, r0, r1).to(torch.bfloat16)
                f.write(t.view(torch.int16).numpy().tobytes())


def synth(out, old, new, d, seed, instruct2_only=False):
    import os

    for m in ("instruct2",) if instruct2_only else ("base", "instruct", "donor"):
        os.makedirs(f"{out}/{m}", exist_ok=True)

    def base_rows(side, r0, r1):
        g = torch.Generator().manual_seed(seed * 1000003 + side * 7919 + r0)
        return torch.randn(r1 - r0, d, generator=g) * 0.02

    def noisy(scale, salt):
        def f(side, r0, r1):
            g = torch.Generator().manual_seed(seed * 1000003 + side * 7919 + r0 + salt)
            if r0 >= old:
                return torch.randn(r1 - r0, d, generator=g) * 0.02
            e = base_rows(side, r0, min(r1, old))
            e = e + torch.randn(e.shape, generator=g) * scale
            if r1 > old:
                e = torch.cat([e, torch.randn(r1 - old, d, generator=g) * 0.02])
            return e

        return f

    if instruct2_only:
        write_bf16(f"{out}/instruct2/model.safetensors", old, d, noisy(0.005, 43))
        return
    write_bf16(f"{out}/base/model.safetensors", old, d, base_rows)
    write_bf16(f"{out}/instruct/model.safetensors", old, d, noisy(0.005, 17))
    # Donor chunks must not straddle the old/new boundary differently from base chunks: same chunking.
    write_bf16(f"{out}/donor/model.safetensors", new, d, noisy(0.002, 29))


def read_bf16(path):
    """Every embedding matrix of a checkpoint as a bf16 tensor over the file's bytes (no float64 copy)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name in NAMES:
        if name in header:
            b, e = header[name]["data_offsets"]
            u16 = torch.from_numpy(np.frombuffer(data, dtype="<i2", count=(e - b) // 2, offset=8 + n + b))
            out[name] = u16.view(torch.bfloat16).reshape(header[name]["shape"])
    return out


def read_f64(path):
    """Every embedding matrix of a checkpoint as float64 (the naive approach: all at once)."""
    return {name: t.to(torch.float64) for name, t in read_bf16(path).items()}


def compare(path_a, path_b, chunk=16384):
    """max |a - b| / max |b| over the embedding matrices of two bf16 checkpoints, a chunk of rows at a time
    (at LLaMa-3 sizes the matrices are 1.4 GB each: too big for the bench's JS side)."""
    a, b = read_bf16(path_a), read_bf16(path_b)
    worst = 0.0
    for name, y in b.items():
        x = a[name]
        diff = scale = 0.0
        for r in range(0, y.shape[0], chunk):
            xc, yc = x[r : r + chunk].float(), y[r : r + chunk].float()
            diff = max(diff, (xc - yc).abs().max().item())
            scale = max(scale, yc.abs().max().item())
        worst = max(worst, diff / scale)
    print(json.dumps({"maxRelDiff": worst}))


def naive(d, tpath, out):
    t0 = time.time()
    base, inst, donor = (read_f64(f"{d}/{m}/model.safetensors") for m in ("base", "instruct", "donor"))
    t_load = time.time() - t0
    tt = np.fromfile(tpath, dtype="<i4")
    n_rows = int(tt[0])
    offsets = torch.from_numpy(tt[1 : n_rows + 2].astype(np.int64))
    indices = torch.from_numpy(tt[n_rows + 2 :].astype(np.int64))
    counts = offsets[1:] - offsets[:-1]
    row_of = torch.repeat_interleave(torch.arange(n_rows), counts)
    w = (1.0 / counts.clamp_min(1).to(torch.float64))[row_of].unsqueeze(1)
    result, sides = {}, []
    for name in NAMES:
        t1 = time.time()
        a = torch.zeros(n_rows, base[name].shape[1], dtype=torch.float64).index_add_(0, row_of, base[name][indices] * w)
        b = torch.zeros_like(a).index_add_(0, row_of, inst[name][indices] * w)
        p = torch.linalg.lstsq(a, b, driver="gelsy").solution
        residual = float(torch.linalg.norm(a @ p - b) / torch.linalg.norm(b))
        result[name] = donor[name] @ p
        sides.append({"tensor": name, "residual": residual, "seconds": time.time() - t1})
        del a, b
    header, blobs, offset = {}, [], 0
    for name, t in result.items():
        blob = t.numpy().astype("<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(json.dumps({"loadSeconds": t_load, "sides": sides, "totalSeconds": time.time() - t0, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    if sys.argv[1] == "synth":
        synth(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "instruct2":
        synth(sys.argv[2], int(sys.argv[3]), 0, int(sys.argv[4]), int(sys.argv[5]), instruct2_only=True)
    elif sys.argv[1] == "naive":
        naive(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

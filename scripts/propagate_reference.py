#!/usr/bin/python3
"""Independent float64 reference for propagation (docs/method.md §4), used by test/native/propagate.test.ts.

Computes the formulas directly and densely, the way the paper's code does (torch.linalg.lstsq, driver
gelsy, float64), with none of lep's chunking, streaming or normal equations:

    swap        new = F
    overlap     new = F @ lstsq(E_base[C], E_inst[C])
    conversion  new = F @ lstsq(T @ E_base, T @ E_inst)      T dense, |V_new| x |V_old|

then rows copy_to := E_inst[copy_from]. Per side it also reports ||A P - B|| / ||B|| and the mean cosine
between the final rows of the overlap pairs and the instruct rows.

Usage: /usr/bin/python3 scripts/propagate_reference.py SPEC.json OUT.safetensors  (prints a JSON report)
SPEC: {method, base, donor, instruct: safetensors paths; tOffsets, tIndices, overlapNew, overlapOld,
       copyTo, copyFrom: id lists; outRows; driver: optional, "gelsy" (default) or "gelsd"}
Needs Debian's python3-torch and numpy (Debian's /usr/bin/python3); reads and writes safetensors itself.
"""
import json
import sys

import torch

from safetensors_io import read_safetensors, write_safetensors


def main():
    spec = json.load(open(sys.argv[1]))
    base, donor, inst = (read_safetensors(spec[k], as_float64=True) for k in ("base", "donor", "instruct"))
    names = ["model.embed_tokens.weight"] + (["lm_head.weight"] if "lm_head.weight" in inst else [])
    method = spec["method"]
    out, report = {}, []
    for name in names:
        eb, f, ei = base[name], donor[name], inst[name]
        residual = None
        if method == "swap":
            new = f.clone()
        else:
            if method == "overlap":
                c = torch.tensor(spec["overlapOld"], dtype=torch.long)
                a, b = eb[c], ei[c]
            else:
                offsets, indices = spec["tOffsets"], spec["tIndices"]
                t = torch.zeros(len(offsets) - 1, eb.shape[0], dtype=torch.float64)
                for i in range(len(offsets) - 1):
                    ids = indices[offsets[i] : offsets[i + 1]]
                    for j in ids:
                        t[i, j] += 1.0 / len(ids)
                a, b = t @ eb, t @ ei[: eb.shape[0]]
            # SPEC "driver": "gelsd" for the minimum-norm solution by SVD (a rank-deficient system: gelsy's
            # rank estimate misjudges some exactly rank-deficient ones).
            p = torch.linalg.lstsq(a, b, driver=spec.get("driver", "gelsy")).solution
            residual = float(torch.linalg.norm(a @ p - b) / torch.linalg.norm(b))
            new = f @ p
        final = torch.empty(spec["outRows"], f.shape[1], dtype=torch.float64)
        final[: f.shape[0]] = new
        if spec["copyTo"]:
            final[torch.tensor(spec["copyTo"])] = ei[torch.tensor(spec["copyFrom"])]
        cos = None
        if spec["overlapNew"]:
            x = final[torch.tensor(spec["overlapNew"])]
            y = ei[torch.tensor(spec["overlapOld"])]
            cos = float(torch.nn.functional.cosine_similarity(x, y, dim=1).mean())
        out[name] = final
        report.append({"tensor": name, "residual": residual, "overlapCosine": cos})
    write_safetensors(sys.argv[2], out)
    print(json.dumps({"sides": report, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

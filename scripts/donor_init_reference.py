#!/usr/bin/python3
"""Independent float64 reference for the donor rules of `lep init` (omp, focus; docs/method.md §2), used by
test/native/embedding-init-donor.test.ts.

Written plainly, one target at a time, with none of lep's batching or incremental QR:

    omp    k times: pick the unchosen atom with the largest |<residual, atom>|, then the coefficients of
           the target on all chosen atoms by numpy.linalg.lstsq, residual = target - atoms_S^T c
    focus  c = sparsemax(cosine(target, atom_j) over all atoms j), sparsemax by Michelot's iteration
           (drop entries at or below the threshold until none is left), not the sort-and-cumsum formula

Usage:
  /usr/bin/python3 scripts/donor_init_reference.py code SPEC.json
      SPEC {method, k, dim, targets, atoms: flat row-major lists} -> prints {indices, coeffs} per target
  /usr/bin/python3 scripts/donor_init_reference.py init SPEC.json
      SPEC {method, k, old, donor: safetensors paths, donorTied, sharedOld, sharedDonor, rowDonor}
      -> prints per side (tensor name) {new id: {old: [...], weights: [...], row: [...]}}
"""
import json
import sys

import numpy as np

from safetensors_io import read_safetensors


def omp(y, atoms, k):
    residual = y.copy()
    chosen = []
    coeffs = np.zeros(0)
    for _ in range(k):
        score = np.abs(atoms @ residual)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
        a = atoms[chosen].T  # (D, t)
        coeffs = np.linalg.lstsq(a, y, rcond=None)[0]
        residual = y - a @ coeffs
    return chosen, coeffs


def sparsemax(z):
    support = np.ones(len(z), dtype=bool)
    while True:
        tau = (z[support].sum() - 1) / support.sum()
        keep = support & (z > tau)
        if keep.sum() == support.sum():
            return np.maximum(z - tau, 0)
        support = keep


def focus(y, atoms):
    cos = atoms @ y / (np.linalg.norm(atoms, axis=1) * np.linalg.norm(y))
    w = sparsemax(cos)
    idx = [int(j) for j in np.nonzero(w)[0]]
    return idx, w[idx]


def code(method, y, atoms, k):
    return omp(y, atoms, k) if method == "omp" else focus(y, atoms)


def main():
    mode, spec = sys.argv[1], json.load(open(sys.argv[2]))
    if mode == "code":
        d = spec["dim"]
        ys = np.array(spec["targets"], dtype=np.float64).reshape(-1, d)
        atoms = np.array(spec["atoms"], dtype=np.float64).reshape(-1, d)
        out = []
        for y in ys:
            idx, c = code(spec["method"], y, atoms, spec["k"])
            out.append({"indices": idx, "coeffs": [float(x) for x in c]})
        print(json.dumps(out))
        return
    old = {k: v.numpy() for k, v in read_safetensors(spec["old"], as_float64=True).items()}
    donor = {k: v.numpy() for k, v in read_safetensors(spec["donor"], as_float64=True).items()}
    result = {}
    for name in ["model.embed_tokens.weight", "lm_head.weight"]:
        if name not in old:
            continue
        e_old = old[name]
        e_donor = donor["model.embed_tokens.weight" if spec["donorTied"] else name]
        old_zero = ~e_old.any(axis=1)
        donor_zero = ~e_donor.any(axis=1)
        pairs, seen_o, seen_d = [], set(), set()
        for o, dn in zip(spec["sharedOld"], spec["sharedDonor"]):
            if old_zero[o] or donor_zero[dn] or o in seen_o or dn in seen_d:
                continue
            seen_o.add(o)
            seen_d.add(dn)
            pairs.append((o, dn))
        atoms = e_donor[[dn for _, dn in pairs]]
        k = min(spec["k"], len(pairs))
        side = {}
        for new_id, dn in enumerate(spec["rowDonor"]):
            if dn < 0 or donor_zero[dn]:
                continue
            idx, c = code(spec["method"], e_donor[dn], atoms, k)
            olds = [pairs[j][0] for j in idx]
            row = sum(w * e_old[o] for o, w in zip(olds, c))
            side[new_id] = {"old": olds, "weights": [float(x) for x in c], "row": [float(x) for x in row]}
        result[name] = side
    print(json.dumps(result))


if __name__ == "__main__":
    main()

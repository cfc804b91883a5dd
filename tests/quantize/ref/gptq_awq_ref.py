"""Independent writer of AutoGPTQ / GPTQModel and AutoAWQ (GEMM) checkpoints, numpy only.

Quantizes every decoder Linear of a dense Hugging Face directory with round-to-nearest as the
libraries' quantizers define it, packs it as they pack it, and writes a checkpoint the C++
readers must load; the dequantized weight each file means is written beside it.

  GPTQ (AutoGPTQ quant.Quantizer.find_params + QuantLinear.pack): per group of input columns
    xmin = min(min x, 0), xmax = max(max x, 0); symmetric: xmax = max(|xmin|, xmax), xmin = -xmax
    where xmin < 0; an all-zero group becomes [-1, 1]; scale = (xmax - xmin) / maxq;
    zero = (maxq + 1) / 2 (symmetric) or round(-xmin / scale); q = clamp(round(x / scale) + zero, 0, maxq).
    Act-order (desc_act): columns are visited in a permuted order, groups are runs of that order,
    and g_idx[perm[i]] = i // group_size. qweight [K*b/32, N] packed along K, qzeros [G, N*b/32]
    holding zero - 1 in the v1 "gptq" format (AutoGPTQ reads it back as stored + 1, so a zero of 0
    wraps to 2^b) and zero itself in "gptq_v2", scales f16 [G, N], g_idx int32 [K].
  AWQ (AutoAWQ pseudo_quantize_tensor + WQLinear_GEMM.from_linear): per group
    scale = max(max - min, 1e-5) / 15, zero = clamp(-round(min / scale), 0, 15),
    q = clamp(round(x / scale) + zero, 0, 15); qweight [K, N/8] and qzeros [G, N/8] packed along N
    in the order [0, 2, 4, 6, 1, 3, 5, 7]; scales f16 [G, N].
  The weight each file means: (q - zero_as_read) * f32(f16(scale)), in float32.

usage: gptq_awq_ref.py SRC OUT MODE
  MODE: gptq_v1_sym_g32 | gptq_v1_asym_g16_actorder | gptq_v2_asym_g32 | gptq_8bit_channel |
        gptq_quantize_config_g32 | awq_g32 | awq_g16
writes OUT/ (config.json, model.safetensors, tokenizer files) and OUT/expected/<layer>.f32
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

f32 = np.float32
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def gptq_pack(codes, zeros, bits, v1):
    """AutoGPTQ QuantLinear.pack: codes [N, K] -> qweight [K*b/32, N] packed along K;
    zeros [N, G] -> qzeros [G, N*b/32] packed along N, storing zero - 1 in the v1 format."""
    f = 32 // bits
    intweight = codes.T.astype(np.uint32)
    qweight = np.zeros((intweight.shape[0] // f, intweight.shape[1]), dtype=np.uint32)
    for j in range(f):
        qweight |= intweight[j::f] << np.uint32(bits * j)
    z = ((zeros.T.astype(np.int64) - (1 if v1 else 0)) & ((1 << bits) - 1)).astype(np.uint32)
    qzeros = np.zeros((z.shape[0], z.shape[1] // f), dtype=np.uint32)
    for j in range(f):
        qzeros |= z[:, j::f] << np.uint32(bits * j)
    return qweight.view(np.int32), qzeros.view(np.int32)


def awq_pack(codes, zeros):
    """WQLinear_GEMM.from_linear: [K, N/8] and [G, N/8], packed along N in AWQ_ORDER."""
    def pack(v):  # v [rows, N] -> [rows, N/8]
        v = v.astype(np.uint32)
        out = np.zeros((v.shape[0], v.shape[1] // 8), dtype=np.uint32)
        for i in range(8):
            out |= v[:, AWQ_ORDER[i]::8] << np.uint32(4 * i)
        return out.view(np.int32)
    return pack(codes.T), pack(zeros.T)


def gptq_params(x, bits, sym):
    maxq = f32(2 ** bits - 1)
    xmin = np.minimum(x.min(1), f32(0))
    xmax = np.maximum(x.max(1), f32(0))
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, f32(-1), xmin).astype(f32)
    xmax = np.where(both0, f32(1), xmax).astype(f32)
    scale = ((xmax - xmin) / maxq).astype(f32)
    if sym:
        zero = np.full(x.shape[0], (maxq + 1) / 2, dtype=f32)
    else:
        zero = np.round(-xmin / scale).astype(f32)
    return scale, zero


def awq_params(x):
    mx, mn = x.max(1), x.min(1)
    scale = (np.maximum(mx - mn, f32(1e-5)) / f32(15)).astype(f32)
    zero = np.clip(-np.round(mn / scale), 0, 15).astype(f32)
    return scale, zero


def quantize(w, group, params, maxq, perm):
    """-> codes [N, K] uint8, scale [N, G] f32, zero [N, G] int, g_idx [K]"""
    n, k = w.shape
    g = k // group
    scale = np.zeros((n, g), f32)
    zero = np.zeros((n, g), np.int64)
    g_idx = np.zeros(k, np.int32)
    for i in range(g):
        cols = perm[i * group:(i + 1) * group]
        g_idx[cols] = i
        s, z = params(w[:, cols])
        scale[:, i], zero[:, i] = s, z.astype(np.int64)
    s_col = scale[:, g_idx]
    z_col = zero[:, g_idx].astype(f32)
    codes = np.clip(np.round(w / s_col) + z_col, 0, maxq).astype(np.uint8)
    return codes, scale, zero, g_idx


def main():
    src, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    config = json.load(open(os.path.join(src, "config.json")))
    tensors = st_io.read_dir(src)
    rng = np.random.RandomState(1234)
    awq = mode.startswith("awq")
    bits = 8 if "8bit" in mode else 4
    sym = "_sym" in mode or "8bit" in mode or "quantize_config" in mode
    v1 = "v2" not in mode
    actorder = "actorder" in mode or "quantize_config" in mode
    group = {"g16": 16, "g32": 32}.get(next((p for p in mode.split("_") if p in ("g16", "g32")), ""), -1)
    maxq = 2 ** bits - 1
    linears = set(st_io.linear_names(config))
    written = {}
    for name, (dtype, arr) in tensors.items():
        layer = name[:-len(".weight")] if name.endswith(".weight") else None
        if layer not in linears:
            written[name] = (dtype, arr)
            continue
        w = st_io.as_f32(dtype, arr)
        n, k = w.shape
        gs = k if group == -1 else group
        perm = rng.permutation(k) if actorder else np.arange(k)
        params = awq_params if awq else (lambda x: gptq_params(x, bits, sym))
        codes, scale, zero, g_idx = quantize(w, gs, params, maxq, perm)
        s16 = scale.astype(np.float16)
        if awq:
            qweight, qzeros = awq_pack(codes, zero.astype(np.uint8))
            zero_read = zero
        else:
            qweight, qzeros = gptq_pack(codes, zero.astype(np.uint8), bits, v1)
            zero_read = ((zero - 1) & maxq) + 1 if v1 else zero
        written[layer + ".qweight"] = ("I32", qweight)
        written[layer + ".qzeros"] = ("I32", qzeros)
        written[layer + ".scales"] = ("F16", np.ascontiguousarray(s16.T))
        if not awq:
            written[layer + ".g_idx"] = ("I32", g_idx)
        meant = (codes.astype(f32) - zero_read[:, g_idx].astype(f32)) * s16[:, g_idx].astype(f32)
        meant.astype(f32).tofile(os.path.join(out, "expected", layer + ".f32"))
    st_io.write_safetensors(os.path.join(out, "model.safetensors"), written, {"format": "pt"})
    if awq:
        qc = {"quant_method": "awq", "zero_point": True, "group_size": group, "bits": 4, "version": "gemm",
              "modules_to_not_convert": None}
    else:
        qc = {"bits": bits, "group_size": group, "damp_percent": 0.01, "desc_act": actorder, "static_groups": False,
              "sym": sym, "true_sequential": True, "model_name_or_path": None, "model_file_base_name": None,
              "quant_method": "gptq", "checkpoint_format": "gptq" if v1 else "gptq_v2"}
    if "quantize_config" in mode:  # AutoGPTQ: settings in quantize_config.json only
        del qc["quant_method"], qc["checkpoint_format"]
        json.dump(qc, open(os.path.join(out, "quantize_config.json"), "w"), indent=2)
    else:
        config["quantization_config"] = qc
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    st_io.copy_side_files(src, out)


if __name__ == "__main__":
    main()

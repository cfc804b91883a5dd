"""Independent compressed-tensors reader and writer (numpy), written from compressed-tensors'
published code: pack_to_int32 / unpack_from_int32 (values + 2^(b-1), value j of an int32 in bits
b*j.., zero-padded; zero points packed along dim 0), the naive int8 / FP8 layouts, the NVFP4 and
MXFP4 packed layouts (two E2M1 codes per byte, low nibble first; FP8 E4M3 block scales and a
global scale the scale is divided by / E8M0 exponents), calculate_qparams for int weights, and
apply_quantization_config's target / ignore matching ("re:" patterns matched from the start).

usage:
  ct_ref.py read DIR               decode every quantized Linear of a compressed-tensors
                                   checkpoint -> DIR/expected/<layer>.f32 (float32 [N, K])
  ct_ref.py write SRC OUT MODE     quantize the decoder Linears of dense SRC and write a
                                   compressed-tensors checkpoint; the weight each layer means
                                   -> OUT/expected/<layer>.f32
     MODE: w4a16_asym_g32_actorder | w4a16_asym_g16_unpacked_zp | w8a16_channel | w8a8_int8
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

f32 = np.float32
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], dtype=f32)


def e4m3_to_f32(codes):
    c = codes.astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    e = (c >> 3) & 0xF
    m = c & 7
    val = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
    val = np.where((c & 0x7F) == 0x7F, np.nan, val)
    return (sign * val).astype(f32)


def unpack_from_int32(value, bits, shape, packed_dim=1):
    """compressed-tensors unpack_from_int32 -> signed int8 codes of `shape`."""
    f = 32 // bits
    mask = (1 << bits) - 1
    v = value.astype(np.int64) & 0xFFFFFFFF
    if packed_dim == 1:
        out = np.zeros((v.shape[0], v.shape[1] * f), dtype=np.int64)
        for i in range(f):
            out[:, i::f] = (v >> (bits * i)) & mask
        out = out[:, :shape[1]]
    else:
        out = np.zeros((v.shape[0] * f, v.shape[1]), dtype=np.int64)
        for i in range(f):
            out[i::f, :] = (v >> (bits * i)) & mask
        out = out[:shape[0], :]
    return (out - (1 << (bits - 1))).astype(np.int8)


def pack_to_int32(signed, bits, packed_dim=1):
    f = 32 // bits
    v = signed.astype(np.int64) + (1 << (bits - 1))
    if packed_dim == 0:
        v = v.T
    rows, cols = v.shape
    v = np.pad(v, ((0, 0), (0, (-cols) % f)))
    v = v.reshape(rows, -1, f)
    packed = np.zeros(v.shape[:2], dtype=np.int64)
    for i in range(f):
        packed |= v[:, :, i] << (bits * i)
    packed = (packed & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    return packed.T.copy() if packed_dim == 0 else packed


def matches(target, name):
    if target == name or target == "Linear":
        return True
    return target.startswith("re:") and re.match(target[3:], name) is not None


def scheme_of(qc, name):
    if any(t == name or (t.startswith("re:") and re.match(t[3:], name)) or t == "Linear" for t in qc.get("ignore") or []):
        return None
    groups = list(qc["config_groups"].values())
    for g in groups:
        if any(t == name or (t.startswith("re:") and re.match(t[3:], name)) for t in g["targets"]):
            return g
    for g in groups:
        if "Linear" in g["targets"]:
            return g
    return None


def unpack_fp4(packed):
    low, high = packed & 0xF, packed >> 4
    codes = np.stack([low, high], axis=-1).reshape(packed.shape[0], -1)
    return np.where(codes & 8, -1.0, 1.0).astype(f32) * E2M1[codes & 7]


def decode_layer(t, name, group, fmt):
    w = group["weights"]
    if fmt == "pack-quantized":
        shape = [int(v) for v in t[name + ".weight_shape"][1]]
        q = unpack_from_int32(t[name + ".weight_packed"][1], w["num_bits"], shape).astype(f32)
        scale = st_io.as_f32(*t[name + ".weight_scale"])
        zp = np.zeros_like(scale)
        if not w["symmetric"]:
            zdt, z = t[name + ".weight_zero_point"]
            zp = (unpack_from_int32(z, w["num_bits"], scale.shape, packed_dim=0) if zdt == "I32" else z).astype(f32)
        g_idx = t[name + ".weight_g_idx"][1] if name + ".weight_g_idx" in t else \
            np.arange(shape[1]) // (w["group_size"] or shape[1])
        return (q - zp[:, g_idx]) * scale[:, g_idx]
    if fmt in ("int-quantized", "float-quantized", "naive-quantized"):
        dt, q = t[name + ".weight"]
        q = e4m3_to_f32(q) if dt == "F8_E4M3" else q.astype(f32)
        scale = st_io.as_f32(*t[name + ".weight_scale"]).reshape(-1, 1)
        return q * scale
    if fmt == "nvfp4-pack-quantized":
        x = unpack_fp4(t[name + ".weight_packed"][1])
        s = e4m3_to_f32(t[name + ".weight_scale"][1])
        gs = st_io.as_f32(*t[name + ".weight_global_scale"]).reshape(())
        scale = (s / gs).astype(f32)
        return x * np.repeat(scale, 16, axis=1)
    if fmt == "mxfp4-pack-quantized":
        x = unpack_fp4(t[name + ".weight_packed"][1])
        e = t[name + ".weight_scale"][1].astype(np.int64)
        scale = np.ldexp(np.ones_like(e, dtype=f32), e - 127).astype(f32)
        return x * np.repeat(scale, 32, axis=1)
    raise SystemExit(f"unknown format {fmt}")


def read(d):
    config = json.load(open(os.path.join(d, "config.json")))
    qc = config["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["quantization_status"] == "compressed"
    t = st_io.read_dir(d)
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    names = st_io.linear_names(config) + ["lm_head"]
    count = 0
    for name in names:
        g = scheme_of(qc, name)
        if g is None or (name + ".weight" not in t and name + ".weight_packed" not in t):
            continue
        fmt = g.get("format") or qc["format"]
        decode_layer(t, name, g, fmt).astype(f32).tofile(os.path.join(d, "expected", name + ".f32"))
        count += 1
    print(f"decoded {count} layers")


def bf16_round(x):
    b = x.astype(f32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return (b.astype(np.uint32) << 16).view(f32)


def write(src, out, mode):
    config = json.load(open(os.path.join(src, "config.json")))
    tensors = st_io.read_dir(src)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    rng = np.random.RandomState(77)
    bits = 8 if mode.startswith("w8") else 4
    group = 32 if "g32" in mode else 16 if "g16" in mode else None
    sym = "asym" not in mode
    act_int8 = mode == "w8a8_int8"
    unpacked_zp = "unpacked_zp" in mode
    if unpacked_zp:
        sym = False
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    linears = set(st_io.linear_names(config))
    written = {}
    for name, (dtype, arr) in tensors.items():
        layer = name[:-7] if name.endswith(".weight") else None
        if layer not in linears:
            written[name] = (dtype, arr)
            continue
        w = st_io.as_f32(dtype, arr)
        n, k = w.shape
        gs = group or k
        perm = rng.permutation(k) if "actorder" in mode else np.arange(k)
        g_idx = np.zeros(k, dtype=np.int32)
        g_idx[perm] = np.arange(k) // gs
        G = k // gs
        scale = np.zeros((n, G), f32)
        zp = np.zeros((n, G), f32)
        for i in range(G):
            x = w[:, perm[i * gs:(i + 1) * gs]]
            mn = np.minimum(x.min(1), 0).astype(f32)
            mx = np.maximum(x.max(1), 0).astype(f32)
            if sym:
                s = (np.maximum(np.abs(mn), np.abs(mx)) / f32((qmax - qmin) / 2)).astype(f32)
                z = np.zeros(n, f32)
            else:
                s = ((mx - mn) / f32(qmax - qmin)).astype(f32)
                z = np.clip(np.round(qmin - mn / s), qmin, qmax).astype(f32)
            s = np.where(s == 0, f32(1), s)
            scale[:, i], zp[:, i] = bf16_round(s), z
        q = np.clip(np.round(w / scale[:, g_idx]) + zp[:, g_idx], qmin, qmax).astype(np.int8)
        meant = (q.astype(f32) - zp[:, g_idx]) * scale[:, g_idx]
        meant.astype(f32).tofile(os.path.join(out, "expected", layer + ".f32"))
        scale_bits = (scale.view(np.uint32) >> 16).astype(np.uint16)
        if act_int8:
            written[layer + ".weight"] = ("I8", q)
            written[layer + ".weight_scale"] = ("BF16", scale_bits)
            continue
        written[layer + ".weight_packed"] = ("I32", pack_to_int32(q, bits))
        written[layer + ".weight_scale"] = ("BF16", scale_bits)
        written[layer + ".weight_shape"] = ("I64", np.array([n, k], dtype=np.int64))
        if not sym:
            written[layer + ".weight_zero_point"] = ("I8", zp.astype(np.int8)) if unpacked_zp else \
                ("I32", pack_to_int32(zp.astype(np.int8), bits, packed_dim=0))
        if "actorder" in mode:
            written[layer + ".weight_g_idx"] = ("I32", g_idx)
    st_io.write_safetensors(os.path.join(out, "model.safetensors"), written, {"format": "pt"})

    def args(b, strategy, group_size, symmetric, dynamic=False, actorder=None):
        return {"num_bits": b, "type": "int", "symmetric": symmetric, "group_size": group_size, "strategy": strategy,
                "block_structure": None, "dynamic": dynamic, "actorder": actorder, "observer": None if dynamic else "minmax",
                "observer_kwargs": {}}
    weights = args(bits, "group" if group else "channel", group, sym, actorder="group" if "actorder" in mode else None)
    scheme = {"targets": ["re:.*_proj$"], "weights": weights, "input_activations": None, "output_activations": None}
    if act_int8:
        scheme["input_activations"] = args(8, "token", None, True, dynamic=True)
    config["quantization_config"] = {
        "config_groups": {"group_0": scheme}, "format": "int-quantized" if act_int8 else "pack-quantized",
        "ignore": ["lm_head"], "quant_method": "compressed-tensors", "quantization_status": "compressed",
        "kv_cache_scheme": None, "global_compression_ratio": None, "sparsity_config": {}, "version": "0.9.2"}
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    st_io.copy_side_files(src, out)


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2])
    else:
        write(sys.argv[2], sys.argv[3], sys.argv[4])

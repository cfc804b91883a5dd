"""Minimal safetensors and Hugging Face directory I/O for the reference scripts (numpy only; the
safetensors package is not available from Debian). Layout: u64 little-endian header length,
JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data."""
import json
import os
import struct

import numpy as np

# dtype name -> numpy dtype of the stored bits (bf16, f8 kept as raw integers).
_NP = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I8": np.int8, "U8": np.uint8,
       "I32": np.int32, "I64": np.int64, "F8_E4M3": np.uint8, "F64": np.float64, "I16": np.int16}


def read_safetensors(path):
    """-> ({name: (dtype, ndarray)}, metadata)"""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=_NP[info["dtype"]]).reshape(info["shape"])
        out[name] = (info["dtype"], arr)
    return out, meta


def read_dir(d):
    """All tensors of a Hugging Face directory (single file or index)."""
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for f in files:
        t, _ = read_safetensors(os.path.join(d, f))
        tensors.update(t)
    return tensors


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, ndarray)} in order."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).astype(_NP[dtype], copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def as_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def linear_names(config):
    names = []
    for l in range(config["num_hidden_layers"]):
        for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            names.append(f"model.layers.{l}.{part}")
    return names


def copy_side_files(src, dst):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        p = os.path.join(src, f)
        if os.path.exists(p):
            open(os.path.join(dst, f), "wb").write(open(p, "rb").read())

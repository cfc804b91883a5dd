"""Independent bitsandbytes checkpoint reader and writer (numpy + torch for the dynamic map),
written from bitsandbytes' published code: quantize_4bit / dequantize_4bit (blocks of 64 over
the flattened weight, absmax per block, two codes per byte with the first in the high nibble,
NF4 / FP4 codebooks from get_4bit_type normalised by their absmax), double quantization
(offset = mean(absmax), absmax - offset quantized blockwise to 8 bits in blocks of 256 with
create_dynamic_map(signed=True)), QuantState.as_dict(packed=True) (tensor items under
"weight.<key>", the rest JSON-encoded by pack_dict_to_tensor into
"weight.quant_state.bitsandbytes__<type>"), and Linear8bitLt's state dict (int8 weight, SCB row
absmax, weight_format 0).

usage:
  bnb_ref.py read DIR               decode every quantized Linear -> DIR/expected/<layer>.f32
  bnb_ref.py write SRC OUT MODE     MODE: nf4 | nf4_dq | fp4_dq | int8
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

f32 = np.float32
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=f32)


def fp4_map():  # get_4bit_type("fp4"): the values divided (in float32) by their absmax
    data = np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                    dtype=f32)
    return (data / np.abs(data).max()).astype(f32)


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map (torch float32 linspace, as the library)."""
    import torch  # only the writer needs it (startup cost)
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    gap = 256 - len(data)
    for _ in range(gap):
        data.append(0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


def nearest(values, book):
    return np.abs(values[:, None] - book[None, :]).argmin(1)


def quantize_4bit(w, book, blocksize=64):
    flat = w.reshape(-1)
    nb = -(-flat.size // blocksize)
    pad = np.pad(flat, (0, nb * blocksize - flat.size)).reshape(nb, blocksize)
    absmax = np.abs(pad).max(1).astype(f32)
    norm = (pad * (f32(1) / absmax)[:, None]).astype(f32).reshape(-1)[:flat.size]
    codes = nearest(np.nan_to_num(norm), book).astype(np.uint8)
    if codes.size % 2:
        codes = np.append(codes, 0)
    packed = (codes[0::2] << 4) | codes[1::2]
    return packed.astype(np.uint8), absmax


def dequant_4bit(packed, absmax, book, numel, blocksize):
    codes = np.stack([packed >> 4, packed & 15], axis=-1).reshape(-1)[:numel]
    return (book[codes] * np.repeat(absmax, blocksize)[:numel]).astype(f32)


def read(d):
    config = json.load(open(os.path.join(d, "config.json")))
    t = st_io.read_dir(d)
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    count = 0
    for name in st_io.linear_names(config) + ["lm_head"]:
        W = name + ".weight"
        state = [k for k in t if k.startswith(W + ".quant_state.bitsandbytes__")]
        if state:
            qs = json.loads(bytes(t[state[0]][1]).decode("utf-8"))
            n, k = qs["shape"]
            book = t[W + ".quant_map"][1].astype(f32)
            absmax = t[W + ".absmax"][1]
            if "nested_offset" in qs:
                nmap = t[W + ".nested_quant_map"][1].astype(f32)
                absmax2 = t[W + ".nested_absmax"][1].astype(f32)
                nbs = qs["nested_blocksize"]
                absmax = (nmap[absmax] * np.repeat(absmax2, nbs)[:absmax.size] + f32(qs["nested_offset"])).astype(f32)
            w = dequant_4bit(t[W][1].reshape(-1), absmax.astype(f32), book, n * k, qs["blocksize"]).reshape(n, k)
        elif name + ".SCB" in t:
            cb = t[W][1].astype(f32)
            scb = t[name + ".SCB"][1].astype(f32)
            assert int(t[name + ".weight_format"][1]) == 0
            w = (cb * scb[:, None] * f32(1.0 / 127.0)).astype(f32)
        else:
            continue
        w.astype(f32).tofile(os.path.join(d, "expected", name + ".f32"))
        count += 1
    print(f"decoded {count} layers")


def write(src, out, mode):
    config = json.load(open(os.path.join(src, "config.json")))
    tensors = st_io.read_dir(src)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    dtype_name = {"bfloat16": "bfloat16", "float32": "float32", "float16": "float16"}[config["torch_dtype"]]
    four = mode != "int8"
    qtype = "fp4" if mode.startswith("fp4") else "nf4"
    nested = mode.endswith("_dq")
    book = NF4 if qtype == "nf4" else fp4_map()
    dyn = create_dynamic_map() if nested else None
    linears = set(st_io.linear_names(config))
    written = {}
    for name, (dtype, arr) in tensors.items():
        layer = name[:-7] if name.endswith(".weight") else None
        if layer not in linears:
            written[name] = (dtype, arr)
            continue
        w = st_io.as_f32(dtype, arr)
        n, k = w.shape
        W = layer + ".weight"
        if not four:
            absmax = np.abs(w).max(1).astype(f32)
            cb = np.round(w * (f32(127) / absmax)[:, None]).astype(np.int8)
            written[W] = ("I8", cb)
            written[layer + ".SCB"] = ("F32", absmax)
            written[layer + ".weight_format"] = ("U8", np.array(0, dtype=np.uint8))
            (cb.astype(f32) * absmax[:, None] * f32(1.0 / 127.0)).astype(f32).tofile(
                os.path.join(out, "expected", layer + ".f32"))
            continue
        packed, absmax = quantize_4bit(w, book)
        state = {"quant_type": qtype, "blocksize": 64, "dtype": dtype_name, "shape": [n, k]}
        written[W] = ("U8", packed.reshape(-1, 1))
        if nested:
            offset = f32(absmax.mean(dtype=np.float64))
            centred = (absmax - offset).astype(f32)
            nb2 = -(-centred.size // 256)
            pad = np.pad(centred, (0, nb2 * 256 - centred.size)).reshape(nb2, 256)
            absmax2 = np.abs(pad).max(1).astype(f32)
            codes2 = nearest((pad * (f32(1) / absmax2)[:, None]).astype(f32).reshape(-1)[:centred.size], dyn).astype(np.uint8)
            written[W + ".absmax"] = ("U8", codes2)
            written[W + ".quant_map"] = ("F32", book)
            written[W + ".nested_absmax"] = ("F32", absmax2)
            written[W + ".nested_quant_map"] = ("F32", dyn)
            state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": float(offset)})
            used = (dyn[codes2] * np.repeat(absmax2, 256)[:codes2.size] + offset).astype(f32)
        else:
            written[W + ".absmax"] = ("F32", absmax)
            written[W + ".quant_map"] = ("F32", book)
            used = absmax
        blob = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
        written[W + ".quant_state.bitsandbytes__" + qtype] = ("U8", blob)
        dequant_4bit(packed, used, book, n * k, 64).tofile(os.path.join(out, "expected", layer + ".f32"))
    st_io.write_safetensors(os.path.join(out, "model.safetensors"), written, {"format": "pt"})
    config["quantization_config"] = {
        "_load_in_4bit": four, "_load_in_8bit": not four, "bnb_4bit_compute_dtype": dtype_name,
        "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": qtype, "bnb_4bit_use_double_quant": nested,
        "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False, "llm_int8_skip_modules": None,
        "llm_int8_threshold": 6.0, "load_in_4bit": four, "load_in_8bit": not four, "quant_method": "bitsandbytes"}
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    st_io.copy_side_files(src, out)


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2])
    else:
        write(sys.argv[2], sys.argv[3], sys.argv[4])

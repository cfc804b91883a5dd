"""Writes the seed corpus of fuzz/quantize/compressed_tensors_fuzz.cpp: small safetensors images
holding one quantized Linear "model.layers.0.mlp.up_proj" of shape [8, 64] (metadata "layer" =
"8,64") in each checkpoint format the readers take, with the quantization_config JSON in the
metadata, plus malformed variants.

usage: fuzz_seeds.py OUT_DIR"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from bnb_ref import NF4  # noqa: E402
from ct_ref import pack_to_int32  # noqa: E402

L = "model.layers.0.mlp.up_proj"
N, K = 8, 64
rng = np.random.RandomState(3)


def bf16(x):
    return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def args(bits, typ, strategy, group=None, sym=True, dynamic=False, actorder=None, scale_dtype=None):
    return {"num_bits": bits, "type": typ, "symmetric": sym, "group_size": group, "strategy": strategy,
            "block_structure": None, "dynamic": dynamic, "actorder": actorder, "scale_dtype": scale_dtype,
            "zp_dtype": None if sym else "torch.int8", "observer": None, "observer_kwargs": {}}


def ct(fmt, weights, inputs=None):
    return {"config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": inputs,
                                          "output_activations": None, "format": fmt}},
            "format": fmt, "ignore": ["lm_head"], "quant_method": "compressed-tensors",
            "quantization_status": "compressed", "kv_cache_scheme": None, "sparsity_config": {},
            "transform_config": {}, "global_compression_ratio": None, "version": "0.14.0"}


def save(out, name, qc, tensors, extra_meta=None):
    meta = {"format": "pt", "layer": f"{N},{K}", "quantization_config": json.dumps(qc)}
    meta.update(extra_meta or {})
    st_io.write_safetensors(os.path.join(out, name + ".safetensors"), tensors, meta)


def main(out):
    os.makedirs(out, exist_ok=True)
    scales = bf16(rng.uniform(0.01, 0.05, (N, 2)))
    # pack-quantized w4a16, asymmetric, groups of 32, act-order g_idx
    q4 = rng.randint(-8, 8, (N, K)).astype(np.int8)
    zp = rng.randint(-8, 8, (N, 2)).astype(np.int8)
    perm = rng.permutation(K)
    g_idx = np.zeros(K, np.int32)
    g_idx[perm] = np.arange(K) // 32
    pack = {L + ".weight_packed": ("I32", pack_to_int32(q4, 4)), L + ".weight_scale": ("BF16", scales),
            L + ".weight_shape": ("I64", np.array([N, K], np.int64)),
            L + ".weight_zero_point": ("I32", pack_to_int32(zp, 4, packed_dim=0)), L + ".weight_g_idx": ("I32", g_idx),
            L + ".bias": ("BF16", bf16(rng.normal(0, 0.1, N)))}
    qc_pack = ct("pack-quantized", args(4, "int", "group", 32, sym=False, actorder="group"))
    save(out, "ct_pack_w4a16_asym_gidx", qc_pack, pack)
    bad = dict(pack)
    del bad[L + ".weight_scale"]
    save(out, "ct_pack_missing_scale", qc_pack, bad)
    bad = dict(pack)
    bad[L + ".weight_shape"] = ("I64", np.array([N, 72], np.int64))
    save(out, "ct_pack_shape_mismatch", qc_pack, bad)
    save(out, "ct_pack_unknown_format", ct("marlin-24", args(4, "int", "group", 32)), pack)
    save(out, "ct_pack_bad_json", {}, pack, {"quantization_config": "{\"config_groups\": {"})
    # pack-quantized w3a16 symmetric per channel
    q3 = rng.randint(-4, 4, (N, K)).astype(np.int8)
    save(out, "ct_pack_w3a16_channel", ct("pack-quantized", args(3, "int", "channel")),
         {L + ".weight_packed": ("I32", pack_to_int32(q3, 3)), L + ".weight_scale": ("F32", scales[:, :1].astype(np.float32)),
          L + ".weight_shape": ("I64", np.array([N, K], np.int64))})
    # int-quantized w8a8
    q8 = rng.randint(-128, 128, (N, K)).astype(np.int8)
    save(out, "ct_int8_w8a8", ct("int-quantized", args(8, "int", "channel"), args(8, "int", "token", dynamic=True)),
         {L + ".weight": ("I8", q8), L + ".weight_scale": ("BF16", scales[:, :1])})
    # float-quantized static
    fp8 = rng.randint(0, 0x7E, (N, K)).astype(np.uint8) | (rng.randint(0, 2, (N, K)).astype(np.uint8) << 7)
    save(out, "ct_fp8_static", ct("float-quantized", args(8, "float", "channel"), args(8, "float", "tensor")),
         {L + ".weight": ("F8_E4M3", fp8), L + ".weight_scale": ("F32", rng.uniform(0.001, 0.01, (N, 1)).astype(np.float32)),
          L + ".input_scale": ("F32", np.array([0.02], np.float32))})
    # nvfp4 / mxfp4
    packed = rng.randint(0, 256, (N, K // 2)).astype(np.uint8)
    save(out, "ct_nvfp4", ct("nvfp4-pack-quantized", args(4, "float", "tensor_group", 16, scale_dtype="torch.float8_e4m3fn")),
         {L + ".weight_packed": ("U8", packed), L + ".weight_scale": ("F8_E4M3", rng.randint(0x20, 0x60, (N, K // 16)).astype(np.uint8)),
          L + ".weight_global_scale": ("F32", np.array([2688.0 / 0.37], np.float32))},
         {"qstudy.nvfp4_global_scale." + L: "0x3a8d4fdf"})
    save(out, "ct_mxfp4", ct("mxfp4-pack-quantized", args(4, "float", "group", 32, scale_dtype="torch.uint8")),
         {L + ".weight_packed": ("U8", packed), L + ".weight_scale": ("U8", rng.randint(115, 125, (N, K // 32)).astype(np.uint8))})
    # bitsandbytes nf4 with double quantization, and LLM.int8()
    from bnb_ref import create_dynamic_map
    W = L + ".weight"
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [N, K], "nested_blocksize": 256,
             "nested_dtype": "float32", "nested_offset": 0.031}
    bnb_qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False, "bnb_4bit_quant_type": "nf4",
              "bnb_4bit_use_double_quant": True, "llm_int8_threshold": 6.0}
    save(out, "bnb_nf4_dq", bnb_qc,
         {W: ("U8", rng.randint(0, 256, (N * K // 2, 1)).astype(np.uint8)), W + ".absmax": ("U8", rng.randint(0, 256, 8).astype(np.uint8)),
          W + ".quant_map": ("F32", NF4), W + ".nested_absmax": ("F32", np.array([0.01], np.float32)),
          W + ".nested_quant_map": ("F32", create_dynamic_map()),
          W + ".quant_state.bitsandbytes__nf4": ("U8", np.frombuffer(json.dumps(state).encode(), np.uint8))})
    save(out, "bnb_int8", {"quant_method": "bitsandbytes", "load_in_8bit": True, "llm_int8_threshold": 6.0},
         {W: ("I8", q8), L + ".SCB": ("F32", rng.uniform(0.1, 1, N).astype(np.float32)),
          L + ".weight_format": ("U8", np.array(0, np.uint8))})
    # AutoGPTQ (v1) and AutoAWQ GEMM
    qw = rng.randint(-2**31, 2**31 - 1, (K // 8, N)).astype(np.int32)
    save(out, "gptq_v1_g32", {"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False, "desc_act": True},
         {L + ".qweight": ("I32", qw), L + ".qzeros": ("I32", rng.randint(-2**31, 2**31 - 1, (2, 1)).astype(np.int32)),
          L + ".scales": ("F16", rng.uniform(0.01, 0.05, (2, N)).astype(np.float16)), L + ".g_idx": ("I32", g_idx)})
    save(out, "awq_g32", {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm", "zero_point": True},
         {L + ".qweight": ("I32", rng.randint(-2**31, 2**31 - 1, (K, N // 8)).astype(np.int32)),
          L + ".qzeros": ("I32", rng.randint(-2**31, 2**31 - 1, (2, N // 8)).astype(np.int32)),
          L + ".scales": ("F16", rng.uniform(0.01, 0.05, (2, N)).astype(np.float16))})
    # qstudy: an integer layer and a GGUF Q8_0 layer
    entry = {"scheme": "w4a16", "full_name": "w4a16-g32-asym", "group_size": 32, "symmetric": False,
             "outlier_threshold": 6.0, "storage": "int", "bits": 4, "granularity": "group", "matrix_group_size": 32,
             "matrix_symmetric": False}
    codes = (q4.astype(np.int16) + 8).astype(np.uint8)
    words = np.zeros((N, K // 8), np.uint32)
    for j in range(8):
        words |= codes[:, j::8].astype(np.uint32) << np.uint32(4 * j)
    save(out, "qstudy_int", {"quant_method": "qstudy", "version": 1, "layers": {L: entry}},
         {L + ".q_codes": ("I32", words.view(np.int32)), L + ".q_scales": ("F32", rng.uniform(0.01, 0.05, (N, 2)).astype(np.float32)),
          L + ".q_zeros": ("U8", rng.randint(0, 16, (N, 2)).astype(np.uint8))})
    q8_entry = {"scheme": "q8_0", "full_name": "q8_0", "group_size": 32, "symmetric": True, "outlier_threshold": 6.0,
                "storage": "gguf", "type": "Q8_0"}
    save(out, "qstudy_q8_0", {"quant_method": "qstudy", "version": 1, "layers": {L: q8_entry}},
         {L + ".q_blocks": ("U8", rng.randint(0, 256, (N, K // 32 * 34)).astype(np.uint8))})


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Independent PyTorch reference for qstudy's forward pass.

A from-scratch implementation of the Llama-family decoder as Hugging Face transformers defines it
(Llama 1/2/3 with llama3 rope scaling, Mistral, Qwen2 with q/k/v bias, Qwen3 with q/k RMSNorm,
tied or separate output head, grouped-query attention), computing in float64 after reading the
weights, with RoPE tables in float32 as transformers computes them. It reads checkpoints itself:
Hugging Face directories (safetensors, sharded or not) and llama2.c .bin files, whose Meta-layout
q/k projections are applied with complex-number rotation as Meta's reference code does.

Usage: llama_ref.py --model PATH --tokens-file F.json --out LOGITS.f32
  F.json: [[ids of sequence 0], [ids of sequence 1], ...]; each sequence runs independently and
  the logits of every position are written as float32, sequences concatenated, row-major.
"""
import argparse
import json
import math
import os
import struct

import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).to(torch.float64)
    return out


def load_hf(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(path, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for shard in files:
            tensors.update(read_safetensors(os.path.join(path, shard)))
    else:
        tensors = read_safetensors(os.path.join(path, "model.safetensors"))
    return cfg, tensors, False


def load_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // heads
    floats = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32).to(torch.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = math.prod(shape)
        t = floats[pos:pos + n].reshape(shape)
        pos += n
        return t

    t = {"model.embed_tokens.weight": take(vocab, dim)}
    per_layer = [("input_layernorm.weight", (dim,)), ("self_attn.q_proj.weight", (dim, dim)),
                 ("self_attn.k_proj.weight", (kv_heads * head, dim)),
                 ("self_attn.v_proj.weight", (kv_heads * head, dim)), ("self_attn.o_proj.weight", (dim, dim)),
                 ("post_attention_layernorm.weight", (dim,)), ("mlp.gate_proj.weight", (hidden, dim)),
                 ("mlp.down_proj.weight", (dim, hidden)), ("mlp.up_proj.weight", (hidden, dim))]
    for name, shape in per_layer:
        for layer in range(layers):
            t[f"model.layers.{layer}.{name}"] = take(*shape)
    t["model.norm.weight"] = take(dim)
    take(seq_len, head // 2)  # freq_cis_real
    take(seq_len, head // 2)  # freq_cis_imag
    if not shared:
        t["lm_head.weight"] = take(vocab, dim)
    cfg = dict(model_type="llama", vocab_size=vocab, hidden_size=dim, intermediate_size=hidden,
               num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
               rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=shared)
    return cfg, t, True


def inv_freq(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    elif rs and rs.get("rope_type", rs.get("type")) == "linear":
        inv = inv / rs["factor"]
    return inv


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(cfg, t, meta_layout, tokens, bf16_inputs=False):
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    qwen3 = cfg["model_type"] == "qwen3"
    T = len(tokens)
    pos = torch.arange(T, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq(cfg, hd))  # float32, as transformers
    cos32, sin32 = freqs.cos(), freqs.sin()
    cos, sin = cos32.to(torch.float64), sin32.to(torch.float64)

    def rope(x):  # x [T, heads, hd]
        if meta_layout:  # Meta: consecutive pairs are complex numbers
            xc = torch.view_as_complex(x.reshape(T, x.shape[1], hd // 2, 2).contiguous())
            rot = torch.polar(torch.ones_like(cos), freqs.to(torch.float64))
            return torch.view_as_real(xc * rot[:, None, :]).reshape(T, x.shape[1], hd)
        c = torch.cat((cos, cos), -1)[:, None, :]
        s = torch.cat((sin, sin), -1)[:, None, :]
        return x * c + rotate_half(x) * s

    x = t["model.embed_tokens.weight"][torch.tensor(tokens)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."

        def lin(name, inp):
            if bf16_inputs:  # qstudy's bf16 contract: matmul inputs rounded to bf16 (nearest even)
                inp = inp.to(torch.bfloat16).to(torch.float64)
            y = inp @ t[p + name + ".weight"].T
            b = t.get(p + name + ".bias")
            return y + b if b is not None else y

        h = rms_norm(x, t[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).reshape(T, nh, hd)
        k = lin("self_attn.k_proj", h).reshape(T, nkv, hd)
        v = lin("self_attn.v_proj", h).reshape(T, nkv, hd)
        if qwen3:
            q = rms_norm(q, t[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, t[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + mask
        att = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(T, nh * hd)
        x = x + lin("self_attn.o_proj", att)
        h = rms_norm(x, t[p + "post_attention_layernorm.weight"], eps)
        g = lin("mlp.gate_proj", h)
        x = x + lin("mlp.down_proj", torch.nn.functional.silu(g) * lin("mlp.up_proj", h))
    x = rms_norm(x, t["model.norm.weight"], eps)
    head = t.get("lm_head.weight")
    if head is None:
        head = t["model.embed_tokens.weight"]
    if bf16_inputs:
        x = x.to(torch.bfloat16).to(torch.float64)
    return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bf16-inputs", action="store_true",
                    help="round every matmul input to bf16, as qstudy's bf16 weight path does")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg, tensors, meta = load_llama2c(a.model) if a.model.endswith(".bin") else load_hf(a.model)
    with open(a.tokens_file) as f:
        seqs = json.load(f)
    with open(a.out, "wb") as out:
        for tokens in seqs:
            logits = forward(cfg, tensors, meta, tokens, a.bf16_inputs).to(torch.float32).contiguous()
            out.write(logits.numpy().tobytes())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A "llama.cpp-made" GGUF model and an independent PyTorch forward pass over it.

make OUT.gguf TOK.bin
    Writes a small Llama model laid out as convert_hf_to_gguf.py + llama-quantize (Q4_K_M-like
    mix) write one, with the independent writer of tests/io/ref/gguf_ref.py: Meta-order q/k,
    token_embd Q4_K, output Q6_K, Q4_0 / Q8_0 attention and MLP weights with Q4_1, Q5_0, Q5_1,
    Q2_K, Q3_K, Q5_K, Q6_K, F16 and BF16 mixed in, F32 norms, Llama-3 rope scaling as the
    rope_freqs.weight tensor (computed as convert_hf_to_gguf.py does), and the SentencePiece
    vocabulary of TOK.bin (a llama2.c tokenizer.bin) as tokenizer.ggml.* (types as convert
    assigns them). Q4_0 / Q8_0 blocks come from ggml's exact reference quantizers
    (tests/formats/ref/gguf_ref.py); the other types from simple encoders written here: valid
    blocks, though not what llama-quantize's search would choose (a loader only decodes them).

forward FILE.gguf TOKENS.json OUT.f32 [--weights f32|bf16]
    Reads FILE.gguf with gguf_ref.py, dequantizes every tensor with ggml_dequant_ref.py and runs
    the Llama forward in float64 (Meta interleaved RoPE, theta_i = base^(-2i/d) / rope_freqs[i]
    as llama.cpp applies it), with qstudy's declared numerics emulated: Q8_0 / Q4_0 layers see
    their input quantized to Q8_0 blocks as ggml's quantize_row_q8_0 does; tensors of other
    quantized types are used as dequantized in f32 (--weights f32) or rounded to bf16 with bf16
    inputs (--weights bf16, qstudy's default load); BF16 tensors take bf16 inputs. Writes the
    logits of every position of every sequence (float32, row-major, sequences concatenated).
"""
import importlib.util
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, rel):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


container = _load("gguf_container_ref", "../../io/ref/gguf_ref.py")  # the GGUF reader/writer
blocks_ref = _load("ggml_blocks_ref", "../../formats/ref/gguf_ref.py")  # ggml's Q8_0 / Q4_0 quantizers
ggml_dequant_ref = _load("ggml_dequant_ref", "../../formats/ref/ggml_dequant_ref.py")

f32 = np.float32
GGML = container.GGML_IDS

# ---- Encoders (valid blocks approximating x) --------------------------------------------------


def half(v):
    return np.asarray(v, dtype=np.float16)


def h16(v):  # the float32 value of the f16 rounding
    return half(v).astype(f32)


def safe(v):
    return np.where(v == 0, f32(1), v).astype(f32)


def rint(v):
    return np.floor(v + 0.5)


def enc_q4_1(x):
    lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
    d, m = h16((hi - lo) / 15), h16(lo)
    q = np.clip(rint((x - m) / safe(d)), 0, 15).astype(np.uint8)
    return np.concatenate([half(d).view(np.uint8), half(m).view(np.uint8), q[:, :16] | (q[:, 16:] << 4)], 1)


def enc_q5(x, with_min):
    if with_min:
        lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
        d, m = h16((hi - lo) / 31), h16(lo)
        q = np.clip(rint((x - m) / safe(d)), 0, 31).astype(np.uint32)
    else:
        d = h16(np.abs(x).max(1, keepdims=True) / 15)
        q = np.clip(rint(x / safe(d)) + 16, 0, 31).astype(np.uint32)
    qh = (((q >> 4) & 1) << np.arange(32, dtype=np.uint32)).sum(1, dtype=np.uint32).astype("<u4")
    ql = (q & 15).astype(np.uint8)
    parts = [half(d).view(np.uint8)] + ([half(m).view(np.uint8)] if with_min else [])
    return np.concatenate(parts + [qh.reshape(-1, 1).view(np.uint8), ql[:, :16] | (ql[:, 16:] << 4)], 1)


def crumbs_pack(q):  # (n, 256) 2-bit values -> (n, 64): value 128h + 32s + m in bits 2s of byte 32h + m
    q = q.reshape(-1, 2, 4, 32).astype(np.uint8)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(-1, 64)


def bitplane_pack(bits):  # (n, 256) 0/1 -> (n, 32): value 32g + l is bit g of byte l
    b = bits.reshape(-1, 8, 32).astype(np.uint8)
    return (b << np.arange(8, dtype=np.uint8).reshape(1, 8, 1)).sum(1).astype(np.uint8)


def enc_q2_k(x):
    g = x.reshape(-1, 16, 16)
    mn = np.minimum(g.min(2), 0)
    scale = (g.max(2) - mn) / 3
    d, dmin = h16(scale.max(1, keepdims=True) / 15), h16((-mn).max(1, keepdims=True) / 15)
    sc = np.clip(rint(scale / safe(d)), 0, 15)
    m = np.clip(rint(-mn / safe(dmin)), 0, 15)
    dl, ml = (d * sc)[:, :, None], (dmin * m)[:, :, None]
    q = np.clip(rint((g + ml) / safe(dl)), 0, 3).reshape(-1, 256)
    scales = (sc.astype(np.uint8) | (m.astype(np.uint8) << 4))
    return np.concatenate([scales, crumbs_pack(q), half(d).view(np.uint8), half(dmin).view(np.uint8)], 1)


def enc_q3_k(x):
    g = x.reshape(-1, 16, 16)
    s = np.abs(g).max(2) / 4
    d = h16(s.max(1, keepdims=True) / 31)
    sc = np.clip(rint(s / safe(d)), 1, 31)
    q = np.clip(rint(g / safe(d * sc)[:, :, None]), -4, 3).reshape(-1, 256) + 4  # 0..7
    code = (sc + 32).astype(np.uint8)  # 6-bit, minus 32 when decoded
    packed = np.zeros((x.shape[0], 12), np.uint8)
    for j in range(16):
        if j < 8:
            packed[:, j] |= code[:, j] & 15
        else:
            packed[:, j - 8] |= (code[:, j] & 15) << 4
        packed[:, 8 + j % 4] |= (code[:, j] >> 4) << (2 * (j // 4))
    high = q >= 4
    return np.concatenate([bitplane_pack(high), crumbs_pack(np.where(high, q - 4, q)), packed, half(d).view(np.uint8)], 1)


def pack_scale_min_k4(sc, m):  # (n, 8) 6-bit each -> (n, 12)
    sc, m = sc.astype(np.uint8), m.astype(np.uint8)
    out = np.zeros((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def enc_qk_min(x, levels):  # Q4_K (levels 15) and Q5_K (31): 8 groups of 32 with scale and min
    g = x.reshape(-1, 8, 32)
    mn = np.minimum(g.min(2), 0)
    scale = (g.max(2) - mn) / levels
    d, dmin = h16(scale.max(1, keepdims=True) / 63), h16((-mn).max(1, keepdims=True) / 63)
    sc = np.clip(rint(scale / safe(d)), 0, 63)
    m = np.clip(rint(-mn / safe(dmin)), 0, 63)
    q = np.clip(rint((g + (dmin * m)[:, :, None]) / safe(d * sc)[:, :, None]), 0, levels).astype(np.uint8)
    q = q.reshape(-1, 4, 2, 32)  # chunk c: groups 2c (low nibble), 2c + 1 (high nibble)
    nib = ((q[:, :, 0] & 15) | ((q[:, :, 1] & 15) << 4)).reshape(-1, 128)
    head = [half(d).view(np.uint8), half(dmin).view(np.uint8), pack_scale_min_k4(sc, m)]
    if levels == 15:
        return np.concatenate(head + [nib], 1)
    return np.concatenate(head + [bitplane_pack((q.reshape(-1, 256) >> 4) & 1), nib], 1)


def enc_q6_k(x):
    g = x.reshape(-1, 16, 16)
    s = np.abs(g).max(2) / 31
    d = h16(s.max(1, keepdims=True) / 127)
    sc = np.clip(rint(s / safe(d)), 1, 127)
    q = (np.clip(rint(g / safe(d * sc)[:, :, None]), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)
    ql = np.zeros((x.shape[0], 2, 2, 32), np.uint8)
    for c in range(4):
        ql[:, :, c % 2] |= (q[:, :, c] & 15) << (4 * (c // 2))
    qh = ((q >> 4) << (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)).sum(2).astype(np.uint8)
    return np.concatenate([ql.reshape(-1, 128), qh.reshape(-1, 64), sc.astype(np.int8).view(np.uint8),
                           half(d).view(np.uint8)], 1)


def encode(type_name, w):
    """w (rows, k) float32 -> raw bytes of type_name."""
    block = ggml_dequant_ref.SIZES[type_name][0]
    x = w.astype(f32).reshape(-1, block)
    if type_name == "F32":
        return w.astype("<f4").tobytes()
    if type_name == "F16":
        return w.astype("<f2").tobytes()
    if type_name == "BF16":
        return (torch.from_numpy(w.astype(f32)).to(torch.bfloat16).view(torch.int16).numpy()).tobytes()
    if type_name in ("Q4_0", "Q8_0"):
        blocks, _ = blocks_ref.q8_0(x) if type_name == "Q8_0" else blocks_ref.q4_0(x, False)
        return blocks.tobytes()
    enc = {"Q4_1": enc_q4_1, "Q5_0": lambda v: enc_q5(v, False), "Q5_1": lambda v: enc_q5(v, True),
           "Q2_K": enc_q2_k, "Q3_K": enc_q3_k, "Q4_K": lambda v: enc_qk_min(v, 15),
           "Q5_K": lambda v: enc_qk_min(v, 31), "Q6_K": enc_q6_k}[type_name]
    return enc(x).astype(np.uint8).tobytes()


# ---- The model ----------------------------------------------------------------------------------

CFG = dict(hidden=256, ffn=512, layers=2, heads=4, kv_heads=2, context=256, eps=1e-5, base=10000.0, vocab=512,
           rope_factor=8.0, low=1.0, high=4.0, orig=8192)
# Per layer: the ggml type of each weight (a Q4_K_M-like mix, every decodable type somewhere).
LAYER_TYPES = [
    {"attn_q": "Q4_0", "attn_k": "Q4_0", "attn_v": "Q6_K", "attn_output": "Q4_1", "ffn_gate": "Q4_0",
     "ffn_up": "Q5_0", "ffn_down": "Q2_K"},
    {"attn_q": "Q8_0", "attn_k": "Q5_1", "attn_v": "Q5_K", "attn_output": "F16", "ffn_gate": "Q3_K",
     "ffn_up": "BF16", "ffn_down": "Q4_0"},
]


def llama3_rope_freqs(c):
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for rope_type llama3."""
    dim = c["hidden"] // c["heads"]
    freqs = 1.0 / (c["base"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    low_wavelen, high_wavelen = c["orig"] / c["low"], c["orig"] / c["high"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(c["rope_factor"])
        else:
            smooth = (c["orig"] / wavelen - c["low"]) / (c["high"] - c["low"])
            out.append(1 / ((1 - smooth) / c["rope_factor"] + smooth))
    return torch.tensor(out, dtype=torch.float32).numpy()


def spm_vocab(tok_bin):
    """A llama2.c tokenizer.bin as convert_hf_to_gguf.py's SentencePiece vocabulary."""
    with open(tok_bin, "rb") as f:
        raw = f.read()
    pos, tokens, scores = 4, [], []
    while pos < len(raw):
        score, n = struct.unpack_from("<fi", raw, pos)
        piece = raw[pos + 8:pos + 8 + n].decode("utf-8")
        pos += 8 + n
        tokens.append(piece)
        scores.append(score)
    tokens[1], tokens[2] = "<s>", "</s>"
    tokens = [t.replace(" ", "\u2581") for t in tokens]
    types = [2 if i == 0 else 3 if i <= 2 else 6 if i < 259 else 1 for i in range(len(tokens))]
    return tokens, scores, types


def make(out_path, tok_bin):
    c = CFG
    rng = np.random.default_rng(1234)
    H, I, hd = c["hidden"], c["ffn"], c["hidden"] // c["heads"]
    KD = c["kv_heads"] * hd

    def w(rows, cols, std=0.08):
        return (rng.standard_normal((rows, cols)) * std).astype(f32)

    tensors = [("token_embd.weight", "Q4_K", w(c["vocab"], H, 0.5)), ("rope_freqs.weight", "F32", llama3_rope_freqs(c))]
    for layer, types in enumerate(LAYER_TYPES):
        b = f"blk.{layer}."
        shapes = {"attn_q": (H, H), "attn_k": (KD, H), "attn_v": (KD, H), "attn_output": (H, H), "ffn_gate": (I, H),
                  "ffn_up": (I, H), "ffn_down": (H, I)}
        tensors.append((b + "attn_norm.weight", "F32", (1 + 0.2 * rng.standard_normal(H)).astype(f32)))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensors.append((b + name + ".weight", types[name], w(*shapes[name])))
        tensors.append((b + "ffn_norm.weight", "F32", (1 + 0.2 * rng.standard_normal(H)).astype(f32)))
        for name in ("ffn_gate", "ffn_up", "ffn_down"):
            tensors.append((b + name + ".weight", types[name], w(*shapes[name])))
    tensors.append(("output_norm.weight", "F32", (1 + 0.2 * rng.standard_normal(H)).astype(f32)))
    tensors.append(("output.weight", "Q6_K", w(c["vocab"], H, 0.15)))

    out = []
    for name, type_name, data in tensors:
        data = np.atleast_2d(data) if data.ndim == 2 else data
        ne = [data.shape[-1]] + ([data.shape[0]] if data.ndim == 2 else [])
        raw = encode(type_name, data.reshape(-1, data.shape[-1]))
        # Sanity: the encoder's blocks decode to (roughly) the weights they came from.
        back = ggml_dequant_ref.dequantize(type_name, raw, data.size).reshape(data.shape)
        err = np.linalg.norm(back - data) / np.linalg.norm(data)
        assert err < 0.6, (name, type_name, err)
        out.append((name, GGML[type_name], ne, raw))

    tokens, scores, types = spm_vocab(tok_bin)
    assert len(tokens) == c["vocab"]
    meta = [
        ("general.architecture", ("str", "llama")),
        ("general.type", ("str", "model")),
        ("general.name", ("str", "llamacpp-made-test")),
        ("llama.block_count", ("u32", c["layers"])),
        ("llama.context_length", ("u32", c["context"])),
        ("llama.embedding_length", ("u32", H)),
        ("llama.feed_forward_length", ("u32", I)),
        ("llama.attention.head_count", ("u32", c["heads"])),
        ("llama.attention.head_count_kv", ("u32", c["kv_heads"])),
        ("llama.rope.freq_base", ("f32", c["base"])),
        ("llama.attention.layer_norm_rms_epsilon", ("f32", c["eps"])),
        ("general.file_type", ("u32", 15)),  # LLAMA_FTYPE_MOSTLY_Q4_K_M
        ("llama.vocab_size", ("u32", c["vocab"])),
        ("llama.rope.dimension_count", ("u32", hd)),
        ("general.quantization_version", ("u32", 2)),
        ("tokenizer.ggml.model", ("str", "llama")),
        ("tokenizer.ggml.pre", ("str", "default")),
        ("tokenizer.ggml.tokens", ("arr", "str", tokens)),
        ("tokenizer.ggml.scores", ("arr", "f32", scores)),
        ("tokenizer.ggml.token_type", ("arr", "i32", types)),
        ("tokenizer.ggml.bos_token_id", ("u32", 1)),
        ("tokenizer.ggml.eos_token_id", ("u32", 2)),
        ("tokenizer.ggml.unknown_token_id", ("u32", 0)),
        ("tokenizer.ggml.add_bos_token", ("bool", True)),
        ("tokenizer.ggml.add_eos_token", ("bool", False)),
    ]
    container.write_gguf(out_path, meta, out)


# ---- The reference forward ----------------------------------------------------------------------


def q8_0_fake(x):
    """Rows of x (float64) as ggml's quantize_row_q8_0 sees them (f32), quantized and decoded."""
    rows = x.detach().numpy().astype(f32)
    _, deq = blocks_ref.q8_0(rows.reshape(-1, 32))
    return torch.from_numpy(deq.reshape(rows.shape).astype(np.float64))


def bf16_round(t):
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float64)


def forward(path, seqs, weights):
    meta, infos, _ = container.read_gguf(path)
    c = {k: v[1] for k, v in meta.items() if v[0] != "arr"}
    names = {t["name"]: t for t in infos}
    type_name = {t["name"]: container.GGML_TYPES[t["type"]][0] for t in infos}

    def tensor(name):
        t = names[name]
        n = int(np.prod(t["ne"]))
        v = ggml_dequant_ref.dequantize(type_name[name], t["data"], n).reshape(list(reversed(t["ne"])))
        return torch.from_numpy(v.astype(np.float64))

    def kind(name):  # how qstudy runs a weight of this type
        ty = type_name[name]
        if ty in ("Q4_0", "Q8_0"):
            return "q8_0-activations"
        if ty in ("F32", "F16"):
            return "f32"
        if ty == "BF16":
            return "bf16"
        return "bf16" if weights == "bf16" else "f32"

    W = {}
    for name in names:
        W[name] = tensor(name)
        if kind(name) == "bf16" and type_name[name] != "BF16":
            W[name] = bf16_round(W[name])

    def lin(name, x):
        k = kind(name)
        if k == "q8_0-activations":
            x = q8_0_fake(x)
        elif k == "bf16":
            x = bf16_round(x)
        return x @ W[name].T

    H = c["llama.embedding_length"]
    nh, nkv = c["llama.attention.head_count"], c["llama.attention.head_count_kv"]
    hd = H // nh
    eps = c["llama.attention.layer_norm_rms_epsilon"]
    base = c["llama.rope.freq_base"]
    inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    if "rope_freqs.weight" in names:  # llama.cpp: theta_i / rope_freqs[i]
        inv = inv / W["rope_freqs.weight"].to(torch.float32)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    outs = []
    for tokens in seqs:
        T = len(tokens)
        angles = torch.outer(torch.arange(T, dtype=torch.float32), inv).to(torch.float64)
        rot = torch.polar(torch.ones_like(angles), angles)

        def rope(x):  # Meta layout: consecutive pairs are complex numbers
            xc = torch.view_as_complex(x.reshape(T, x.shape[1], hd // 2, 2).contiguous())
            return torch.view_as_real(xc * rot[:, None, :]).reshape(T, x.shape[1], hd)

        emb = W["token_embd.weight"]
        x = emb[torch.tensor(tokens)]
        mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
        for layer in range(c["llama.block_count"]):
            p = f"blk.{layer}."
            h = rms(x, W[p + "attn_norm.weight"])
            q = rope(lin(p + "attn_q.weight", h).reshape(T, nh, hd))
            k = rope(lin(p + "attn_k.weight", h).reshape(T, nkv, hd)).repeat_interleave(nh // nkv, dim=1)
            v = lin(p + "attn_v.weight", h).reshape(T, nkv, hd).repeat_interleave(nh // nkv, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + mask
            att = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(T, nh * hd)
            x = x + lin(p + "attn_output.weight", att)
            h = rms(x, W[p + "ffn_norm.weight"])
            g = torch.nn.functional.silu(lin(p + "ffn_gate.weight", h))
            x = x + lin(p + "ffn_down.weight", g * lin(p + "ffn_up.weight", h))
        x = rms(x, W["output_norm.weight"])
        head = "output.weight" if "output.weight" in names else "token_embd.weight"
        outs.append(lin(head, x).to(torch.float32).numpy())
    return outs


def main():
    torch.set_num_threads(1)
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "forward":
        weights = sys.argv[sys.argv.index("--weights") + 1] if "--weights" in sys.argv else "f32"
        with open(sys.argv[3]) as f:
            seqs = json.load(f)
        with open(sys.argv[4], "wb") as out:
            for logits in forward(sys.argv[2], seqs, weights):
                out.write(np.ascontiguousarray(logits).tobytes())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

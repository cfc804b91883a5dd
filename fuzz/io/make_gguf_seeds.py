#!/usr/bin/env python3
"""Writes the seed corpora of the GGUF fuzz targets (run from the repository root with
/usr/bin/python3): fuzz/corpus/gguf/ (the container) and fuzz/corpus/gguf_vocab/ (vocabularies).
Tiny valid files made with the independent writer tests/io/ref/gguf_ref.py, plus truncated and
malformed variants."""
import importlib.util
import os
import struct

spec = importlib.util.spec_from_file_location("gguf_ref", "tests/io/ref/gguf_ref.py")
gguf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gguf)

GGUF_DIR, VOCAB_DIR = "fuzz/corpus/gguf", "fuzz/corpus/gguf_vocab"


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def byte_level_alphabet():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def container_seeds():
    meta = [("general.architecture", ("str", "llama")), ("u8", ("u8", 7)), ("i16", ("i16", -3)),
            ("u64", ("u64", 1 << 40)), ("f64", ("f64", 0.5)), ("flag", ("bool", True)),
            ("list", ("arr", "str", ["a", "", "\u2581b"])), ("ints", ("arr", "i32", [1, -2, 3])),
            ("floats", ("arr", "f32", [0.25, -1.0]))]
    tensors = [("f32", 0, [4, 2], struct.pack("<8f", *range(8))),
               ("q8", 8, [32, 2], bytes(range(68))),
               ("q4k", 12, [256], bytes((i * 7) % 256 for i in range(144))),
               ("q6k", 14, [256], bytes((i * 13) % 256 for i in range(210))),
               ("q5_1", 7, [32], bytes(range(24))),
               ("bf16", 30, [3], b"\x80\x3f\x00\x40\x40\x40")]
    path = f"{GGUF_DIR}/valid.gguf"
    gguf.write_gguf(path, meta, tensors)
    valid = read(path)
    gguf.write_gguf(f"{GGUF_DIR}/aligned64.gguf", meta[:2], tensors[:2], alignment=64)
    write(f"{GGUF_DIR}/truncated.gguf", valid[: len(valid) // 3])
    write(f"{GGUF_DIR}/version1.gguf", valid[:4] + struct.pack("<I", 1) + valid[8:])
    write(f"{GGUF_DIR}/big_endian.gguf", valid[:4] + struct.pack(">I", 3) + valid[8:])
    write(f"{GGUF_DIR}/huge_counts.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60) + b"\0" * 32)
    # Tensor infos edited in place: an overlap (second offset 0) and an unaligned offset.
    infos = b"".join(struct.pack("<Q", len(n)) + n.encode() + struct.pack("<I", 1) + struct.pack("<Q", 4) +
                     struct.pack("<IQ", 0, off) for n, off in (("a", 0), ("b", 0)))
    header = b"GGUF" + struct.pack("<IQQ", 3, 2, 0) + infos
    header += b"\0" * (-len(header) % 32)
    write(f"{GGUF_DIR}/overlap.gguf", header + b"\0" * 64)
    write(f"{GGUF_DIR}/unaligned.gguf", header.replace(struct.pack("<IQ", 0, 0) + b"\0", struct.pack("<IQ", 0, 8) + b"\0", 1) + b"\0" * 64)


def vocab_seeds():
    # SentencePiece: <unk>, <s>, </s>, byte tokens, pieces with scores.
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    pieces = ["\u2581", "a", "b", "c", "ab", "bc", "\u2581a", "\u2581ab", "abc", "\u2581\u2581", "\u6771"]
    tokens += pieces
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces)
    spm = [("general.architecture", ("str", "llama")), ("tokenizer.ggml.model", ("str", "llama")),
           ("tokenizer.ggml.tokens", ("arr", "str", tokens)), ("tokenizer.ggml.scores", ("arr", "f32", scores)),
           ("tokenizer.ggml.token_type", ("arr", "i32", types)), ("tokenizer.ggml.bos_token_id", ("u32", 1)),
           ("tokenizer.ggml.eos_token_id", ("u32", 2)), ("tokenizer.ggml.unknown_token_id", ("u32", 0))]
    gguf.write_gguf(f"{VOCAB_DIR}/spm.gguf", spm, [])
    # Byte-level BPE: the 256 byte characters, a few merges, special tokens.
    alpha = byte_level_alphabet()
    tokens = [alpha[b] for b in range(256)] + ["\u0120a", "ab", "\u0120ab", "<|endoftext|>", "<think>"]
    types = [1] * 259 + [3, 4]
    merges = ["\u0120 a", "a b", "\u0120a b"]
    for pre in ("qwen2", "llama-bpe", "gpt-2", "falcon"):
        meta = [("tokenizer.ggml.model", ("str", "gpt2")), ("tokenizer.ggml.pre", ("str", pre)),
                ("tokenizer.ggml.tokens", ("arr", "str", tokens)), ("tokenizer.ggml.token_type", ("arr", "i32", types)),
                ("tokenizer.ggml.merges", ("arr", "str", merges)), ("tokenizer.ggml.eos_token_id", ("u32", 259)),
                ("tokenizer.ggml.add_bos_token", ("bool", False))]
        gguf.write_gguf(f"{VOCAB_DIR}/gpt2_{pre}.gguf", meta, [])
    write(f"{VOCAB_DIR}/truncated.gguf", read(f"{VOCAB_DIR}/spm.gguf")[:600])


if __name__ == "__main__":
    os.makedirs(GGUF_DIR, exist_ok=True)
    os.makedirs(VOCAB_DIR, exist_ok=True)
    container_seeds()
    vocab_seeds()

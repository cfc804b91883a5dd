#!/usr/bin/env python3
"""Writes the small seed corpora of the tokenizer fuzz targets (run from the repository root):
fuzz/corpus/tokenizer_json/ and fuzz/corpus/llama2c_tokenizer/. Tiny valid files written here
(not the shared multi-megabyte tokenizers), plus truncated and malformed variants."""
import json
import os
import struct

JSON_DIR = "fuzz/corpus/tokenizer_json"
BIN_DIR = "fuzz/corpus/llama2c_tokenizer"


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


def sentencepiece_style():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for piece in ["▁", "a", "b", "c", "ab", "bc", "▁a", "▁ab", "abc"]:
        vocab[piece] = len(vocab)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                  "byte_fallback": True, "vocab": vocab,
                  "merges": ["a b", "▁ a", "▁a b", "b c", "ab c"]},
    }


def byte_level():
    alphabet = byte_level_alphabet()
    vocab = {alphabet[b]: b for b in range(256)}
    merges = []
    for word in ["he", "hel", "hell", "hello", "Ġw", "Ġwo", "Ġwor", "Ġworl", "Ġworld", "ĠĠ"]:
        merges.append([word[:-1], word[-1]])
        vocab[word] = len(vocab)
    pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
               "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    return {
        "version": "1.0",
        "added_tokens": [{"id": 266, "content": "<|end|>", "special": True},
                         {"id": 267, "content": "<tool>", "special": False, "lstrip": True, "rstrip": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(JSON_DIR, exist_ok=True)
    os.makedirs(BIN_DIR, exist_ok=True)
    sp = json.dumps(sentencepiece_style(), ensure_ascii=False).encode()
    bl = json.dumps(byte_level(), ensure_ascii=False).encode()
    write(f"{JSON_DIR}/sentencepiece_style.json", sp)
    write(f"{JSON_DIR}/byte_level.json", bl)
    write(f"{JSON_DIR}/truncated.json", bl[: len(bl) // 2])
    unigram = sentencepiece_style()
    unigram["model"]["type"] = "Unigram"
    write(f"{JSON_DIR}/unigram.json", json.dumps(unigram).encode())
    bad_merge = sentencepiece_style()
    bad_merge["model"]["merges"].append("a zz")
    write(f"{JSON_DIR}/unknown_merge_token.json", json.dumps(bad_merge).encode())
    bad_type = byte_level()
    bad_type["model"]["vocab"]["Ġ"] = "32"
    write(f"{JSON_DIR}/string_id.json", json.dumps(bad_type).encode())
    bad_regex = byte_level()
    bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+"
    write(f"{JSON_DIR}/bad_regex.json", json.dumps(bad_regex).encode())

    pieces = [(0.0, b"<unk>"), (0.0, b"\n<s>\n"), (0.0, b"\n</s>\n")]
    pieces += [(0.0, b"<0x%02X>" % b) for b in range(256)]
    for i, p in enumerate([" t", "he", " a", " the", "on", "ce", " on", " once", "up", " up", " upon", "ti", "me", " time"]):
        pieces.append((-float(i), p.encode()))
    for ch in " abcdefghijklmnopqrstuvwxyzOU,.":
        pieces.append((-100.0, ch.encode()))
    blob = struct.pack("<i", max(len(p) for _, p in pieces))
    for score, p in pieces:
        blob += struct.pack("<fi", score, len(p)) + p
    write(f"{BIN_DIR}/tiny.bin", blob)
    write(f"{BIN_DIR}/truncated_header.bin", blob[:3])
    write(f"{BIN_DIR}/truncated_token.bin", blob[: len(blob) - 3])
    write(f"{BIN_DIR}/too_few_tokens.bin", blob[:200])
    write(f"{BIN_DIR}/bad_length.bin", blob[:4] + struct.pack("<fi", 0.0, -7) + blob[12:])


if __name__ == "__main__":
    main()

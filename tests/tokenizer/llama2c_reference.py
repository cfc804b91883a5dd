#!/usr/bin/env python3
"""Independent reference for llama2.c tokenizer.bin encoding: a direct transcription of the
encode() loop of llama2.c's run.c (Karpathy, MIT), in plain Python and in its naive form.

    llama2c_reference.py TOKENIZER_BIN DOCS_JSON OUT_JSON

DOCS_JSON is a JSON array of strings; OUT_JSON receives, per document, the ids of
encode(text, bos=1, eos=0): BOS, the dummy " " prefix for non-empty text, one token per UTF-8
code point (or its bytes as ids byte + 3 when the code point is not a token), then repeatedly
the adjacent pair whose concatenation is the token with the highest score merges, the first
such pair on ties, until no pair concatenates to a token (scores at or below -1e10 never win).
"""
import json
import struct
import sys


def read_tokenizer(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, vocab, scores = 4, [], []
    while off < len(data):
        score, length = struct.unpack_from("<fi", data, off)
        off += 8
        vocab.append(data[off:off + length])
        off += length
        scores.append(score)
    return vocab, scores


def encode(text, vocab, scores, lookup):
    raw = text.encode("utf-8")
    tokens = [1]  # BOS
    if raw:
        tokens.append(lookup[b" "])
    i = 0
    while i < len(raw):
        j = i + 1
        while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        piece = raw[i:j]
        if piece in lookup:
            tokens.append(lookup[piece])
        else:
            tokens.extend(b + 3 for b in piece)
        i = j
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            merged = lookup.get(vocab[tokens[k]] + vocab[tokens[k + 1]])
            if merged is not None and scores[merged] > best_score:
                best_score, best_id, best_idx = scores[merged], merged, k
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def main():
    vocab, scores = read_tokenizer(sys.argv[1])
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)
    docs = json.load(open(sys.argv[2], encoding="utf-8"))
    out = [encode(d, vocab, scores, lookup) for d in docs]
    with open(sys.argv[3], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

"""An independent GGUF reader and writer (Python, numpy), written from ggml's docs/gguf.md and laid
out as gguf-py's GGUFWriter writes files: header (magic, version 3, tensor count, kv count),
metadata, tensor infos, padding to the alignment, then each tensor's bytes padded to the
alignment. It shares no code with qstudy's C++ container.

Values are given to the writer as (type_name, value) pairs: "u8" .. "f64", "bool", "str", or
("arr", element_type_name, list).

Script use:
  gguf_ref.py dump FILE OUT.json   metadata (arrays in full) and per tensor: type, ne, offset,
                                   nbytes, sha256 of the data
  gguf_ref.py write SPEC.json OUT  writes the file SPEC.json describes:
      {"alignment": 32, "metadata": [[key, type, value] or [key, "arr", elem_type, [values]]],
       "tensors": [{"name", "type" (ggml id), "ne", "data_hex"}]}
"""
import hashlib
import json
import struct
import sys

VALUE_TYPES = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
               "u64": 10, "i64": 11, "f64": 12}
TYPE_NAMES = {v: k for k, v in VALUE_TYPES.items()}
PACK = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "f32": "<f", "bool": "<?",
        "u64": "<Q", "i64": "<q", "f64": "<d"}

# ggml type id -> (name, values per block, bytes per block) for the types these tests use.
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
              7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
              12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}
GGML_IDS = {v[0]: k for k, v in GGML_TYPES.items()}


def tensor_nbytes(type_id, ne):
    _, block, size = GGML_TYPES[type_id]
    assert ne[0] % block == 0
    n = ne[0] // block * size
    for d in ne[1:]:
        n *= d
    return n


def _pad(n, a):
    return (n + a - 1) // a * a


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _scalar(t, v):
    if t == "str":
        return _string(v)
    return struct.pack(PACK[t], v)


def encode_value(value):
    """(type, value) or ("arr", elem_type, list) -> bytes with the leading type tag."""
    if value[0] == "arr":
        _, elem, items = value
        out = struct.pack("<IIQ", VALUE_TYPES["arr"], VALUE_TYPES[elem], len(items))
        return out + b"".join(_scalar(elem, x) for x in items)
    t, v = value
    return struct.pack("<I", VALUE_TYPES[t]) + _scalar(t, v)


def write_gguf(path, metadata, tensors, alignment=32):
    """metadata: list of (key, value) with value as in encode_value; tensors: list of
    (name, ggml type id, ne (ggml order), data bytes)."""
    meta = list(metadata)
    if alignment != 32 and not any(k == "general.alignment" for k, _ in meta):
        meta.append(("general.alignment", ("u32", alignment)))
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for key, value in meta:
        out += _string(key) + encode_value(value)
    offset = 0
    for name, type_id, ne, data in tensors:
        assert len(data) == tensor_nbytes(type_id, ne), name
        out += _string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", type_id, offset)
        offset += _pad(len(data), alignment)
    out += b"\0" * (_pad(len(out), alignment) - len(out))
    for _, _, _, data in tensors:
        out += data + b"\0" * (_pad(len(data), alignment) - len(data))
    with open(path, "wb") as f:
        f.write(out)


class Reader:
    def __init__(self, raw):
        self.raw, self.pos = raw, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.raw[self.pos:self.pos + n]
        assert len(s) == n, "string past the end"
        self.pos += n
        return s.decode("utf-8")

    def scalar(self, t):
        return self.string() if t == "str" else self.take(PACK[t])

    def value(self):
        t = TYPE_NAMES[self.take("<I")]
        if t != "arr":
            return (t, self.scalar(t))
        elem = TYPE_NAMES[self.take("<I")]
        n = self.take("<Q")
        return ("arr", elem, [self.scalar(elem) for _ in range(n)])


def read_gguf(path):
    """-> (metadata dict key -> value, list of tensors as dicts with name, type, ne, offset,
    data (bytes)), alignment."""
    with open(path, "rb") as f:
        raw = f.read()
    r = Reader(raw)
    assert raw[:4] == b"GGUF", "bad magic"
    r.pos = 4
    version = r.take("<I")
    assert version in (2, 3), version
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        assert key not in meta
        meta[key] = r.value()
    alignment = meta.get("general.alignment", ("u32", 32))[1]
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        type_id, offset = r.take("<I"), r.take("<Q")
        infos.append({"name": name, "type": type_id, "ne": ne, "offset": offset})
    data_start = _pad(r.pos, alignment)
    for t in infos:
        n = tensor_nbytes(t["type"], t["ne"])
        assert t["offset"] % alignment == 0
        t["data"] = raw[data_start + t["offset"]:data_start + t["offset"] + n]
        assert len(t["data"]) == n, t["name"] + " past the end"
    return meta, infos, alignment


def main():
    if sys.argv[1] == "dump":
        meta, infos, alignment = read_gguf(sys.argv[2])
        out = {"alignment": alignment, "metadata": {k: list(v) for k, v in meta.items()},
               "tensors": [{"name": t["name"], "type": t["type"], "ne": t["ne"], "offset": t["offset"],
                            "nbytes": len(t["data"]), "sha256": hashlib.sha256(t["data"]).hexdigest()}
                           for t in infos]}
        with open(sys.argv[3], "w") as f:
            json.dump(out, f)
    elif sys.argv[1] == "write":
        with open(sys.argv[2]) as f:
            spec = json.load(f)
        meta = []
        for item in spec["metadata"]:
            if item[1] == "arr":
                meta.append((item[0], ("arr", item[2], item[3])))
            else:
                meta.append((item[0], (item[1], item[2])))
        tensors = [(t["name"], t["type"], t["ne"], bytes.fromhex(t["data_hex"])) for t in spec["tensors"]]
        write_gguf(sys.argv[3], meta, tensors, spec.get("alignment", 32))
    else:
        sys.exit("usage: gguf_ref.py dump FILE OUT.json | write SPEC.json OUT")


if __name__ == "__main__":
    main()

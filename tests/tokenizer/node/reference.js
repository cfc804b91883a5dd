// Reference tokenization with transformers.js (@lenml/tokenizers 3.7.2) for the tokenizer tests.
//
//   node reference.js (--package llama3 | --json tokenizer.json --config tokenizer_config.json)
//        (--docs docs.json | --raw-file text) --out ids.bin [--decode-out decoded.json] [--no-special]
//
// docs.json is a JSON array of strings; --raw-file reads one document as UTF-8 the way node
// does (ill-formed bytes become U+FFFD). ids.bin holds, per document, an int32 count and the
// int32 ids (little-endian). --decode-out writes decode(ids) per document as a JSON array
// (skip_special_tokens, no clean-up of tokenization spaces).
"use strict";
const fs = require("fs");

const args = {};
for (let i = 2; i < process.argv.length; ++i) {
  const key = process.argv[i];
  if (key === "--no-special") args.noSpecial = true;
  else args[key.replace(/^--/, "")] = process.argv[++i];
}

function loadTokenizer() {
  if (args.package) return require("@lenml/tokenizer-" + args.package).fromPreTrained();
  const { TokenizerLoader } = require("@lenml/tokenizers");
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(args.json, "utf8")),
    tokenizerConfig: args.config ? JSON.parse(fs.readFileSync(args.config, "utf8")) : {},
  });
}

const tok = loadTokenizer();
const docs = args.docs ? JSON.parse(fs.readFileSync(args.docs, "utf8")) : [fs.readFileSync(args["raw-file"], "utf8")];
const parts = [];
const decoded = [];
for (const doc of docs) {
  const ids = tok.encode(doc, { add_special_tokens: !args.noSpecial });
  const buf = new Int32Array(ids.length + 1);
  buf[0] = ids.length;
  buf.set(ids, 1);
  parts.push(Buffer.from(buf.buffer));
  if (args["decode-out"]) {
    decoded.push(ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
  }
}
fs.writeFileSync(args.out + ".tmp", Buffer.concat(parts));
fs.renameSync(args.out + ".tmp", args.out);
if (args["decode-out"]) fs.writeFileSync(args["decode-out"], JSON.stringify(decoded));

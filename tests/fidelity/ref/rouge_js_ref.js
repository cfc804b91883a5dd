// ROUGE F-measures from the npm package js-rouge (the maintained TypeScript fork of the npm
// `rouge` package; `rouge` 1.0.3 itself counts unique n-grams only and its ROUGE-L throws
// "Constructor Uint8Array requires 'new'" on current Node).
// js-rouge's definitions coincide with rouge-score's when given rouge-score's tokenizer and
// one segment per text: ROUGE-N with clipped counts and F1, ROUGE-L as F1 over the LCS.
// Usage: node rouge_js_ref.js MODULE_DIR INPUT.json  ->  JSON [[r1, r2, rl] | null, ...]
const path = require("path");
const fs = require("fs");
const rouge = require(path.join(process.argv[2], "node_modules", "js-rouge"));

// rouge-score's default tokenizer, in JavaScript.
const tokenize = (s) =>
  s.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
const oneSegment = (s) => [s];

const pairs = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).pairs;
const out = pairs.map(([ref, cand]) => {
  try {
    return [
      rouge.n(cand, ref, { n: 1, tokenizer: tokenize }),
      rouge.n(cand, ref, { n: 2, tokenizer: tokenize }),
      rouge.l(cand, ref, { tokenizer: tokenize, segmenter: oneSegment }),
    ];
  } catch (e) {
    return null;  // js-rouge refuses whitespace-only texts
  }
});
process.stdout.write(JSON.stringify(out));

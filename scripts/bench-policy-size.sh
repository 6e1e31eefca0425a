#!/usr/bin/env bash
# Peak resident memory and wall time of `tollgate check` (load the policy, build every rule once)
# on policies with a 3-rule chain (a regex deny, a JSON Schema, a rate limit) on each of 10, 200
# and 1,000 tools, three runs each. Figures go to BENCHMARKS.md.
#
#   scripts/bench-policy-size.sh [TOLLGATE-BINARY]      (default: target/release/tollgate)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$root/target/release/tollgate}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for n in 10 200 1000; do
  {
    echo "version: 1"
    echo "tools:"
    for ((i = 0; i < n; i++)); do
      cat <<YAML
  tool_$i:
    rules:
      - action: deny
        reason: "tool $i refuses drafts"
        when: [{ path: args.title, op: regex, value: "^draft-$i" }]
      - validate: { schema: { type: object, required: [title], properties: { title: { type: string, maxLength: $((20 + i % 7)) } } } }
      - action: allow
        rate_limit: { max: 2, window: 60 }
YAML
    done
  } >"$dir/p$n.yaml"
  for run in 1 2 3; do
    /usr/bin/time -f "$n tools x 3 rules (run $run): %e s, peak RSS %M KB" \
      "$bin" check "$dir/p$n.yaml" >/dev/null
  done
done

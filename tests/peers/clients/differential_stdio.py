"""Differential prober over stdio: is Tollgate (allow-all policy) indistinguishable from the MCP
server it runs as its child?

Starts the server directly and `tollgate run … -- server` side by side, writes one corpus of
JSON-RPC lines to each (the same lines, in the same order), and compares what comes back for each
line. Standard library only.

Usage:
    python differential_stdio.py --direct '["python", "server.py"]' \
        --through '["tollgate", "run", "--policy", "allow.yaml", "--", "python", "server.py"]' \
        [--json] [--timeout SECONDS]

The corpus covers the session revision's handshake (initialize, notifications/initialized), every
method family the test servers have (tools, resources, prompts, completion, logging, ping), an
unknown method and tool, invalid params, malformed JSON, a message that is not JSON-RPC, a batch,
notifications (cancelled, progress) and the stateless revision's server/discover with `_meta`.
For each line, the messages received until its response (or, for a line that gets none, for a
short settle time) are compared: their number, and each message recursively (a difference is
reported at the path where the two sides part). Normalisations: JSON key order and whitespace;
ISO-8601 timestamps (whole strings) become <timestamp>. Output: `SAME name` or `DIFF name: field
direct=… through=…`; exit status 0 if nothing differs, 1 otherwise.
"""

import argparse
import json
import queue
import re
import subprocess
import sys
import threading
import time

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}


def rpc(id_, method, params=None):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m)


def note(method, params=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m)


CORPUS = [
    ("initialize", rpc(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                         "clientInfo": {"name": "differential", "version": "1"}})),
    ("notifications/initialized", note("notifications/initialized")),
    ("tools/list", rpc(2, "tools/list")),
    ("tools/call add", rpc(3, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})),
    ("tools/call unknown tool", rpc(4, "tools/call", {"name": "no_such_tool", "arguments": {}})),
    ("tools/call invalid arguments", rpc(5, "tools/call", {"name": "add", "arguments": {"a": "x"}})),
    ("tools/call without a name", rpc(6, "tools/call", {"arguments": {}})),
    ("resources/list", rpc(7, "resources/list")),
    ("resources/templates/list", rpc(8, "resources/templates/list")),
    ("resources/read unknown", rpc(9, "resources/read", {"uri": "nothing://here"})),
    ("prompts/list", rpc(10, "prompts/list")),
    ("prompts/get unknown", rpc(11, "prompts/get", {"name": "no_such_prompt"})),
    ("completion/complete", rpc(12, "completion/complete", {
        "ref": {"type": "ref/prompt", "name": "no_such_prompt"}, "argument": {"name": "a", "value": ""}})),
    ("logging/setLevel", rpc(13, "logging/setLevel", {"level": "info"})),
    ("ping", rpc(14, "ping")),
    ("unknown method", rpc(15, "no/such/method")),
    ("string id", rpc("abc", "ping")),
    ("notification cancelled", note("notifications/cancelled", {"requestId": 99})),
    ("notification progress", note("notifications/progress", {"progressToken": 1, "progress": 1})),
    ("malformed JSON", '{"jsonrpc": "2.0", "id": 16, "method": '),
    ("not JSON-RPC", json.dumps({"hello": "world"})),
    ("batch", json.dumps([json.loads(rpc(17, "ping")), json.loads(rpc(18, "tools/list"))])),
    ("server/discover (2026-07-28)", rpc(19, "server/discover", {"_meta": META})),
    ("tools/list (2026-07-28)", rpc(20, "tools/list", {"_meta": META})),
]


class Peer:
    """A process speaking newline-delimited JSON-RPC on its stdio."""

    def __init__(self, command):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def exchange(self, line, id_, timeout, settle):
        """Send `line`; collect messages until the response with `id_` (or `settle` seconds of
        quiet for a line that expects none)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        got, deadline = [], time.monotonic() + (timeout if id_ is not None else settle)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                raw = self.lines.get(timeout=left)
            except queue.Empty:
                return got
            if raw is None:
                got.append({"<ended>": True})
                return got
            try:
                m = json.loads(raw)
            except ValueError:
                m = {"<not JSON>": raw.decode("utf-8", "replace").strip()}
            got.append(m)
            answers = m if isinstance(m, list) else [m]
            if id_ is not None and any(isinstance(a, dict) and a.get("id") == id_ for a in answers):
                return got

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


def normal(v):
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normal(x) for x in v]
    if isinstance(v, str) and TIMESTAMP.match(v):
        return "<timestamp>"
    return v


def diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append({"field": path, "direct": a, "through": b})


def expected_id(line):
    try:
        m = json.loads(line)
    except ValueError:
        return None
    if isinstance(m, list):
        ids = [x.get("id") for x in m if isinstance(x, dict) and "id" in x]
        return ids[-1] if ids else None
    return m.get("id") if isinstance(m, dict) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct", required=True, help="the server's command, as a JSON array")
    ap.add_argument("--through", required=True, help="Tollgate's command, as a JSON array")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args()
    peers = [Peer(json.loads(args.direct)), Peer(json.loads(args.through))]
    report = []
    try:
        for name, line in CORPUS:
            id_ = expected_id(line)
            # Both at once: a line neither answers costs one timeout, not two.
            results = [None, None]

            def run(i):
                results[i] = peers[i].exchange(line, id_, args.timeout, 0.5)

            workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            direct, through = results
            diffs = []
            if len(direct) != len(through):
                diffs.append({"field": "messages", "direct": direct, "through": through})
            else:
                for i, (a, b) in enumerate(zip(direct, through)):
                    diff(normal(a), normal(b), f"msg[{i}]", diffs)
            report.append({"name": name, "diffs": diffs})
    finally:
        for p in peers:
            p.close()
    count = sum(len(r["diffs"]) for r in report)
    if args.json:
        json.dump({"differences": count, "requests": report}, sys.stdout, indent=2)
        print()
    else:
        for r in report:
            if not r["diffs"]:
                print(f"SAME {r['name']}")
            else:
                print(f"DIFF {r['name']}: " + "; ".join(
                    f"{d['field']} direct={json.dumps(d['direct'])[:200]} through={json.dumps(d['through'])[:200]}"
                    for d in r["diffs"]))
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())

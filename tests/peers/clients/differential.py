"""Differential prober: is Tollgate (allow-all policy) indistinguishable from the MCP server behind it?

Sends one corpus of raw Streamable HTTP requests to a server directly and through one or more
Tollgate endpoints, and compares what a client could observe. Standard library only.

Usage:
    python differential.py --direct http://127.0.0.1:P/mcp --through http://127.0.0.1:Q/mcp \
        [--through URL ...] [--era 2026-07-28|2025-11-25|all] [--json] [--timeout SECONDS]

Each request goes to every URL in turn (direct first, then each through-URL) before the next
request is sent, so per-URL state (a 2025-11-25 session, its deletion) advances in step. The
2025-11-25 era starts with `initialize`; each URL's Mcp-Session-Id is remembered and substituted
for {SID} in later requests of that URL. Output: one line per request and through-URL,
`SAME name` or `DIFF name: field direct=... through=...; field ...` (values cut to 240 chars;
`--json` prints a full report instead). Exit status: 0 if nothing differs, 1 otherwise.

What is compared (the "observation" of one response):
    status            HTTP status; transport_error: the exception class (TimeoutError after
                      --timeout seconds without a byte, ConnectionResetError...)
    content_type      family: json | event-stream | none | other:<media type>
    header.X          mcp-session-id (present/absent only), www-authenticate, allow, retry-after
    msg[i].<path>     each JSON-RPC message of the body (SSE `data:` lines are parsed), compared
                      recursively: a difference is reported at the path where the two sides part
                      (msg[0].error.code, msg[0].result.tools[2].name, msg[0].result when one side
                      has an error instead; `messages` when the counts differ)
    body              a body that is not JSON (text, cut to 500 chars), or <empty>
Normalisations (everything else is compared verbatim):
    - Mcp-Session-Id values differ by construction: only presence is compared, and the URL's own
      session id inside any string becomes <session-id>.
    - Each URL's host:port inside strings/header values becomes <endpoint> (the client dialled it).
    - ISO-8601 timestamps (whole-string) become <timestamp>: wall clocks differ between sends.
    - JSON key order and whitespace are ignored (bodies are parsed and flattened).
    - SSE framing is ignored: `event:`/`id:`/`retry:` fields, `:` keep-alive comments and events
      with empty data (priming events; event ids are per-stream counters), and an SSE body is read
      only until the response to the request.
    - Headers not listed above (date, server, content-length, cache-control...) are ignored.
"""

import argparse
import http.client
import json
import re
import sys
import urllib.parse

TIMEOUT = [20.0]  # seconds per socket operation; --timeout
MODERN, LEGACY = "2026-07-28", "2025-11-25"
PV, CC, CI, LL = ("io.modelcontextprotocol/" + k for k in ("protocolVersion", "clientCapabilities",
                                                            "clientInfo", "logLevel"))
CLIENT_INFO = {"name": "differential", "version": "1"}
BOTH = "application/json, text/event-stream"
ACTED_HEADERS = ("mcp-session-id", "www-authenticate", "allow", "retry-after")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


# ---------------------------------------------------------------- corpus
def meta(version=MODERN, **extra):
    m = {PV: version, CC: {}, CI: CLIENT_INFO}
    m.update(extra)
    return m


def modern(name, method, params=None, *, rid=None, meta_=None, headers=None, body=None, http="POST"):
    """A 2026-07-28 request: per-request `_meta` envelope plus the matching routing headers.
    `meta_=False` drops `_meta`; in `headers`, a value None drops that default header."""
    params = dict(params or {})
    if meta_ is not False:
        params["_meta"] = meta() if meta_ is None else meta_
    h = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": MODERN,
         "Mcp-Method": method}
    if method in NAME_PARAM and NAME_PARAM[method] in params:
        h["Mcp-Name"] = str(params[NAME_PARAM[method]])
    h.update(headers or {})
    msg = {"jsonrpc": "2.0", "method": method, "params": params}
    if rid is not None:
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return {"name": f"{MODERN}:{name}", "method": http, "headers": {k: v for k, v in h.items() if v is not None},
            "body": msg if body is None else body}


def legacy(name, method=None, params=None, *, rid=None, headers=None, body=None, http="POST", **kw):
    """A 2025-11-25 request on the URL's session ({SID} is replaced by its Mcp-Session-Id)."""
    h = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": LEGACY,
         "Mcp-Session-Id": "{SID}"}
    if http != "POST":
        h = {"Accept": "text/event-stream", "MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": "{SID}"}
    h.update(headers or {})
    if body is None and method is not None:
        body = {"jsonrpc": "2.0", "method": method}
        if rid is not None:
            body["id"] = rid
        if params is not None:
            body["params"] = params
    return dict(name=f"{LEGACY}:{name}", method=http, headers={k: v for k, v in h.items() if v is not None},
                body=body, **kw)


def corpus_modern():
    add = {"name": "add", "arguments": {"a": 2, "b": 3}}
    return [
        modern("server/discover", "server/discover", rid=1),
        modern("tools/list", "tools/list", rid=2),
        modern("tools/call add", "tools/call", add, rid=3),
        modern("tools/call send_message (log → SSE)", "tools/call",
               {"name": "send_message", "arguments": {"to": "a", "body": "b"}}, rid=4, meta_=meta(**{LL: "info"})),
        modern("tools/call unknown tool", "tools/call", {"name": "nope", "arguments": {}}, rid=5),
        modern("tools/call invalid arguments", "tools/call", {"name": "add", "arguments": {"a": "x"}}, rid=6),
        modern("resources/list", "resources/list", rid=7),
        modern("resources/templates/list", "resources/templates/list", rid=8),
        modern("prompts/list", "prompts/list", rid=9),
        modern("completion/complete", "completion/complete",
               {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": "y"}}, rid=10),
        modern("notification cancelled", "notifications/cancelled", {"requestId": 99}),
        modern("notification without _meta or Mcp-Method", "notifications/initialized", meta_=False,
               headers={"Mcp-Method": None}),
        modern("initialize (removed)", "initialize",
               {"protocolVersion": MODERN, "capabilities": {}, "clientInfo": CLIENT_INFO}, rid=11),
        modern("ping (removed)", "ping", rid=12),
        modern("logging/setLevel (removed)", "logging/setLevel", {"level": "info"}, rid=13),
        modern("resources/subscribe (removed)", "resources/subscribe", {"uri": "file:///x"}, rid=14),
        modern("resources/unsubscribe (removed)", "resources/unsubscribe", {"uri": "file:///x"}, rid=15),
        modern("unknown method", "differential/unknown", rid=16),
        modern("_meta missing", "tools/list", rid=17, meta_=False),
        modern("_meta without protocol version", "tools/list", rid=18, meta_={CC: {}, CI: CLIENT_INFO}),
        modern("_meta without client capabilities", "tools/list", rid=19, meta_={PV: MODERN}),
        modern("_meta unsupported version (header agrees)", "tools/list", rid=20, meta_=meta("2099-01-01"),
               headers={"MCP-Protocol-Version": "2099-01-01"}),
        modern("_meta version disagrees with header", "tools/list", rid=21, meta_=meta(LEGACY)),
        modern("header MCP-Protocol-Version missing", "tools/list", rid=22,
               headers={"MCP-Protocol-Version": None}),
        modern("header MCP-Protocol-Version unsupported", "tools/list", rid=23,
               headers={"MCP-Protocol-Version": "2099-01-01"}),
        modern("header MCP-Protocol-Version handshake-era", "tools/list", rid=24,
               headers={"MCP-Protocol-Version": "2025-06-18"}),
        modern("header Mcp-Method missing", "tools/list", rid=25, headers={"Mcp-Method": None}),
        modern("header Mcp-Method wrong", "tools/list", rid=26, headers={"Mcp-Method": "prompts/list"}),
        modern("header Mcp-Name wrong", "tools/call", add, rid=27, headers={"Mcp-Name": "delete_record"}),
        modern("Accept text/html", "tools/list", rid=28, headers={"Accept": "text/html"}),
        modern("Accept missing", "tools/list", rid=29, headers={"Accept": None}),
        modern("Accept application/json only", "tools/list", rid=30, headers={"Accept": "application/json"}),
        modern("Accept text/event-stream only", "tools/list", rid=31, headers={"Accept": "text/event-stream"}),
        modern("Content-Type text/plain", "tools/list", rid=32, headers={"Content-Type": "text/plain"}),
        modern("malformed JSON", "tools/list", body=b'{"jsonrpc":"2.0","id":33,"method":'),
        modern("JSON-RPC batch", "tools/list", body=[
            {"jsonrpc": "2.0", "id": 34, "method": "tools/list", "params": {"_meta": meta()}},
            {"jsonrpc": "2.0", "id": 35, "method": "prompts/list", "params": {"_meta": meta()}}]),
        modern("posted JSON-RPC response", "tools/list", body={"jsonrpc": "2.0", "id": 36, "result": {}}),
        modern("GET endpoint", "tools/list", http="GET", body=b"",
               headers={"Accept": "text/event-stream", "Content-Type": None, "Mcp-Method": None}),
        modern("DELETE endpoint", "tools/list", http="DELETE", body=b"",
               headers={"Content-Type": None, "Mcp-Method": None}),
    ]


def corpus_legacy():
    init = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": CLIENT_INFO}
    return [
        legacy("initialize", "initialize", init, rid=1, headers={"MCP-Protocol-Version": None,
                                                                  "Mcp-Session-Id": None}),
        legacy("notifications/initialized", "notifications/initialized"),
        legacy("tools/list", "tools/list", rid=2),
        legacy("tools/call add", "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}, rid=3),
        legacy("tools/call send_message (log → SSE)", "tools/call",
               {"name": "send_message", "arguments": {"to": "a", "body": "b"}}, rid=4),
        legacy("tools/call unknown tool", "tools/call", {"name": "nope", "arguments": {}}, rid=5),
        legacy("ping", "ping", rid=6),
        legacy("unknown method", "differential/unknown", rid=7),
        legacy("Mcp-Session-Id missing", "tools/list", rid=8, headers={"Mcp-Session-Id": None}),
        legacy("Mcp-Session-Id unknown", "tools/list", rid=9, headers={"Mcp-Session-Id": "differential-unknown"}),
        legacy("MCP-Protocol-Version missing", "tools/list", rid=10, headers={"MCP-Protocol-Version": None}),
        legacy("MCP-Protocol-Version unsupported", "tools/list", rid=11,
               headers={"MCP-Protocol-Version": "1999-01-01"}),
        legacy("Accept application/json only", "tools/list", rid=12, headers={"Accept": "application/json"}),
        legacy("Accept text/event-stream only", "tools/list", rid=13, headers={"Accept": "text/event-stream"}),
        legacy("Content-Type text/plain", "tools/list", rid=14, headers={"Content-Type": "text/plain"}),
        legacy("malformed JSON", body=b'{"jsonrpc":"2.0","id":15,"method":'),
        legacy("JSON-RPC batch", body=[{"jsonrpc": "2.0", "id": 16, "method": "tools/list"},
                                       {"jsonrpc": "2.0", "id": 17, "method": "ping"}]),
        legacy("notification cancelled", "notifications/cancelled", {"requestId": 99}),
        legacy("GET stream open (headers only)", http="GET", headers_only=True),
        legacy("GET without Accept: text/event-stream", http="GET", headers={"Accept": "application/json"},
               headers_only=True),
        legacy("DELETE session", http="DELETE"),
        legacy("request on deleted session", "tools/list", rid=18),
        legacy("DELETE deleted session", http="DELETE"),
    ]


# ---------------------------------------------------------------- sending
def family(ct):
    if not ct:
        return "none"
    media = ct.split(";")[0].strip().lower()
    return {"application/json": "json", "text/event-stream": "event-stream"}.get(media, "other:" + media)


def read_sse(resp, msgs):
    """Append to `msgs` the JSON-RPC messages of an SSE body, up to and including the first
    response (appending as they come, so a later timeout keeps what had arrived)."""
    data = []
    while True:
        line = resp.readline()
        if not line or line in (b"\n", b"\r\n"):
            # An event whose data is empty (a priming event: an id and `retry` for resuming)
            # carries no message.
            if data and any(data):
                text = "\n".join(data)
                try:
                    msgs.append(json.loads(text))
                except ValueError:
                    msgs.append({"<unparsed sse data>": text})
                data = []
                last = msgs[-1]
                if isinstance(last, dict) and "id" in last and ("result" in last or "error" in last):
                    return msgs
            if not line:
                return msgs
            continue
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])


def send(url, req, sid):
    """Send one corpus request; return (observation, Mcp-Session-Id of the response or None)."""
    u = urllib.parse.urlsplit(url)
    headers = {}
    for k, v in req["headers"].items():
        if "{SID}" in v:
            if sid is None:
                continue
            v = v.replace("{SID}", sid)
        headers[k] = v
    body = req.get("body")
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    obs, new_sid = {}, None
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT[0])
    try:
        conn.request(req["method"], u.path or "/", body=body or None, headers=headers)
        resp = conn.getresponse()
        obs["status"] = resp.status
        obs["content_type"] = family(resp.getheader("content-type"))
        new_sid = resp.getheader("mcp-session-id")
        for h in ACTED_HEADERS:
            value = resp.getheader(h)
            obs["header." + h] = "<present>" if value and h == "mcp-session-id" else (value or "<absent>")
        if req.get("headers_only") and obs["content_type"] == "event-stream":
            obs["body"] = "<stream: headers only>"
        elif obs["content_type"] == "event-stream":
            obs["messages"] = []
            read_sse(resp, obs["messages"])
        else:
            raw = resp.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                obs["body"] = raw.decode("utf-8", "replace")[:500] if raw else "<empty>"
            else:
                obs["messages"] = parsed if isinstance(parsed, list) else [parsed]
    except (OSError, http.client.HTTPException) as e:  # socket.timeout is an OSError
        obs["transport_error"] = type(e).__name__
    finally:
        conn.close()
    return obs, new_sid


def normalise(value, url, sid):
    """Apply the session-id, endpoint and timestamp normalisations to every string in `value`."""
    if isinstance(value, dict):
        return {k: normalise(v, url, sid) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, url, sid) for v in value]
    if not isinstance(value, str):
        return value
    if sid:
        value = value.replace(sid, "<session-id>")
    value = value.replace(urllib.parse.urlsplit(url).netloc, "<endpoint>")
    return "<timestamp>" if TIMESTAMP.match(value) else value


def diff(a, b, path, out):
    """Differences between two observations, down to the first level where they part ways."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            sub = "msg" if k == "messages" and not path else (f"{path}.{k}" if path else k)
            diff(a.get(k, "<absent>"), b.get(k, "<absent>"), sub, out)
    elif isinstance(a, list) and isinstance(b, list) and path == "msg" and len(a) != len(b):
        out.append({"field": "messages", "direct": len(a), "through": len(b)})
        for i in range(max(len(a), len(b))):
            diff(a[i] if i < len(a) else "<absent>", b[i] if i < len(b) else "<absent>", f"msg[{i}]", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif a != b or type(a) is not type(b):
        out.append({"field": path, "direct": a, "through": b})
    return out


# ---------------------------------------------------------------- comparing
def run(direct, throughs, eras):
    urls = [direct] + throughs
    report = []
    for era in eras:
        sids = [None] * len(urls)  # by position: the same URL may be given twice
        for req in corpus_modern() if era == MODERN else corpus_legacy():
            observed = []
            for n, u in enumerate(urls):
                obs, new_sid = send(u, req, sids[n])
                if req["name"].endswith(":initialize") and new_sid:
                    sids[n] = new_sid
                observed.append(normalise(obs, u, sids[n] or new_sid))
            entry = {"name": req["name"], "direct": observed[0], "through": []}
            for u, obs in zip(throughs, observed[1:]):
                entry["through"].append({"url": u, "observed": obs, "diffs": diff(observed[0], obs, "", [])})
            report.append(entry)
    return report


def show(v):
    s = v if isinstance(v, str) and v.isprintable() else json.dumps(v)
    return s if len(s) <= 240 else s[:237] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct", required=True, help="the MCP server's own endpoint")
    ap.add_argument("--through", action="append", required=True, help="a Tollgate endpoint (repeatable)")
    ap.add_argument("--era", choices=[MODERN, LEGACY, "all"], default="all")
    ap.add_argument("--json", action="store_true", help="print a JSON report instead of lines")
    ap.add_argument("--timeout", type=float, default=TIMEOUT[0], help="seconds per socket read (default 20)")
    args = ap.parse_args()
    TIMEOUT[0] = args.timeout
    eras = [MODERN, LEGACY] if args.era == "all" else [args.era]
    report = run(args.direct, args.through, eras)
    count = sum(len(t["diffs"]) for e in report for t in e["through"])
    if args.json:
        json.dump({"direct": args.direct, "through": args.through, "eras": eras, "differences": count,
                   "requests": report}, sys.stdout, indent=2)
        print()
    else:
        for e in report:
            for n, t in enumerate(e["through"]):
                tag = e["name"] + (f" @through{n + 1}" if len(args.through) > 1 else "")
                if not t["diffs"]:
                    print(f"SAME {tag}")
                else:
                    print(f"DIFF {tag}: " + "; ".join(
                        f"{d['field']} direct={show(d['direct'])} through={show(d['through'])}" for d in t["diffs"]))
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())

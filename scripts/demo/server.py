#!/usr/bin/env python3
"""A small MCP server (stdio, standard library only) for Tollgate's demo: a pretend messaging
service with the shape of the Twilio MCP server's tools. It keeps an outbox in memory and says
on stderr every call it actually receives, so the demo can show what policy kept from it."""
import json
import sys

TOOLS = [
    {"name": "send_message", "description": "Send an SMS",
     "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                     "required": ["to", "body"]}},
    {"name": "list_messages", "description": "List sent messages",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "delete_message", "description": "Delete a sent message",
     "inputSchema": {"type": "object", "properties": {"sid": {"type": "string"}}, "required": ["sid"]}},
    {"name": "delete_account", "description": "Close the whole account",
     "inputSchema": {"type": "object", "properties": {}}},
]
outbox = []


def call(name, args):
    if name == "send_message":
        outbox.append({"sid": f"SM{len(outbox) + 1:04d}", "to": args.get("to"), "body": args.get("body")})
        return f"queued {outbox[-1]['sid']} to {args.get('to')}"
    if name == "list_messages":
        return json.dumps(outbox)
    if name == "delete_message":
        return f"deleted {args.get('sid')}"
    if name == "delete_account":
        return "account closed"
    raise KeyError(name)


def answer(msg):
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        return {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "demo-messaging", "version": "1.0"}}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        print(f"[demo server] received tools/call {params.get('name')} {json.dumps(params.get('arguments', {}))}",
              file=sys.stderr, flush=True)
        try:
            text = call(params.get("name"), params.get("arguments") or {})
        except KeyError:
            raise ValueError(f"Unknown tool: {params.get('name')}")
        return {"content": [{"type": "text", "text": text}]}
    if method == "ping":
        return {}
    raise LookupError(method)


def reply_to(msg):
    if not isinstance(msg, dict) or "id" not in msg or "method" not in msg:
        return None
    try:
        return {"jsonrpc": "2.0", "id": msg["id"], "result": answer(msg)}
    except LookupError as e:
        return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"Method not found: {e}"}}
    except ValueError as e:
        return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32602, "message": str(e)}}


for line in sys.stdin:
    if not line.strip():
        continue
    msg = json.loads(line)
    if isinstance(msg, list):  # a JSON-RPC batch (MCP 2025-03-26)
        replies = [r for r in map(reply_to, msg) if r is not None]
        reply = replies or None
    else:
        reply = reply_to(msg)
    if reply is not None:
        print(json.dumps(reply), flush=True)

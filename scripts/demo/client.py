#!/usr/bin/env python3
"""Tollgate's demo agent: starts `tollgate run` in front of the demo server and makes the calls
an agent might make, printing what came back. Usage: client.py TOLLGATE_BINARY POLICY"""
import json
import os
import subprocess
import sys
import tempfile

binary, policy = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
# Counters live in Tollgate's default store, SQLite; a fresh file keeps the demo repeatable.
state = os.path.join(tempfile.mkdtemp(prefix="tollgate-demo-"), "counters.sqlite")
proxy = subprocess.Popen(
    [binary, "run", "--state", f"sqlite:{state}", "--policy", policy, "--", sys.executable,
     os.path.join(here, "server.py")],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
next_id = 0


def request(method, params):
    global next_id
    next_id += 1
    proxy.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}) + "\n")
    proxy.stdin.flush()
    return json.loads(proxy.stdout.readline())


def show(title, reply):
    if "error" in reply:
        print(f"  {title:<44} -> JSON-RPC error {reply['error']['code']}: {reply['error']['message']}")
        return
    result = reply["result"]
    text = " ".join(c.get("text", "") for c in result.get("content", []))
    meta = result.get("_meta", {}).get("dev.tollgate/denial")
    status = "DENIED " if result.get("isError") else "allowed"
    print(f"  {title:<44} -> {status} {text}" + (f"  {json.dumps(meta)}" if meta else ""))


request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "demo-agent", "version": "1.0"}})
proxy.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
tools = [t["name"] for t in request("tools/list", {})["result"]["tools"]]
print(f"  tools/list (the server has 4 tools)            -> {tools}")
for i in range(1, 5):
    show(f"send_message #{i} to +15550100", request("tools/call", {
        "name": "send_message", "arguments": {"to": "+15550100", "body": f"hello {i}"}}))
show("send_message without a body", request("tools/call", {"name": "send_message", "arguments": {"to": "+15550199"}}))
show("send_message to a premium number", request("tools/call", {
    "name": "send_message", "arguments": {"to": "+1900555", "body": "win"}}))
show("list_messages", request("tools/call", {"name": "list_messages", "arguments": {}}))
show("delete_message SM0001", request("tools/call", {"name": "delete_message", "arguments": {"sid": "SM0001"}}))
show("delete_account (hidden)", request("tools/call", {"name": "delete_account", "arguments": {}}))
proxy.stdin.close()
sys.exit(proxy.wait())

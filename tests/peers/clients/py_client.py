"""MCP client driver (Python SDK 1.x, ClientSession over stdio) for Tollgate end-to-end tests.

Usage:
    echo '{"steps":[...]}' | tests/peers/.env/py1/bin/python tests/peers/clients/py_client.py -- COMMAND ARGS...
    echo '{"steps":[...]}' | tests/peers/.env/py1/bin/python tests/peers/clients/py_client.py --url URL
With --url the client speaks Streamable HTTP (streamablehttp_client) to URL, with --sse URL the
legacy HTTP+SSE transport (sse_client; URL ends in /sse), sending the extra headers of the
MCP_HEADERS environment variable (a JSON object), if set.

The server (or the proxy in front of it) is started as COMMAND ARGS... with the full
environment inherited. The scenario on stdin:
    {"steps": [
       {"op": "list_tools"},
       {"op": "call_tool", "name": "echo", "arguments": {"message": "hi"}, "progress": true},
       {"op": "raw_request", "method": "ping", "params": {}},
       {"op": "sleep", "seconds": 0.5},
       {"op": "wait_file", "path": "/tmp/go", "seconds": 30}],  # until another process makes it
     "timeout": 30,                                   # seconds per request (optional)
     "elicitation": {"action": "accept", "content": {...}},  # optional; default accepts with
                                                      # {"name": "tollgate"} + required fields
     "roots": [{"uri": "file:///tmp", "name": "tmp"}]}  # optional; declares the roots capability
Output, one JSON object on stdout:
    {"server_info", "protocol_version", "results": [per step], "notifications": [{method, params}],
     "logs": [logging params], "sampling_requests": [...], "elicitation_requests": [...],
     "roots_requests": n, "stream_errors": [...]}
Per step: list_tools -> {"tools": [names]}; call_tool -> {"result": CallToolResult} (plus
"progress_count" when "progress" is set); raw_request -> {"result": ...}; an MCP/JSON-RPC error ->
{"error": {code, message, data}}; any other exception -> {"exception": "Type: message"}.
Sampling requests are answered with the text "sampled: <text of the last message>".
Exit status 0, or 1 (with {"connect_error": ...}) when the connection/initialize failed.
"""

import json
import os
import sys
from datetime import timedelta
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError
from pydantic import BaseModel


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True) if model is not None else None


class RawRequest(BaseModel):
    method: str
    params: dict[str, Any] | None = None


def describe(e: BaseException) -> str:
    while getattr(e, "exceptions", None):  # unwrap anyio/TaskGroup exception groups
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


def prompt_text(messages: list) -> str:
    content = messages[-1].content if messages else None
    blocks = content if isinstance(content, list) else [content]
    return "".join(getattr(b, "text", "") or "" for b in blocks)


def auto_content(schema: dict[str, Any] | None) -> dict[str, Any]:
    """{"name": "tollgate"} plus a plausible value for every other required field."""
    schema = schema or {}
    props = schema.get("properties", {})
    content: dict[str, Any] = {"name": "tollgate"} if "name" in props or not props else {}
    by_type = {"string": "tollgate", "integer": 1, "number": 1, "boolean": True, "array": []}
    for key in schema.get("required", []):
        if key not in content:
            p = props.get(key, {})
            content[key] = p["default"] if "default" in p else p.get("enum", [by_type.get(p.get("type"), "tollgate")])[0]
    return content


class Driver:
    def __init__(self, scenario: dict[str, Any]):
        self.scenario = scenario
        self.out: dict[str, Any] = {
            "server_info": None, "protocol_version": None, "results": [], "notifications": [], "logs": [],
            "sampling_requests": [], "elicitation_requests": [], "roots_requests": 0, "stream_errors": [],
        }

    async def sampling(self, _ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.out["sampling_requests"].append(dump(params))
        return types.CreateMessageResult(
            role="assistant", model="tollgate-test-model", stopReason="endTurn",
            content=types.TextContent(type="text", text=f"sampled: {prompt_text(params.messages)}"),
        )

    async def elicitation(self, _ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.out["elicitation_requests"].append(dump(params))
        spec = self.scenario.get("elicitation") or {}
        action = spec.get("action", "accept")
        content = spec.get("content", auto_content(getattr(params, "requestedSchema", None)))
        return types.ElicitResult(action=action, content=content if action == "accept" else None)

    async def list_roots(self, _ctx: Any) -> types.ListRootsResult:
        self.out["roots_requests"] += 1
        return types.ListRootsResult(roots=[types.Root(**r) for r in self.scenario["roots"]])

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification):
            self.out["notifications"].append({"method": message.root.method, "params": dump(message.root.params)})
        elif isinstance(message, Exception):
            self.out["stream_errors"].append(f"{type(message).__name__}: {message}")

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.out["logs"].append(dump(params))

    async def step(self, session: ClientSession, step: dict[str, Any]) -> dict[str, Any]:
        op = step.get("op")
        if op == "list_tools":
            names, cursor = [], None
            while True:
                page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
                names += [t.name for t in page.tools]
                if not (cursor := page.nextCursor):
                    return {"tools": names}
        if op == "call_tool":
            res: dict[str, Any] = {}
            progress_cb = None
            if step.get("progress"):
                res["progress_count"] = 0

                async def progress_cb(_p: float, _t: float | None, _m: str | None) -> None:
                    res["progress_count"] += 1

            result = await session.call_tool(
                step["name"], step.get("arguments") or {}, progress_callback=progress_cb, meta=step.get("meta")
            )
            return {"result": dump(result), **res}
        if op == "raw_request":
            result = await session.send_request(RawRequest(method=step["method"], params=step.get("params")), types.Result)
            return {"result": dump(result)}
        if op == "sleep":
            await anyio.sleep(float(step.get("seconds", 0.1)))
            return {}
        if op == "wait_file":
            with anyio.fail_after(float(step.get("seconds", 30))):
                while not os.path.exists(step["path"]):
                    await anyio.sleep(0.05)
            return {}
        return {"exception": f"unknown op {op!r}"}

    async def run(self, argv: list[str]) -> int:
        if argv[0] in ("--url", "--sse"):
            headers = json.loads(os.environ.get("MCP_HEADERS") or "{}")
            connect = streamablehttp_client if argv[0] == "--url" else sse_client
            transport = connect(argv[1], headers=headers)
        else:
            server = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
            transport = stdio_client(server)
        try:
            async with transport as (read, write, *_):
                async with ClientSession(
                    read, write,
                    read_timeout_seconds=timedelta(seconds=float(self.scenario.get("timeout", 30))),
                    sampling_callback=self.sampling, elicitation_callback=self.elicitation,
                    list_roots_callback=self.list_roots if self.scenario.get("roots") else None,
                    logging_callback=self.on_log, message_handler=self.on_message,
                    client_info=types.Implementation(name="tollgate-py-driver", version="1"),
                ) as session:
                    try:
                        init = await session.initialize()
                    except Exception as e:  # noqa: BLE001 - report any handshake failure
                        self.out["connect_error"] = describe(e)
                        return 1
                    self.out["server_info"] = dump(init.serverInfo)
                    self.out["protocol_version"] = init.protocolVersion
                    for step in self.scenario.get("steps", []):
                        try:
                            self.out["results"].append(await self.step(session, step))
                        except McpError as e:
                            self.out["results"].append({"error": dump(e.error)})
                        except Exception as e:  # noqa: BLE001 - record and carry on with the next step
                            self.out["results"].append({"exception": describe(e)})
        except Exception as e:  # noqa: BLE001 - spawn failure or connection torn down
            if self.out["protocol_version"] is None:
                self.out["connect_error"] = describe(e)
                return 1
            self.out["stream_errors"].append(describe(e))
        return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    driver = Driver(json.load(sys.stdin))
    code = anyio.run(driver.run, argv)
    print(json.dumps(driver.out))
    return code


if __name__ == "__main__":
    sys.exit(main())

"""MCP client driver (Python SDK 2.x, `mcp.Client` over stdio) for Tollgate end-to-end tests.

Usage:
    echo '{"steps":[...]}' | tests/peers/.env/py2/bin/python tests/peers/clients/py2_client.py -- COMMAND ARGS...

Same scenario and output format as py_client.py (see its header), plus two scenario keys:
    "mode":      "auto" (default: probe `server/discover`, fall back to `initialize` on older
                 servers), "legacy" (always `initialize`), or "2026-07-28" (adopt without a probe)
    "log_level": per-request logging opt-in on 2026-07-28 connections (default "debug"; null = none)
The output also has "discover": true when the 2026-07-28 discover path was used (no initialize).
2.x differences: the SDK caches tools/list (this driver bypasses the cache), `ping` is legacy-only,
and on 2026-07-28 sampling/elicitation arrive as `input_required` results the SDK retries itself.
"""

import json
import os
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter

# Deprecated-at-2026-07-28 APIs (ping, logging) are exercised on purpose.
warnings.filterwarnings("ignore", message=".*deprecated.*")

ANY_RESULT = TypeAdapter(dict[str, Any])


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True) if model is not None else None


class RawRequest(types.Request[dict[str, Any] | None, str]):
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
            role="assistant", model="tollgate-test-model", stop_reason="endTurn",
            content=types.TextContent(type="text", text=f"sampled: {prompt_text(params.messages)}"),
        )

    async def elicitation(self, _ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.out["elicitation_requests"].append(dump(params))
        spec = self.scenario.get("elicitation") or {}
        action = spec.get("action", "accept")
        content = spec.get("content", auto_content(getattr(params, "requested_schema", None)))
        return types.ElicitResult(action=action, content=content if action == "accept" else None)

    async def list_roots(self, _ctx: Any) -> types.ListRootsResult:
        self.out["roots_requests"] += 1
        return types.ListRootsResult(roots=[types.Root(**r) for r in self.scenario["roots"]])

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.out["stream_errors"].append(f"{type(message).__name__}: {message}")
        else:
            self.out["notifications"].append({"method": message.method, "params": dump(message.params)})

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.out["logs"].append(dump(params))

    async def step(self, client: Client, step: dict[str, Any]) -> dict[str, Any]:
        op = step.get("op")
        if op == "list_tools":
            names, cursor = [], None
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                names += [t.name for t in page.tools]
                if not (cursor := page.next_cursor):
                    return {"tools": names}
        if op == "call_tool":
            res: dict[str, Any] = {}
            progress_cb = None
            if step.get("progress"):
                res["progress_count"] = 0

                async def progress_cb(_p: float, _t: float | None, _m: str | None) -> None:
                    res["progress_count"] += 1

            result = await client.call_tool(
                step["name"], step.get("arguments") or {}, progress_callback=progress_cb, meta=step.get("meta")
            )
            return {"result": dump(result), **res}
        if op == "raw_request":
            request = RawRequest(method=step["method"], params=step.get("params"))
            return {"result": await client.session.send_request(request, ANY_RESULT)}
        if op == "sleep":
            await anyio.sleep(float(step.get("seconds", 0.1)))
            return {}
        if op == "listen_tools":
            # Open a subscriptions/listen stream for tool-list changes, run the `then` step while
            # it is open, and report the first event (or that none came within `wait` seconds).
            async with client.listen(tools_list_changed=True) as sub:
                res: dict[str, Any] = {"honored": dump(sub.honored)}
                res["then"] = await self.step(client, step["then"])
                with anyio.move_on_after(float(step.get("wait", 10))):
                    async for event in sub:
                        res["event"] = type(event).__name__
                        break
                return res
        return {"exception": f"unknown op {op!r}"}

    async def run(self, argv: list[str]) -> int:
        if argv[0] == "--url":
            headers = json.loads(os.environ.get("MCP_HEADERS") or "{}")
            server = streamable_http_client(argv[1], http_client=create_mcp_http_client(headers=headers))
        else:
            server = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
        client = Client(
            server,
            mode=self.scenario.get("mode", "auto"),
            log_level=self.scenario.get("log_level", "debug"),
            read_timeout_seconds=float(self.scenario.get("timeout", 30)),
            sampling_callback=self.sampling, elicitation_callback=self.elicitation,
            list_roots_callback=self.list_roots if self.scenario.get("roots") else None,
            logging_callback=self.on_log, message_handler=self.on_message,
            client_info=types.Implementation(name="tollgate-py2-driver", version="1"),
        )
        connected = False
        try:
            async with client:
                connected = True
                self.out["server_info"] = dump(client.server_info)
                self.out["protocol_version"] = client.protocol_version
                self.out["discover"] = client.session.discover_result is not None
                for step in self.scenario.get("steps", []):
                    try:
                        self.out["results"].append(await self.step(client, step))
                    except MCPError as e:
                        self.out["results"].append({"error": dump(e.error)})
                    except Exception as e:  # noqa: BLE001 - record and carry on with the next step
                        self.out["results"].append({"exception": describe(e)})
        except Exception as e:  # noqa: BLE001 - spawn/handshake failure or connection torn down
            if not connected:
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

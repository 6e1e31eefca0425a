"""__NAME__: a Tollgate policy plugin in Python. It refuses every tool call whose arguments
contain the configured word. Edit check_call (and optionally check_result or visible).

The class implements the `plugin` world of wit/policy.wit (tollgate:policy@0.1.0); the types come
from the bindings componentize-py generates (`componentize-py -d wit -w plugin bindings gen` to
read them)."""

import json

import wit_world
from wit_world.imports import types
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    forbidden = ""

    def configure(self, config: str) -> None:
        c = json.loads(config)
        forbidden = c.get("forbidden")
        if not isinstance(forbidden, str) or not forbidden:
            # Raising Err rejects the policy file with this message.
            raise Err("`forbidden` must be a non-empty string")
        WitWorld.forbidden = forbidden

    def check_call(self, call: types.Call) -> types.Verdict:
        if WitWorld.forbidden in call.arguments:
            return types.Verdict_Deny(
                types.Denial(
                    reason=f"the arguments contain '{WitWorld.forbidden}'",
                    code="denied",
                    retry_after_ms=None,
                )
            )
        return types.Verdict_Allow()

    def check_result(self, call: types.Call, tool_result: str) -> types.ResultVerdict:
        return types.ResultVerdict_Pass()

    def visible(self, tool: str, caller: str) -> bool:
        return True

"""__NAME__: a Tollgate policy plugin in Python. It refuses every tool call whose arguments
contain the configured word. Edit Rule.check_call (and optionally check_result or visible).

The module implements the `plugin` world of wit/policy.wit (tollgate:policy@0.2.0): its exported
`rules` interface is the `Rules` class, and each rule of the operator's policy that uses this
plugin is one `Rule`, built by `Rule.create` from that rule's configuration. The types come from
the bindings componentize-py generates (`componentize-py -d wit -w plugin bindings gen` to read
them)."""

import json

from wit_world import exports
from wit_world.exports import rules
from wit_world.imports import types
from componentize_py_types import Err


class Rules(exports.Rules):
    """The exported `rules` interface; its resource is `Rule` below."""


class Rule(rules.Rule):
    def __init__(self, forbidden: str):
        self.forbidden = forbidden

    @classmethod
    def create(cls, config: str) -> "Rule":
        c = json.loads(config)
        forbidden = c.get("forbidden")
        if not isinstance(forbidden, str) or not forbidden:
            # Raising Err rejects the policy file with this message.
            raise Err("`forbidden` must be a non-empty string")
        return cls(forbidden)

    def check_call(self, call: types.Call) -> types.Verdict:
        if self.forbidden in call.arguments:
            return types.Verdict_Deny(
                types.Denial(
                    reason=f"the arguments contain '{self.forbidden}'",
                    code="denied",
                    retry_after_ms=None,
                )
            )
        return types.Verdict_Allow()

    def check_result(self, call: types.Call, tool_result: str) -> types.ResultVerdict:
        return types.ResultVerdict_Pass()

    def visible(self, tool: str, caller: str) -> bool:
        return True

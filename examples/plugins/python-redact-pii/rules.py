"""python-redact-pii: redacts personal data (email addresses, phone numbers, US social security
numbers, payment card numbers) from tool results before the agent sees them, through the
`check-result` hook. Calls are not restricted.

config: { "replacement": "[redacted {kind}]", "kinds": ["email", "phone", "ssn", "card"] }

Each rule of the policy that uses the plugin is one `Rule`, built by `Rule.create` from that
rule's configuration (tollgate:policy@0.2.0).
"""

import json
import re

from wit_world import exports
from wit_world.exports import rules
from wit_world.imports import types, log
from componentize_py_types import Err

PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "card": re.compile(r"\b(?:\d[ -]?){13,16}\b"),
    "phone": re.compile(r"(?<![\w-])\+?\d{1,3}?[ .-]?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b"),
}


class Rules(exports.Rules):
    """The exported `rules` interface; its resource is `Rule` below."""


class Rule(rules.Rule):
    def __init__(self, kinds: list, replacement: str):
        self.kinds = kinds
        self.replacement = replacement

    @classmethod
    def create(cls, config: str) -> "Rule":
        c = json.loads(config)
        kinds = c.get("kinds", list(PATTERNS))
        unknown = [k for k in kinds if k not in PATTERNS]
        if unknown:
            raise Err(f"unknown kinds {unknown}; known: {sorted(PATTERNS)}")
        return cls(kinds, c.get("replacement", "[redacted {kind}]"))

    def redact(self, text: str) -> str:
        for kind in self.kinds:
            text = PATTERNS[kind].sub(self.replacement.replace("{kind}", kind), text)
        return text

    def redact_value(self, value):
        """Redact every string inside a JSON value."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        return value

    def check_call(self, call: types.Call) -> types.Verdict:
        return types.Verdict_Allow()

    def check_result(self, call: types.Call, tool_result: str) -> types.ResultVerdict:
        result = json.loads(tool_result)
        # Text content and structured content; images, audio and resource blobs are left alone.
        changed = dict(result)
        changed["content"] = [
            dict(item, text=self.redact(item["text"])) if item.get("type") == "text" else item
            for item in result.get("content", [])
        ]
        if "structuredContent" in result:
            changed["structuredContent"] = self.redact_value(result["structuredContent"])
        if changed == result:
            return types.ResultVerdict_Pass()
        log.log(log.Level.INFO, f"redacted personal data in the result of {call.tool}")
        return types.ResultVerdict_Replace(json.dumps(changed))

    def visible(self, tool: str, caller: str) -> bool:
        return True

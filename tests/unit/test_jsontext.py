"""JSON text through orjson means what ``json`` would have written."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from fleetbench import jsontext

VALUE = {
    "figures": {"p50": 0.1 + 0.2, "tiny": 2e-05, "none": None, "ok": True},
    "keys": {1: "one", False: "no", None: "null", 2.5: "x"},
    "nested": [[1, 2, {"a": [3]}], 'Grüße "quoted"\n'],
    "path": Path("/tmp/x"),
}


def test_dumps_means_what_json_means() -> None:
    assert json.loads(jsontext.dumps(VALUE)) == json.loads(json.dumps(VALUE, default=str))
    assert jsontext.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
    assert json.loads(jsontext.dumps({"when": datetime(2026, 1, 2, tzinfo=UTC)}))["when"]


def test_what_orjson_cannot_write_goes_through_json() -> None:
    assert json.loads(jsontext.dumps({"big": 2**70})) == {"big": 2**70}
    assert jsontext.loads(jsontext.dumps([math.nan])) == [None]  # not JSON: null


def test_pretty_indents_the_first_levels_only() -> None:
    text = jsontext.pretty(VALUE)
    assert json.loads(text) == json.loads(json.dumps(VALUE, default=str))
    lines = text.splitlines()
    assert lines[0] == "{" and '    "p50": 0.30000000000000004,' in lines
    assert '    [1,2,{"a":[3]}],' in lines  # below the second level: one line
    assert jsontext.pretty({}) == "{}" and jsontext.pretty([]) == "[]"

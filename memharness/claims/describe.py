"""A claim in words, from its claim file and its check's declared parameters: for ``memharness claims show``
and docs/claims.md (scripts/claims_doc.py)."""

from __future__ import annotations

import inspect
from typing import Any

from memharness.claims.checks import CHECKS
from memharness.claims.spec import ClaimSpec, metric_function


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _value(value: Any) -> str:
    return "null" if value is None else f"`{value}`"


def _needs(needs: dict[str, Any]) -> str:
    parts = [", ".join(f"`{f}`" for f in needs["fields"]) or "nothing beyond the run"]
    if needs.get("distinct_guidance_scales"):
        parts.append(f"at least {needs['distinct_guidance_scales']} guidance scales in the run")
    return "; ".join(parts)


def parameter_rows(spec: ClaimSpec) -> list[str]:
    """One markdown table row per parameter the check declares: the claim file's value, default, type, doc."""
    rows = ["| parameter | this claim | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, param in CHECKS[spec.id].params.items():
        given = _value(spec.parameters[name]) if name in spec.parameters else "(default)"
        rows.append(f"| `{name}` | {given} | {_value(param.default)} | {param.describe()} | {param.doc} |")
    return rows


def describe(spec: ClaimSpec) -> str:
    """The claim as markdown: every key of its claim file, the metric's first doc line, its parameters."""
    test = spec.test
    lines = [
        f"## `{spec.id}`: {spec.title}",
        "",
        f"{spec.reference}. {spec.statement}",
        "",
        f"- **Paper value:** {spec.paper_value}"
        + (f" (compared: {spec.paper_number['value']:g} ± {spec.paper_number['tolerance']:g})"
           if spec.paper_number else ""),
        f"- **Metric:** `{spec.metric}`: {_first_line(metric_function(spec.metric))}",
        f"- **Test:** {test['kind']}",
    ]
    lines += [f"  - {key.replace('_', ' ')}: {test[key]}" for key in ("measured", "effect_size", "contrast")
              if key in test]
    lines += [
        f"- **Floor:** {spec.floor}",
        f"- **Scope:** {spec.scope}",
        f"- **Needs:** {_needs(spec.needs)}",
        f"- **Regression tolerance:** {_value(spec.regression_tolerance)}",
    ]
    if spec.alternatives:
        readings = "; ".join(f"`{name}` = {', '.join(map(str, values))}" for name, values in spec.alternatives.items())
        lines.append(f"- **Other readings, re-run:** {readings}")
    return "\n".join([*lines, "", *parameter_rows(spec)])

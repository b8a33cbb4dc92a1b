"""A claim file's ``needs``: the recorded data its check reads, validated at load and checked before the check runs.

The run a claim reads is its parameters' ``sampler`` and guidance scales (``RUN_SCALES``); ``needs`` adds
what of that run, and of the fixture, must be there:

- ``fields``: a list from this vocabulary
    ``gram A·B``        the per-step inner product ⟨A, B⟩ (memharness.trace.schema.step_pairs), at every
                        guidance scale of the run (ε_u, hence eps_u_res, is not recorded at g = 1)
    ``gram_final A·B``  a once-per-seed inner product (schema.const_pairs); ``gram_final`` alone: all of them
    ``trace_cov`` …     any other recorded group array of schema.GROUP_ARRAYS (always recorded)
    ``scores``          memorization scores of the labels' setting (label_sampler, label_guidance)
    ``run scores``      memorization scores at every guidance scale of the run
    ``mitigation runs`` the fixture's mitigation section (``memharness mitigate``)
    ``categories``      Webster categories on the prompts (App A)
- ``distinct_guidance_scales`` (optional): the run must hold at least this many guidance scales; the check
  then reads all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memharness.errors import MemharnessError
from memharness.guidance import uses_unconditional
from memharness.trace import schema

# Parameter names that give the guidance scales of the run a check reads (one name per idea):
# guidance (one g), baseline_guidance (the g a contrast starts from), guidance_scales (several).
RUN_SCALES = ("guidance", "baseline_guidance", "guidance_scales")
KEYS = ("fields", "distinct_guidance_scales")
WORDS = ("scores", "run scores", "mitigation runs", "categories")
_ARRAYS = tuple(name for name in schema.GROUP_ARRAYS if name not in ("gram", "gram_final"))


def _pair(text: str) -> tuple[str, str] | None:
    parts = text.split("·")
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _valid_field(field: Any) -> bool:
    if not isinstance(field, str):
        return False
    kind, _, rest = field.partition(" ")
    if kind == "gram":
        pair = _pair(rest)
        return pair is not None and (pair in schema.step_pairs(True) or pair[::-1] in schema.step_pairs(True))
    if kind == "gram_final":
        pair = _pair(rest)
        return not rest or (pair is not None and (pair in schema.const_pairs() or pair[::-1] in schema.const_pairs()))
    return field in WORDS or field in _ARRAYS


def parse(path: Any, needs: dict[str, Any]) -> dict[str, Any]:
    """The ``needs`` mapping, validated; a MemharnessError naming the file and the key otherwise."""
    for key in needs:
        if key not in KEYS:
            raise MemharnessError(f"{path}: needs.{key}: unknown key (needs takes {', '.join(KEYS)}; the run "
                                  "comes from parameters.sampler and parameters.guidance/guidance_scales)")
    fields = needs.get("fields")
    if not isinstance(fields, list):
        raise MemharnessError(f"{path}: needs.fields must be a list (possibly empty)")
    for field in fields:
        if not _valid_field(field):
            raise MemharnessError(f"{path}: needs.fields: {field!r} is not 'gram A·B', 'gram_final [A·B]', "
                                  f"one of {', '.join(WORDS + _ARRAYS)}")
    least = needs.get("distinct_guidance_scales")
    if least is not None and (isinstance(least, bool) or not isinstance(least, int) or least < 1):
        raise MemharnessError(f"{path}: needs.distinct_guidance_scales must be an int ≥ 1")
    return needs


def run_scales(params: dict[str, Any]) -> list[float]:
    """The guidance scales the claim's parameters name, in declaration order."""
    scales: list[float] = []
    for name in RUN_SCALES:
        value = params.get(name)
        if value is not None:
            scales += [float(g) for g in (value if isinstance(value, list) else [value])]
    return scales


def run_unmet(fixture: Any, sampler: str, scales: Sequence[float], least: int | None = None) -> str | None:
    """Why the fixture has no usable run: too few scales, no ``sampler`` run, or a scale missing; else None."""
    have = fixture.guidance_scales(sampler)
    if least is not None and len(have) < least:
        return f"needs ≥ {least} guidance scales in a {sampler} run; the fixture has {have or 'none'}"
    if sampler not in fixture.runs:
        return f"the fixture has no {sampler} run"
    for g in scales:
        if float(g) not in have:
            return f"the {sampler} run has no guidance scale {g:g} (has {', '.join(f'{h:g}' for h in have)})"
    return None


def _field_unmet(fixture: Any, field: str, sampler: str | None, scales: Sequence[float],
                 labels: tuple[str, float]) -> str | None:
    kind, _, rest = field.partition(" ")
    if kind == "gram" and sampler is not None:
        pair = _pair(rest)
        for g in scales:
            stored = schema.step_pairs(uses_unconditional(g))
            if pair not in stored and pair[::-1] not in stored:
                return f"the {sampler} run at g={g:g} records no ⟨{pair[0]}, {pair[1]}⟩ (ε_u is not computed at g = 1)"
    elif field == "scores" and fixture.scores_for(*labels) is None:
        return f"the fixture has no memorization scores for {labels[0]} g={labels[1]:g}"
    elif field == "run scores" and sampler is not None:
        for g in scales:
            if fixture.scores_for(sampler, g) is None:
                return f"the fixture has no memorization scores for {sampler} g={g:g}"
    elif field == "mitigation runs" and fixture.mitigation is None:
        return "the fixture has no mitigation runs; record them with `memharness mitigate --model M`"
    elif field == "categories" and not any(p.get("category") for p in fixture.prompts):
        return "the fixture's prompt set has no Webster categories (MV/TV/RV/N)"
    return None


def unmet(fixture: Any, needs: dict[str, Any], params: dict[str, Any]) -> str | None:
    """Why ``fixture`` cannot feed a claim with these needs and resolved parameters (a SKIP reason), or None."""
    sampler = params.get("sampler")
    least = needs.get("distinct_guidance_scales")
    scales = run_scales(params)
    if sampler is not None:
        if reason := run_unmet(fixture, sampler, scales, least):
            return reason
        if least is not None:
            scales = fixture.guidance_scales(sampler)
    labels = (params["label_sampler"], float(params["label_guidance"]))
    for field in needs["fields"]:
        if reason := _field_unmet(fixture, field, sampler, scales, labels):
            return reason
    return None

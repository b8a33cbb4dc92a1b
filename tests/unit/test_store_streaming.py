"""Fixture.group streams: each group's arrays straight into stacked arrays, Gram columns cast once and kept
in a bounded cache, evicted columns read again from the files, with the same numbers as the stored arrays."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from memharness.shipped import shipped_fixture
from memharness.trace import schema
from memharness.trace.store import Fixture

ANALYTIC = shipped_fixture("analytic")


def _stored(fixture: Fixture, sampler: str, g: float, name: str) -> np.ndarray:
    key = f"{schema.guidance_key(g)}/{name}"
    return np.stack([load_file(fixture.root / fixture.runs[sampler]["files"][p["id"]]["file"])[key]
                     for p in fixture.prompts])


@pytest.mark.parametrize("budget_mb", [None, "0.0001"])  # everything cached; nothing cached (every read re-reads)
def test_inner_equals_the_stored_gram_cast_to_float64(monkeypatch, budget_mb):
    if budget_mb is None:
        monkeypatch.delenv("MEMHARNESS_GROUP_CACHE_MB", raising=False)
    else:
        monkeypatch.setenv("MEMHARNESS_GROUP_CACHE_MB", budget_mb)
    fixture = Fixture(ANALYTIC)
    for sampler in fixture.runs:
        for g in fixture.guidance_scales(sampler):
            group = fixture.group(sampler, g)
            gram = _stored(fixture, sampler, g, "gram")
            for k, (a, b) in enumerate(schema.step_pairs(g != 1.0)):
                value = group.inner(a, b)
                assert value.dtype == np.float64 and not value.flags.writeable
                np.testing.assert_array_equal(value, gram[..., k].astype(np.float64))
                np.testing.assert_array_equal(group.inner(b, a), value)  # again: from the cache or the files
            final = _stored(fixture, sampler, g, "gram_final")
            for k, (a, b) in enumerate(schema.const_pairs()):
                np.testing.assert_array_equal(group.inner_final(a, b), final[..., k].astype(np.float64))
            for name in ("trace_cov", "pc1_cos_x", "pc1_var_ratio", "final_cos"):
                np.testing.assert_array_equal(group.arrays[name], _stored(fixture, sampler, g, name))
    cache = fixture._columns  # within its budget, or only the column read last
    assert cache.bytes <= cache.budget or len(cache.entries) == 1
    assert not fixture._cache  # no per-prompt copies beside the stacked groups


def test_a_file_changed_after_stacking_is_caught_when_a_column_is_read_again(monkeypatch, tmp_path):
    import shutil

    monkeypatch.setenv("MEMHARNESS_GROUP_CACHE_MB", "0.0001")
    root = tmp_path / "analytic"
    shutil.copytree(ANALYTIC, root)
    fixture = Fixture(root)
    group = fixture.group("ddim", 1.0)
    group.inner("x0_err", "x0_err")
    path = root / fixture.runs["ddim"]["files"][fixture.prompts[0]["id"]]["file"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="checksum mismatch"):
        group.inner("x_t", "x_T")


def test_verify_still_checks_the_paired_latent_that_groups_skip(tmp_path):
    import hashlib
    import json
    import shutil

    from safetensors.numpy import load, save

    from memharness.errors import MemharnessError

    root = tmp_path / "analytic"
    shutil.copytree(ANALYTIC, root)
    manifest = json.loads((root / "manifest.json").read_text())
    entry = manifest["runs"]["ddim"]["files"][manifest["prompts"][0]["id"]]
    arrays = load((root / entry["file"]).read_bytes())
    arrays["x"] = arrays["x"].copy()
    arrays["x"].flat[0] = np.nan
    data = save(arrays)
    (root / entry["file"]).write_bytes(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    fixture = Fixture(root)
    fixture.group("ddim", 1.0)  # the claims never read x
    with pytest.raises(MemharnessError, match="array x contains NaN"):
        fixture.verify()

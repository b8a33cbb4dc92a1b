"""The shipped prompt sets (memharness/data/sets): counts, uniqueness, the API, and that the converter
reproduces the committed files byte for byte."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memharness.data import prompt_sets
from memharness.data.prompt_sets import SetEntry, as_prompts, available_sets, category_counts, load_set
from memharness.errors import MemharnessError
from memharness.models.base import Prompt

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "memharness" / "data" / "sets"
CONVERTER = ROOT / "scripts" / "convert_prompt_sets.py"
# The converter's inputs (memharness/data/sets/PROVENANCE.md names them); the test that reruns the
# converter runs only where MEMHARNESS_PROMPT_SOURCES points at a copy of them.
SOURCE = Path(os.environ.get("MEMHARNESS_PROMPT_SOURCES", "/nonexistent"))


def test_available_sets():
    assert available_sets() == ["sd2-219", "webster", "wen"]


def test_webster_matches_the_papers_table_1_denominators():
    entries = load_set("webster")
    assert len(entries) == 500
    assert category_counts(entries) == {"MV": 86, "TV": 229, "RV": 30, "N": 155}
    assert list(category_counts(entries)) == ["MV", "TV", "RV", "N"]
    assert [e.id for e in entries] == [f"webster-{i:03d}" for i in range(500)]
    for key in ("id", "url", "laion_index", "text"):
        values = [getattr(e, key) for e in entries]
        assert None not in values and len(set(values)) == 500, key


def test_webster_extra_fields():
    entries = load_set("webster")
    for e in entries:
        assert {"numdups", "scores", "edge_scores", "mse_real_gen", "webster_row"} <= set(e.extra)
        has_lists = e.category in ("TV", "RV")
        assert ("retrieved_urls" in e.extra) == has_lists and ("gen_seeds" in e.extra) == has_lists
        if has_lists:
            assert e.extra["retrieved_urls"] and e.extra["gen_seeds"]
    assert min(e.extra["numdups"] for e in entries) == 6
    # MV is defined by mse_real_gen < 2.5e3 (and no template hit)
    assert all(e.extra["mse_real_gen"] < 2.5e3 for e in entries if e.category == "MV")


def test_wen_and_sd2_counts():
    wen = load_set("wen")
    assert len(wen) == 500 and [e.id for e in wen] == [f"wen-{i:03d}" for i in range(500)]
    assert len({e.laion_index for e in wen}) == 500 and len({e.url for e in wen}) == 500
    assert sum(e.extra["nemo_type"] == "VM" for e in wen) == 112
    # Webster's label where the LAION index is in the SD v1 parquet (352 of 500)
    assert category_counts(wen) == {"MV": 86, "TV": 229, "RV": 30, "N": 7}
    webster = {e.id: e for e in load_set("webster")}
    for e in wen:
        if e.category is not None:
            match = webster[e.extra["webster_id"]]
            assert (match.laion_index, match.text, match.category) == (e.laion_index, e.text, e.category)

    sd2 = load_set("sd2-219")
    assert len(sd2) == 219 and len({e.text for e in sd2}) == 219
    assert sd2[0].id == "sd2-000" and sd2[-1].id == "sd2-218"
    assert category_counts(sd2) == {} and all(e.url is None and e.extra == {} for e in sd2)


def test_file_names_work_as_set_names():
    assert load_set("webster-sdv1") == load_set("webster")


def test_unknown_set_names_the_known_ones():
    with pytest.raises(MemharnessError, match=r"'laion'.*sd2-219, webster, wen"):
        load_set("laion")


def test_load_returns_a_fresh_list():
    first = load_set("sd2-219")
    first.clear()
    assert len(load_set("sd2-219")) == 219


def test_as_prompts_carries_category_and_image():
    entries = load_set("webster")[:3]
    prompts = as_prompts(entries, images={entries[2].id: "/data/img/2.jpg"})
    assert prompts[2] == Prompt(id="webster-002", text=entries[2].text, image="/data/img/2.jpg", category="MV")
    assert [p.category for p in prompts] == [e.category for e in entries]
    assert prompts[0].image is None and prompts[0].kind is None
    assert as_prompts(load_set("sd2-219"))[0].category is None


def test_category_counts_leaves_out_absent_and_unlabelled():
    entries = [SetEntry("a", "x", category="N"), SetEntry("b", "y"), SetEntry("c", "z", category="MV")]
    assert list(category_counts(entries).items()) == [("MV", 1), ("N", 1)]


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', r"bad\.jsonl: line 2 repeats id 'a'"),
    ('{"id": "a", "text": "x"}\n\n{"id": "b", "text": " "}\n', r"bad\.jsonl: line 3 needs a non-empty string 'text'"),
    ('{"id": "a"}\n', r"line 1 needs a non-empty string 'text'"),
    ('{"text": "x"}\n', r"line 1 needs a non-empty string 'id'"),
    ('{"id": "a", "text": "x"\n', r"line 1 is not valid JSON"),
    ('["a"]\n', r"line 1 is not a JSON object"),
    ('{"id": "a", "text": "x", "category": "VM"}\n', r"line 1: 'category' must be one of MV, TV, RV, N"),
    ('{"id": "a", "text": "x", "laion_index": "7"}\n', r"line 1: 'laion_index' must be an integer"),
    ("\n", r"bad\.jsonl: no entries"),
])
def test_validation_errors_name_file_and_line(monkeypatch, tmp_path, line, message):
    data = tmp_path / "memharness" / "data"
    (data / "sets").mkdir(parents=True)
    (data / "sets" / "bad.jsonl").write_text(line, encoding="utf-8")

    class Files:  # stands in for importlib.resources.files("memharness.data")
        def files(self, package):
            assert package == "memharness.data"
            return data

    monkeypatch.setattr(prompt_sets, "resources", Files())
    monkeypatch.setitem(prompt_sets._FILES, "bad", "bad.jsonl")
    prompt_sets._load.cache_clear()
    try:
        with pytest.raises(MemharnessError, match=message) as info:
            load_set("bad")
        assert "\n" not in str(info.value)
    finally:
        prompt_sets._load.cache_clear()


def test_every_line_is_canonical_json():
    for name in ("webster-sdv1.jsonl", "wen-sdv1-500.jsonl", "sd2-219.jsonl"):
        raw = (SETS / name).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        for line in raw.decode("utf-8").splitlines():
            assert json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False) == line


def test_provenance_lists_the_committed_files_checksums():
    import hashlib

    text = (SETS / "PROVENANCE.md").read_text(encoding="utf-8")
    for name in ("webster-sdv1.jsonl", "wen-sdv1-500.jsonl", "sd2-219.jsonl"):
        assert hashlib.sha256((SETS / name).read_bytes()).hexdigest() in text, name


def test_converter_reproduces_the_committed_files(tmp_path):
    if importlib.util.find_spec("pyarrow") is None:
        pytest.skip("pyarrow is not installed (the converter's one-off need; memharness does not depend on it)")
    if not (SOURCE / "sdv1_bb_edge_groundtruth.parquet").is_file():
        pytest.skip(f"converter sources not found at {SOURCE}; set MEMHARNESS_PROMPT_SOURCES")
    result = subprocess.run(
        [sys.executable, str(CONVERTER), "--source", str(SOURCE), "--out", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    produced = sorted(p.name for p in tmp_path.iterdir())
    assert produced == sorted(p.name for p in SETS.iterdir())
    for name in produced:
        assert (tmp_path / name).read_bytes() == (SETS / name).read_bytes(), name

"""Prompt files (.jsonl / .json / .csv): what loads, and one-line errors naming the file and the line or item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memharness.cli.runtime import error_text
from memharness.data import load_prompt_file
from memharness.errors import FieldError, MemharnessError
from memharness.models.base import Prompt

ROWS = [
    {"id": "p2", "text": "A photo of a dog", "image": "images/p2.png", "kind": "memorized"},
    {"id": "p0", "text": "A painting, with a comma", "image": "images/p0.jpg", "kind": "normal"},
    {"id": "p1", "text": "no kind here", "image": "p1.png"},
]


def _expected(folder: Path) -> list[Prompt]:
    def image(rel: str) -> str:
        return str((folder / rel).resolve())

    return [
        Prompt(id="p2", text="A photo of a dog", kind="memorized", image=image("images/p2.png")),
        Prompt(id="p0", text="A painting, with a comma", kind="normal", image=image("images/p0.jpg")),
        Prompt(id="p1", text="no kind here", kind=None, image=image("p1.png")),
    ]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows, indent=1))
    return path


def _write_csv(path: Path, rows: list) -> Path:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "image", "kind"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


WRITERS = {"jsonl": _write_jsonl, "json": _write_json, "csv": _write_csv}


def assert_error(path: Path, *needles: str) -> str:
    """load_prompt_file(path) raises one line that names the file and every needle."""
    with pytest.raises(MemharnessError) as info:
        load_prompt_file(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


def assert_prompts_option_error(path: Path, *needles: str) -> None:
    """An error about the --prompts file as a whole: a field error the CLI prints as ``--prompts: ...``."""
    with pytest.raises(FieldError) as info:
        load_prompt_file(path)
    assert info.value.field == "prompts"
    assert error_text(info.value).startswith("--prompts: ")
    assert_error(path, *needles)


# --------------------------------------------------------------------------- what loads
@pytest.mark.parametrize("suffix", WRITERS)
def test_each_format_loads_in_order_with_images_relative_to_the_file(tmp_path, suffix):
    folder = tmp_path / "set"
    folder.mkdir()
    path = WRITERS[suffix](folder / f"prompts.{suffix}", ROWS)
    assert load_prompt_file(path) == _expected(folder)
    assert load_prompt_file(str(path)) == _expected(folder)  # a str path too


@pytest.mark.parametrize("suffix", WRITERS)
def test_the_working_directory_does_not_matter(tmp_path, monkeypatch, suffix):
    folder = tmp_path / "set"
    folder.mkdir()
    WRITERS[suffix](folder / f"prompts.{suffix}", ROWS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    prompts = load_prompt_file(Path("..") / "set" / f"prompts.{suffix}")
    assert [p.image for p in prompts] == [p.image for p in _expected(folder)]
    assert all(Path(p.image).is_absolute() for p in prompts)


def test_image_and_kind_are_optional(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y", "kind": ""}])
    assert load_prompt_file(path) == [Prompt(id="a", text="x"), Prompt(id="b", text="y")]


def test_csv_with_empty_image_and_kind_cells(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,text,image,kind\na,first,,\nb,second,b.png,memorized\n")
    assert load_prompt_file(path) == [
        Prompt(id="a", text="first"),
        Prompt(id="b", text="second", kind="memorized", image=str((tmp_path / "b.png").resolve())),
    ]


def test_csv_header_may_hold_fewer_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text,id\nhello,a\n")
    assert load_prompt_file(path) == [Prompt(id="a", text="hello")]


def test_blank_jsonl_lines_are_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('\n{"id": "a", "text": "x"}\n   \n\n{"id": "b", "text": "y"}\n\n')
    assert [p.id for p in load_prompt_file(path)] == ["a", "b"]


def test_absolute_image_path_is_kept(tmp_path):
    image = tmp_path / "elsewhere" / "img.png"
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "x", "image": str(image)}])
    assert load_prompt_file(path)[0].image == str(image.resolve())


def test_unicode_text(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "é", "text": "Ein Foto von Ümlauten 猫"}])
    assert load_prompt_file(path) == [Prompt(id="é", text="Ein Foto von Ümlauten 猫")]


# --------------------------------------------------------------------------- file-level errors
def test_missing_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert_prompts_option_error(missing, "not found")


def test_a_folder_is_not_a_prompt_file(tmp_path):
    folder = tmp_path / "prompts.jsonl"
    folder.mkdir()
    assert_prompts_option_error(folder)


@pytest.mark.parametrize("name", ["prompts.txt", "prompts", "prompts.yaml"])
def test_unknown_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text('{"id": "a", "text": "x"}\n')
    assert_error(path, ".jsonl", ".json", ".csv")


def test_invalid_json_line_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n\n{"id": "b", "text": \n')
    assert_error(path, "line 3", "JSON")


def test_invalid_json_array_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[{"id": "a", "text": "x"},')
    assert_error(path, "JSON")


@pytest.mark.parametrize("content", ['{"id": "a", "text": "x"}', '"text"', "3"], ids=["object", "string", "number"])
def test_json_that_is_not_an_array(tmp_path, content):
    path = tmp_path / "p.json"
    path.write_text(content)
    assert_error(path, "array")


@pytest.mark.parametrize(
    ("suffix", "content", "where"),
    [
        ("jsonl", '{"id": "a", "text": "x"}\n["b", "y"]\n', "line 2"),
        ("jsonl", '{"id": "a", "text": "x"}\n\n7\n', "line 3"),
        ("json", '[{"id": "a", "text": "x"}, "b"]', "item 1"),
        ("json", '[null]', "item 0"),
    ],
    ids=["jsonl-list", "jsonl-number", "json-string", "json-null"],
)
def test_row_that_is_not_an_object(tmp_path, suffix, content, where):
    path = tmp_path / f"p.{suffix}"
    path.write_text(content)
    assert_error(path, where, "object")


@pytest.mark.parametrize(
    ("suffix", "content", "where"),
    [
        ("jsonl", '{"id": "a", "text": "x"}\n{"text": "y"}\n', "line 2"),
        ("jsonl", '{"id": "", "text": "y"}\n', "line 1"),
        ("jsonl", '{"id": "   ", "text": "y"}\n', "line 1"),
        ("jsonl", '{"id": 3, "text": "y"}\n', "line 1"),
        ("json", '[{"id": "a", "text": "x"}, {"id": null, "text": "y"}]', "item 1"),
        ("csv", "id,text\na,x\n,y\n", "line 3"),
    ],
    ids=["missing", "empty", "blank", "number", "null", "csv-empty-cell"],
)
def test_missing_or_empty_id(tmp_path, suffix, content, where):
    path = tmp_path / f"p.{suffix}"
    path.write_text(content)
    assert_error(path, where, "'id'")


@pytest.mark.parametrize(
    ("suffix", "content", "where"),
    [
        ("jsonl", '{"id": "a"}\n', "line 1"),
        ("jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": null}\n', "line 2"),
        ("json", '[{"id": "a", "text": ["x"]}]', "item 0"),
        ("csv", "id,image\na,a.png\n", "line 2"),
        ("csv", "id,text\na,x\nb\n", "line 3"),
    ],
    ids=["missing", "null", "list", "csv-no-column", "csv-short-row"],
)
def test_missing_text(tmp_path, suffix, content, where):
    path = tmp_path / f"p.{suffix}"
    path.write_text(content)
    assert_error(path, where, "'text'")


@pytest.mark.parametrize(
    ("suffix", "content", "where"),
    [
        ("jsonl", '{"id": "a", "text": "x", "caption": "c"}\n', "line 1"),
        ("json", '[{"id": "a", "text": "x"}, {"id": "b", "text": "y", "Image": "b.png"}]', "item 1"),
        ("csv", "id,text,url\na,x,http://example\n", "line 2"),
    ],
    ids=["jsonl", "json", "csv"],
)
def test_unknown_field(tmp_path, suffix, content, where):
    path = tmp_path / f"p.{suffix}"
    path.write_text(content)
    message = assert_error(path, where, "unknown field")
    assert any(name in message for name in ("'caption'", "'Image'", "'url'"))


@pytest.mark.parametrize(
    ("suffix", "content", "where"),
    [
        ("jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n{"id": "a", "text": "z"}\n', "line 3"),
        ("json", '[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]', "item 1"),
        ("csv", "id,text\nq,x\nq,y\n", "line 3"),
    ],
    ids=["jsonl", "json", "csv"],
)
def test_repeated_id(tmp_path, suffix, content, where):
    path = tmp_path / f"p.{suffix}"
    path.write_text(content)
    assert_error(path, where, "repeats", "'")


@pytest.mark.parametrize("kind", ["Memorized", "mem", "unknown", 1, ["normal"]])
def test_bad_kind(tmp_path, kind):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y", "kind": kind}])
    assert_error(path, "line 2", "kind", "memorized", "normal")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("p.jsonl", ""),
        ("p.jsonl", "\n\n   \n"),
        ("p.json", "[]"),
        ("p.csv", ""),
        ("p.csv", "id,text,image\n"),
    ],
    ids=["jsonl-empty", "jsonl-blank-lines", "json-empty-array", "csv-empty", "csv-header-only"],
)
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert_error(path, "no prompts")


# --------------------------------------------------------------------------- bugs
def test_image_that_is_not_a_string(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "x", "image": 5}])
    assert_error(path, "line 1", "image")


def test_prompt_file_not_utf8(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'\xff\xfe{"id": "a", "text": "x"}\n')
    assert_error(path)


def test_csv_row_with_extra_cells(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,text,extra\na,x,e,surplus\n")
    assert_error(path, "line 2")

"""A FieldError names its field, and any field its advice mentions, as each front end spells options."""

import pickle

import pytest

from memharness.cli.runtime import error_text
from memharness.errors import FieldError, MemharnessError
from memharness.pytest_plugin import _error_line


def _clash() -> FieldError:
    # A path with braces of its own: only the listed placeholders are replaced, nothing is formatted.
    return FieldError("out", "run 'ddim' was recorded with other settings in {x}/{0}; pass {overwrite} to replace it",
                      value="fx", mentions=("overwrite",))


def test_the_cli_names_the_field_and_the_mentioned_one_as_flags():
    assert error_text(_clash()) == ("--out fx: run 'ddim' was recorded with other settings in {x}/{0}; "
                                    "pass --overwrite to replace it")
    wait = FieldError("fixtures", "another writer holds it; pass {wait}", mentions=("wait",))
    assert error_text(wait) == "--fixtures: another writer holds it; pass --wait"
    # a field whose option is not --<field>: the CLI's own mapping applies to mentions too
    assert error_text(FieldError("model_path", "give {model_path} or {duplication}",
                                 mentions=("model_path", "duplication"))) == \
        "--model-path: give --model-path or --no-duplication"


def test_str_names_the_bare_fields():
    assert str(_clash()) == ("out fx: run 'ddim' was recorded with other settings in {x}/{0}; "
                             "pass overwrite to replace it")
    assert str(FieldError("seeds", "no {braces} here")) == "seeds: no {braces} here"


def test_the_plugin_names_fields_as_its_options_or_bare():
    error = FieldError("fixtures", "{model} has none; pass {overwrite}", mentions=("model", "overwrite"))
    assert _error_line(error) == ("memharness: error: --memharness-fixtures: --memharness-model has none; "
                                  "pass overwrite")


def test_a_rendered_name_is_not_rendered_again():
    error = FieldError("a", "{b} then {c}", mentions=("b", "c"))
    assert error.render("A", option={"b": "{c}", "c": "C"}.get) == "A: {c} then C"


def test_a_mention_without_its_placeholder_is_a_bug():
    with pytest.raises(ValueError, match="overwite"):
        FieldError("out", "pass {overwrite}", mentions=("overwite",))


def test_pickling_keeps_field_value_and_mentions():
    again = pickle.loads(pickle.dumps(_clash()))
    assert isinstance(again, FieldError) and isinstance(again, MemharnessError)
    assert (again.field, again.message, again.value, again.mentions) == \
        ("out", _clash().message, "fx", ("overwrite",))
    assert error_text(again) == error_text(_clash()) and str(again) == str(_clash())

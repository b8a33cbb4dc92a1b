"""The one error type memharness raises for bad input, and its kind that names a field.

The CLI prints it as a single line and exits with code 2; anything else that
escapes is a bug.
"""

import re
from collections.abc import Callable


class MemharnessError(Exception):
    """Bad input: a file, an argument or a configuration memharness cannot use.

    The message is one line that names the file or argument and says what to do.
    """


class FieldError(MemharnessError):
    """Bad input in one named field (a setting, a file, a model) of a lower layer that knows no command line.

    Each front end names the field its own way: the CLI as its option (``seeds`` → ``--seeds``,
    memharness.cli.runtime), the pytest plugin as ``--memharness-<field>``. ``str()`` names the field itself.
    ``value``, when given, follows the name: ``--baseline base.json: …``.

    Advice that names *another* field lists it in ``mentions`` and writes it ``{field}`` in the message
    (``"pass {overwrite} to replace it"``); each front end renders it as it renders the field, so
    the CLI says ``--overwrite`` and ``str()`` says ``overwrite``. Only those placeholders are
    replaced, never through ``str.format``: the message may hold paths and braces of its own.
    """

    def __init__(self, field: str, message: str, *, value: object = None, mentions: tuple[str, ...] = ()) -> None:
        self.field, self.message, self.value, self.mentions = field, message, value, tuple(mentions)
        missing = [name for name in self.mentions if "{" + name + "}" not in message]
        if missing:  # a typo would print a raw placeholder: fail where the error is written
            raise ValueError(f"FieldError mentions {missing} without a placeholder in {message!r}")
        super().__init__(self.render(field))

    def render(self, name: str, *, option: Callable[[str], str] | None = None) -> str:
        """The one-line message with the field called ``name`` and each mentioned field called
        ``option(field)`` (default: the field itself)."""
        text = self.message
        if self.mentions:  # one pass, so a rendered name is never rendered again
            pattern = "|".join(re.escape("{" + field + "}") for field in self.mentions)
            text = re.sub(pattern, lambda m: option(m[0][1:-1]) if option else m[0][1:-1], text)
        return f"{name if self.value is None else f'{name} {self.value}'}: {text}"

    def __reduce__(self):  # pickles (multiprocessing, xdist) with its field, value and mentions
        return _field_error, (self.field, self.message, self.value, self.mentions)


def _field_error(field: str, message: str, value: object, mentions: tuple[str, ...] = ()) -> FieldError:
    return FieldError(field, message, value=value, mentions=mentions)

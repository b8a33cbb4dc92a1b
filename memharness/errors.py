"""The one error type memharness raises for bad input, and its kind that names a field.

The CLI prints it as a single line and exits with code 2; anything else that
escapes is a bug.
"""


class MemharnessError(Exception):
    """Bad input: a file, an argument or a configuration memharness cannot use.

    The message is one line that names the file or argument and says what to do.
    """


class FieldError(MemharnessError):
    """Bad input in one named field (a setting, a file, a model) of a lower layer that knows no command line.

    Each front end names the field its own way: the CLI as its option (``seeds`` → ``--seeds``,
    memharness.cli.runtime), the pytest plugin as ``--memharness-<field>``. ``str()`` names the field itself.
    ``value``, when given, follows the name: ``--baseline base.json: …``.
    """

    def __init__(self, field: str, message: str, *, value: object = None) -> None:
        self.field, self.message, self.value = field, message, value
        super().__init__(self.render(field))

    def render(self, name: str) -> str:
        """The one-line message with the field called ``name``."""
        return f"{name if self.value is None else f'{name} {self.value}'}: {self.message}"

    def __reduce__(self):  # pickles (multiprocessing, xdist) with its field and value
        return _field_error, (self.field, self.message, self.value)


def _field_error(field: str, message: str, value: object) -> FieldError:
    return FieldError(field, message, value=value)

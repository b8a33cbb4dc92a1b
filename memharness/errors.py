"""The one error type memharness raises for bad input.

The CLI prints it as a single line and exits with code 2; anything else that
escapes is a bug.
"""


class MemharnessError(Exception):
    """Bad input: a file, an argument or a configuration memharness cannot use.

    The message is one line that names the file or argument and says what to do.
    """

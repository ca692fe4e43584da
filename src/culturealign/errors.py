"""The one error type for a user's mistakes.

The library raises :class:`UserError` with a message that names the problem and the fix; only ``cli.py``
prints it (one line, exit status 2).
"""


class UserError(Exception):
    """A mistake the user can fix: bad input, config, path or server. The message says how."""

"""Errors that are the user's to fix.

Anything raised as a :class:`CausetteError` is printed by the CLI as one line on stderr
(``error: ...``) with a non-zero exit code, never as a traceback. Raise it for bad input:
a missing file, a malformed config, a tokenizer that does not match a checkpoint, ...
Bugs in Causette itself stay ordinary exceptions, so their traceback reaches us.
"""


class CausetteError(Exception):
    """A user mistake: printed as one clear line, exit code 1."""


class ConfigError(CausetteError):
    """A configuration file or ``--set`` override is invalid."""

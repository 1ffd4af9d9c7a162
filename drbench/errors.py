"""Errors drbench raises for its users.

Every error a user can cause (bad files, unknown names, unsupported combinations) is a
:class:`DrbenchError`; the CLI prints its message and exits with status 2 instead of a traceback.
"""


class DrbenchError(Exception):
    """Base class of every user-facing drbench error."""


class DataError(DrbenchError):
    """A data file is missing, unreadable or inconsistent. The message names the file and row/column."""


class UsageError(DrbenchError):
    """An unknown name or an invalid option; the message lists the valid choices."""


class UnsupportedProtocolError(DrbenchError):
    """A method was asked to run a protocol it does not declare in its capabilities."""


class MissingFeatureError(DrbenchError):
    """A method needs a feature block (e.g. expression) that the dataset does not have."""

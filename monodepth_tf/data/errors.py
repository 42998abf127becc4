"""The one exception of the data layer (and ``PathLike``, the path type its readers take).

Every reader in ``monodepth_tf.data`` raises :class:`DataError` for bad input, with a message
that starts with (or names) the file, or ``<split file>:<line number>``, and says what is wrong
with it. It is a ``ValueError``, so callers that already catch ``ValueError`` keep working.
"""

from pathlib import Path
from typing import Union

PathLike = Union[str, Path]


class DataError(ValueError):
    """A dataset file is missing, unreadable, truncated or does not hold what it should."""

"""The error every data problem raises: it names the file (or split line) and what is wrong."""


class DataError(ValueError):
    """A dataset file is missing, unreadable, or does not hold what it should."""

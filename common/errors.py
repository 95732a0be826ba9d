"""The one exception family for mistakes a user can cause.

Every error a user can fix (a missing or damaged data file, a model file that
does not match, an image that cannot be read, a learning rate that makes the
loss explode) is a ``ProjectError``. The command line prints its message as a
single line and exits with status 1; anything else is a bug and keeps its
traceback.

A message quotes what the user gave; ``shortened`` keeps a very long value
(a 5,000-digit number, a whole file) from filling the screen.
"""

LONGEST_SHOWN = 40  # characters of a refused value quoted in a message
LONGEST_DESCRIBED = 200  # characters of a path or an architecture in a message


class ProjectError(Exception):
    """A problem the user can fix; the message says what and how."""


class DataError(ProjectError):
    """A data file is missing, damaged or not what it claims to be."""


class ModelError(ProjectError):
    """A saved model file is damaged or does not match the network."""


class ImageError(ProjectError):
    """A user's picture cannot be turned into a digit."""


class TrainingError(ProjectError):
    """Training cannot go on, for example because the loss is no longer finite."""


def shortened(text, limit=LONGEST_SHOWN):
    """``text``, its middle cut out if it is longer than ``limit``."""
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 4 :]}"
    return text


def quoted(text):
    """``text`` quoted, shortened if it is very long."""
    return repr(shortened(text))

"""The one exception family for mistakes a user can cause.

Every error a user can fix (a missing or damaged data file, a model file that
does not match, an image that cannot be read, a learning rate that makes the
loss explode) is a ``ProjectError``. The command line prints its message as a
single line and exits with status 1; anything else is a bug and keeps its
traceback.
"""


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

"""Errors that are the user's to fix: the CLI prints them in one line, without a traceback."""


class UserError(Exception):
    """Bad input the user can fix (a missing or corrupt file, a bad flag value). The message names the file."""


class VideoReadError(UserError):
    """A video file that cannot be read: missing, empty, truncated or not a video."""


class RecordError(UserError):
    """A TFRecord shard that cannot be parsed."""


class ConfigError(UserError):
    """A configuration (flagfile, JSON config) that names an unknown field or holds a bad value."""

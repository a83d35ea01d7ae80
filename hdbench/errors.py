"""The one exception type for user mistakes (bad config, bad file, bad name)."""


class HdbenchError(ValueError):
    """A user-facing error: the message names the bad value and what was expected.

    The CLI prints it as one line instead of a traceback.
    """

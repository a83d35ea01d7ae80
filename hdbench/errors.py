"""The one exception type for user mistakes (bad config, bad file, bad name)."""


class HdbenchError(ValueError):
    """A user-facing error: the message names the bad value and what was expected.

    The CLI prints it as one line instead of a traceback.
    """


class NotComputableError(Exception):
    """A benchmark cannot be computed from what a subject provides.

    Raised, for example, when scoring recorded activity and a benchmark needs to run the system
    again (silencing, slow points, other trials) or needs weights or outputs that were not
    submitted. Scoring records it as "not computable" (missing coverage), not as a failure.
    Deliberately not an :class:`HdbenchError`, so that code handling bad input does not mistake
    it for one.
    """

"""The loop's one error type."""


class LoopError(ValueError):
    """A bad schedule, recipe result or run folder; the message is one line naming what is wrong."""

"""``joint``: all tasks' data at once, in random order (the upper bound)."""

from . import Method


class Joint(Method):
    name = "joint"
    summary = "all tasks' data mixed from the start (the upper bound)"

    def stream(self, kind: str) -> str:
        return "random"


METHOD = Joint

"""``greet_user``: build a full name, then a greeting from it.

Run it::

    pgflow worker examples.greeting.flow      # in one terminal
    python -m examples.greeting Ada Lovelace  # in another: starts a run and prints its output
"""

from __future__ import annotations

from typing import TypedDict

from pgflow import Flow


class Person(TypedDict):
    first: str
    last: str


greet_user = Flow("greet_user", input=Person)


@greet_user.step
def full_name(run: Person) -> str:
    return f"{run['first']} {run['last']}"


@greet_user.step(full_name)
def greeting(run: Person, name: str) -> str:
    return f"Hello, {name}!"

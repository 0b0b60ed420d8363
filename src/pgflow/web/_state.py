"""What one dashboard app holds: its reads, its event hub, and what it is allowed to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from pgflow.client import AsyncClient
from pgflow.events import AsyncEventHub
from pgflow.web._data import DashboardData


@dataclass(frozen=True)
class RunAction:
    #: The run statuses it applies to: the run page offers it only then.
    statuses: frozenset[str]
    help: str


#: Run actions, each wired when the client offers ``<action>_run(run_id)``.
RUN_ACTIONS = {
    "cancel": RunAction(
        frozenset({"started"}), "Cancel a started run: its pending work is dropped."
    ),
    "retry": RunAction(
        frozenset({"failed", "cancelled"}),
        "Start a failed or cancelled run again from scratch, as a new run.",
    ),
    "resume": RunAction(
        frozenset({"failed", "cancelled"}),
        "Continue a failed or cancelled run: completed steps are kept.",
    ),
}


def available_run_actions() -> tuple[str, ...]:
    return tuple(a for a in RUN_ACTIONS if callable(getattr(AsyncClient, f"{a}_run", None)))


@dataclass
class Dashboard:
    data: DashboardData
    hub: AsyncEventHub
    enable_actions: bool
    run_actions: tuple[str, ...] = field(default_factory=available_run_actions)

    async def close(self) -> None:
        await self.hub.close()
        await self.data.close()

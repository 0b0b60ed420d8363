"""``onboarding``: what happens after a sign-up, started by the web app in its transaction."""

from __future__ import annotations

from typing import TypedDict

from pgflow import Context, Flow

SIGNUPS_SQL = """
CREATE TABLE IF NOT EXISTS signups (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    plan text NOT NULL,
    welcomed_at timestamptz
)
"""


class Signup(TypedDict):
    signup_id: int


class Account(TypedDict):
    email: str
    plan: str


onboarding = Flow("onboarding", input=Signup, timeout=30)


@onboarding.step(transactional=True)
async def load_signup(run: Signup, ctx: Context) -> Account:
    # The row is always there: the run was started in the transaction that inserted it.
    cur = await ctx.conn.execute(
        "SELECT email, plan FROM signups WHERE id = %s", (run["signup_id"],)
    )
    email, plan = await cur.fetchone()
    return {"email": email, "plan": plan}


@onboarding.step(load_signup, transactional=True)
async def welcome(run: Signup, account: Account, ctx: Context) -> str:
    await ctx.conn.execute(
        "UPDATE signups SET welcomed_at = now() WHERE id = %s", (run["signup_id"],)
    )
    return f"welcomed {account['email']} ({account['plan']})"

"""A FastAPI app: ``POST /signups`` inserts a sign-up and starts its onboarding flow in the
same transaction.

Either both happen or neither: a failed insert starts no run, and a run never starts for a row
that was rolled back. Because the run's first task becomes visible only when the transaction
commits, the worker always finds the row it was started for.

Run it (a worker and the web app)::

    pgflow worker examples.fastapi_transaction.flow
    uvicorn --factory examples.fastapi_transaction.app:create_app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import psycopg
from fastapi import FastAPI, HTTPException
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from examples.fastapi_transaction.flow import SIGNUPS_SQL, onboarding
from pgflow import AsyncClient


class SignupRequest(BaseModel):
    email: str
    plan: str = "trial"


class SignupCreated(BaseModel):
    signup_id: int
    run_id: UUID


class SignupState(BaseModel):
    signup_id: int
    email: str
    welcomed: bool
    onboarding: str


def create_app(database_url: str | None = None) -> FastAPI:
    """The app; the database is ``database_url``, else ``$PGFLOW_DATABASE_URL`` or
    ``$DATABASE_URL``."""
    url = database_url or os.environ.get("PGFLOW_DATABASE_URL") or os.environ["DATABASE_URL"]
    pool = AsyncConnectionPool(url, open=False)
    pgflow = AsyncClient(pool=pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        async with pool.connection() as conn:
            await conn.execute(SIGNUPS_SQL)
        await pgflow.ensure_flow(onboarding)  # runs can start before any worker has
        yield
        await pgflow.close()
        await pool.close()

    app = FastAPI(
        title="pgflow example: start a flow in a request's transaction", lifespan=lifespan
    )

    @app.post("/signups", status_code=201)
    async def create_signup(body: SignupRequest) -> SignupCreated:
        async with pool.connection() as conn:
            try:
                async with conn.transaction():
                    cur = await conn.execute(
                        "INSERT INTO signups (email, plan) VALUES (%s, %s) RETURNING id",
                        (body.email, body.plan),
                    )
                    inserted = await cur.fetchone()
                    assert inserted is not None  # INSERT ... RETURNING returns the new row
                    signup_id = inserted[0]
                    run = await pgflow.start_flow(onboarding, {"signup_id": signup_id}, conn=conn)
            except psycopg.errors.UniqueViolation:
                raise HTTPException(409, f"{body.email} has signed up already") from None
        return SignupCreated(signup_id=signup_id, run_id=run.run_id)

    @app.get("/signups/{signup_id}")
    async def read_signup(signup_id: int, run_id: UUID) -> SignupState:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT email, welcomed_at FROM signups WHERE id = %s", (signup_id,)
            )
            row = await cur.fetchone()
        if row is None:
            raise HTTPException(404, f"no sign-up {signup_id}")
        email, welcomed_at = row
        run = await pgflow.get_run(run_id)
        return SignupState(
            signup_id=signup_id,
            email=email,
            welcomed=welcomed_at is not None,
            onboarding=run.status,
        )

    return app

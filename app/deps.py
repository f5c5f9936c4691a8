"""Typed FastAPI dependencies, so routes read as what they need: `database: DatabaseDep`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Request

from app.clients.flows import FlowStore
from app.db import Database
from app.settings import Settings
from app.telephony.spool import Spool


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_flows(request: Request) -> FlowStore:
    flows: FlowStore = request.app.state.flows
    return flows


async def get_spool(request: Request) -> Spool:
    spool: Spool = request.app.state.spool
    return spool


async def get_now(request: Request) -> dt.datetime:
    """The app's clock, read once per request (tests move a FakeClock)."""
    now: dt.datetime = request.app.state.clock()
    return now


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
FlowsDep = Annotated[FlowStore, Depends(get_flows)]
SpoolDep = Annotated[Spool, Depends(get_spool)]
Now = Annotated[dt.datetime, Depends(get_now)]

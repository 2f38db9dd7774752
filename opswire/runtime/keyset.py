"""Paged list answers straight from the database (DESIGN §5 lists; `rpc.Page`).

Rows are streamed through a server-side cursor and encoded one by one into a page
until its byte budget is full, so a service never holds more than one reply's worth
of rows whatever their size. Newest-first lists (logs, audit, command history) page
by keyset: `(timestamp, key) < cursor`, the same for the client's cursor and for the
RPC layer's resume token, so no row is skipped or repeated when timestamps tie.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped

from opswire.contract.rpc import PagedRequest
from opswire.runtime.rpc import Page, RpcError, decode_cursor, encode_cursor, fill_page

# Rows per round trip of the server-side cursor: small enough for huge rows, large
# enough that ordinary rows need few round trips.
STREAM_ROWS = 200

Encoded = tuple[bytes, str]
AnySelect = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]


@asynccontextmanager
async def streamed(
    session: AsyncSession, query: AnySelect, encode: Callable[[AnyRow], Encoded]
) -> AsyncIterator[AsyncIterator[Encoded]]:
    """The rows of `query`, encoded, through a server-side cursor closed on exit."""
    result = await session.stream(query.execution_options(yield_per=STREAM_ROWS))

    async def rows() -> AsyncIterator[Encoded]:
        async for row in result:
            yield encode(row)

    try:
        yield rows()
    finally:
        await result.close()


async def newest_first_page(
    session: AsyncSession,
    query: AnySelect,
    timestamp: Mapped[Any],
    key: Mapped[Any],
    parse_key: Callable[[str], Any],
    request: PagedRequest,
    encode: Callable[[AnyRow], bytes],
    budget: int,
) -> Page:
    """One page of `query` (already filtered) ordered by (timestamp, key) descending;
    `encode` gets each row of `query` (with `timestamp` and `key` added at its end).

    A first page (no `resume`) also gets `more`: the cursor of its `limit`-th row when a
    row follows it, for the client's next page.
    """
    after = request.resume or request.cursor
    if after is not None:
        at, at_key = decode_cursor(after)
        try:
            bound = parse_key(at_key)
        except ValueError:
            raise RpcError("invalid", "Malformed cursor") from None
        query = query.where(tuple_(timestamp, key) < tuple_(at, bound))
    query = query.order_by(timestamp.desc(), key.desc())
    more = None
    if request.resume is None:
        edge = (
            await session.execute(query.with_only_columns(timestamp, key).offset(request.limit - 1).limit(2))
        ).all()
        if len(edge) == 2:
            more = encode_cursor(edge[0][0], str(edge[0][1]))

    def encoded(row: AnyRow) -> Encoded:
        return encode(row), encode_cursor(row[-2], str(row[-1]))

    paged = query.add_columns(timestamp, key).limit(request.limit)
    async with streamed(session, paged, encoded) as rows:
        page = await fill_page(rows, request.limit, budget)
    page.more = more
    return page

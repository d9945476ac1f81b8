"""POST /api/chat: Major Tom, streamed as server-sent events, rate-limited per tenant."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.errors import ApiError, error_docs
from serving.major_tom.answers import start_answer
from serving.major_tom.stream import AnswerEvents, sse
from serving.schemas import ChatRequest, ErrorResponse

router = APIRouter(tags=["major tom"])
log = logging.getLogger("blocks.serving")

SSE_DOC = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "description": "one server-sent event; data is JSON text",
            "properties": {
                "event": {"type": "string", "enum": ["meta", "reference", "token", "done", "error"]},
                "data": {"type": "string"},
            },
            "required": ["event", "data"],
        },
        "example": 'event: meta\ndata: {"intent":"next_actions","refused":false}\n\n'
        'event: reference\ndata: {"n":1,"endpoint":"/api/recommendations","params":{"status":"open"},'
        '"ui_link":"/app/recommendations?status=open"}\n\n'
        'event: token\ndata: {"text":"Your top actions, "}\n\n'
        'event: done\ndata: {"text":"...","references":[],"facts":[]}\n\n',
    }
}


@router.post(
    "/api/chat",
    summary="Ask Major Tom (server-sent events)",
    response_class=StreamingResponse,
    description="Events: `meta` (intent, refused, data_status, sample), then the answer as it is computed: "
    "`reference` (one per [n] marker: endpoint, params, ui_link; sent before the first token that cites "
    "it) and `token` (text pieces), then `done` (full text, references, and the facts: which response "
    "field each number comes from). If the answer fails after streaming began, an `error` event "
    "(code, message) ends the stream instead of `done`.",
    responses={
        200: {"content": SSE_DOC, "description": "the answer as an event stream"},
        429: {
            "model": ErrorResponse,
            "description": "rate limited; see Retry-After",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
        },
        **error_docs(400, 401, 403, 413, 503),
    },
)
async def chat(request: Request, body: ChatRequest, scope: TenantScope = Depends(tenant_scope)):
    wait = request.app.state.chat_limiter.acquire(scope.tenant_id)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"Major Tom is answering too many questions for this tenant; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
    provider = request.app.state.chat_provider
    grounded, lines = start_answer(body.message, body.context, scope)
    if provider.name != "deterministic":  # a rephrasing provider needs the whole grounded text first
        await run_in_threadpool(_complete, lines)
        lines = iter([await run_in_threadpool(provider.render, grounded)])
    events = AnswerEvents(grounded)
    # The first piece is computed before the response starts, so a data error still gets its proper status.
    first = await run_in_threadpool(next, lines, None)

    async def stream():
        unsent = events.meta(provider.name, scope.data.data_status, scope.data.sample)
        piece = first
        while piece is not None:
            yield unsent + events.piece(piece)  # meta and the first line leave in one write
            unsent = b""
            try:
                piece = await run_in_threadpool(next, lines, None)
            except Exception:  # headers are sent: say so in the stream rather than cut it off silently
                log.exception("Major Tom failed mid-answer for tenant %s", scope.tenant_id)
                yield sse(
                    "error",
                    {
                        "code": "answer_failed",
                        "message": "the rest of this answer could not be computed; ask again",
                        "field": None,
                    },
                )
                return
        yield unsent + events.done()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


def _complete(lines: Iterator[str]) -> None:
    for _ in lines:
        pass

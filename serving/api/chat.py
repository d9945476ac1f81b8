"""POST /api/chat: Major Tom, streamed as server-sent events, rate-limited per tenant."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.errors import ApiError, error_docs
from serving.major_tom.answers import answer
from serving.major_tom.stream import answer_events
from serving.models import ChatRequest, ErrorResponse

router = APIRouter(tags=["major tom"])

SSE_DOC = {
    "text/event-stream": {
        "schema": {
            "type": "object", "description": "one server-sent event; data is JSON text",
            "properties": {"event": {"type": "string", "enum": ["meta", "token", "reference", "done"]},
                           "data": {"type": "string"}},
            "required": ["event", "data"],
        },
        "example": 'event: meta\ndata: {"intent":"next_actions","refused":false}\n\n'
                   'event: token\ndata: {"text":"Your top actions, "}\n\n'
                   'event: reference\ndata: {"n":1,"endpoint":"/api/recommendations","params":{"status":"open"},'
                   '"ui_link":"/app/recommendations?status=open"}\n\n'
                   'event: done\ndata: {"text":"...","references":[],"facts":[]}\n\n',
    }
}


@router.post(
    "/api/chat", summary="Ask Major Tom (server-sent events)", response_class=StreamingResponse,
    description="Events: `meta` (intent, refused, data_status, sample), `token` (text pieces), `reference` (one per "
                "[n] marker: endpoint, params, ui_link), `done` (full text, references, and the facts: which "
                "response field each number comes from).",
    responses={200: {"content": SSE_DOC, "description": "the answer as an event stream"},
               429: {"model": ErrorResponse, "description": "rate limited; see Retry-After", "headers": {"Retry-After": {
                   "schema": {"type": "integer"}, "description": "seconds"}}},
               **error_docs(400, 401, 403, 413, 503)},
)
async def chat(request: Request, body: ChatRequest, scope: TenantScope = Depends(tenant_scope)):
    wait = request.app.state.chat_limiter.acquire(scope.tenant_id)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise ApiError(429, "rate_limited", f"Major Tom is answering too many questions for this tenant; retry in "
                                            f"{retry} s", headers={"Retry-After": str(retry)})
    provider = request.app.state.chat_provider
    grounded = await run_in_threadpool(answer, body.message, body.context, scope)
    text = grounded.text if provider.name == "deterministic" else await run_in_threadpool(provider.render, grounded)
    events = answer_events(grounded, text, provider.name, scope.data.data_status, scope.data.sample)

    async def stream():  # an async iterator: Starlette would run a sync one through the threadpool per event
        for event in events:
            yield event

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

"""Server-sent events for one answer: meta, token..., reference..., done."""

from __future__ import annotations

import json
from typing import Iterator

from serving.major_tom.grounding import GroundedAnswer
from serving.major_tom.providers import chunks


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def answer_events(grounded: GroundedAnswer, text: str, provider: str, data_status: str, sample: bool
                  ) -> Iterator[bytes]:
    yield sse("meta", {"intent": grounded.intent, "refused": grounded.refused, "provider": provider,
                       "data_status": data_status, "sample": sample})
    for piece in chunks(text):
        yield sse("token", {"text": piece})
    refs = []
    for n, ref in enumerate(grounded.references, 1):
        item = {"n": n, **ref.model_dump()}
        refs.append(item)
        yield sse("reference", item)
    yield sse("done", {"text": text, "references": refs,
                       "facts": [{"ref": f.ref, "field": f.field, "value": f.value} for f in grounded.facts]})

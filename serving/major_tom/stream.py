"""Server-sent events for one answer: meta, then each piece of text preceded by the references it newly cites
(so every [n] a client receives can already be resolved), then done."""

from __future__ import annotations

import json

from serving.major_tom.grounding import GroundedAnswer
from serving.major_tom.providers import chunks


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class AnswerEvents:
    """The events of one answer, written as its text arrives (line by line, or all at once from a provider)."""

    def __init__(self, grounded: GroundedAnswer):
        self.grounded = grounded
        self._pieces: list[str] = []
        self._refs: list[dict] = []

    def meta(self, provider: str, data_status: str, sample: bool) -> bytes:
        return sse(
            "meta",
            {
                "intent": self.grounded.intent,
                "refused": self.grounded.refused,
                "provider": provider,
                "data_status": data_status,
                "sample": sample,
            },
        )

    def piece(self, text: str) -> bytes:
        """One piece of the answer (a line, or a whole rephrased answer); pieces are joined by newlines."""
        separated = "\n" + text if self._pieces else text
        self._pieces.append(text)
        return self._new_references() + b"".join(sse("token", {"text": chunk}) for chunk in chunks(separated))

    def done(self) -> bytes:
        return self._new_references() + sse(
            "done",
            {
                "text": "\n".join(self._pieces),
                "references": self._refs,
                "facts": [{"ref": f.ref, "field": f.field, "value": f.value} for f in self.grounded.facts],
            },
        )

    def _new_references(self) -> bytes:
        out = []
        for n, ref in enumerate(self.grounded.references[len(self._refs) :], len(self._refs) + 1):
            item = {"n": n, **ref.model_dump()}
            self._refs.append(item)
            out.append(sse("reference", item))
        return b"".join(out)

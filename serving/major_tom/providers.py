"""How a grounded answer becomes streamed text.

The default provider needs no model: it streams the grounded text as is. The Bedrock provider (when
BLOCKS_BEDROCK_MODEL_ID is set) may only rephrase: its output is checked to carry exactly the grounded numbers and
reference markers, and anything else falls back to the grounded text, so a model can never add a number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, Protocol

from serving.major_tom.grounding import GroundedAnswer

log = logging.getLogger("blocks.serving")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
MARKER = re.compile(r"\[\d+\]")


class Provider(Protocol):
    name: str

    def render(self, grounded: GroundedAnswer) -> str: ...


def chunks(text: str, words_per_chunk: int = 3) -> Iterator[str]:
    """Token-like pieces for streaming (whitespace kept, so joining the chunks restores the text)."""
    parts = re.split(r"(\s+)", text)
    buf: list[str] = []
    words = 0
    for part in parts:
        buf.append(part)
        if part and not part.isspace():
            words += 1
            if words >= words_per_chunk:
                yield "".join(buf)
                buf, words = [], 0
    if buf and "".join(buf):
        yield "".join(buf)


class DeterministicProvider:
    name = "deterministic"

    def render(self, grounded: GroundedAnswer) -> str:
        return grounded.text


def numbers_and_markers(text: str) -> tuple[list[str], list[str]]:
    markers = MARKER.findall(text)
    return sorted(NUMBER.findall(MARKER.sub(" ", text))), sorted(markers)


SYSTEM_PROMPT = (
    "You are Major Tom, the cost assistant of Blocks. Rephrase the FACTS below into a short, friendly answer. "
    "Rules: use every number exactly as written, keep each [n] marker right after the number it follows, add no "
    "other numbers, dates, or claims, and answer in the user's language."
)


class BedrockProvider:
    name = "bedrock"

    def __init__(self, model_id: str, client: Any = None, region: str | None = None):
        self.model_id = model_id
        if client is None:
            import boto3

            client = boto3.client("bedrock-runtime", region_name=region)
        self.client = client

    def render(self, grounded: GroundedAnswer) -> str:
        if grounded.refused:
            return grounded.text
        try:
            resp = self.client.converse(
                modelId=self.model_id,
                system=[{"text": SYSTEM_PROMPT}],
                messages=[{"role": "user", "content": [{"text": "FACTS:\n" + grounded.text}]}],
                inferenceConfig={"maxTokens": 800, "temperature": 0.0},
            )
            text = "".join(part.get("text", "") for part in resp["output"]["message"]["content"])
        except Exception as exc:  # any model failure degrades to the grounded text, never to an error
            log.warning("bedrock rephrasing failed, using grounded text: %s", exc)
            return grounded.text
        if numbers_and_markers(text) != numbers_and_markers(grounded.text):
            log.warning("bedrock output changed numbers or references; using grounded text")
            return grounded.text
        return text


def make_provider(model_id: str | None, region: str | None = None) -> Provider:
    return BedrockProvider(model_id, region=region) if model_id else DeterministicProvider()

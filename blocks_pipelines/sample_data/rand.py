"""Seeded random streams: the same key always yields the same numbers, in any process.

numpy is not a dependency of the platform, so vectors come from pyarrow.compute.random (seeded, vectorized) and
scalars from random.Random. Each purpose gets its own stream keyed by (seed, tenant, month, purpose), so adding a
draw in one place never shifts the numbers drawn in another.
"""

from __future__ import annotations

import hashlib
import math
import random

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


def stream_seed(*key: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(k) for k in key).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def scalar_rng(*key: object) -> random.Random:
    return random.Random(stream_seed(*key))


def uniform(n: int, *key: object) -> pl.Series:
    """n floats in [0, 1)."""
    if n == 0:
        return pl.Series([], dtype=pl.Float64)
    return pl.Series(pc.random(n, initializer=stream_seed(*key)))


def normal(n: int, *key: object) -> pl.Series:
    """n standard normal draws (Box-Muller on two uniform streams)."""
    u1 = uniform(n, *key, "u1")
    u2 = uniform(n, *key, "u2")
    return ((-2.0 * (1.0 - u1).log()).sqrt() * (2.0 * math.pi * u2).cos()).alias("normal")


def hex_ids(n: int, length: int, *key: object) -> pl.Series:
    """n pseudo-random lowercase hex strings of `length` digits (line item ids, execution ids)."""
    width = (length + 1) // 2
    raw = scalar_rng(*key, "hex").randbytes(n * width)
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
    return pl.Series("id", arr).cast(pl.Binary).bin.encode("hex").str.slice(0, length)

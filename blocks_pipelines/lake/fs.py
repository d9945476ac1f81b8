"""The lake's file system: a local folder by default, S3 in production, one interface for both.

All S3 access goes through boto3 with an optional endpoint override so tests run against a moto server on
127.0.0.1. Writes are atomic: locally a temp file in the same folder then os.replace; on S3 a single PutObject
(an object is never visible half-written).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from blocks_pipelines.settings import get_settings


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    modified: datetime


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for p in parts:
        p = str(p).strip("/")
        if p:
            out = f"{out}/{p}"
    return out


@lru_cache(maxsize=8)
def _s3_client(endpoint_url: str | None, region: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)


def s3_client():
    s = get_settings()
    return _s3_client(s.s3_endpoint_url, s.aws_region)


class ConditionFailed(RuntimeError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


def list_objects(prefix_uri: str, *, include_temp: bool = False) -> Iterator[ObjectInfo]:
    """Every object under a prefix (recursively), sorted by uri; include_temp also lists the `.tmp-` files a killed
    local write left (for the sweep)."""
    if is_s3(prefix_uri):
        bucket, key = split_s3(prefix_uri)
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/" if key else ""):
            for obj in page.get("Contents", []):
                yield ObjectInfo(f"s3://{bucket}/{obj['Key']}", obj["Size"], obj["LastModified"])
        return
    root = Path(prefix_uri)
    if root.is_file():
        st = root.stat()
        yield ObjectInfo(str(root), st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))
        return
    if not root.exists():
        return
    for p in sorted(root.rglob("*")):
        if p.is_file() and (include_temp or not p.name.startswith(".tmp-")):
            st = p.stat()
            yield ObjectInfo(str(p), st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))


def list_children(prefix_uri: str) -> list[str]:
    """Names of the folders directly under a prefix (one delimited LIST on S3, not a walk of every object)."""
    if is_s3(prefix_uri):
        bucket, key = split_s3(prefix_uri)
        prefix = key.rstrip("/") + "/" if key else ""
        out = []
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            out += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(out)
    root = Path(prefix_uri)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def info(uri: str) -> ObjectInfo | None:
    """Size and last-modified time of one object, None when absent."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            head = s3_client().head_object(Bucket=bucket, Key=key)
        except s3_client().exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(uri, head["ContentLength"], head["LastModified"])
    path = Path(uri)
    if not path.is_file():
        return None
    st = path.stat()
    return ObjectInfo(uri, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))


def _local_etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def read_versioned(uri: str) -> tuple[bytes, str] | None:
    """An object's bytes and its version tag (S3 ETag; locally a hash of the bytes), None when absent: the tag a
    conditional write compares against."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            obj = s3_client().get_object(Bucket=bucket, Key=key)
        except s3_client().exceptions.NoSuchKey:
            return None
        return obj["Body"].read(), obj["ETag"].strip('"')
    path = Path(uri)
    if not path.is_file():
        return None
    data = path.read_bytes()
    return data, _local_etag(data)


def write_if(uri: str, data: bytes, *, if_match: str | None = None) -> str:
    """Write uri only if it still has version tag if_match (None: only if it does not exist); returns the new tag.

    S3 checks the condition server side (PutObject If-Match / If-None-Match), so two writers can never both win.
    Locally the check and the swap are two steps: callers hold the month's lease (blocks_pipelines.lake.lease)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        cond = {"IfMatch": f'"{if_match}"'} if if_match else {"IfNoneMatch": "*"}
        try:
            out = s3_client().put_object(Bucket=bucket, Key=key, Body=data, **cond)
        except s3_client().exceptions.ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409", "NoSuchKey"):
                raise ConditionFailed(f"{uri} changed since it was read ({code})") from exc
            raise
        return out["ETag"].strip('"')
    current = read_versioned(uri)
    if (current[1] if current else None) != if_match:
        raise ConditionFailed(f"{uri} changed since it was read")
    write_bytes(uri, data)
    return _local_etag(data)


def delete_if(uri: str, if_match: str) -> None:
    """Delete uri only while it still has version tag if_match (a lease's holder releasing only its own lease)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().delete_object(Bucket=bucket, Key=key, IfMatch=f'"{if_match}"')
        except s3_client().exceptions.ClientError as exc:
            # 412: someone else's lease now; 409: a concurrent write won; 404: already gone. None is ours to delete.
            if exc.response["Error"]["Code"] in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
                "409",
                "NoSuchKey",
                "404",
            ):
                return
            raise
        return
    current = read_versioned(uri)
    if current and current[1] == if_match:
        Path(uri).unlink(missing_ok=True)


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except s3_client().exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return Path(uri).exists()


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; lake files must stay readable by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def put_file(local_path: Path, uri: str) -> None:
    """Publish a finished local file at uri atomically (move locally, upload on S3)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().upload_file(str(local_path), bucket, key)
        return
    dest = Path(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(local_path, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy(src_uri: str, dest_uri: str) -> None:
    """Copy one object within the lake: S3 CopyObject (server side, nothing downloaded); locally a hard link (the
    bytes are shared, and deleting either name keeps the other), a copy where links are not possible."""
    if is_s3(src_uri) and is_s3(dest_uri):
        sb, sk = split_s3(src_uri)
        db, dk = split_s3(dest_uri)
        s3_client().copy({"Bucket": sb, "Key": sk}, db, dk)
        return
    dest = Path(dest_uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src_uri, dest)
    except OSError:
        put_file(Path(src_uri), dest_uri)


def fetch_to_local(uri: str, workdir: Path) -> Path:
    """A local path for reading uri: the file itself when local, a downloaded copy when on S3."""
    if not is_s3(uri):
        return Path(uri)
    bucket, key = split_s3(uri)
    dest = workdir / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3_client().download_file(bucket, key, str(dest))
    return dest


class _S3RangeReader(io.RawIOBase):
    """A read-only, seekable view of one S3 object that fetches only the byte ranges read (Parquet footers and
    single column chunks without downloading the file)."""

    def __init__(self, uri: str):
        self._bucket, self._key = split_s3(uri)
        self._size = s3_client().head_object(Bucket=self._bucket, Key=self._key)["ContentLength"]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if self._pos >= end:
            return b""
        body = (
            s3_client()
            .get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end - 1}")["Body"]
            .read()
        )
        self._pos += len(body)
        return body

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_ranged(uri: str) -> io.RawIOBase:
    """A seekable binary reader of uri; on S3 each read is one ranged GET of just the bytes asked for."""
    if is_s3(uri):
        return _S3RangeReader(uri)
    return open(uri, "rb")


def delete(uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)

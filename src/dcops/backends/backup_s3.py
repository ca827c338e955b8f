"""A backup repository in an S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW).

Keys follow the directory layout under the repository's prefix: ``<prefix>/config``,
``<prefix>/keys/<name>``, ``<prefix>/data/<name[:2]>/<name>`` and so on. A repository is
named the way restic names one, ``s3:http://127.0.0.1:8333/bucket/prefix`` (no scheme
means https); `parse_s3_url` splits such a string.

An object is written with one PUT (up to 5 GiB), so it appears whole or not at all;
partial reads are HTTP Range requests. Addressing is path-style, so endpoints that are
IP addresses or have no wildcard DNS work.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dcops.backup.errors import MissingFile, StorageError, StorageFull
from dcops.backup.storage import check_kind, check_name, check_range
from dcops.core.secret import Secret

log = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 5 << 30
_MISSING = {"NoSuchKey", "404", "NotFound"}
_FULL = {"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull", "507"}


@dataclass(frozen=True)
class S3Url:
    """The parts of an ``s3:`` repository string."""

    endpoint_url: str
    bucket: str
    prefix: str


def parse_s3_url(url: str) -> S3Url:
    """Split ``s3:[scheme://]host[:port]/bucket[/prefix]`` (restic's form); `ValueError`
    when it is not one."""
    if not url.startswith("s3:"):
        raise ValueError(f"not an s3 repository {url!r} (expected s3:http://host:port/bucket)")
    rest = url[len("s3:"):]
    scheme = "https"
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme not in ("http", "https"):
            raise ValueError(f"s3 repository {url!r}: scheme must be http or https")
    host, _, path = rest.partition("/")
    bucket, _, prefix = path.strip("/").partition("/")
    if not host or not bucket:
        raise ValueError(f"s3 repository {url!r} needs a host and a bucket "
                         "(s3:http://host:port/bucket[/prefix])")
    return S3Url(f"{scheme}://{host}", bucket, prefix.strip("/"))


def _code(exc: ClientError) -> str:
    error: dict[str, Any] = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if not code:
        code = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code


class S3Storage:
    """A `Storage` on one bucket and prefix of an S3-compatible store; safe to use from
    many threads (one client, a pool of `max_connections` connections)."""

    def __init__(self, endpoint_url: str, bucket: str, prefix: str = "", *,
                 access_key: str | None = None, secret_key: str | Secret | None = None,
                 region: str = "us-east-1", connect_timeout_s: float = 10.0,
                 read_timeout_s: float = 60.0, max_attempts: int = 5,
                 max_connections: int = 16, list_page_size: int = 1000) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region
        self.list_page_size = list_page_size
        self.location = f"s3:{self.endpoint_url}/{bucket}" + (f"/{self.prefix}"
                                                             if self.prefix else "")
        access_key = access_key if access_key is not None else os.environ.get(
            "AWS_ACCESS_KEY_ID")
        if secret_key is None and "AWS_SECRET_ACCESS_KEY" in os.environ:
            secret_key = os.environ["AWS_SECRET_ACCESS_KEY"]
        self._secret_key = Secret(secret_key) if isinstance(secret_key, str) else secret_key
        config = Config(
            connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_connections, s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        session = boto3.session.Session()
        self._client: Any = session.client(
            "s3", endpoint_url=self.endpoint_url, region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=self._secret_key.reveal() if self._secret_key else None,
            config=config)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        """A storage for an ``s3:`` repository string; keys from the environment unless
        given in `options`."""
        parts = parse_s3_url(url)
        return cls(parts.endpoint_url, parts.bucket, parts.prefix, **options)

    def __repr__(self) -> str:
        return f"S3Storage({self.location!r})"

    def _key(self, kind: str, name: str) -> str:
        check_name(kind, name)
        if kind == "config":
            relative = "config"
        elif kind == "data":
            relative = f"data/{name[:2]}/{name}"
        else:
            relative = f"{kind}/{name}"
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _fail(self, exc: Exception, action: str, key: str) -> StorageError:
        where = f"{self.location} ({key})" if key else self.location
        if isinstance(exc, ClientError):
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message", "") or str(exc)
            if code == "NoSuchBucket":
                return StorageError(f"bucket {self.bucket!r} does not exist", where=where,
                                    hint="create it (dcops backup init) or fix the address")
            if code in _FULL:
                return StorageFull(f"the store refused to {action}: {code} {message}",
                                   where=where, hint="free space or raise the quota")
            return StorageError(f"the store refused to {action}: {code} {message}",
                                where=where)
        return StorageError(f"cannot {action}: {self.endpoint_url} unreachable ({exc})",
                            where=where, hint="check the endpoint address and the network")

    def save(self, kind: str, name: str, data: bytes) -> None:
        key = self._key(kind, name)
        if len(data) > MAX_OBJECT_BYTES:
            raise ValueError(f"{kind} {name}: {len(data)} bytes is over the single-PUT "
                             f"limit of {MAX_OBJECT_BYTES}")
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "write", key) from exc

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        key = self._key(kind, name)
        check_range(offset, length)
        if length == 0:
            self.size(kind, name)
            return b""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{last}"
        try:
            reply = self._client.get_object(**request)
            body = reply["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                raise MissingFile(kind, name) from None
            if code in ("InvalidRange", "416"):
                return b""
            raise self._fail(exc, "read", key) from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "read", key) from exc
        return data

    def size(self, kind: str, name: str) -> int:
        key = self._key(kind, name)
        try:
            reply = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise MissingFile(kind, name) from None
            raise self._fail(exc, "read", key) from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "read", key) from exc
        return int(reply["ContentLength"])

    def list(self, kind: str) -> Iterator[tuple[str, int]]:
        check_kind(kind)
        if kind == "config":
            with contextlib.suppress(MissingFile):
                yield "config", self.size("config", "config")
            return
        prefix = f"{self.prefix}/{kind}/" if self.prefix else f"{kind}/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix,
            PaginationConfig={"PageSize": self.list_page_size})
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if name and not name.startswith("."):
                        yield name, int(item["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, "list", prefix) from exc

    def remove(self, kind: str, name: str) -> None:
        key = self._key(kind, name)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return
            raise self._fail(exc, "remove", key) from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "remove", key) from exc

    def create_bucket_if_missing(self) -> bool:
        """Create the bucket unless it exists; whether it was created."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._fail(exc, "check the bucket", "") from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "check the bucket", "") from exc
        request: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**request)
        except ClientError as exc:
            if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            raise self._fail(exc, "create the bucket", "") from exc
        except BotoCoreError as exc:
            raise self._fail(exc, "create the bucket", "") from exc
        log.info("created bucket %s at %s", self.bucket, self.endpoint_url)
        return True

    def close(self) -> None:
        self._client.close()

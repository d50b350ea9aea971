"""What every ``s3://`` module shares: the URI, the client, the bucket's region, the errors
(botocore's, as a :class:`~flowtools.errors.SourceError` naming bucket, key and the missing
permission, never a secret) and the progress bar of listings and downloads.

Credentials, region and endpoint come from boto3's standard chain (``profile``, the
environment, SSO, roles, ``AWS_ENDPOINT_URL``); throttling and transient errors are retried
with back-off by botocore (:mod:`flowtools.aws`).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

from flowtools import aws
from flowtools.errors import SourceError, UsageError

#: Prefixes listed at once, and objects downloaded at once.
LIST_WORKERS = 16
DOWNLOAD_WORKERS = 16

_URI = re.compile(r"^s3://(?P<bucket>[^/]+)(?:/(?P<prefix>.*))?$")


def parse_uri(text: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``; the prefix keeps a trailing ``/``."""
    m = _URI.match(text)
    if m is None or not m["bucket"]:
        raise UsageError(f"not an S3 URI: {text!r} (expected s3://bucket/prefix)")
    return m["bucket"], (m["prefix"] or "")


def s3_error(e: BaseException, action: str, bucket: str, key: str | None = None,
             profile: str | None = None) -> SourceError:
    """The SourceError for a botocore error during ``action`` on ``s3://bucket[/key]``."""
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    mapped = aws.credentials_error(e, profile, SourceError)
    if mapped is not None:
        return mapped
    code, message = aws.error_code(e)
    if code in ("NoSuchBucket",) or (code == "404" and action == "HeadBucket"):
        return SourceError(f"{where}: no such bucket ({code or '404'}): check the bucket name and the account "
                           "your credentials belong to")
    if code in ("NoSuchKey", "404"):
        return SourceError(f"{where}: object not found ({code}) — it was removed after the listing; run again")
    if code in aws.EXPIRED:
        return SourceError(f"{action} {where}: AWS credentials expired ({code}): refresh them "
                           f"({aws.login_hint(profile)}) and run again")
    if code in aws.ACCESS_DENIED:
        need = {"ListObjectsV2": f"s3:ListBucket on arn:aws:s3:::{bucket}",
                "GetObject": f"s3:GetObject on arn:aws:s3:::{bucket}/{key or '*'} (and kms:Decrypt for SSE-KMS objects)",
                "HeadBucket": f"s3:ListBucket on arn:aws:s3:::{bucket}"}.get(action, f"s3:{action}")
        return SourceError(f"access denied: {action} {where} ({code}: {message or 'Access Denied'}); "
                           f"the principal needs {need}")
    if code in aws.BAD_CREDENTIALS:
        return SourceError(f"{action} {where}: AWS rejected the credentials ({code}): check them "
                           f"({aws.login_hint(profile)})")
    if code in aws.THROTTLED:
        return SourceError(f"{action} {where}: still throttled ({code}) after {aws.MAX_ATTEMPTS} attempts with "
                           "back-off; run again later")
    from botocore import exceptions as bx

    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return SourceError(f"{action} {where}: cannot reach S3: {e}")
    return SourceError(f"{action} {where} failed: {code + ': ' if code else ''}{message or e}")


def connect(profile: str | None) -> tuple[Any, Any]:
    """(boto3 session, S3 client) for ``profile``, with a connection pool for
    :data:`LIST_WORKERS` / :data:`DOWNLOAD_WORKERS` threads."""
    session = aws.session(profile, SourceError)
    client = session.client("s3", config=aws.client_config(pool=max(LIST_WORKERS, DOWNLOAD_WORKERS)))
    return session, client


def bucket_region(client: Any, bucket: str, profile: str | None) -> str | None:
    """The bucket's region (HeadBucket's ``x-amz-bucket-region``); a missing bucket is an error.
    A denied HeadBucket is not (a policy may allow listing a prefix only)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = client.head_bucket(Bucket=bucket)
        return head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") or client.meta.region_name
    except ClientError as e:
        code, _ = aws.error_code(e)
        if code in ("404", "NoSuchBucket"):
            raise s3_error(e, "HeadBucket", bucket, profile=profile) from None
        if code in aws.EXPIRED or code in aws.BAD_CREDENTIALS:
            raise s3_error(e, "HeadBucket", bucket, profile=profile) from None
        headers = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return headers.get("x-amz-bucket-region") or client.meta.region_name
    except BotoCoreError as e:
        raise s3_error(e, "HeadBucket", bucket, profile=profile) from None


class _Bar:
    """tqdm over bytes with a files counter; silent when progress is off."""

    def __init__(self, bar: Any, files: int):  # bar: a tqdm bar, or None
        self.bar, self.files, self.done = bar, files, 0
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        if self.bar is not None:
            with self._lock:
                self.bar.update(n)

    def file_done(self) -> None:
        if self.bar is not None:
            with self._lock:
                self.done += 1
                self.bar.set_postfix_str(f"{self.done}/{self.files} files", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(progress: bool | None, *, total: int | None, unit: str, desc: str, unit_scale: bool = False,
                 files: int = 0) -> _Bar:
    """A bar on stderr (``progress`` None: when stderr is a terminal), else a silent one."""
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return _Bar(None, files)
    from tqdm.auto import tqdm

    return _Bar(tqdm(total=total, unit=unit, unit_scale=unit_scale, desc=desc, leave=False, file=sys.stderr),
                files)

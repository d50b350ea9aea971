"""Fixtures for remote SOURCEs: one moto server per session (a real HTTP endpoint on
127.0.0.1), part of the sample uploaded to a bucket once, dummy credentials and a fresh
cache folder per test, and a fault-injecting proxy when a test asks for one."""

from __future__ import annotations

import re
from pathlib import Path

import aws_server
import pytest
from aws_server import SAMPLE_BUCKET, SAMPLE_PREFIX, upload_folder

#: The hours of the sample (by the time in the object names) put into the bucket: the
#: windows the S3 tests read (01:00-03:00, 10:00-11:00) with the listing's slack, a third
#: of the objects (each costs a PUT, and a GET per test that reads it).
S3_HOURS = ("00", "01", "02", "03", "09", "10", "11")
_HOUR = re.compile(r"_\d{8}T(\d{2})\d{2}Z_")


@pytest.fixture(scope="session")
def moto_url():
    with aws_server.moto_server() as url:
        yield url


def _env(monkeypatch: pytest.MonkeyPatch, url: str, home: Path | None = None) -> None:
    aws_server.use_endpoint(monkeypatch, url, home)


@pytest.fixture(scope="session")
def s3_sample(tmp_path_factory, sample_dir) -> Path:
    """What :func:`sample_bucket` holds, on disk: the sample's objects of :data:`S3_HOURS`
    and every other file of the sample (inventory, ip-ranges, truth), as symbolic links."""
    root = tmp_path_factory.mktemp("s3-sample")
    for path in sample_dir.rglob("*"):
        m = _HOUR.search(path.name)
        if path.is_file() and (m is None or m[1] in S3_HOURS):
            link = root / path.relative_to(sample_dir)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return root


@pytest.fixture(scope="session")
def sample_bucket(moto_url, s3_sample) -> str:
    """:func:`s3_sample` in ``s3://flowtools-sample/org-logs/``; returns that URI."""
    import boto3

    with pytest.MonkeyPatch.context() as mp:
        _env(mp, moto_url)
        from botocore.config import Config

        s3 = boto3.client("s3", config=Config(max_pool_connections=16))
        s3.create_bucket(Bucket=SAMPLE_BUCKET)
        upload_folder(s3, s3_sample, SAMPLE_BUCKET, SAMPLE_PREFIX)
    return f"s3://{SAMPLE_BUCKET}/{SAMPLE_PREFIX}"


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path) -> str:
    """Dummy credentials and ``AWS_ENDPOINT_URL`` for this test, a fresh cache folder; the
    server keeps what earlier tests of the module put there (buckets are per test name)."""
    home = tmp_path / "aws-home"
    home.mkdir()
    _env(monkeypatch, moto_url, home)
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return moto_url


@pytest.fixture
def s3(aws):
    import boto3

    return boto3.client("s3")


@pytest.fixture
def proxy(aws, monkeypatch):
    """Every request (boto3, Polars' object store) goes through a FaultProxy."""
    with aws_server.proxied(aws, monkeypatch) as p:
        yield p

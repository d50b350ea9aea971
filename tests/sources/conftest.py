"""Fixtures for remote SOURCEs: one moto server per module (a real HTTP endpoint on
127.0.0.1), the sample uploaded to a bucket once, dummy credentials and a fresh cache
folder per test, and a fault-injecting proxy when a test asks for one."""

from __future__ import annotations

from pathlib import Path

import aws_server
import pytest
from aws_server import SAMPLE_BUCKET, SAMPLE_PREFIX, upload_folder


@pytest.fixture(scope="module")
def moto_url():
    with aws_server.moto_server() as url:
        yield url


def _env(monkeypatch: pytest.MonkeyPatch, url: str, home: Path | None = None) -> None:
    aws_server.use_endpoint(monkeypatch, url, home)


@pytest.fixture(scope="module")
def sample_bucket(moto_url, sample_dir) -> str:
    """The embedded sample in ``s3://flowtools-sample/org-logs/``; returns that URI."""
    import boto3

    with pytest.MonkeyPatch.context() as mp:
        _env(mp, moto_url)
        from botocore.config import Config

        s3 = boto3.client("s3", config=Config(max_pool_connections=16))
        s3.create_bucket(Bucket=SAMPLE_BUCKET)
        upload_folder(s3, sample_dir, SAMPLE_BUCKET, SAMPLE_PREFIX)
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

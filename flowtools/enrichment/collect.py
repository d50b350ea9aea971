"""Collect an inventory from AWS with boto3: the AWS CLI's describe-* JSON, per account and region.

Writes into OUT_DIR, for every account and region, the files
``<account-id>-<region>-describe-<kind>.json`` (kind: network-interfaces, instances, vpcs,
subnets, security-groups), each holding exactly what ``aws ec2 describe-<kind> --output
json`` prints (all pages merged, timestamps as ISO 8601 strings), plus
``collect-summary.json``. ``flowtools.Inventory.load(OUT_DIR)`` reads them back.

Accounts: the caller's own account (the credentials of ``profile``/``session``/the standard
chain) when no role is given; with ``role_arns``, only the accounts of those roles (the
usual set-up: an audit role assumed from a tooling account), plus the caller's account when
``include_caller=True``. Regions: every region enabled in each account
(``DescribeRegions``), or ``regions``.

Failures: AccessDenied, expired or missing credentials, and an account whose role cannot be
assumed stop the collection with a ``CollectError`` naming account, region, call and role.
A region that is not usable (not opted in, ``AuthFailure``/``OptInRequired``, endpoint
unreachable, or any failure in an opt-in region) is skipped with a warning in the summary.
Throttling is retried with back-off by botocore (``retries={"mode": "standard",
"total_max_attempts": 8}``: up to 8 attempts per call, exponential back-off with jitter).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from flowtools import aws
from flowtools.aws_names import DESCRIBE_KINDS, REGION_NAME, inventory_file_name
from flowtools.errors import FlowtoolsError, UsageError
from flowtools.options import comma_list
from flowtools.progress import bar as progress_bar

#: kind -> (boto3 operation, result key) for the inventory contract (docs/design.md "Inventory layout").
KINDS: dict[str, tuple[str, str]] = DESCRIBE_KINDS
ROLE_SESSION_NAME = "flowtools-inventory"
SUMMARY_FILE = "collect-summary.json"
#: MaxResults per page: the largest every one of the five calls accepts.
PAGE_SIZE = 1000
RETRY_MODE, MAX_ATTEMPTS = aws.RETRY_MODE, aws.MAX_ATTEMPTS
#: Regions are collected concurrently (boto3 clients are thread-safe; they are created up front).
MAX_WORKERS = 8
#: Used for STS and DescribeRegions when neither the profile nor the environment names a region.
DEFAULT_REGION = "us-east-1"

_ACCESS_DENIED, _EXPIRED, _BAD_CREDENTIALS, _THROTTLED = aws.ACCESS_DENIED, aws.EXPIRED, aws.BAD_CREDENTIALS, aws.THROTTLED
#: What EC2 answers in a region the account has not enabled (or cannot use).
_REGION_UNAVAILABLE = {"AuthFailure", "OptInRequired", "InvalidClientTokenId", "UnrecognizedClientException"}
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")


class CollectError(FlowtoolsError):
    """Collecting the inventory from AWS failed (the message names account, region, call)."""


class AwsAccessDeniedError(CollectError):
    """AWS denied a call (IAM policy, SCP, or a role's trust policy)."""


class AwsCredentialsError(CollectError):
    """No usable credentials: none found, unknown profile, expired or invalid."""


@dataclass
class AccountSummary:
    account_id: str
    principal: str
    role_arn: str | None
    regions: list[str] = field(default_factory=list)
    skipped_regions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


@dataclass
class CollectSummary:
    """What ``collect_inventory`` did: also saved as ``collect-summary.json`` in OUT_DIR."""

    out_dir: str
    started: str
    seconds: float = 0.0
    accounts: list[AccountSummary] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Items per kind over all accounts and regions (instances, not reservations)."""
        total = dict.fromkeys(KINDS, 0)
        for a in self.accounts:
            for k, n in a.counts.items():
                total[k] += n
        return total

    @property
    def regions(self) -> list[str]:
        return sorted({r for a in self.accounts for r in a.regions})

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir, "started": self.started, "seconds": round(self.seconds, 3),
            "accounts": [asdict(a) for a in self.accounts], "regions": self.regions,
            "counts": self.counts, "files": self.files, "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        """The human summary (the CLI prints it to stderr)."""
        counts = ", ".join(f"{n} {k}" for k, n in self.counts.items())
        out = [f"inventory: {len(self.accounts)} account(s), {len(self.regions)} region(s), "
               f"{len(self.files)} file(s) in {self.out_dir} in {self.seconds:.1f} s: {counts}"]
        for a in self.accounts:
            skipped = f"; skipped {', '.join(a.skipped_regions)}" if a.skipped_regions else ""
            out.append(f"  {a.account_id} ({a.principal}): {len(a.regions)} region(s){skipped}")
        return out


class _RegionUnavailable(Exception):
    """Internal: a region cannot be used; it is skipped with a warning."""


T = TypeVar("T")


@dataclass
class _Target:
    account_id: str
    principal: str
    session: Any  # boto3.Session
    role_arn: str | None


def collect_inventory(
    out_dir: str | os.PathLike,
    *,
    session: Any = None,
    profile: str | None = None,
    regions: Sequence[str] | str | None = None,
    role_arns: Iterable[str] = (),
    external_id: str | None = None,
    include_caller: bool = False,
    progress: bool | None = None,
    max_workers: int = MAX_WORKERS,
    max_attempts: int = MAX_ATTEMPTS,
    retry_mode: str = RETRY_MODE,
) -> CollectSummary:
    """Write the describe-* inventory of every account and region into ``out_dir``.

    ``session`` (a ``boto3.Session``) or ``profile`` choose the caller's credentials; by
    default boto3's standard chain (environment, ``AWS_PROFILE``, SSO, instance role...).
    ``regions`` overrides the enabled-region discovery (a list or ``"a,b"``).
    ``role_arns``: accounts to collect by assuming these roles (RoleSessionName
    ``flowtools-inventory``, with ``external_id`` when given); the caller's own account is
    then collected only with ``include_caller=True``. ``progress``: a tqdm bar on stderr
    (default: when stderr is a terminal).

    Cost: 5 paginated calls per account and region (about 17 regions per account by
    default), run ``max_workers`` regions at a time; every page is held in memory until its
    file is written. Raises ``CollectError`` subclasses (see the module docstring).
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    if session is not None and profile is not None:
        raise UsageError("pass either session or profile, not both")
    roles = list(role_arns or ())
    for arn in roles:
        if not _ROLE_ARN.match(arn):
            raise UsageError(f"not an IAM role ARN: {arn!r} (expected arn:aws:iam::123456789012:role/NAME)")
    region_list = _region_list(regions)
    started = time.monotonic()
    summary = CollectSummary(out_dir=str(out_dir), started=_iso(datetime.now(UTC)))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CollectError(f"cannot create OUT_DIR {out}: {e.strerror or e}") from None

    if session is None:
        try:
            session = boto3.Session(profile_name=profile)
        except BotoCoreError as e:  # ProfileNotFound, a broken config file...
            raise _credentials_error(e, profile) from None
    home = session.region_name or DEFAULT_REGION
    config = aws.client_config(max_attempts=max_attempts, retry_mode=retry_mode, pool=max_workers,
                               agent="flowtools-inventory")
    ctx = _Context(profile, max_attempts)

    # 1. accounts: the caller, then each role
    targets: list[_Target] = []
    caller_sts = ctx.call(lambda: session.client("sts", region_name=home, config=config),
                          "creating an STS client", None, home, None)
    if not roles or include_caller:
        ident = ctx.call(caller_sts.get_caller_identity, "sts:GetCallerIdentity", None, home, None)
        targets.append(_Target(ident["Account"], ident["Arn"], session, None))
    for arn in roles:
        targets.append(_assume(ctx, caller_sts, session, arn, external_id, home, config))
    seen: set[str] = set()
    for t in list(targets):
        if t.account_id in seen:
            summary.warnings.append(f"account {t.account_id} given twice ({t.role_arn or t.principal}): collected once")
            targets.remove(t)
        seen.add(t.account_id)

    # 2. regions per account, and the clients (created here: creating clients is not thread-safe)
    jobs: list[tuple[_Target, AccountSummary, str, Any, str]] = []
    for t in targets:
        acct = AccountSummary(t.account_id, t.principal, t.role_arn)
        summary.accounts.append(acct)
        # Given regions are used as they are (no ec2:DescribeRegions needed); one the account
        # has not enabled answers AuthFailure/OptInRequired and is skipped with a warning.
        statuses = {} if region_list else _enabled_regions(ctx, t, home, config)
        wanted = region_list or sorted(statuses)
        for r in wanted:
            client = t.session.client("ec2", region_name=r, config=config)
            jobs.append((t, acct, r, client, statuses.get(r, "unknown")))

    # 3. collect, several regions at a time
    bar = progress_bar(progress, total=len(jobs) * len(KINDS), desc="inventory", unit="list")
    lock = threading.Lock()

    def tick(what: str) -> None:
        with lock:
            bar.set_postfix_str(what, refresh=False)
            bar.update(1)

    def run(job: tuple[_Target, AccountSummary, str, Any, str]) -> tuple[_Target, AccountSummary, str, dict[str, dict] | None, str | None]:
        t, acct, region, client, status = job
        try:
            return t, acct, region, _collect_region(ctx, t, region, client, status, tick), None
        except _RegionUnavailable as e:
            return t, acct, region, None, str(e)

    try:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            futures = [pool.submit(run, job) for job in jobs]
            try:
                for fut in as_completed(futures):
                    t, acct, region, documents, skipped = fut.result()
                    if documents is None:
                        acct.skipped_regions[region] = skipped or "unavailable"
                        summary.warnings.append(f"account {t.account_id} region {region} skipped: {skipped}")
                        bar.update(len(KINDS))
                        continue
                    acct.regions.append(region)
                    for kind, doc in documents.items():
                        name = inventory_file_name(t.account_id, region, kind)
                        _write_json(out / name, doc)
                        summary.files.append(name)
                        acct.counts[kind] += _count(kind, doc)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
    for a in summary.accounts:
        a.regions.sort()
        a.skipped_regions = dict(sorted(a.skipped_regions.items()))
    summary.files.sort()
    summary.warnings.sort()
    summary.seconds = time.monotonic() - started
    _write_json(out / SUMMARY_FILE, summary.to_dict(), indent=2)
    return summary


def _region_list(regions: Sequence[str] | str | None) -> list[str] | None:
    if regions is None:
        return None
    items = list(dict.fromkeys(comma_list(regions) or ()))
    bad = [r for r in items if not REGION_NAME.match(r)]
    if bad or not items:
        raise UsageError(f"not a region name: {', '.join(map(repr, bad)) or 'none given'} (expected e.g. us-east-1,eu-west-1)")
    return items


def _assume(ctx: _Context, sts: Any, base_session: Any, arn: str, external_id: str | None, home: str,
            config: Any) -> _Target:
    import boto3

    kwargs = {"RoleArn": arn, "RoleSessionName": ROLE_SESSION_NAME}
    if external_id:
        kwargs["ExternalId"] = external_id
    creds = ctx.call(lambda: sts.assume_role(**kwargs)["Credentials"], "sts:AssumeRole", None, home, arn)
    assumed = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=base_session.region_name)
    client = assumed.client("sts", region_name=home, config=config)
    ident = ctx.call(client.get_caller_identity, "sts:GetCallerIdentity", None, home, arn)
    return _Target(ident["Account"], ident["Arn"], assumed, arn)


def _enabled_regions(ctx: _Context, t: _Target, home: str, config: Any) -> dict[str, str]:
    """region -> OptInStatus of the regions enabled in the account."""
    ec2 = t.session.client("ec2", region_name=home, config=config)
    found = ctx.call(lambda: ec2.describe_regions(AllRegions=False)["Regions"], "ec2:DescribeRegions",
                     t.account_id, home, t.role_arn)
    # AllRegions=False already leaves out regions not opted in; the filter guards emulators.
    return {r["RegionName"]: r.get("OptInStatus", "opt-in-not-required") for r in found
            if r.get("OptInStatus") != "not-opted-in"}


def _collect_region(ctx: _Context, t: _Target, region: str, client: Any, opt_in_status: str,
                    tick: Callable[[str], None]) -> dict[str, dict]:
    documents = {}
    for kind, (operation, key) in KINDS.items():
        call = f"ec2:{_camel(operation)}"

        def pages(operation: str = operation, key: str = key) -> dict:
            items: list = []
            for page in client.get_paginator(operation).paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
                items.extend(page.get(key, []))
            return {key: items}

        documents[kind] = ctx.call(pages, call, t.account_id, region, t.role_arn,
                                   region_level=True, opt_in=opt_in_status == "opted-in")
        tick(f"{t.account_id} {region} {kind}")
    return documents


def _camel(operation: str) -> str:
    return "".join(w.capitalize() for w in operation.split("_"))


class _Context:
    """Turns botocore's exceptions into flowtools errors that name account, region, call, role."""

    def __init__(self, profile: str | None, max_attempts: int):
        self.profile = profile
        self.max_attempts = max_attempts

    def call(self, fn: Callable[[], T], call: str, account: str | None, region: str, role: str | None, *,
             region_level: bool = False, opt_in: bool = False) -> T:
        from botocore import exceptions as bx
        from botocore.parsers import ResponseParserError

        where = _where(account, region, role)
        try:
            return fn()
        except bx.ClientError as e:
            err = e.response.get("Error", {})
            code, message = err.get("Code", "Unknown"), err.get("Message", "")
            if code in _EXPIRED:
                raise AwsCredentialsError(
                    f"AWS credentials expired ({code}) during {call} {where}: {message} — refresh them "
                    f"({self._login_hint()}) and run again") from None
            if region_level and (opt_in or code in _REGION_UNAVAILABLE):
                raise _RegionUnavailable(f"{call}: {code}: {message}") from None
            if code in _ACCESS_DENIED:
                if call == "sts:AssumeRole":
                    raise AwsAccessDeniedError(
                        f"access denied: cannot assume role {role} ({code}: {message}); check the role's trust "
                        "policy allows your principal (and the external id, if it requires one)") from None
                raise AwsAccessDeniedError(
                    f"access denied: {call} {where} ({code}: {message}); the principal needs "
                    f"{call} (e.g. the ReadOnlyAccess or SecurityAudit policy)") from None
            if code in _BAD_CREDENTIALS:
                raise AwsCredentialsError(
                    f"AWS rejected the credentials ({code}) during {call} {where}: {message} — "
                    f"check them ({self._login_hint()})") from None
            if code in _THROTTLED:
                raise CollectError(
                    f"{call} {where} still throttled ({code}) after {self.max_attempts} attempts with "
                    "back-off: run again later, or with fewer regions at a time") from None
            raise CollectError(f"{call} failed {where}: {code}: {message}") from None
        except ResponseParserError as e:
            raise CollectError(f"{call} {where}: the response could not be parsed: {e}") from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as e:
            if region_level:
                raise _RegionUnavailable(f"{call}: endpoint unreachable: {e}") from None
            raise CollectError(f"cannot reach AWS for {call} {where}: {e}") from None
        except bx.ParamValidationError as e:
            raise UsageError(f"invalid parameter for {call}: {e}") from None
        except bx.NoRegionError:
            raise UsageError("no AWS region configured: set AWS_DEFAULT_REGION or the profile's region") from None
        except bx.BotoCoreError as e:
            mapped = _credentials_error(e, self.profile)
            if isinstance(mapped, AwsCredentialsError):
                raise mapped from None
            raise CollectError(f"{call} failed {where}: {e}") from None

    def _login_hint(self) -> str:
        return aws.login_hint(self.profile)


def _where(account: str | None, region: str, role: str | None) -> str:
    parts = [f"in account {account}" if account else "for the caller", f"region {region}"]
    if role:
        parts.append(f"via role {role}")
    return " ".join(parts)


def _credentials_error(e: Exception, profile: str | None) -> Exception:
    """The flowtools error for a credentials problem; ``e`` itself when it is not one."""
    return aws.credentials_error(e, profile, AwsCredentialsError) or e


def _count(kind: str, doc: dict) -> int:
    if kind == "instances":
        return sum(len(r.get("Instances", [])) for r in doc["Reservations"])
    return len(next(iter(doc.values())))


def _jsonable(value: Any) -> Any:
    # The AWS CLI v2 prints timestamps with datetime.isoformat(): 2026-11-20T10:00:00+00:00.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_json(path: Path, document: Any, indent: int = 4) -> None:
    """Atomically write JSON as the AWS CLI does (indent 4, non-ASCII kept, ISO timestamps)."""
    text = json.dumps(document, indent=indent, ensure_ascii=False, default=_jsonable) + "\n"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise CollectError(f"cannot write {path}: {e.strerror or e}") from None


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

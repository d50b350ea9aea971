"""What every part that talks to AWS shares: sessions, retry settings, error codes.

Credentials and endpoints always come from boto3's standard chain (``--profile``, the
environment, SSO, instance and container roles, ``AWS_ENDPOINT_URL``); flowtools never
reads or prints secrets itself. The callers (inventory collection, the S3 and CloudWatch
Logs sources) turn botocore's errors into :class:`~flowtools.errors.FlowtoolsError`
messages that name what was being done; the code sets below say which error is which.
"""

from __future__ import annotations

from typing import Any, TypeVar

#: botocore retry settings: "standard" retries throttling (RequestLimitExceeded, SlowDown,
#: Throttling, ...) and transient 5xx / connection errors with exponential back-off and jitter.
RETRY_MODE = "standard"
MAX_ATTEMPTS = 8  # attempts per call, the first one included

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
                           "Forbidden", "403", "AllAccessDisabled"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                             "AuthFailure", "InvalidAccessKeyId", "InvalidToken"})
THROTTLED = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                       "RequestThrottled", "EC2ThrottledException", "SlowDown", "RequestThrottledException"})


def client_config(*, max_attempts: int = MAX_ATTEMPTS, retry_mode: str = RETRY_MODE, pool: int = 10,
                  agent: str = "flowtools") -> Any:
    """botocore ``Config`` with flowtools' retries, timeouts and connection pool size."""
    from botocore.config import Config

    return Config(retries={"mode": retry_mode, "total_max_attempts": max_attempts}, user_agent_extra=agent,
                  connect_timeout=10, read_timeout=60, max_pool_connections=max(10, pool))


def error_code(e: BaseException) -> tuple[str, str]:
    """(code, message) of a botocore ``ClientError`` (``("", str(e))`` for anything else)."""
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return "", str(e)
    err = response.get("Error", {}) or {}
    code = str(err.get("Code", "") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code, str(err.get("Message", "") or "")


def login_hint(profile: str | None) -> str:
    """How to get fresh credentials, for error messages."""
    if profile:
        return f"e.g. `aws sso login --profile {profile}` or new keys for profile {profile!r}"
    return "e.g. `aws sso login`, new environment credentials, or --profile"


_E = TypeVar("_E", bound=Exception)


def credentials_error(e: BaseException, profile: str | None, error: type[_E]) -> _E | None:
    """An ``error`` instance for a botocore credentials problem (no credentials, unknown
    profile, expired SSO session...), or None when ``e`` is not one."""
    from botocore import exceptions as bx

    if isinstance(e, bx.ProfileNotFound):
        return error(f"AWS profile {profile!r} not found in the AWS config files (~/.aws/config)")
    if isinstance(e, bx.NoCredentialsError):
        return error("no AWS credentials found: configure a profile (--profile NAME), environment variables "
                     "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or an instance role")
    if isinstance(e, bx.PartialCredentialsError | bx.CredentialRetrievalError | bx.InvalidConfigError
                  | bx.ConfigParseError):
        return error(f"cannot load AWS credentials: {e}")
    token_errors = tuple(getattr(bx, n) for n in ("TokenRetrievalError", "SSOTokenLoadError",
                                                  "UnauthorizedSSOTokenError") if hasattr(bx, n))
    if isinstance(e, token_errors):
        hint = f" --profile {profile}" if profile else ""
        return error(f"AWS SSO session expired or missing: run `aws sso login{hint}` ({e})")
    return None


def session(profile: str | None, error: type[Exception]) -> Any:
    """``boto3.Session(profile_name=profile)``; a bad profile or config raises ``error``."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile)
    except BotoCoreError as e:
        raise (credentials_error(e, profile, error) or error(f"cannot set up AWS: {e}")) from None

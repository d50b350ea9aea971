"""What an interface belongs to, read from its description: the one table of naming rules.

AWS describes the interfaces it creates for its services in a fixed way
(``Interface for NAT Gateway nat-0abc``, ``ELB app/web/0123abcd``, ...). Each rule of
:data:`DESCRIPTION_RULES` is a pattern with a group ``id`` (the resource's id) and/or a
group ``name`` (a readable name): :func:`resource_id` reads the first rule with an ``id``
that matches, :func:`resource_name` the first with a ``name``.
"""

from __future__ import annotations

import re

__all__ = ["DESCRIPTION_RULES", "resource_id", "resource_name"]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

DESCRIPTION_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"^Interface for NAT Gateway (?P<id>(?P<name>nat-[0-9a-zA-Z]+))"),
    # Network, Application and Gateway Load Balancers: id net/{name}/{hash}
    re.compile(r"^ELB (?P<id>(?:net|app|gwy)/(?P<name>[^/\s]+)/[0-9a-zA-Z]+)"),
    re.compile(r"^ELB (?P<id>(?P<name>[^/\s]+))$"),  # Classic Load Balancer
    re.compile(r"^VPC Endpoint Interface (?P<id>(?P<name>vpce-[0-9a-zA-Z]+))"),
    re.compile(r"^Network Interface for Transit Gateway Attachment (?P<id>(?P<name>tgw-attach-[0-9a-zA-Z]+))"),
    re.compile(r"^AWS Lambda VPC ENI-(?P<id>(?P<name>.+?))-" + _UUID + r"$", re.IGNORECASE),
    re.compile(r"^AWS Lambda VPC ENI-(?P<name>.+)$"),  # no UUID: a name, not an id
    re.compile(r"^(?P<id>arn:aws[a-z-]*:ecs:\S+)$"),  # an ECS task attachment
)


def _match(description: str | None, group: str) -> str | None:
    text = (description or "").strip()
    for pattern in DESCRIPTION_RULES:
        if group in pattern.groupindex and (m := pattern.match(text)):
            return m.group(group)
    return None


def resource_id(description: str | None, *, instance_id: str | None = None,
                interface_id: str | None = None) -> str | None:
    """The id of what an interface belongs to: its instance; else what its description
    names (``nat-0abc``, ``net/api-nlb/0123abcd`` for a load balancer, ``vpce-0abc``,
    ``tgw-attach-0abc``, a Lambda function's name, an ECS attachment's ARN); else the
    interface itself."""
    if instance_id:
        return instance_id
    return _match(description, "id") or interface_id


def resource_name(description: str | None, *, instance_name: str | None = None,
                  interface_name: str | None = None) -> str | None:
    """A readable name for an interface.

    The instance's Name tag; else the resource named by the interface's description
    (``Interface for NAT Gateway nat-0abc`` -> ``nat-0abc``, ``ELB net/api-nlb/0123`` /
    ``ELB app/{name}/...`` / ``ELB {name}`` -> the load balancer's name, ``VPC Endpoint
    Interface vpce-0abc`` -> ``vpce-0abc``, ``Network Interface for Transit Gateway
    Attachment tgw-attach-0abc`` -> ``tgw-attach-0abc``, ``AWS Lambda VPC ENI-{function}-{uuid}`` -> the
    function); else the interface's own Name tag; else the description; else None.
    """
    if instance_name:
        return instance_name
    return _match(description, "name") or interface_name or (description or "").strip() or None

"""What an interface belongs to, read from its description: the one table of naming rules.

AWS describes the interfaces it creates for its services in a fixed way
(``Interface for NAT Gateway nat-0abc``, ``ELB app/web/0123abcd``, ...). Each rule of
:data:`DESCRIPTION_RULES` is a pattern with a group ``id`` (the resource's id) and/or a
group ``name`` (a readable name): :func:`resource_id` reads the first rule with an ``id``
that matches, :func:`resource_name` the first with a ``name``.

An ECS task's interface (Fargate, ``awsvpc``) is described only by its attachment's ARN;
its records (v7 field ``ecs-service-name``) tell the service that started the task:
:func:`ecs_service_names` reads that from the flows, and :func:`resource_names` names
such an interface by its service when the inventory has no better name.
"""

from __future__ import annotations

import re
from typing import Any

import narwhals as nw
import polars as pl

from flowtools import frames

__all__ = ["DESCRIPTION_RULES", "ecs_names_of_pairs", "ecs_pairs", "ecs_service_names", "resource_id", "resource_name", "resource_names"]

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
                  interface_name: str | None = None, ecs_service: str | None = None) -> str | None:
    """A readable name for an interface.

    The instance's Name tag; else the resource named by the interface's description
    (``Interface for NAT Gateway nat-0abc`` -> ``nat-0abc``, ``ELB net/api-nlb/0123`` /
    ``ELB app/{name}/...`` / ``ELB {name}`` -> the load balancer's name, ``VPC Endpoint
    Interface vpce-0abc`` -> ``vpce-0abc``, ``Network Interface for Transit Gateway
    Attachment tgw-attach-0abc`` -> ``tgw-attach-0abc``, ``AWS Lambda VPC ENI-{function}-{uuid}`` -> the
    function); else the interface's own Name tag; else ``ecs_service``, the ECS service
    its records name (an ECS task's interface, described only by its attachment's ARN;
    :func:`resource_names` applies this to tables); else the description; else None.
    """
    if instance_name:
        return instance_name
    return (_match(description, "name") or interface_name or ecs_service or (description or "").strip()
            or None)


#: The schema of :func:`ecs_service_names`.
ECS_SCHEMA = pl.Schema({"interface_id": pl.String(), "ecs_service_name": pl.String()})


#: The name (and version) of the per-hour facts of :func:`ecs_service_names`.
ECS_FACTS = "ecs-services-1"


def ecs_service_names(flows: Any) -> pl.DataFrame:
    """``interface_id`` (lower-cased) -> ``ecs_service_name``: the ECS services named in
    each interface's records (column ``ecs_service_name``; ``-`` and nulls ignored; several
    are joined with ``", "`` in sorted order). Empty when the flows have no such column
    (formats before v7), without reading them. Cost: one hash aggregate of two columns
    over the records at call time; the result follows interfaces, not records. A ``Flows``
    that reads the partition store's window unchanged reads the store's per-hour facts
    instead (:func:`flowtools.store.facts.flows_facts`)."""
    from flowtools.store.facts import flows_facts

    parts = flows_facts(flows, name=ECS_FACTS, compute=ecs_pairs)
    return ecs_names_of_pairs(parts if parts is not None else [ecs_pairs(flows)])


def ecs_pairs(flows: Any) -> pl.DataFrame:
    """The distinct (``interface_id``, ``ecs_service_name``) of the records, as logged, with
    their record counts ``_n``: what :func:`ecs_names_of_pairs` names interfaces from (the
    pairs of parts of the flows add up). Empty without the column, without reading."""
    lf = frames.lazy(flows)
    if "ecs_service_name" not in lf.collect_schema().names():
        return pl.DataFrame(schema={**ECS_SCHEMA, "_n": pl.Int64})
    service = nw.col("ecs_service_name")
    return (lf.filter(~nw.col("interface_id").is_null() & ~service.is_null() & (service != "-") & (service != ""))
            .group_by("interface_id", "ecs_service_name").agg(_n=nw.len()).collect("polars").to_native()
            .cast({"_n": pl.Int64}))


def ecs_names_of_pairs(pairs: list[pl.DataFrame]) -> pl.DataFrame:
    """:func:`ecs_service_names` from the :func:`ecs_pairs` of parts of the flows."""
    frame = pl.concat([p.select(*ECS_SCHEMA).cast(ECS_SCHEMA) for p in pairs]) if pairs else pl.DataFrame(
        schema=ECS_SCHEMA)
    return (frame.select(pl.col("interface_id").str.to_lowercase(), "ecs_service_name").unique()
            .sort("interface_id", "ecs_service_name")
            .group_by("interface_id", maintain_order=True).agg(pl.col("ecs_service_name").str.join(", "))
            .cast(ECS_SCHEMA))


def resource_names(interfaces: pl.DataFrame, ecs: pl.DataFrame) -> pl.DataFrame:
    """``interface_id`` (lower-cased) -> ``resource_name`` for every interface of the
    inventory (``interfaces``: its ``interface_id``, ``description``, ``resource_name``):
    the inventory's name, except where it has no better name than the interface's
    description (an ECS attachment's ARN) or none at all and the records name an ECS
    service (``ecs``, :func:`ecs_service_names`): then the service. Interfaces the
    inventory lacks stay unnamed. Small tables only (Polars, eager)."""
    inventory = interfaces.select(
        interface_id=pl.col("interface_id").str.to_lowercase(), resource_name=pl.col("resource_name"),
        _description=pl.col("description").str.strip_chars()).unique("interface_id", keep="first")
    joined = inventory.join(ecs, on="interface_id", how="left")
    no_better = pl.col("resource_name").is_null() | (pl.col("resource_name") == pl.col("_description")).fill_null(False)
    return joined.select(
        "interface_id",
        resource_name=pl.when(no_better & pl.col("ecs_service_name").is_not_null())
        .then(pl.col("ecs_service_name")).otherwise(pl.col("resource_name")),
    )

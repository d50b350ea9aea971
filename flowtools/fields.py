"""The VPC Flow Logs field catalogue: one declaration that every reader and the docs use.

Each field has its AWS name (as in a log format string and a text file's header), the
canonical column name (AWS's Parquet name: ``-`` replaced by ``_``), its type (AWS's
Parquet type), the flow-log version that introduced it, and its meaning.

Facts: ``docs/format.md`` "Records and fields" (AWS's user guide, field tables of
2023-2026). Transit Gateway flow logs (version 6) are a different resource and out of
scope: their fields, if met in a header, are kept as unknown string columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["int32", "int64", "string"]


@dataclass(frozen=True)
class Field:
    """One flow-log field."""

    name: str  # AWS's name, e.g. "tcp-flags"
    type: FieldType
    version: int  # the flow-log version that introduced it
    meaning: str

    @property
    def column(self) -> str:
        """Canonical column name: AWS's Parquet name (``tcp-flags`` -> ``tcp_flags``)."""
        return column_name(self.name)


def column_name(field_name: str) -> str:
    """The canonical column for any field name, known or not (``-`` -> ``_``)."""
    return field_name.strip().lower().replace("-", "_")


_I32: FieldType = "int32"
_I64: FieldType = "int64"
_S: FieldType = "string"

#: Every ENI flow-log field, in AWS's table order (versions 2-5, 7, 8 and newer).
FIELDS: tuple[Field, ...] = (
    # -- version 2: the default format, in this exact order
    Field("version", _I32, 2, "Highest flow-log version among the fields of the format"),
    Field("account-id", _S, 2, "Account owning the interface; 'unknown' for some service-owned interfaces"),
    Field("interface-id", _S, 2, "Network interface (ENI) that recorded the traffic"),
    Field("srcaddr", _S, 2, "Source address (outbound: the interface's own private address)"),
    Field("dstaddr", _S, 2, "Destination address (inbound: the interface's primary private address)"),
    Field("srcport", _I32, 2, "Source port (0 for ICMP)"),
    Field("dstport", _I32, 2, "Destination port (0 for ICMP)"),
    Field("protocol", _I32, 2, "IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)"),
    Field("packets", _I64, 2, "Packets in the aggregation interval"),
    Field("bytes", _I64, 2, "Bytes in the aggregation interval"),
    Field("start", _I64, 2, "Unix seconds of the first packet in the interval"),
    Field("end", _I64, 2, "Unix seconds of the last packet in the interval"),
    Field("action", _S, 2, "ACCEPT or REJECT (security group / network ACL, or late packets)"),
    Field("log-status", _S, 2, "OK, NODATA (no traffic) or SKIPDATA (records skipped)"),
    # -- version 3
    Field("vpc-id", _S, 3, "VPC of the interface"),
    Field("subnet-id", _S, 3, "Subnet of the interface"),
    Field("instance-id", _S, 3, "Instance attached to the interface, if owned; '-' for requester-managed interfaces"),
    Field("tcp-flags", _I32, 3, "OR of FIN 1, SYN 2, RST 4, SYN-ACK 18 seen in the interval; 0 for data-only"),
    Field("type", _S, 3, "IPv4, IPv6 or EFA"),
    Field("pkt-srcaddr", _S, 3, "The packet's original source address (differs through NAT gateways, TGW)"),
    Field("pkt-dstaddr", _S, 3, "The packet's original destination address"),
    # -- version 4
    Field("region", _S, 4, "Region of the interface"),
    Field("az-id", _S, 4, "Availability Zone ID of the interface"),
    Field("sublocation-type", _S, 4, "wavelength, outpost or localzone"),
    Field("sublocation-id", _S, 4, "ID of the sublocation"),
    # -- version 5
    Field("pkt-src-aws-service", _S, 5, "ip-ranges.json service of pkt-srcaddr"),
    Field("pkt-dst-aws-service", _S, 5, "ip-ranges.json service of pkt-dstaddr"),
    Field("flow-direction", _S, 5, "ingress or egress, relative to the recording interface (packets, not initiators)"),
    Field("traffic-path", _I32, 5, "Egress path: 1 same VPC, 2 IGW/gateway endpoint, 3 VGW, 4 intra-region peering, 5 inter-region peering, 6 local gateway, 7 gateway endpoint (Nitro), 8 IGW (Nitro)"),
    # -- version 7: ECS
    Field("ecs-cluster-arn", _S, 7, "ECS cluster of the running task"),
    Field("ecs-cluster-name", _S, 7, "ECS cluster name"),
    Field("ecs-container-instance-arn", _S, 7, "ECS container instance ('-' on Fargate)"),
    Field("ecs-container-instance-id", _S, 7, "ECS container instance id ('-' on Fargate)"),
    Field("ecs-container-id", _S, 7, "Docker runtime id of the task's first container"),
    Field("ecs-second-container-id", _S, 7, "Docker runtime id of the task's second container"),
    Field("ecs-service-name", _S, 7, "ECS service that started the task"),
    Field("ecs-task-definition-arn", _S, 7, "ECS task definition"),
    Field("ecs-task-arn", _S, 7, "ECS task"),
    Field("ecs-task-id", _S, 7, "ECS task id"),
    # -- version 8
    Field("reject-reason", _S, 8, "Why traffic was rejected: BPA (VPC Block Public Access), else '-'"),
    # -- versions 9-10 (version numbers unverified; kept as strings)
    Field("resource-id", _S, 10, "Resource the record belongs to (e.g. a regional NAT gateway); semantics unverified"),
    Field("encryption-status", _S, 10, "VPC Encryption Controls: 0 none, 1 Nitro, 2 application (inferred), 3 both"),
    # -- version 11
    Field("interface-type", _S, 11, "Type of the recording interface"),
    Field("next-hop-interface-id", _S, 11, "Interface of the next hop"),
    Field("next-hop-subnet-id", _S, 11, "Subnet of the next hop"),
    Field("next-hop-az-id", _S, 11, "AZ ID of the next hop"),
    Field("next-hop-vpc-id", _S, 11, "VPC of the next hop"),
    Field("next-hop-interface-type", _S, 11, "Interface type of the next hop (e.g. regional_nat_gateway)"),
    Field("instance-tag", _S, 11, "Value of the configured instance tag"),
    Field("interface-tag", _S, 11, "Value of the configured interface tag"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}

#: The default (version 2) format: fixed order, cannot be changed.
DEFAULT_FORMAT: tuple[str, ...] = tuple(f.name for f in FIELDS if f.version == 2)

#: Derived columns added by every reader, after the field columns, in this order.
#: start_time/end_time: UTC timestamps; source_file: key relative to SOURCE;
#: flow_log_id, source_account_id, source_region: from the object key.
DERIVED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("start_time", "timestamp"),
    ("end_time", "timestamp"),
    ("source_file", "string"),
    ("flow_log_id", "string"),
    ("source_account_id", "string"),
    ("source_region", "string"),
)

#: start/end above this are milliseconds (seen in real logs "contra the docs",
#: flowlogs-reader); they are divided by 1000. 10**11 s is the year 5138.
MILLISECONDS_THRESHOLD = 10**11

#: The token AWS writes for "not applicable / not computed"; read as NULL.
NULL_TOKEN = "-"

CANONICAL_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS) + tuple(
    c for c, _ in DERIVED_COLUMNS
)


def parse_log_format(text: str) -> list[str]:
    """Field names of a log format: AWS syntax (``${version} ${account-id}``) or bare names.

    >>> parse_log_format("${version} ${srcaddr}")
    ['version', 'srcaddr']
    """
    names = []
    for token in text.replace(",", " ").split():
        token = token.strip()
        if token.startswith("${") and token.endswith("}"):
            token = token[2:-1]
        token = token.strip().lower().replace("_", "-")
        if token:
            names.append(token)
    if not names:
        raise ValueError(f"empty log format: {text!r}")
    return names


def field_type(name_or_column: str) -> FieldType:
    """The type of a field by AWS name or column; unknown fields are strings."""
    col = column_name(name_or_column)
    f = BY_COLUMN.get(col)
    return f.type if f else "string"


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (used by the docs)."""
    lines = ["| field | column | type | version | meaning |", "|---|---|---|---|---|"]
    for f in FIELDS:
        lines.append(f"| `{f.name}` | `{f.column}` | {f.type} | {f.version} | {f.meaning} |")
    return "\n".join(lines)


def catalogue_document() -> str:
    """docs/fields.md, generated from the catalogue."""
    return (
        "# Flow-log field catalogue\n\n"
        "Generated from `flowtools/fields.py` (`python -m flowtools.fields > docs/fields.md`); "
        "a test keeps it in step.\nColumns are AWS's Parquet names; types are AWS's Parquet types. "
        "Unknown fields found in a header are kept as string columns.\n\n" + catalogue_markdown() + "\n"
    )


if __name__ == "__main__":
    print(catalogue_document(), end="")

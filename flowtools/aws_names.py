"""The shapes of AWS names and ids that flowtools reads: regions, accounts, organizations,
and the inventory's ``describe-<kind>`` files. One pattern per name: every module that
checks one imports it from here."""

from __future__ import annotations

import re

__all__ = ["ACCOUNT_ID", "DESCRIBE_KINDS", "INVENTORY_FILE", "INVENTORY_FILE_PATTERN", "ORGANIZATION_ID",
           "REGION", "REGION_NAME", "inventory_file_name"]

#: A region name as a regular-expression fragment (no anchors): ``us-east-1``,
#: ``us-gov-west-1``, ``ap-southeast-5``.
REGION = r"[a-z]{2}(?:-[a-z0-9]+)+-\d+"
#: A whole string that is a region name.
REGION_NAME = re.compile(rf"^{REGION}$")
#: A 12-digit AWS account id.
ACCOUNT_ID = re.compile(r"^\d{12}$")
#: An AWS Organizations id (``o-`` and 10 to 32 lower-case letters or digits): the folder
#: an organization trail or flow log adds above the account folders.
ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")

#: The inventory's kinds (the contract of docs/design.md "Enrichment"): kind -> (boto3
#: operation, top-level key of ``aws ec2 describe-<kind> --output json``).
DESCRIBE_KINDS: dict[str, tuple[str, str]] = {
    "network-interfaces": ("describe_network_interfaces", "NetworkInterfaces"),
    "instances": ("describe_instances", "Reservations"),
    "vpcs": ("describe_vpcs", "Vpcs"),
    "subnets": ("describe_subnets", "Subnets"),
    "security-groups": ("describe_security_groups", "SecurityGroups"),
}
INVENTORY_FILE_PATTERN = "<account-id>-<region>-describe-<kind>.json"
_KIND = "|".join(re.escape(k) for k in DESCRIBE_KINDS)
#: An inventory file name, with groups ``account``, ``region`` and ``kind``.
INVENTORY_FILE = re.compile(rf"^(?P<account>\d{{12}})-(?P<region>{REGION})-describe-(?P<kind>{_KIND})\.json$")
#: A name that ends like an inventory file (to tell a misnamed one from an unrelated file).
INVENTORY_FILE_SUFFIX = re.compile(rf"-describe-(?P<kind>{_KIND})\.json$")


def inventory_file_name(account_id: str, region: str, kind: str) -> str:
    """``123456789012-us-east-1-describe-vpcs.json`` (:data:`INVENTORY_FILE_PATTERN`)."""
    return f"{account_id}-{region}-describe-{kind}.json"

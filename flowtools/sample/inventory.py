"""The estate as AWS CLI JSON: ``aws ec2 describe-<kind> --output json`` per account and region.

Files are ``inventory/<account>-<region>-describe-<kind>.json`` for the kinds
network-interfaces, instances, vpcs, subnets and security-groups (the inventory layout of
docs/design.md), printed as the CLI prints them (4-space indent, non-ASCII kept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowtools.sample.estate import (
    AWS_SERVICE_ACCOUNT,
    Estate,
    Interface,
    Rule,
    SecurityGroup,
    Subnet,
    Vpc,
    ident,
)

KINDS = ("network-interfaces", "instances", "vpcs", "subnets", "security-groups")
_CREATED = "2026-10-01T08:00:00+00:00"


def _dns(region: str, ip: str, public: bool = False) -> str:
    dashed = ip.replace(".", "-")
    if public:
        return (f"ec2-{dashed}.compute-1.amazonaws.com" if region == "us-east-1"
                else f"ec2-{dashed}.{region}.compute.amazonaws.com")
    return f"ip-{dashed}.ec2.internal" if region == "us-east-1" else f"ip-{dashed}.{region}.compute.internal"


def _mac(key: str) -> str:
    h = ident("mac", key)[5:15]
    return "0e:" + ":".join(h[i:i + 2] for i in range(0, 10, 2))


def _association(estate: Estate, i: Interface) -> dict | None:
    if not i.public_ip:
        return None
    region = estate.region(i.key)
    a = {"IpOwnerId": estate.account(i.key) if i.eip else "amazon",
         "PublicDnsName": _dns(region, i.public_ip, public=True), "PublicIp": i.public_ip}
    if i.eip:
        a = {"AllocationId": ident("eipalloc", i.key), "AssociationId": ident("eipassoc", i.key), **a}
    return a


def _attachment(estate: Estate, i: Interface, index: int) -> dict:
    if i.instance:
        return {"AttachTime": _CREATED, "AttachmentId": ident("eni-attach", i.key),
                "DeleteOnTermination": index == 0, "DeviceIndex": index, "NetworkCardIndex": 0,
                "InstanceId": i.instance_id, "InstanceOwnerId": estate.account(i.key), "Status": "attached"}
    owner = {"network_load_balancer": "amazon-elb"}.get(i.interface_type, AWS_SERVICE_ACCOUNT)
    return {"AttachTime": _CREATED, "AttachmentId": ident("ela-attach", i.key), "DeleteOnTermination": False,
            "DeviceIndex": 1, "NetworkCardIndex": 0, "InstanceOwnerId": owner, "Status": "attached"}


def _groups(estate: Estate, i: Interface) -> list[dict]:
    return [{"GroupName": estate.groups[g].key, "GroupId": estate.groups[g].id} for g in i.groups]


def _device_index(estate: Estate, i: Interface) -> int:
    if not i.instance:
        return 1
    siblings = [x.key for x in estate.interfaces.values() if x.instance == i.instance]
    return siblings.index(i.key)


def network_interface(estate: Estate, i: Interface, *, for_instance: bool = False) -> dict:
    region, sub = estate.region(i.key), estate.subnet(i.key)
    assoc = _association(estate, i)
    primary = {"Primary": True, "PrivateDnsName": _dns(region, i.ip), "PrivateIpAddress": i.ip}
    if assoc:
        primary = {"Association": assoc, **primary}
    d: dict = {}
    if assoc:
        d["Association"] = assoc
    d["Attachment"] = _attachment(estate, i, _device_index(estate, i))
    if for_instance:  # describe-instances leaves out what the instance itself says
        d["Attachment"] = {k: v for k, v in d["Attachment"].items()
                           if k not in ("InstanceId", "InstanceOwnerId")}
    if not for_instance:
        d["AvailabilityZone"] = sub.az
    d["Description"] = i.description
    d["Groups"] = _groups(estate, i)
    d["InterfaceType"] = i.interface_type
    d["Ipv6Addresses"] = [{"Ipv6Address": i.ipv6, "IsPrimaryIpv6": False}] if i.ipv6 else []
    d["MacAddress"] = _mac(i.key)
    d["NetworkInterfaceId"] = i.id
    d["OwnerId"] = estate.account(i.key)
    d["PrivateDnsName"] = _dns(region, i.ip)
    d["PrivateIpAddress"] = i.ip
    d["PrivateIpAddresses"] = [primary]
    if not for_instance:
        if i.requester_managed:
            d["RequesterId"] = i.requester_id
        d["RequesterManaged"] = i.requester_managed
    d["SourceDestCheck"] = i.interface_type not in ("nat_gateway", "natGateway", "transit_gateway")
    d["Status"] = "in-use"
    d["SubnetId"] = sub.id
    if not for_instance:
        d["TagSet"] = []
    d["VpcId"] = estate.vpc(i.key).id
    return d


def _instance(estate: Estate, key: str, enis: list[Interface]) -> dict:
    first = enis[0]
    region, sub, vpc = estate.region(first.key), estate.subnet(first.key), estate.vpc(first.key)
    name = next((i.instance_name for i in enis if i.instance_name), key)
    d: dict = {
        "AmiLaunchIndex": 0,
        "ImageId": ident("ami", "al2023"),
        "InstanceId": ident("i", key),
        "InstanceType": first.instance_type,
        "LaunchTime": _CREATED,
        "Monitoring": {"State": "disabled"},
        "Placement": {"AvailabilityZone": sub.az, "GroupName": "", "Tenancy": "default"},
        "PrivateDnsName": _dns(region, first.ip),
        "PrivateIpAddress": first.ip,
        "ProductCodes": [],
        "PublicDnsName": _dns(region, first.public_ip, public=True) if first.public_ip else "",
    }
    if first.public_ip:
        d["PublicIpAddress"] = first.public_ip
    d.update({
        "State": {"Code": 16, "Name": "running"},
        "StateTransitionReason": "",
        "SubnetId": sub.id,
        "VpcId": vpc.id,
        "Architecture": "x86_64",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
            "AttachTime": _CREATED, "DeleteOnTermination": True, "Status": "attached",
            "VolumeId": ident("vol", key)}}],
        "ClientToken": "",
        "EbsOptimized": True,
        "EnaSupport": True,
        "Hypervisor": "xen",
        "NetworkInterfaces": [network_interface(estate, i, for_instance=True) for i in enis],
        "RootDeviceName": "/dev/xvda",
        "RootDeviceType": "ebs",
        "SecurityGroups": _groups(estate, first),
        "SourceDestCheck": True,
        "Tags": [{"Key": "Name", "Value": name}],
        "VirtualizationType": "hvm",
    })
    if first.ipv6:
        d["Ipv6Address"] = first.ipv6
    return d


def _rule(estate: Estate, sg: SecurityGroup, account: str, rule: Rule) -> dict:
    d: dict = {}
    if rule.protocol != "-1":
        d["FromPort"] = rule.from_port
    d["IpProtocol"] = rule.protocol
    d["IpRanges"] = [{"CidrIp": c, **({"Description": rule.description} if rule.description else {})}
                     for c in rule.cidrs]
    d["Ipv6Ranges"] = [{"CidrIpv6": c} for c in rule.cidrs6]
    d["PrefixListIds"] = []
    if rule.protocol != "-1":
        d["ToPort"] = rule.to_port
    d["UserIdGroupPairs"] = [{"GroupId": estate.groups[g].id, "UserId": account} for g in rule.groups]
    return d


_ALL_OUT = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
            "PrefixListIds": [], "UserIdGroupPairs": []}


def documents(estate: Estate) -> dict[tuple[str, str], dict[str, dict]]:
    """{(account, region): {kind: document}} for every account and region of the estate."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    places = sorted({(v.account, v.region) for v in estate.vpcs.values()})
    for account, region in places:
        vpcs = [v for v in estate.vpcs.values() if (v.account, v.region) == (account, region)]
        vpc_keys = {v.key for v in vpcs}
        subnets = [s for s in estate.subnets.values() if s.vpc in vpc_keys]
        enis = [i for i in estate.interfaces.values() if estate.subnet(i.key).vpc in vpc_keys]
        sgs = [g for g in estate.groups.values() if g.vpc in vpc_keys]
        instances: dict[str, list[Interface]] = {}
        for i in enis:
            if i.instance:
                instances.setdefault(i.instance, []).append(i)
        docs = {
            "network-interfaces": {"NetworkInterfaces": [network_interface(estate, i) for i in enis]},
            "instances": {"Reservations": [
                {"Groups": [], "Instances": [_instance(estate, k, v)], "OwnerId": account,
                 "ReservationId": ident("r", k)} for k, v in instances.items()]},
            "vpcs": {"Vpcs": [_vpc(v) for v in vpcs]},
            "subnets": {"Subnets": [_subnet(estate, s) for s in subnets]},
            "security-groups": {"SecurityGroups": [
                *({"Description": "default VPC security group", "GroupName": "default",
                   "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [],
                                      "PrefixListIds": [], "UserIdGroupPairs": [
                                          {"GroupId": ident("sg", f"default/{v.key}"), "UserId": account}]}],
                   "OwnerId": account, "GroupId": ident("sg", f"default/{v.key}"),
                   "IpPermissionsEgress": [_ALL_OUT], "VpcId": v.id} for v in vpcs),
                *({"Description": g.description, "GroupName": g.key,
                   "IpPermissions": [_rule(estate, g, account, r) for r in g.rules],
                   "OwnerId": account, "GroupId": g.id, "IpPermissionsEgress": [_ALL_OUT],
                   "Tags": [{"Key": "Name", "Value": g.key}], "VpcId": estate.vpcs[g.vpc].id}
                  for g in sgs),
            ]},
        }
        out[(account, region)] = docs
    return out


def _vpc(v: Vpc) -> dict:
    d: dict[str, Any] = {
        "CidrBlock": v.cidr,
        "DhcpOptionsId": ident("dopt", v.account),
        "State": "available",
        "VpcId": v.id,
        "OwnerId": v.account,
        "InstanceTenancy": "default",
    }
    if v.cidr6:
        d["Ipv6CidrBlockAssociationSet"] = [{
            "AssociationId": ident("vpc-cidr-assoc", f"{v.key}/6"), "Ipv6CidrBlock": v.cidr6,
            "Ipv6CidrBlockState": {"State": "associated"}, "NetworkBorderGroup": v.region,
            "Ipv6Pool": "Amazon"}]
    d["CidrBlockAssociationSet"] = [{
        "AssociationId": ident("vpc-cidr-assoc", v.key), "CidrBlock": v.cidr,
        "CidrBlockState": {"State": "associated"}}]
    d["IsDefault"] = False
    d["Tags"] = [{"Key": "Name", "Value": v.name}]
    return d


def _subnet(estate: Estate, s: Subnet) -> dict:
    vpc = estate.vpcs[s.vpc]
    prefix = int(s.cidr.split("/")[1])
    return {
        "AvailabilityZone": s.az,
        "AvailabilityZoneId": s.az_id,
        "AvailableIpAddressCount": 2 ** (32 - prefix) - 5 - sum(
            1 for i in estate.interfaces.values() if i.subnet == s.key),
        "CidrBlock": s.cidr,
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": s.public,
        "State": "available",
        "SubnetId": s.id,
        "VpcId": vpc.id,
        "OwnerId": vpc.account,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": ([{
            "AssociationId": ident("subnet-cidr-assoc", s.key), "Ipv6CidrBlock": s.cidr6,
            "Ipv6CidrBlockState": {"State": "associated"}}] if s.cidr6 else []),
        "Tags": [{"Key": "Name", "Value": s.key}],
        "SubnetArn": f"arn:aws:ec2:{vpc.region}:{vpc.account}:subnet/{s.id}",
        "EnableDns64": False,
        "Ipv6Native": False,
        "PrivateDnsNameOptionsOnLaunch": {"HostnameType": "ip-name", "EnableResourceNameDnsARecord": False,
                                          "EnableResourceNameDnsAAAARecord": False},
    }


def write_inventory(estate: Estate, folder: Path) -> list[Path]:
    """Write every document; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (account, region), docs in documents(estate).items():
        for kind in KINDS:
            path = folder / f"{account}-{region}-describe-{kind}.json"
            path.write_text(json.dumps(docs[kind], indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
            paths.append(path)
    return paths

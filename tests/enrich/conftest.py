"""Fixtures for enrichment tests: a small inventory folder in the AWS CLI's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
HTML_TAG = '<img src=x onerror="alert(1)"> & \x07bell\ttab'

#: aws ec2 describe-network-interfaces --output json (trimmed to the fields that matter).
NETWORK_INTERFACES = {"NetworkInterfaces": [
    {   # an instance's interface: public IP on the primary, an Elastic IP on a secondary
        "Association": {"IpOwnerId": "amazon", "PublicDnsName": "ec2-54-144-10-11.compute-1.amazonaws.com",
                        "PublicIp": "54.144.10.11"},
        "Attachment": {"AttachmentId": "eni-attach-0a1", "DeviceIndex": 0, "InstanceId": "i-0web0000000000001",
                       "InstanceOwnerId": ACCOUNT, "Status": "attached"},
        "AvailabilityZone": "us-east-1a", "Description": "", "Groups": [
            {"GroupName": "web", "GroupId": "sg-0web0000000000001"}],
        "InterfaceType": "interface",
        "Ipv6Addresses": [{"Ipv6Address": "2600:1F18:1000:0000:0000:0000:0000:0013", "IsPrimaryIpv6": False}],
        "MacAddress": "0e:00:00:00:00:01", "NetworkInterfaceId": "eni-0web0000000000001", "OwnerId": ACCOUNT,
        "PrivateDnsName": "ip-10-10-0-11.ec2.internal", "PrivateIpAddress": "10.10.0.11",
        "PrivateIpAddresses": [
            {"Association": {"IpOwnerId": "amazon", "PublicIp": "54.144.10.11"}, "Primary": True,
             "PrivateIpAddress": "10.10.0.11"},
            {"Association": {"AllocationId": "eipalloc-1", "IpOwnerId": ACCOUNT, "PublicIp": "54.144.10.99"},
             "Primary": False, "PrivateIpAddress": "10.10.0.12"},
        ],
        "RequesterManaged": False, "SourceDestCheck": True, "Status": "in-use",
        "SubnetId": "subnet-0pub000000000001",
        "TagSet": [{"Key": "Name", "Value": "web-1 eni"}, {"Key": "Note", "Value": HTML_TAG}],
        "VpcId": "vpc-0prod00000000001",
    },
    {   # NAT gateway: the spelling seen in practice
        "Association": {"AllocationId": "eipalloc-2", "IpOwnerId": ACCOUNT, "PublicIp": "54.144.20.5"},
        "Attachment": {"AttachmentId": "ela-attach-1", "DeviceIndex": 1, "InstanceOwnerId": "amazon-aws",
                       "Status": "attached"},
        "Description": "Interface for NAT Gateway nat-0123456789abcdef0", "Groups": [],
        "InterfaceType": "nat_gateway", "Ipv6Addresses": [], "NetworkInterfaceId": "eni-0nat0000000000001",
        "OwnerId": ACCOUNT, "PrivateIpAddress": "10.10.0.220",
        "PrivateIpAddresses": [{"Association": {"PublicIp": "54.144.20.5"}, "Primary": True,
                                "PrivateIpAddress": "10.10.0.220"}],
        "RequesterId": "440000000000", "RequesterManaged": True, "SourceDestCheck": False, "Status": "in-use",
        "SubnetId": "subnet-0pub000000000001", "TagSet": [], "VpcId": "vpc-0prod00000000001",
    },
    {   # NAT gateway: the SDK enum's spelling
        "Description": "Interface for NAT Gateway nat-0fedcba9876543210", "InterfaceType": "natGateway",
        "NetworkInterfaceId": "eni-0nat0000000000002", "OwnerId": ACCOUNT, "PrivateIpAddress": "10.10.1.220",
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.10.1.220"}],
        "RequesterManaged": True, "SubnetId": "subnet-0pub000000000002", "TagSet": [],
        "VpcId": "vpc-0prod00000000001",
    },
    {
        "Description": "ELB net/api-nlb/0123456789abcdef", "InterfaceType": "network_load_balancer",
        "NetworkInterfaceId": "eni-0nlb0000000000001", "OwnerId": ACCOUNT, "PrivateIpAddress": "10.10.1.50",
        "RequesterId": "amazon-elb", "RequesterManaged": True, "SubnetId": "subnet-0pub000000000002",
        "VpcId": "vpc-0prod00000000001",
    },
    {"Description": "ELB app/shop-alb/50dc6c495c0c9188", "InterfaceType": "interface",
     "NetworkInterfaceId": "eni-0alb0000000000001", "PrivateIpAddress": "10.10.1.60", "VpcId": "vpc-0prod00000000001"},
    {"Description": "ELB classic-web", "InterfaceType": "interface",
     "NetworkInterfaceId": "eni-0elb0000000000001", "PrivateIpAddress": "10.10.1.70", "VpcId": "vpc-0prod00000000001"},
    {"Description": "VPC Endpoint Interface vpce-0123456789abcdef0", "InterfaceType": "vpc_endpoint",
     "NetworkInterfaceId": "eni-0vpce000000000001", "PrivateIpAddress": "10.10.2.10", "VpcId": "vpc-0prod00000000001"},
    {"Description": "AWS Lambda VPC ENI-order-processor-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
     "InterfaceType": "lambda", "NetworkInterfaceId": "eni-0lambda0000000001", "PrivateIpAddress": "10.10.2.20",
     "VpcId": "vpc-0prod00000000001"},
    {"Description": "RDSNetworkInterface", "InterfaceType": "interface", "RequesterId": "amazon-rds",
     "NetworkInterfaceId": "eni-0rds0000000000001", "PrivateIpAddress": "10.10.3.30", "VpcId": "vpc-0prod00000000001"},
]}

INSTANCES = {"Reservations": [{"Groups": [], "OwnerId": ACCOUNT, "ReservationId": "r-1", "Instances": [{
    "InstanceId": "i-0web0000000000001", "InstanceType": "t3.small", "PrivateIpAddress": "10.10.0.11",
    "PublicIpAddress": "54.144.10.11", "State": {"Code": 16, "Name": "running"},
    "SubnetId": "subnet-0pub000000000001", "VpcId": "vpc-0prod00000000001",
    "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "Owner", "Value": HTML_TAG}],
    "NetworkInterfaces": [{"NetworkInterfaceId": "eni-0web0000000000001", "PrivateIpAddress": "10.10.0.11",
                           "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.10.0.11"}],
                           "InterfaceType": "interface"},
                          {"NetworkInterfaceId": "eni-0web0000000000002", "PrivateIpAddress": "10.10.0.13",
                           "InterfaceType": "interface", "Description": "second card"}],
}]}]}

VPCS = {"Vpcs": [{
    "CidrBlock": "10.10.0.0/16", "VpcId": "vpc-0prod00000000001", "OwnerId": ACCOUNT, "IsDefault": False,
    "CidrBlockAssociationSet": [
        {"AssociationId": "a1", "CidrBlock": "10.10.0.0/16", "CidrBlockState": {"State": "associated"}},
        {"AssociationId": "a2", "CidrBlock": "100.64.0.0/16", "CidrBlockState": {"State": "associated"}},
        {"AssociationId": "a3", "CidrBlock": "10.99.0.0/16", "CidrBlockState": {"State": "disassociated"}}],
    "Ipv6CidrBlockAssociationSet": [{"Ipv6CidrBlock": "2600:1F18:1000::/56",
                                     "Ipv6CidrBlockState": {"State": "associated"}}],
    "Tags": [{"Key": "Name", "Value": "prod"}],
}]}

SUBNETS = {"Subnets": [{
    "SubnetId": "subnet-0pub000000000001", "VpcId": "vpc-0prod00000000001", "CidrBlock": "10.10.0.0/24",
    "AvailabilityZone": "us-east-1a", "MapPublicIpOnLaunch": True,
    "Ipv6CidrBlockAssociationSet": [{"Ipv6CidrBlock": "2600:1f18:1000::/64",
                                     "Ipv6CidrBlockState": {"State": "associated"}}],
    "Tags": [{"Key": "Name", "Value": "public-a"}],
}]}

SECURITY_GROUPS = {"SecurityGroups": [{
    "GroupId": "sg-0web0000000000001", "GroupName": "web", "Description": "web", "VpcId": "vpc-0prod00000000001",
    "OwnerId": ACCOUNT,
    "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}, {"CidrIp": "10.0.0.0/8"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": [], "UserIdGroupPairs": []},
        {"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [{"PrefixListId": "pl-0abc"}],
         "UserIdGroupPairs": [{"GroupId": "sg-0bastion000000001", "UserId": ACCOUNT}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]},
    ],
    "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                             "PrefixListIds": [], "UserIdGroupPairs": []}],
}]}


def write(folder: Path, name: str, doc: Any, *, raw: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(raw if raw is not None else json.dumps(doc, indent=4, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def inventory_dir(tmp_path) -> Path:
    """Two accounts, files in subfolders, plus files that are not inventory."""
    root = tmp_path / "inventory"
    write(root / ACCOUNT, f"{ACCOUNT}-us-east-1-describe-network-interfaces.json", NETWORK_INTERFACES)
    write(root / ACCOUNT, f"{ACCOUNT}-us-east-1-describe-instances.json", INSTANCES)
    write(root / ACCOUNT, f"{ACCOUNT}-us-east-1-describe-vpcs.json", VPCS)
    write(root / ACCOUNT, f"{ACCOUNT}-us-east-1-describe-subnets.json", SUBNETS)
    write(root / ACCOUNT, f"{ACCOUNT}-us-east-1-describe-security-groups.json", SECURITY_GROUPS)
    write(root / OTHER_ACCOUNT, f"{OTHER_ACCOUNT}-eu-west-1-describe-vpcs.json", {"Vpcs": [
        {"VpcId": "vpc-0eu000000000001", "CidrBlock": "172.16.0.0/16", "OwnerId": OTHER_ACCOUNT}]})
    write(root, "collect-summary.json", {"accounts": [ACCOUNT]})
    write(root, "README.json", [1, 2, 3])
    (root / "notes.txt").write_text("not inventory")
    return root


@pytest.fixture
def docs() -> SimpleNamespace:
    """The documents and helpers above, for tests (conftest modules cannot be imported)."""
    return SimpleNamespace(ACCOUNT=ACCOUNT, OTHER_ACCOUNT=OTHER_ACCOUNT, HTML_TAG=HTML_TAG,
                           NETWORK_INTERFACES=NETWORK_INTERFACES, INSTANCES=INSTANCES, VPCS=VPCS,
                           SUBNETS=SUBNETS, SECURITY_GROUPS=SECURITY_GROUPS, write=write)

"""The scenario's estate: accounts, VPCs, subnets, security groups, interfaces, flow logs.

The estate is fixed (the same for every seed): only the traffic is random. Identifiers
are derived from the scenario names (``eni-`` + 17 hex digits from a hash of
``"web-1"``), so they are stable, look like AWS's, and docs and tests can name them.

Addresses: VPCs in 10.0.0.0/8 and 172.16.0.0/12 (IPv6 in 2001:db8:1000::/56, which the
inventory declares as the VPC's own); the estate's public IPs in the EC2 ranges of the
ip-ranges fixture; internet peers in the documentation ranges (see ``scenario``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flowtools.fields import BY_NAME, DEFAULT_FORMAT

#: The scenario's time base: records start here and run ``hours`` hours.
BASE_TIME = datetime(2026, 11, 20, tzinfo=UTC)

ORG_ID = "o-abc123def4"
#: Account ids (obviously fake) and what they hold.
PROD, NETWORK, SANDBOX = "111111111111", "222222222222", "333333333333"
#: A made-up account standing for the AWS service accounts that own managed interfaces.
AWS_SERVICE_ACCOUNT = "999999999901"


def ident(prefix: str, name: str, digits: int = 17) -> str:
    """A stable AWS-looking identifier: ``ident("eni", "web-1")`` -> ``eni-0`` + 16 hex."""
    return f"{prefix}-0{hashlib.sha1(f'{prefix}/{name}'.encode()).hexdigest()[: digits - 1]}"


@dataclass(frozen=True)
class FlowLog:
    """One flow log: who owns it, its format, where and how it delivers."""

    key: str
    account: str
    region: str
    fields: tuple[str, ...]
    layout: str  # daily | hourly | hive | hive-hourly
    org_id: str | None = None
    prefix: str = ""  # a user prefix before AWSLogs/
    agg: int = 600  # MaxAggregationInterval
    shards: int = 1  # files per 5-minute batch (AWS may publish several)
    millis_fraction: float = 0.0  # share of records whose start/end are milliseconds
    resource: str = ""  # what it is attached to (for the docs)

    @property
    def id(self) -> str:
        return ident("fl", self.key)

    @property
    def version(self) -> int:
        """The highest version among the format's known fields (AWS's rule)."""
        return max(BY_NAME[f].version for f in self.fields if f in BY_NAME)


@dataclass(frozen=True)
class Vpc:
    key: str
    account: str
    region: str
    cidr: str
    cidr6: str | None = None
    name: str = ""

    @property
    def id(self) -> str:
        return ident("vpc", self.key)


@dataclass(frozen=True)
class Subnet:
    key: str
    vpc: str
    cidr: str
    az: str
    az_id: str
    cidr6: str | None = None
    public: bool = False

    @property
    def id(self) -> str:
        return ident("subnet", self.key)


@dataclass(frozen=True)
class Rule:
    """One IpPermission of a security group (ingress)."""

    protocol: str  # tcp | udp | icmp | icmpv6 | -1
    from_port: int | None = None
    to_port: int | None = None
    cidrs: tuple[str, ...] = ()
    cidrs6: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # security-group keys
    description: str | None = None

    @property
    def open_to_internet(self) -> bool:
        return "0.0.0.0/0" in self.cidrs or "::/0" in self.cidrs6


@dataclass(frozen=True)
class SecurityGroup:
    key: str
    vpc: str
    description: str
    rules: tuple[Rule, ...] = ()

    @property
    def id(self) -> str:
        return ident("sg", self.key)


@dataclass(frozen=True)
class Interface:
    """A network interface, and the instance (or managed resource) it belongs to."""

    key: str
    subnet: str
    ip: str
    flow_log: str | None  # None: no flow log covers its subnet (it logs nothing itself)
    interface_type: str = "interface"
    public_ip: str | None = None
    eip: bool = False  # Elastic IP (owned by the account) rather than auto-assigned
    ipv6: str | None = None
    groups: tuple[str, ...] = ()
    instance: str | None = None  # instance key the interface is attached to
    instance_name: str | None = None  # Name tag of that instance (primary interface only)
    instance_type: str = "m6i.large"
    description: str = ""
    requester_managed: bool = False
    requester_id: str | None = None
    record_account: str | None = None  # what records put in account-id ("unknown")
    agg: int | None = None  # aggregation interval override (Nitro instances: <= 60 s)
    extra: dict[str, str] = field(default_factory=dict)  # per-interface field values
    ecs: dict[str, str] | None = None  # ecs-* field values

    @property
    def id(self) -> str:
        return ident("eni", self.key)

    @property
    def instance_id(self) -> str | None:
        return ident("i", self.instance) if self.instance else None


# -- the flow logs ------------------------------------------------------------------------

V5_CUSTOM = (  # AWS's TCP-flag example order, extended: a non-default order
    "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport "
    "dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags "
    "log-status region az-id flow-direction traffic-path pkt-src-aws-service pkt-dst-aws-service"
).split()
V8_ECS = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr "
    "pkt-dstaddr flow-direction traffic-path ecs-cluster-name ecs-cluster-arn "
    "ecs-container-instance-id ecs-container-id ecs-second-container-id ecs-service-name "
    "ecs-task-definition-arn ecs-task-arn ecs-task-id reject-reason"
).split()
#: interface-type (v11) and ``flow-tag``: a field name no catalogue knows (yet).
V11_FUTURE = (
    "version account-id interface-id interface-type srcaddr dstaddr srcport dstport protocol "
    "packets bytes start end action log-status tcp-flags flow-direction type pkt-srcaddr "
    "pkt-dstaddr vpc-id region flow-tag"
).split()
V4_CUSTOM = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr "
    "pkt-dstaddr region az-id sublocation-type sublocation-id"
).split()
V3_CUSTOM = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status vpc-id subnet-id instance-id tcp-flags type"
).split()

FLOW_LOGS: tuple[FlowLog, ...] = (
    FlowLog("prod-v5", PROD, "us-east-1", tuple(V5_CUSTOM), "hourly", org_id=ORG_ID, agg=60,
            shards=2, resource="VPC prod (except the legacy, ECS and batch subnets)"),
    FlowLog("legacy-v2", PROD, "us-east-1", DEFAULT_FORMAT, "daily",
            resource="subnet prod-legacy (default format)"),
    FlowLog("ecs-v8", PROD, "us-east-1", tuple(V8_ECS), "daily",
            resource="subnet prod-ecs-a (ECS tasks)"),
    FlowLog("edge-v11", PROD, "eu-west-1", tuple(V11_FUTURE), "hive-hourly",
            resource="VPC edge"),
    FlowLog("net-egress", NETWORK, "us-east-1", tuple(V4_CUSTOM), "daily", prefix="central",
            resource="VPC egress (NAT gateway, transit gateway attachment)"),
    FlowLog("net-shared", NETWORK, "us-east-1", tuple(V4_CUSTOM), "daily", prefix="central",
            millis_fraction=0.005, resource="VPC shared-services"),
    FlowLog("sandbox-v3", SANDBOX, "eu-west-1", tuple(V3_CUSTOM), "hive",
            resource="VPC sandbox"),
)

VPCS: tuple[Vpc, ...] = (
    Vpc("prod", PROD, "us-east-1", "10.10.0.0/16", "2001:db8:1000::/56", "prod"),
    Vpc("edge", PROD, "eu-west-1", "172.16.0.0/16", None, "edge"),
    Vpc("egress", NETWORK, "us-east-1", "10.100.0.0/16", None, "egress"),
    Vpc("shared", NETWORK, "us-east-1", "10.200.0.0/16", None, "shared-services"),
    Vpc("sandbox", SANDBOX, "eu-west-1", "172.20.0.0/16", None, "sandbox"),
)

SUBNETS: tuple[Subnet, ...] = (
    Subnet("prod-public-a", "prod", "10.10.0.0/24", "us-east-1a", "use1-az1", "2001:db8:1000::/64", True),
    Subnet("prod-public-b", "prod", "10.10.1.0/24", "us-east-1b", "use1-az2", "2001:db8:1000:1::/64", True),
    Subnet("prod-private-a", "prod", "10.10.10.0/24", "us-east-1a", "use1-az1"),
    Subnet("prod-private-b", "prod", "10.10.11.0/24", "us-east-1b", "use1-az2"),
    Subnet("prod-data-a", "prod", "10.10.20.0/24", "us-east-1a", "use1-az1"),
    Subnet("prod-legacy", "prod", "10.10.30.0/24", "us-east-1a", "use1-az1", public=True),
    Subnet("prod-ecs-a", "prod", "10.10.40.0/24", "us-east-1a", "use1-az1", public=True),
    Subnet("prod-batch-b", "prod", "10.10.12.0/24", "us-east-1b", "use1-az2"),  # no flow log
    Subnet("edge-public-a", "edge", "172.16.0.0/24", "eu-west-1a", "euw1-az1", public=True),
    Subnet("edge-public-b", "edge", "172.16.1.0/24", "eu-west-1b", "euw1-az2", public=True),
    Subnet("egress-public-a", "egress", "10.100.0.0/24", "us-east-1a", "use1-az1", public=True),
    Subnet("egress-private-a", "egress", "10.100.1.0/24", "us-east-1a", "use1-az1"),
    Subnet("egress-tgw-a", "egress", "10.100.255.0/28", "us-east-1a", "use1-az1"),
    Subnet("shared-private-a", "shared", "10.200.1.0/24", "us-east-1a", "use1-az1"),
    Subnet("shared-tgw-a", "shared", "10.200.255.0/28", "us-east-1a", "use1-az1"),
    Subnet("sandbox-public-a", "sandbox", "172.20.0.0/24", "eu-west-1b", "euw1-az2", public=True),
)

ANY4, ANY6 = ("0.0.0.0/0",), ("::/0",)
ADMINS = ("192.0.2.10/32", "192.0.2.11/32", "192.0.2.12/32")

SECURITY_GROUPS: tuple[SecurityGroup, ...] = (
    SecurityGroup("web", "prod", "public web servers", (
        Rule("tcp", 443, 443, ANY4, ANY6, description="HTTPS"),
        Rule("tcp", 80, 80, ANY4, ANY6, description="HTTP redirect"),
    )),
    SecurityGroup("ping", "prod", "allow ping", (Rule("icmp", 8, -1, ANY4),)),
    SecurityGroup("preview", "prod", "preview site (temporary)", (Rule("tcp", 8080, 8080, ANY4),)),
    SecurityGroup("web6", "prod", "IPv6 web", (
        Rule("tcp", 443, 443, ANY4, ANY6), Rule("icmpv6", -1, -1, (), ANY6),
    )),
    SecurityGroup("bastion", "prod", "bastion: admins only", (
        Rule("tcp", 22, 22, ADMINS, description="admins"),
        Rule("tcp", 2222, 2222, ADMINS[:1], description="sftp gateway"),
    )),
    SecurityGroup("api", "prod", "api targets behind the NLB (client IP preservation)", (
        Rule("tcp", 8443, 8443, ANY4),
    )),
    SecurityGroup("app", "prod", "application tier", (
        Rule("tcp", 22, 22, groups=("bastion",)), Rule("tcp", 9100, 9100, ("10.10.0.0/16",)),
    )),
    SecurityGroup("db", "prod", "postgres", (Rule("tcp", 5432, 5432, groups=("app", "checkout")),)),
    SecurityGroup("reports", "prod", "reports (launched, never used)", (
        Rule("tcp", 8000, 8100, ANY4, description="report viewers"),
    )),
    SecurityGroup("legacy", "prod", "legacy web and ftp", (
        Rule("tcp", 80, 80, ANY4), Rule("tcp", 443, 443, ANY4),
        Rule("tcp", 21, 21, ANY4, description="ftp (unused)"),
        Rule("tcp", 22, 22, ANY4, description="ssh (old admin access)"),
        Rule("udp", 7777, 7777, ("192.0.2.77/32",), description="game server: its one tester"),
    )),
    SecurityGroup("checkout", "prod", "checkout tasks", (Rule("tcp", 8080, 8080, ("10.10.0.0/16",)),)),
    SecurityGroup("ecs-node", "prod", "ECS container instances", ()),
    SecurityGroup("batch", "prod", "batch workers (outbound only)", ()),
    SecurityGroup("vpn", "edge", "wireguard", (
        Rule("udp", 51820, 51820, ANY4), Rule("icmp", -1, -1, ANY4),
    )),
    SecurityGroup("dns", "edge", "authoritative DNS", (
        Rule("udp", 53, 53, ANY4), Rule("tcp", 53, 53, ANY4),
    )),
    SecurityGroup("edge-app", "edge", "edge app", (
        Rule("tcp", 8081, 8081, ANY4), Rule("tcp", 9000, 9000, ANY4),
    )),
    SecurityGroup("proxy", "egress", "egress proxy", (Rule("tcp", 3128, 3128, ("10.0.0.0/8",)),)),
    SecurityGroup("ci", "shared", "ci runners", ()),
    SecurityGroup("sandbox-open", "sandbox", "temporary: everything open", (
        Rule("-1", cidrs=ANY4, description="debugging"),
    )),
)

_ECS_ARN = f"arn:aws:ecs:us-east-1:{PROD}"


def _ecs(task: str, container_instance: str | None) -> dict[str, str]:
    h = hashlib.sha1(task.encode()).hexdigest()
    task_id = h[:32]
    return {
        "ecs-cluster-name": "shop",
        "ecs-cluster-arn": f"{_ECS_ARN}:cluster/shop",
        "ecs-container-instance-id": container_instance or "-",
        "ecs-container-id": hashlib.sha256(f"{task}/0".encode()).hexdigest(),
        "ecs-second-container-id": hashlib.sha256(f"{task}/1".encode()).hexdigest(),
        "ecs-service-name": "checkout",
        "ecs-task-definition-arn": f"{_ECS_ARN}:task-definition/checkout:42",
        "ecs-task-arn": f"{_ECS_ARN}:task/shop/{task_id}",
        "ecs-task-id": task_id,
    }


ECS_CONTAINER_INSTANCE = hashlib.sha1(b"ecs-node").hexdigest()[:32]
#: The legacy server's Name tag: HTML and a control character (tags are user input).
LEGACY_NAME = '<b>legacy</b> "ftp"\tweb & <i>old</i>'

INTERFACES: tuple[Interface, ...] = (
    # -- prod, us-east-1 (flow log prod-v5, 60 s)
    Interface("web-1", "prod-public-a", "10.10.0.11", "prod-v5", public_ip="54.144.10.11",
              groups=("web", "ping"), instance="web-1", instance_name="web-1"),
    Interface("web-2", "prod-public-b", "10.10.1.12", "prod-v5", public_ip="54.144.10.12",
              groups=("web", "preview"), instance="web-2", instance_name="web-2"),
    Interface("web-v6", "prod-public-a", "10.10.0.13", "prod-v5", public_ip="54.144.10.13",
              ipv6="2001:db8:1000::13", groups=("web6",), instance="web-v6", instance_name="web-v6"),
    Interface("bastion", "prod-public-a", "10.10.0.5", "prod-v5", public_ip="54.144.20.5", eip=True,
              groups=("bastion",), instance="bastion", instance_name="bastion", instance_type="t3.micro"),
    Interface("nat-prod", "prod-public-a", "10.10.0.220", "prod-v5", interface_type="nat_gateway",
              public_ip="54.144.30.220", eip=True, requester_managed=True,
              requester_id=AWS_SERVICE_ACCOUNT,
              description=f"Interface for NAT Gateway {ident('nat', 'nat-prod')}"),
    Interface("nlb", "prod-public-b", "10.10.1.50", "prod-v5", interface_type="network_load_balancer",
              public_ip="54.144.40.50", eip=True, requester_managed=True, requester_id="amazon-elb",
              description="ELB net/api-nlb/0123456789abcdef", record_account="unknown"),
    Interface("api-1", "prod-private-a", "10.10.10.21", "prod-v5", groups=("api",),
              instance="api-1", instance_name="api-1"),
    Interface("app-1", "prod-private-a", "10.10.10.31", "prod-v5", groups=("app",),
              instance="app-1", instance_name="app-1"),
    Interface("app-2", "prod-private-b", "10.10.11.32", "prod-v5", groups=("app",),
              instance="app-2", instance_name="app-2"),
    Interface("db-1", "prod-data-a", "10.10.20.40", "prod-v5", groups=("db",),
              instance="db-1", instance_name="db-1", instance_type="r6i.xlarge"),
    Interface("reports", "prod-public-b", "10.10.1.60", "prod-v5", public_ip="54.144.10.60",
              groups=("reports",), instance="reports", instance_name="reports"),
    # -- prod, us-east-1, legacy subnet (flow log legacy-v2: default format only)
    Interface("web-legacy", "prod-legacy", "10.10.30.10", "legacy-v2", public_ip="54.144.50.10",
              eip=True, groups=("legacy",), instance="web-legacy", instance_name=LEGACY_NAME,
              instance_type="m4.large"),
    # -- prod, us-east-1, ECS subnet (flow log ecs-v8)
    Interface("checkout-fargate", "prod-ecs-a", "10.10.40.15", "ecs-v8", public_ip="54.144.60.15",
              groups=("checkout",), requester_managed=True, requester_id=AWS_SERVICE_ACCOUNT,
              description=f"arn:aws:ecs:us-east-1:{PROD}:attachment/"
                          f"{hashlib.sha1(b'fargate').hexdigest()[:8]}-0000-4000-8000-000000000001",
              ecs=_ecs("checkout-fargate", None)),
    Interface("ecs-node", "prod-ecs-a", "10.10.40.20", "ecs-v8", groups=("ecs-node",),
              instance="ecs-node", instance_name="ecs-node \x1b[31mshop\x1b[0m"),
    Interface("checkout-ec2", "prod-ecs-a", "10.10.40.25", "ecs-v8", groups=("checkout",),
              instance="ecs-node", requester_managed=True, requester_id=AWS_SERVICE_ACCOUNT,
              description=f"arn:aws:ecs:us-east-1:{PROD}:attachment/"
                          f"{hashlib.sha1(b'ec2task').hexdigest()[:8]}-0000-4000-8000-000000000002",
              ecs=_ecs("checkout-ec2", ECS_CONTAINER_INSTANCE)),
    # -- prod, eu-west-1 (flow log edge-v11)
    Interface("vpn", "edge-public-a", "172.16.0.10", "edge-v11", public_ip="34.240.0.10", eip=True,
              groups=("vpn",), instance="vpn", instance_name="vpn", instance_type="t2.medium",
              extra={"flow-tag": "vpn-gw"}),
    Interface("ns1", "edge-public-a", "172.16.0.53", "edge-v11", public_ip="34.240.0.53", eip=True,
              groups=("dns",), instance="ns1", instance_name="ns1", agg=60,
              extra={"flow-tag": "dns"}),
    Interface("app-edge", "edge-public-b", "172.16.1.20", "edge-v11", public_ip="34.240.1.20",
              groups=("edge-app",), instance="app-edge", instance_name="app-edge",
              instance_type="t2.small", extra={"flow-tag": "canary"}),
    # -- network account, us-east-1 (flow logs net-egress, net-shared under central/)
    Interface("nat-egress", "egress-public-a", "10.100.0.100", "net-egress", interface_type="natGateway",
              public_ip="54.144.70.100", eip=True, requester_managed=True,
              requester_id=AWS_SERVICE_ACCOUNT,
              description=f"Interface for NAT Gateway {ident('nat', 'nat-egress')}"),
    Interface("tgw-egress", "egress-tgw-a", "10.100.255.5", "net-egress", interface_type="transit_gateway",
              requester_managed=True, requester_id=AWS_SERVICE_ACCOUNT,
              description=f"Network Interface for Transit Gateway Attachment {ident('tgw-attach', 'egress')}"),
    Interface("proxy", "egress-private-a", "10.100.1.10", "net-egress", groups=("proxy",),
              instance="proxy", instance_name="egress-proxy"),
    Interface("tgw-shared", "shared-tgw-a", "10.200.255.6", "net-shared", interface_type="transit_gateway",
              requester_managed=True, requester_id=AWS_SERVICE_ACCOUNT,
              description=f"Network Interface for Transit Gateway Attachment {ident('tgw-attach', 'shared')}"),
    Interface("ci-runner", "shared-private-a", "10.200.1.10", "net-shared", groups=("ci",),
              instance="ci-runner", instance_name="ci-runner"),
    # -- sandbox account, eu-west-1 (flow log sandbox-v3)
    Interface("sandbox-1", "sandbox-public-a", "172.20.0.10", "sandbox-v3", public_ip="34.240.9.10",
              groups=("sandbox-open",), instance="sandbox-1", instance_name="sandbox-1",
              instance_type="t3.small"),
    # -- prod, us-east-1, batch subnet: no flow log covers it; its traffic to the internet
    # goes through nat-prod and is seen only there (last: the others' record order is kept)
    Interface("batch-1", "prod-batch-b", "10.10.12.41", None, groups=("batch",),
              instance="batch-1", instance_name="batch-1", instance_type="c6i.2xlarge"),
    Interface("batch-2", "prod-batch-b", "10.10.12.42", None, groups=("batch",),
              instance="batch-2", instance_name="batch-2", instance_type="c6i.2xlarge"),
)


class Estate:
    """Look-ups over the fixed estate."""

    def __init__(self) -> None:
        self.flow_logs = {f.key: f for f in FLOW_LOGS}
        self.vpcs = {v.key: v for v in VPCS}
        self.subnets = {s.key: s for s in SUBNETS}
        self.groups = {g.key: g for g in SECURITY_GROUPS}
        self.interfaces = {i.key: i for i in INTERFACES}

    def subnet(self, iface: str) -> Subnet:
        return self.subnets[self.interfaces[iface].subnet]

    def vpc(self, iface: str) -> Vpc:
        return self.vpcs[self.subnet(iface).vpc]

    def account(self, iface: str) -> str:
        return self.vpc(iface).account

    def region(self, iface: str) -> str:
        return self.vpc(iface).region

    def flow_log(self, iface: str) -> FlowLog:
        """The flow log that records ``iface``; ValueError for an interface none covers."""
        key = self.interfaces[iface].flow_log
        if key is None:
            raise ValueError(f"{iface} has no flow log: no group may have a leg on it")
        return self.flow_logs[key]

    def agg(self, iface: str) -> int:
        log = self.flow_log(iface)
        return self.interfaces[iface].agg or log.agg

    def public_ips(self) -> set[str]:
        return {i.public_ip for i in INTERFACES if i.public_ip}

    def cidrs(self) -> list[str]:
        return [c for v in VPCS for c in (v.cidr, v.cidr6) if c]

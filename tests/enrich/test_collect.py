"""Collecting the inventory from AWS: moto in server mode over real HTTP, faults from our proxy."""

from __future__ import annotations

import json
from datetime import date, datetime

import aws_server
import boto3
import polars as pl
import pytest
from aws_server import DEFAULT_ACCOUNT
from flowlog_files import DEFAULT_HEADER, daily_key, write_log

import flowtools
from flowtools.analyses import findings_records
from flowtools.cli import main
from flowtools.enrichment.collect import (
    KINDS,
    SUMMARY_FILE,
    AwsAccessDeniedError,
    AwsCredentialsError,
    CollectError,
    _write_json,
    collect_inventory,
)
from flowtools.enrichment.inventory import Inventory
from flowtools.errors import UsageError

OTHER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/flowtools-audit"
AMI = "ami-12c6146b"  # one of moto's built-in images
#: HTML and control characters that EC2's XML protocol can carry (XML 1.0 allows DEL, C1
#: controls, tab and newline; it cannot carry U+0007 at all, see test_json_keeps_any_control_character).
TRICKY = '<b>"x"</b>\x7f\x85\t\n&amp; ü <script>alert(1)</script>'
REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path):
    return aws_server.prepare(moto_url, monkeypatch, tmp_path)


@pytest.fixture
def fault_proxy(aws, monkeypatch):
    with aws_server.proxied(aws, monkeypatch) as proxy:
        yield proxy


def _name(value: str) -> list[dict]:
    return [{"Key": "Name", "Value": value}]


def build_estate(region: str, cidr_prefix: str, *, credentials: dict | None = None, instances: int = 2) -> dict:
    """A VPC with a subnet, a security group, instances (one named TRICKY) and a load-balancer-like ENI."""
    ec2 = boto3.client("ec2", region_name=region, **(credentials or {}))
    vpc = ec2.create_vpc(CidrBlock=f"{cidr_prefix}.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": _name(f"vpc-{region}")}])["Vpc"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"{cidr_prefix}.1.0/24",
                               TagSpecifications=[{"ResourceType": "subnet", "Tags": _name(f"web-{region}")}])["Subnet"]
    sg = ec2.create_security_group(GroupName=f"web-{region}", Description="web <tier>", VpcId=vpc["VpcId"])
    ec2.authorize_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    run = ec2.run_instances(ImageId=AMI, MinCount=instances, MaxCount=instances, SubnetId=subnet["SubnetId"],
                            SecurityGroupIds=[sg["GroupId"]],
                            TagSpecifications=[{"ResourceType": "instance", "Tags": _name("web")}])
    ids = [i["InstanceId"] for i in run["Instances"]]
    ec2.create_tags(Resources=[ids[0]], Tags=_name(TRICKY))
    eni = ec2.create_network_interface(SubnetId=subnet["SubnetId"], Groups=[sg["GroupId"]],
                                       Description="ELB app/web/50dc6c495c0c9188")["NetworkInterface"]
    return {"client": ec2, "vpc": vpc["VpcId"], "instances": ids, "eni": eni["NetworkInterfaceId"]}


def assumed_credentials(role: str = ROLE) -> dict:
    creds = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def as_cli_json(response: dict, key: str) -> dict:
    """What `aws ec2 describe-* --output json` prints for a boto3 response."""
    def default(v):
        if isinstance(v, datetime | date):
            return v.isoformat()
        raise TypeError(type(v))

    return json.loads(json.dumps({key: response[key]}, default=default))


def read(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_writes_the_aws_cli_shapes_for_every_region(aws, tmp_path):
    east = build_estate("us-east-1", "10.1")
    build_estate("eu-west-1", "10.2", instances=1)
    out = tmp_path / "inventory"

    summary = collect_inventory(out, regions=REGIONS, progress=False)

    expected = {f"{DEFAULT_ACCOUNT}-{r}-describe-{k}.json" for r in REGIONS for k in KINDS}
    assert {p.name for p in out.iterdir()} == expected | {SUMMARY_FILE}
    assert summary.files == sorted(expected)
    for region in REGIONS:
        client = boto3.client("ec2", region_name=region)
        for kind, (operation, key) in KINDS.items():
            doc = read(out / f"{DEFAULT_ACCOUNT}-{region}-describe-{kind}.json")
            assert list(doc) == [key]  # exactly the CLI's shape: no ResponseMetadata, no NextToken
            assert doc == as_cli_json(getattr(client, operation)(), key), (region, kind)

    instances = read(out / f"{DEFAULT_ACCOUNT}-us-east-1-describe-instances.json")
    names = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i["Tags"]}["Name"]
             for r in instances["Reservations"] for i in r["Instances"]}
    assert names[east["instances"][0]] == TRICKY  # HTML and control characters unchanged
    assert names[east["instances"][1]] == "web"
    launch = instances["Reservations"][0]["Instances"][0]["LaunchTime"]
    assert datetime.fromisoformat(launch).utcoffset().total_seconds() == 0 and launch.endswith("+00:00")
    enis = read(out / f"{DEFAULT_ACCOUNT}-us-east-1-describe-network-interfaces.json")["NetworkInterfaces"]
    assert {e["Description"] for e in enis if e["NetworkInterfaceId"] == east["eni"]} == {"ELB app/web/50dc6c495c0c9188"}
    vpcs = read(out / f"{DEFAULT_ACCOUNT}-us-east-1-describe-vpcs.json")["Vpcs"]
    assert {"vpc-us-east-1"} <= {t["Value"] for v in vpcs for t in v.get("Tags", [])}
    assert "\u00fc" in (out / f"{DEFAULT_ACCOUNT}-us-east-1-describe-instances.json").read_text(encoding="utf-8")

    assert summary.counts["instances"] == 3 and summary.counts["network-interfaces"] == 5
    saved = read(out / SUMMARY_FILE)
    assert saved["counts"] == summary.counts and saved["regions"] == sorted(REGIONS)
    assert saved["accounts"][0]["account_id"] == DEFAULT_ACCOUNT and saved["seconds"] >= 0
    eu_vpcs = read(out / f"{DEFAULT_ACCOUNT}-eu-west-1-describe-vpcs.json")["Vpcs"]
    assert saved["accounts"][0]["counts"]["vpcs"] == len(vpcs) + len(eu_vpcs) == 4  # default VPCs + ours


def test_json_keeps_any_control_character(tmp_path):
    # EC2 answers in XML, which cannot hold U+0007 (moto then sends invalid XML that botocore
    # rejects), so this part of the round trip is checked at the writer.
    doc = {"Reservations": [{"Instances": [{"Tags": [{"Key": "Name", "Value": '<b>"x"</b>\u0007\x1b[31m'}]}]}]}
    _write_json(tmp_path / "f.json", doc)
    text = (tmp_path / "f.json").read_text(encoding="utf-8")
    assert "\\u0007" in text and "\\u001b" in text and "<b>" in text
    assert json.loads(text) == doc


def test_accounts_through_assume_role(fault_proxy, tmp_path):
    build_estate("us-east-1", "10.1")
    build_estate("eu-west-1", "10.9", credentials=assumed_credentials(), instances=3)
    fault_proxy.clear()

    summary = collect_inventory(tmp_path / "roles", regions=REGIONS, role_arns=[ROLE], external_id="ext-1234",
                                progress=False)
    assert [a.account_id for a in summary.accounts] == [OTHER_ACCOUNT]  # roles only: not the caller
    assert not list((tmp_path / "roles").glob(f"{DEFAULT_ACCOUNT}-*"))
    other = read(tmp_path / "roles" / f"{OTHER_ACCOUNT}-eu-west-1-describe-instances.json")
    assert sum(len(r["Instances"]) for r in other["Reservations"]) == 3
    assert {r["OwnerId"] for r in other["Reservations"]} == {OTHER_ACCOUNT}
    (assume,) = fault_proxy.seen(action="AssumeRole")
    assert assume.params["RoleArn"] == ROLE and assume.params["RoleSessionName"] == "flowtools-inventory"
    assert assume.params["ExternalId"] == "ext-1234"
    # the role's temporary key signed every EC2 call
    assert {s.access_key for s in fault_proxy.seen(service="ec2")} == {assume_key(fault_proxy)}

    both = collect_inventory(tmp_path / "both", regions=REGIONS, role_arns=[ROLE], include_caller=True,
                             progress=False)
    assert [a.account_id for a in both.accounts] == [DEFAULT_ACCOUNT, OTHER_ACCOUNT]
    assert both.accounts[1].role_arn == ROLE and "assumed-role/flowtools-audit" in both.accounts[1].principal
    mine = read(tmp_path / "both" / f"{DEFAULT_ACCOUNT}-us-east-1-describe-instances.json")
    assert {r["OwnerId"] for r in mine["Reservations"]} == {DEFAULT_ACCOUNT}
    assert len(both.files) == 2 * len(REGIONS) * len(KINDS)


def assume_key(proxy) -> str:
    keys = {s.access_key for s in proxy.seen(service="ec2")}
    assert len(keys) == 1 and keys != {"testing"}
    return keys.pop()


def test_enabled_regions_are_discovered(aws, tmp_path):
    statuses = {r["RegionName"]: r.get("OptInStatus")
                for r in boto3.client("ec2").describe_regions(AllRegions=True)["Regions"]}
    summary = collect_inventory(tmp_path, progress=False)
    enabled = sorted(r for r, s in statuses.items() if s != "not-opted-in")
    assert summary.regions == enabled and "us-east-1" in enabled
    assert len(summary.files) == len(enabled) * len(KINDS)
    assert not any(statuses[r] == "not-opted-in" for r in summary.regions)


def test_pagination_and_throttling_through_the_proxy(fault_proxy, tmp_path):
    build_estate("us-east-1", "10.1", instances=2)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2)  # a second reservation
    enis = len(ec2.describe_network_interfaces()["NetworkInterfaces"])
    assert enis == 5
    fault_proxy.clear()
    fault_proxy.paginate("DescribeNetworkInterfaces", page_size=2)
    fault_proxy.paginate("DescribeInstances", page_size=1)
    fault_proxy.throttle("DescribeNetworkInterfaces", times=1)  # the first call: 503 RequestLimitExceeded
    fault_proxy.throttle("GetCallerIdentity", service="sts", times=1)  # 400 Throttling

    summary = collect_inventory(tmp_path, regions=["us-east-1"], progress=False)

    calls = fault_proxy.seen(action="DescribeNetworkInterfaces")
    assert [(c.status, c.params.get("NextToken")) for c in calls] == [
        (503, None), (200, None), (200, "proxy-page-2"), (200, "proxy-page-4")]
    assert calls[0].injected == "RequestLimitExceeded" and calls[1].params["MaxResults"] == "1000"
    doc = read(tmp_path / f"{DEFAULT_ACCOUNT}-us-east-1-describe-network-interfaces.json")
    assert len(doc["NetworkInterfaces"]) == enis and list(doc) == ["NetworkInterfaces"]
    assert len({e["NetworkInterfaceId"] for e in doc["NetworkInterfaces"]}) == enis
    assert [c.params.get("NextToken") for c in fault_proxy.seen(action="DescribeInstances")] == [
        None, "proxy-page-1"]
    assert len(read(tmp_path / f"{DEFAULT_ACCOUNT}-us-east-1-describe-instances.json")["Reservations"]) == 2
    assert [c.status for c in fault_proxy.seen(action="GetCallerIdentity")] == [400, 200]
    assert summary.counts["network-interfaces"] == 5 and summary.counts["instances"] == 4


def test_throttling_that_never_ends_is_a_clear_error(fault_proxy, tmp_path):
    fault_proxy.throttle("DescribeVpcs", times=None)
    with pytest.raises(CollectError, match=r"ec2:DescribeVpcs in account 123456789012 region us-east-1 "
                                           r"still throttled \(RequestLimitExceeded\) after 2 attempts"):
        collect_inventory(tmp_path, regions=["us-east-1"], progress=False, max_attempts=2)
    assert fault_proxy.count(action="DescribeVpcs") == 2


def test_access_denied_names_the_call_account_region_and_role(fault_proxy, tmp_path):
    fault_proxy.deny("DescribeInstances", region="eu-west-1")
    with pytest.raises(AwsAccessDeniedError) as e:
        collect_inventory(tmp_path, regions=REGIONS, role_arns=[ROLE], progress=False)
    message = str(e.value)
    assert "ec2:DescribeInstances" in message and f"account {OTHER_ACCOUNT}" in message
    assert "region eu-west-1" in message and ROLE in message and "UnauthorizedOperation" in message
    assert fault_proxy.count(action="DescribeInstances", region="eu-west-1") == 1  # not retried


def test_a_role_that_cannot_be_assumed(fault_proxy, tmp_path):
    fault_proxy.deny("AssumeRole", service="sts")
    with pytest.raises(AwsAccessDeniedError, match=r"cannot assume role arn:aws:iam::210987654321:role/"
                                                   r"flowtools-audit .*trust policy"):
        collect_inventory(tmp_path, regions=REGIONS, role_arns=[ROLE], progress=False)


def test_expired_credentials(fault_proxy, tmp_path):
    fault_proxy.expire("DescribeSubnets", region="us-east-1")
    with pytest.raises(AwsCredentialsError, match=r"expired \(ExpiredToken\) during ec2:DescribeSubnets in "
                                                  r"account 123456789012 region us-east-1.*aws sso login"):
        collect_inventory(tmp_path, regions=["us-east-1"], progress=False)
    fault_proxy.clear()
    fault_proxy.expire("GetCallerIdentity", service="sts")
    with pytest.raises(AwsCredentialsError, match="sts:GetCallerIdentity"):
        collect_inventory(tmp_path, regions=["us-east-1"], profile=None, progress=False)


def test_an_unusable_region_is_skipped_with_a_warning(fault_proxy, tmp_path, capsys):
    build_estate("us-east-1", "10.1")
    fault_proxy.inject(status=401, code="AuthFailure", message="AWS was not able to validate the provided "
                       "access credentials", service="ec2", region="eu-west-1", times=None)
    summary = collect_inventory(tmp_path, regions=REGIONS, progress=False)
    assert summary.regions == ["us-east-1"]
    assert list(summary.accounts[0].skipped_regions) == ["eu-west-1"]
    assert summary.warnings == [f"account {DEFAULT_ACCOUNT} region eu-west-1 skipped: ec2:DescribeNetworkInterfaces: "
                                "AuthFailure: AWS was not able to validate the provided access credentials"]
    assert not list(tmp_path.glob("*eu-west-1*"))

    code = main(["inventory", str(tmp_path / "cli"), "--regions", ",".join(REGIONS)])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == str(tmp_path / "cli")
    assert "warning: account 123456789012 region eu-west-1 skipped" in err
    assert err.strip().splitlines()[-2].startswith("inventory: 1 account(s), 1 region(s), 5 file(s)")


def test_any_failure_in_an_opt_in_region_skips_it():
    from botocore.exceptions import ClientError

    from flowtools.enrichment.collect import _Context, _RegionUnavailable

    def denied():
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeVpcs")

    ctx = _Context(None, 8)
    with pytest.raises(_RegionUnavailable, match="UnauthorizedOperation"):
        ctx.call(denied, "ec2:DescribeVpcs", "123456789012", "af-south-1", None, region_level=True, opt_in=True)
    with pytest.raises(AwsAccessDeniedError):  # the same in a region that needs no opt-in stops everything
        ctx.call(denied, "ec2:DescribeVpcs", "123456789012", "eu-west-1", None, region_level=True, opt_in=False)


def test_credentials_and_usage_errors(aws, monkeypatch, tmp_path):
    with pytest.raises(AwsCredentialsError, match="AWS profile 'nope' not found"):
        collect_inventory(tmp_path, profile="nope", regions=["us-east-1"])
    with pytest.raises(UsageError, match="not an IAM role ARN: 'arn:aws:iam::12:role/x'"):
        collect_inventory(tmp_path, role_arns=["arn:aws:iam::12:role/x"])
    with pytest.raises(UsageError, match="not a region name: 'us_east_1'"):
        collect_inventory(tmp_path, regions="us-east-1,us_east_1")
    with pytest.raises(UsageError, match="ExternalId"):
        collect_inventory(tmp_path, regions=["us-east-1"], role_arns=[ROLE], external_id="x")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AwsCredentialsError, match="no AWS credentials found"):
        collect_inventory(tmp_path, regions=["us-east-1"])


def test_profile_credentials_and_region(fault_proxy, monkeypatch, tmp_path):
    home = tmp_path / "aws-home"
    (home / "credentials").write_text("[audit]\naws_access_key_id = AKIAFLOWTOOLSAUDIT01\n"
                                      "aws_secret_access_key = secret\n")
    (home / "config").write_text("[profile audit]\nregion = eu-west-1\n")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    summary = collect_inventory(tmp_path / "out", profile="audit", regions=["us-east-1"], progress=False)
    assert summary.regions == ["us-east-1"]
    assert {s.access_key for s in fault_proxy.seen()} == {"AKIAFLOWTOOLSAUDIT01"}
    assert {s.region for s in fault_proxy.seen(service="sts")} == {"eu-west-1"}  # the profile's region


def test_cli_inventory_with_roles(aws, tmp_path, capsys):
    build_estate("us-east-1", "10.1")
    build_estate("eu-west-1", "10.9", credentials=assumed_credentials())
    out = tmp_path / "inv"
    code = main(["inventory", str(out), "--regions", "us-east-1,eu-west-1", "--role-arn", ROLE,
                 "--include-caller", "--external-id", "ext-1234"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert len(list(out.glob("*-describe-*.json"))) == 2 * 2 * len(KINDS)
    assert "inventory: 2 account(s), 2 region(s), 20 file(s)" in err
    assert f"  {OTHER_ACCOUNT} (arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/flowtools-audit/flowtools-inventory)" in err


def test_cli_errors_exit_1_with_the_message(fault_proxy, tmp_path, capsys):
    fault_proxy.deny("DescribeVpcs")
    code = main(["inventory", str(tmp_path), "--regions", "us-east-1"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("flowtools: error: access denied: ec2:DescribeVpcs in account 123456789012 region us-east-1")
    code = main(["inventory", str(tmp_path), "--regions", "nowhere"])
    assert code == 2 and "not a region name" in capsys.readouterr().err


def test_progress_bar_on_request(aws, tmp_path, capsys):
    collect_inventory(tmp_path, regions=["us-east-1"], progress=True)
    assert "inventory" in capsys.readouterr().err


def test_collected_inventory_loads_back_and_names_exposure_findings(aws, tmp_path):
    east = build_estate("us-east-1", "10.1")
    west = build_estate("eu-west-1", "10.9", credentials=assumed_credentials())
    out = tmp_path / "inventory"
    collect_inventory(out, regions=REGIONS, role_arns=[ROLE], include_caller=True, progress=False)
    inv = Inventory.load(out)
    ifaces = inv.interfaces
    assert set(ifaces["account_id"]) == {DEFAULT_ACCOUNT, OTHER_ACCOUNT}
    assert set(ifaces["region"]) == set(REGIONS)
    assert {east["eni"], west["eni"]} <= set(ifaces["interface_id"])
    tricky = ifaces.filter(pl.col("instance_id") == east["instances"][0]).row(0, named=True)
    assert tricky["resource_name"] == TRICKY  # the tag survives collection and loading unchanged
    lb = ifaces.filter(pl.col("interface_id") == east["eni"]).row(0, named=True)
    assert lb["resource_name"] == "web"  # from "ELB app/web/..."
    assert {east["vpc"], west["vpc"]} <= set(inv.vpcs["vpc_id"])

    # flows of an internet client opening a connection to the named instance
    ip, eni = tricky["private_ip"], tricky["interface_id"]
    header = DEFAULT_HEADER + " tcp-flags flow-direction"
    lines = [f"5 {DEFAULT_ACCOUNT} {eni} 203.0.113.7 {ip} 50000 443 6 3 180 1795167600 1795167660 ACCEPT OK 2 ingress",
             f"5 {DEFAULT_ACCOUNT} {eni} {ip} 203.0.113.7 443 50000 6 3 900 1795167600 1795167660 ACCEPT OK 18 egress"]
    write_log(tmp_path / "logs", daily_key(account=DEFAULT_ACCOUNT), lines, header=header)
    for engine in ("duckdb", "polars"):
        flows = flowtools.load(tmp_path / "logs", engine=engine)
        [finding] = findings_records(flowtools.internet_exposure(flows, inventory=inv))
        assert (finding["interface_id"], finding["port"], finding["status"]) == (eni, 443, "exposed")
        assert finding["resource_name"] == TRICKY and finding["instance_id"] == tricky["instance_id"]
        assert finding["vpc_id"] == east["vpc"] and finding["interface_type"] == "interface"
        assert finding["sg_open"] is True  # the group admits 0.0.0.0/0 on 443

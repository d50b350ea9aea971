"""The field catalogue: one declaration, complete for the versions in scope."""

from __future__ import annotations

import pytest

from flowtools.fields import (
    BY_NAME,
    CANONICAL_COLUMNS,
    DEFAULT_FORMAT,
    FIELDS,
    catalogue_markdown,
    parse_log_format,
)


def test_default_format_is_aws_v2_order():
    assert " ".join(DEFAULT_FORMAT) == ("version account-id interface-id srcaddr dstaddr srcport dstport "
                                        "protocol packets bytes start end action log-status")


@pytest.mark.parametrize("name,type_,version", [
    ("protocol", "int32", 2), ("packets", "int64", 2), ("start", "int64", 2), ("tcp-flags", "int32", 3),
    ("pkt-dstaddr", "string", 3), ("az-id", "string", 4), ("traffic-path", "int32", 5),
    ("flow-direction", "string", 5), ("ecs-task-id", "string", 7), ("reject-reason", "string", 8),
    ("encryption-status", "string", 10), ("interface-type", "string", 11), ("next-hop-vpc-id", "string", 11),
])
def test_types_and_versions(name, type_, version):
    f = BY_NAME[name]
    assert (f.type, f.version) == (type_, version) and f.meaning


def test_columns_unique_and_snake_case():
    cols = [f.column for f in FIELDS]
    assert len(cols) == len(set(cols)) and all("-" not in c for c in cols)
    assert CANONICAL_COLUMNS[-6:] == ("start_time", "end_time", "source_file", "flow_log_id",
                                      "source_account_id", "source_region")
    assert sum(1 for f in FIELDS if f.version == 7) == 10  # the ECS fields


def test_parse_log_format():
    assert parse_log_format("${version} ${account-id} ${tcp-flags}") == ["version", "account-id", "tcp-flags"]
    assert parse_log_format("version account_id tcp_flags") == ["version", "account-id", "tcp-flags"]
    with pytest.raises(ValueError):
        parse_log_format("  ")


def test_catalogue_docs_list_every_field():
    md = catalogue_markdown()
    assert all(f"`{f.name}`" in md for f in FIELDS)


def test_docs_are_generated_from_the_catalogue():
    from flowlog_files import REPO

    from flowtools.fields import catalogue_document

    assert (REPO / "docs" / "fields.md").read_text() == catalogue_document()

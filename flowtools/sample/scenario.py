"""The scenario: who talks to whom, when, and how each conversation ends.

Every case of the sample is one or more :class:`~flowtools.sample.traffic.Group`: a batch
of conversations plus the interfaces that record them. The ground truth is computed from
these groups (see ``truth``), never from the records.

Internet peers come from the documentation ranges, split by role so the truth is easy to
read: 192.0.2.1-9 and .53/.123/.124 are internet servers the estate calls (mirror, API,
git host, a partner's HTTPS drop, resolver, NTP), 192.0.2.10-12 the admins, 192.0.2.66 a known C2 host (on the
sample's watchlist), 192.0.2.77 the game server's one tester, 192.0.2.100 a scanner that
gets an answer, 192.0.2.128-254 and 203.0.113.200-254 scanners, 198.51.100.1-199 and 203.0.113.1-149 web clients, 203.0.113.150-179 VPN peers,
203.0.113.180-199 ping monitors, 198.51.100.200-254 DNS resolvers, 2001:db8:c000::/40
IPv6 clients. AWS service peers (S3, CloudFront, the ECS API) are in the ip-ranges
fixture's ranges.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, DTypeLike

from flowtools.protocols import ICMP, ICMPV6, TCP, UDP
from flowtools.sample.estate import BASE_TIME, Estate
from flowtools.sample.traffic import (
    NACL,
    NOANSWER,
    OK,
    REJECTED,
    RST,
    Col,
    Exposure,
    Group,
    Leg,
    client_leg,
    hop_in_leg,
    hop_out_leg,
    nat_legs,
    server_leg,
    status_records,
)

HOUR = 3600


def _hosts(prefix: str, lo: int, hi: int) -> list[str]:
    return [f"{prefix}.{i}" for i in range(lo, hi + 1)]


def _sample_net(cidr: str, n: int, salt: int) -> list[str]:
    """``n`` fixed addresses inside ``cidr`` (the same for every seed)."""
    net = ipaddress.ip_network(cidr)
    rng = np.random.default_rng(salt)
    if net.version == 6:  # hosts in different /64s, random interface identifiers
        subnets = rng.integers(0, 2 ** min(64 - net.prefixlen, 30), n)
        picks = sorted({(int(a) << 64) + int(b) for a, b in zip(subnets, rng.integers(1, 2**62, n), strict=True)})
    else:
        picks = sorted({int(x) for x in rng.integers(1, net.num_addresses - 1, n * 2) if 0 < x % 256 < 255})[:n]
    return [str(net.network_address + p) for p in picks]


WEB_CLIENTS = _hosts("198.51.100", 1, 199) + _hosts("203.0.113", 1, 149)
VPN_PEERS = _hosts("203.0.113", 150, 179)
PING_MONITORS = _hosts("203.0.113", 180, 199)
RESOLVERS = _hosts("198.51.100", 200, 254)
SCANNERS = _hosts("192.0.2", 128, 254) + _hosts("203.0.113", 200, 254)
ADMIN_IPS = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
MIRROR, API, GIT = "192.0.2.1", "192.0.2.2", "192.0.2.3"
RESOLVER, NTP = "192.0.2.53", ["192.0.2.123", "192.0.2.124"]
MIRROR6 = "2001:db8:5e::1"
WEB_CLIENTS_V6 = _sample_net("2001:db8:c000::/40", 240, 6)
S3_USE1 = _sample_net("52.216.0.0/15", 40, 1)
S3_EUW1 = _sample_net("52.218.0.0/17", 16, 2)
S3_V6 = _sample_net("2600:1fa0:8000::/39", 16, 3)
CLOUDFRONT = _sample_net("13.32.0.0/15", 24, 4)
ECS_API = "3.227.250.10"  # in an AMAZON-only range
C2 = "192.0.2.66"  # case 15: a known C2 host app-2 beacons to (on the watchlist)
SSH_SCANNER = "192.0.2.100"  # case 16: the scanner SSH answers (on the watchlist)
GAME_PEER, GAME_PEER_PORT, GAME_PORT = "192.0.2.77", 50123, 7777  # case 18
PARTNER = "192.0.2.4"  # case 19: a partner's HTTPS drop the batch workers export to

#: The sample's watchlist (``watchlist.txt``, the format of flowtools.analyses.watchlist):
#: (address or CIDR, label). Two entries are never seen in the traffic.
WATCHLIST: tuple[tuple[str, str], ...] = (
    (C2, "known C2 server"),
    (SSH_SCANNER, "ssh brute forcer"),
    ("192.0.2.99", "phishing kit host (never seen)"),
    ("192.0.2.240/28", "scanner farm"),
    ("2001:db8:bad::/48", "tor exit nodes (never seen)"),
)

# Hourly activity profiles (UTC), relative.
WEB = [3, 2, 2, 2, 2, 3, 4, 6, 8, 9, 10, 10, 10, 11, 12, 12, 12, 11, 10, 9, 8, 6, 5, 4]
FLAT = [1] * 24
OFFICE = [0, 0, 0, 0, 1, 1, 2, 4, 6, 6, 6, 6, 5, 6, 6, 6, 5, 4, 2, 1, 1, 0, 0, 0]
BATCH_JOBS = [6, 6, 6, 2, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 4, 6, 6, 6]

#: Case 11: one long SFTP session across hour 5 (its SYN at 04:41:07Z, FIN at 05:36:52Z).
LONG_SESSION = (4 * HOUR + 41 * 60 + 7, 55 * 60 + 45)
#: Case 12: the preview site answers only during hour 2.
PREVIEW_HOURS = (2, 3)
#: Case 17: reports goes live at the start of the second day (a 48-hour sample shows it new).
REPORTS_LIVE_HOUR = 24
#: Case 18: the game tester's sessions each day (start in the day, duration), seconds.
GAME_SESSIONS = ((12 * HOUR + 3 * 60 + 10, 40 * 60), (19 * HOUR + 12 * 60 + 5, 2 * HOUR + 17 * 60))


def watchlist_text() -> str:
    """``watchlist.txt``: :data:`WATCHLIST` in the watchlist file format."""
    lines = ["# flowtools sample watchlist (documentation ranges; see truth.json \"watchlist\")"]
    for n, (item, label) in enumerate(WATCHLIST):
        lines.append(f"{item}, {label}" if n == 3 else f"{item:<20} {label}")  # both separators
    return "\n".join(lines) + "\n"


class Scenario:
    """Builds the scenario's groups for a seed, a number of hours and a scale."""

    def __init__(self, estate: Estate, *, seed: int, hours: int, scale: float) -> None:
        self.estate = estate
        self.seed = seed
        self.hours = hours
        self.scale = scale
        self.base = int(BASE_TIME.timestamp())
        self.end = self.base + hours * HOUR
        self.groups: list[Group] = []

    # -- helpers --------------------------------------------------------------------------

    def rng(self, name: str) -> np.random.Generator:
        """An independent stream per case: adding a case does not change the others."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def ip(self, iface: str) -> str:
        return self.estate.interfaces[iface].ip

    def address(self, iface: str, which: str) -> str:
        """The interface's ``ipv6`` or ``public_ip``; ValueError when it has none."""
        value = getattr(self.estate.interfaces[iface], which)
        if not value:
            raise ValueError(f"{iface} has no {which}")
        return str(value)

    def times(self, rng: np.random.Generator, per_day: float, profile: Sequence[float] = FLAT,
              active: Callable[[int], bool] | None = None) -> np.ndarray:
        """Sorted start times: ``per_day`` (times the scale) over a day's profile, only in
        the scenario's hours for which ``active(hour)`` holds."""
        hours = np.array([h for h in range(self.hours) if active is None or active(h)], dtype=np.int64)
        if hours.size == 0:
            return np.zeros(0, dtype=np.int64)
        weights = np.array([profile[h % 24] for h in hours], dtype=float)
        n = int(round(per_day * self.scale * weights.sum() / sum(profile)))
        if n == 0 or weights.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        chosen = rng.choice(hours, size=n, p=weights / weights.sum())
        t0 = self.base + chosen * HOUR + rng.integers(0, HOUR, n)
        return np.sort(t0)

    @staticmethod
    def pick(rng: np.random.Generator, pool: Sequence[str], n: int, skew: float = 1.0) -> np.ndarray:
        """``n`` addresses from ``pool``, a few of them much more often (Zipf-like)."""
        order = rng.permutation(len(pool))
        w = 1.0 / (np.arange(len(pool)) + 3.0) ** skew
        return np.asarray(pool, dtype=object)[order][rng.choice(len(pool), n, p=w / w.sum())]

    @staticmethod
    def ephemeral(rng: np.random.Generator, n: int, lo: int = 32768, hi: int = 60999) -> np.ndarray:
        return rng.integers(lo, hi + 1, n)

    def conversations(self, t0: np.ndarray, dur: ArrayLike, *, c_addr: ArrayLike, c_port: ArrayLike,
                      s_addr: ArrayLike, s_port: ArrayLike, by_f: ArrayLike, by_r: ArrayLike,
                      kind: ArrayLike = OK, pk_f: ArrayLike | None = None, pk_r: ArrayLike | None = None,
                      **extra: ArrayLike) -> pl.DataFrame:
        """A conversation batch; scalars are broadcast. Conversations still open at the
        scenario's end are cut there (no FIN)."""
        n = len(t0)

        def arr(v: ArrayLike, dtype: DTypeLike) -> np.ndarray:
            a = np.asarray(v, dtype=dtype)
            return np.broadcast_to(a, (n,)).copy() if a.ndim == 0 else a

        t0 = arr(t0, np.int64)
        t1 = t0 + arr(dur, np.int64)
        closed = t1 < self.end
        t1 = np.minimum(t1, self.end - 1)
        by_f, by_r = arr(by_f, np.int64), arr(by_r, np.int64)
        pk_r = arr(pk_r, np.int64) if pk_r is not None else by_r // 1200 + 2
        pk_f = arr(pk_f, np.int64) if pk_f is not None else np.maximum(by_f // 1200 + 2, pk_r // 2)
        data = {
            "c_addr": pl.Series(arr(c_addr, object), dtype=pl.String),
            "c_port": pl.Series(arr(c_port, np.int64), dtype=pl.Int32),
            "s_addr": pl.Series(arr(s_addr, object), dtype=pl.String),
            "s_port": pl.Series(arr(s_port, np.int64), dtype=pl.Int32),
            "t0": t0, "t1": t1, "closed": closed,
            "kind": pl.Series(arr(kind, np.int8), dtype=pl.Int8),
            "pk_f": pk_f, "by_f": np.maximum(by_f, pk_f * 40),
            "pk_r": pk_r, "by_r": np.maximum(by_r, pk_r * 40),
        }
        for k, v in extra.items():
            data[k] = pl.Series(arr(v, np.int64), dtype=pl.Int32)
        return pl.DataFrame(data)

    def add(self, group: Group) -> None:
        self.groups.append(group)

    # -- the cases ------------------------------------------------------------------------

    def build(self) -> list[Group]:
        self.web_servers()
        self.outbound_calls()
        self.bastion()
        self.scanners()
        self.nat_clients()
        self.load_balancer()
        self.east_west()
        self.edge()
        self.transit()
        self.sandbox()
        self.answered_scanner()
        self.reports_live()
        self.game_server()
        self.unlogged_batch()
        return self.groups

    def _web_clients(self, name: str, iface: str, port: int, per_day: float, *, long_per_day: float = 0,
                     pool: Sequence[str] = WEB_CLIENTS, server: str | None = None, ipv6: bool = False,
                     description: str, active: Callable[[int], bool] | None = None,
                     profile: Sequence[float] = WEB) -> None:
        """Internet clients of a TCP service: many short connections, a few long ones."""
        rng = self.rng(name)
        server = server or self.ip(iface)
        tp = 8 if self.estate.agg(iface) == 60 else 2  # Nitro instances report code 8
        t_short = self.times(rng, per_day, profile, active)
        t_long = self.times(rng, long_per_day, profile, active)
        n_s, n_l = len(t_short), len(t_long)
        t0 = np.concatenate([t_short, t_long])
        dur = np.concatenate([
            np.clip(rng.lognormal(np.log(2), 1.3, n_s), 0, 240).astype(np.int64),
            rng.integers(300, 3600, n_l),
        ])
        by_r = np.concatenate([
            np.clip(rng.lognormal(np.log(15000), 1.5, n_s), 300, 5e7),
            rng.integers(200_000, 80_000_000, n_l),
        ]).astype(np.int64)
        if active is not None:  # a service that exists only then: no connection outlives its hour
            stop = self.base + ((t0 - self.base) // HOUR + 1) * HOUR - 1
            dur = np.minimum(dur, stop - t0)
        conv = self.conversations(
            t0, dur, c_addr=self.pick(rng, pool, n_s + n_l), c_port=self.ephemeral(rng, n_s + n_l, 1024, 65535),
            s_addr=server, s_port=port, by_f=rng.integers(300, 4000, n_s + n_l), by_r=by_r,
        )
        self.add(Group(name, TCP, conv, [server_leg(iface, tp=tp, server=server)], description,
                       internet=True, exposes=[Exposure(iface)], ipv6=ipv6))

    def _pings(self, name: str, iface: str, per_day: float, *, server: str | None = None,
               kind: int = OK, ipv6: bool = False, description: str) -> None:
        rng = self.rng(name)
        t0 = self.times(rng, per_day)
        n = len(t0)
        count = rng.integers(1, 5, n)
        size = 104 if ipv6 else 84
        conv = self.conversations(
            t0, count - 1, c_addr=self.pick(rng, PING_MONITORS if not ipv6 else WEB_CLIENTS_V6[:20], n, 0.3),
            c_port=0, s_addr=server or self.ip(iface), s_port=0, by_f=count * size, by_r=count * size,
            pk_f=count, pk_r=count, kind=kind,
        )
        tp = 8 if self.estate.agg(iface) == 60 else 2
        self.add(Group(name, ICMPV6 if ipv6 else ICMP, conv,
                       [server_leg(iface, tp=tp, server=server or self.ip(iface))],
                       description, internet=True, exposes=[Exposure(iface)], ipv6=ipv6))

    def web_servers(self) -> None:
        """Cases 1, 6, 7, 12: public web servers and their internet clients."""
        web = "public HTTPS/HTTP site: many internet clients, short and long connections"
        self._web_clients("web-1/https", "web-1", 443, 7000, long_per_day=80, description=f"web-1 {web}")
        self._web_clients("web-1/http", "web-1", 80, 1200, description="web-1 HTTP (redirects to HTTPS)")
        self._web_clients("web-1/cloudfront", "web-1", 443, 500, pool=CLOUDFRONT,
                          description="web-1 HTTPS origin for CloudFront (AWS-owned but internet peers)")
        self._pings("web-1/ping", "web-1", 150,
                    description="web-1 answers internet pings (ICMP echo accepted and answered)")
        self._web_clients("web-2/https", "web-2", 443, 5000, long_per_day=60, description=f"web-2 {web}")
        self._web_clients("web-2/http", "web-2", 80, 900, description="web-2 HTTP (redirects to HTTPS)")
        h0, h1 = PREVIEW_HOURS
        self._web_clients(
            "web-2/preview", "web-2", 8080, 6000, profile=FLAT, active=lambda h: h0 <= h < h1,
            description=f"web-2 preview site on tcp/8080, only between {h0:02d}:00Z and {h1:02d}:00Z "
                        "(a window without that hour has no finding for it)")
        self._web_clients("web-legacy/https", "web-legacy", 443, 1500, long_per_day=30,
                          description="web-legacy HTTPS, logged only in the default v2 format "
                                      "(no flags, no direction)")
        self._web_clients("web-legacy/http", "web-legacy", 80, 2000,
                          description="web-legacy HTTP, logged only in the default v2 format")
        ip6 = self.address("web-v6", "ipv6")
        self._web_clients("web-v6/https", "web-v6", 443, 2000, long_per_day=40, pool=WEB_CLIENTS_V6,
                          server=ip6, ipv6=True, description="web-v6 HTTPS over IPv6 (2001:db8:... clients)")
        self._pings("web-v6/ping6", "web-v6", 80, server=ip6, ipv6=True,
                    description="web-v6 answers ICMPv6 echo from the internet")

    def _outbound(self, name: str, iface: str, per_day: float, *, servers: Sequence[str], port: int,
                  tp: int, why: str, description: str, dur: tuple[int, int] = (60, 1800), ipv6: bool = False,
                  profile: Sequence[float] = FLAT, active: Callable[[int], bool] | None = None,
                  up: tuple[int, int] = (2_000, 5_000_000), down: tuple[int, int] = (2_000, 200_000)) -> None:
        """The interface's own calls to internet / AWS service addresses (through its IGW)."""
        rng = self.rng(name)
        t0 = self.times(rng, per_day, profile, active)
        n = len(t0)
        conv = self.conversations(
            t0, rng.integers(dur[0], dur[1] + 1, n), c_addr=self.address(iface, "ipv6") if ipv6 else self.ip(iface),
            c_port=self.ephemeral(rng, n), s_addr=self.pick(rng, servers, n, 0.5), s_port=port,
            by_f=rng.integers(up[0], up[1], n), by_r=rng.integers(down[0], down[1], n),
        )
        self.add(Group(name, TCP, conv, [client_leg(iface, tp=tp, client=Col("c_addr"))], description,
                       why=why, ipv6=ipv6))

    def outbound_calls(self) -> None:
        """Case 1's other half: the web servers' own calls, whose replies reach ephemeral ports."""
        s3 = "reply to own HTTPS call to S3"
        mirror = "reply to own call to a package mirror"
        for web in ("web-1", "web-2"):
            self._outbound(f"{web}/s3", web, 96, servers=S3_USE1, port=443, tp=8, why=s3,
                           description=f"{web} uploads to S3 over the internet gateway (keep-alive)")
            self._outbound(f"{web}/mirror", web, 12, servers=[MIRROR], port=80, tp=8, why=mirror,
                           description=f"{web} package updates", dur=(5, 120))
        self._outbound("web-legacy/s3", "web-legacy", 60, servers=S3_USE1, port=443, tp=2, why=s3,
                       description="web-legacy uploads to S3")
        self._outbound("web-legacy/mirror", "web-legacy", 12, servers=[MIRROR], port=80, tp=2, why=mirror,
                       description="web-legacy package updates", dur=(5, 120))
        self._outbound("web-v6/s3", "web-v6", 60, servers=S3_V6, port=443, tp=8, why=s3, ipv6=True,
                       description="web-v6 calls S3's dual-stack endpoint over IPv6")
        for app in ("app-1", "app-2"):
            self._outbound(f"{app}/s3", app, 100, servers=S3_USE1, port=443, tp=7,
                           why="reply to own call to S3 through a gateway endpoint",
                           description=f"{app} reads S3 through the gateway VPC endpoint")
        self._outbound("checkout-fargate/s3", "checkout-fargate", 60, servers=S3_USE1, port=443, tp=2,
                       why="reply to own call to S3 through a gateway endpoint",
                       description="checkout task reads S3")
        self._outbound("vpn/mirror", "vpn", 12, servers=[MIRROR], port=443, tp=2, why=mirror,
                       description="vpn package updates", dur=(5, 120))
        self._outbound("ns1/mirror", "ns1", 12, servers=[MIRROR], port=443, tp=8, why=mirror,
                       description="ns1 package updates", dur=(5, 120))
        self._outbound("app-edge/s3", "app-edge", 48, servers=S3_EUW1, port=443, tp=2, why=s3,
                       description="app-edge writes to S3 in eu-west-1")

    def bastion(self) -> None:
        """Cases 2 and 11: SSH from a few admins; one long SFTP session across hour 5."""
        rng = self.rng("bastion/ssh")
        t0 = self.times(rng, 12, OFFICE)
        n = len(t0)
        conv = self.conversations(
            t0, rng.integers(600, 10800, n), c_addr=self.pick(rng, ADMIN_IPS, n, 0.5),
            c_port=self.ephemeral(rng, n, 1024, 65535), s_addr=self.ip("bastion"), s_port=22,
            by_f=rng.integers(20_000, 2_000_000, n), by_r=rng.integers(50_000, 20_000_000, n),
        )
        self.add(Group("bastion/ssh", TCP, conv, [server_leg("bastion", tp=8)],
                       "bastion SSH from the admins' addresses (long sessions)",
                       internet=True, exposes=[Exposure("bastion")]))
        start, dur = LONG_SESSION
        t0 = np.array([self.base + start], dtype=np.int64)
        t0 = t0[t0 < self.end]
        conv = self.conversations(
            t0, dur, c_addr=ADMIN_IPS[0], c_port=51022, s_addr=self.ip("bastion"), s_port=2222,
            by_f=900_000_000, by_r=2_000_000,
        )
        self.add(Group("bastion/sftp", TCP, conv, [server_leg("bastion", tp=8)],
                       "bastion tcp/2222: ONE long SFTP upload from 192.0.2.10 port 51022, SYN at "
                       "04:41:07Z, FIN at 05:36:52Z; a window from 05:00Z sees only flag-0 "
                       "windows then the FIN",
                       internet=True, exposes=[Exposure("bastion")]))
        for app in ("app-1", "app-2"):
            rng = self.rng(f"bastion/{app}")
            t0 = self.times(rng, 5, OFFICE)
            n = len(t0)
            conv = self.conversations(
                t0, rng.integers(60, 3600, n), c_addr=self.ip("bastion"), c_port=self.ephemeral(rng, n),
                s_addr=self.ip(app), s_port=22, by_f=rng.integers(5_000, 200_000, n),
                by_r=rng.integers(5_000, 2_000_000, n),
            )
            self.add(Group(f"bastion/{app}", TCP, conv, [client_leg("bastion"), server_leg(app)],
                           f"admins hop from the bastion to {app} (internal)"))

    def scanners(self) -> None:
        """Case 9: internet scanners whose SYNs are rejected (one target behind VPC BPA)."""
        targets = {
            "web-1": (23, 3389, 445),
            "bastion": (23, 3389, 3306, 5900),
            "web-legacy": (3306, 23, 1433),
            "vpn": (3389, 445, 23),
            "app-edge": (23, 3389),
            "checkout-fargate": (22, 80, 8080, 23),
        }
        for iface, ports in targets.items():
            name = f"scan/{iface}"
            rng = self.rng(name)
            t0 = self.times(rng, 130 * len(ports))
            n = len(t0)
            tries = rng.integers(1, 3, n)
            conv = self.conversations(
                t0, (tries - 1) * 3, c_addr=self.pick(rng, SCANNERS, n, 0.3),
                c_port=self.ephemeral(rng, n, 1024, 65535), s_addr=self.ip(iface),
                s_port=rng.choice(np.asarray(ports), n), by_f=tries * 44, by_r=0, pk_f=tries, pk_r=0,
                kind=REJECTED,
            )
            bpa = iface == "checkout-fargate"
            self.add(Group(
                name, TCP, conv, [server_leg(iface)],
                f"scanners' SYNs to {iface} rejected" + (" by VPC Block Public Access "
                                                         "(reject-reason BPA)" if bpa else
                                                         " by its security group"),
                internet=True, exposes=[Exposure(iface)], reject_reason="BPA" if bpa else None))

    def _via_nat(self, name: str, iface: str, nat: str, per_day: float, *, servers: Sequence[str],
                 port: int, protocol: int = TCP, why: str, description: str, dur: tuple[int, int] = (1, 300),
                 profile: Sequence[float] = FLAT, up: tuple[int, int] = (500, 20_000),
                 down: tuple[int, int] = (1_000, 500_000), extra_legs: Sequence[Leg] = (),
                 client_tp: int = 1, target: str | None = None, target_port: int | None = None,
                 logged: bool = True) -> None:
        """Conversations of ``iface`` through the NAT gateway ``nat``; ``logged=False``: the
        instance's own interface logs nothing (no flow log covers it), only the gateway does."""
        rng = self.rng(name)
        t0 = self.times(rng, per_day, profile)
        n = len(t0)
        conv = self.conversations(
            t0, rng.integers(dur[0], dur[1] + 1, n), c_addr=self.ip(iface), c_port=self.ephemeral(rng, n),
            s_addr=self.pick(rng, servers, n, 0.5), s_port=port, by_f=rng.integers(up[0], up[1], n),
            by_r=rng.integers(down[0], down[1], n), pk_f=1 if protocol == UDP else None,
            pk_r=1 if protocol == UDP else None, nat_port=rng.integers(1024, 65536, n),
        )
        own = [client_leg(iface, tp=client_tp)] if logged else []
        legs = [*own, *extra_legs, *nat_legs(nat, self.ip(nat))]
        if target:  # the destination is one of ours (hairpin through the internet gateway)
            legs.append(server_leg(target, client=self.address(nat, "public_ip"),
                                   client_port=Col("nat_port"), server=self.ip(target),
                                   server_port=target_port, tp=8))
        self.add(Group(name, protocol, conv, legs, description, why=why))

    def nat_clients(self) -> None:
        """Cases 3 and 13: private instances reach the internet through the NAT gateway."""
        nat = "nat-prod"
        api = "reply to own connection through the NAT gateway"
        for app in ("app-1", "app-2"):
            self._via_nat(f"{app}/api", app, nat, 200, servers=[API], port=443, why=api,
                          description=f"{app} calls an external API through the NAT gateway", profile=WEB)
            self._via_nat(f"{app}/git", app, nat, 30, servers=[GIT], port=443, why=api,
                          description=f"{app} pulls from a git host through the NAT gateway")
            self._via_nat(f"{app}/ntp", app, nat, 48, servers=NTP, port=123, protocol=UDP, dur=(0, 0),
                          up=(76, 77), down=(76, 77), why="NTP reply to own query through the NAT gateway",
                          description=f"{app} NTP client (udp/123) through the NAT gateway")
            self._via_nat(f"{app}/dns", app, nat, 120, servers=[RESOLVER], port=53, protocol=UDP,
                          dur=(0, 0), up=(60, 90), down=(90, 500), profile=WEB,
                          why="DNS answer to own lookup through the NAT gateway",
                          description=f"{app} DNS lookups to a public resolver through the NAT gateway")
        self._via_nat("ecs-node/ecs-api", "ecs-node", nat, 60, servers=[ECS_API], port=443, dur=(20, 60),
                      why="reply to own call to the ECS API through the NAT gateway",
                      description="ECS agent polls the ECS API through the NAT gateway")
        self._via_nat("app-2/c2", "app-2", nat, 96, servers=[C2], port=443, dur=(1, 20), up=(300, 3_000),
                      down=(200, 2_000), why="reply to own call (to a watchlisted host) through the NAT gateway",
                      description=f"case 15: app-2 beacons to {C2} (the watchlist's known C2 server) "
                                  "through the NAT gateway")
        self._via_nat("app-1/web-1-public", "app-1", nat, 96, servers=[self.address("web-1", "public_ip")],
                      port=443, target="web-1", target_port=443, dur=(0, 5),
                      why="reply from the estate's own public IP",
                      description="app-1 checks web-1 through its public IP: web-1 sees the NAT "
                                  "gateway's Elastic IP, which is the estate's own (not internet)")

    def load_balancer(self) -> None:
        """Case 4: an internet-facing NLB on tcp/443, its target on tcp/8443 (client IP kept)."""
        name = "nlb/https"
        rng = self.rng(name)
        nlb, target = self.ip("nlb"), self.ip("api-1")
        t_short = self.times(rng, 2500, WEB)
        t_long = self.times(rng, 30, WEB)
        n_s, n_l = len(t_short), len(t_long)
        n = n_s + n_l
        conv = self.conversations(
            np.concatenate([t_short, t_long]),
            np.concatenate([np.clip(rng.lognormal(0.5, 1.0, n_s), 0, 60), rng.integers(600, 2400, n_l)]),
            c_addr=self.pick(rng, WEB_CLIENTS, n), c_port=self.ephemeral(rng, n, 1024, 65535),
            s_addr=nlb, s_port=443, by_f=rng.integers(400, 8_000, n), by_r=rng.integers(1_000, 400_000, n),
        )
        legs = [
            server_leg("nlb", tp=2),
            hop_out_leg("nlb", nlb, server=target, server_port=8443),
            server_leg("api-1", server=target, server_port=8443, tp=1),
        ]
        self.add(Group(name, TCP, conv, legs,
                       "api-nlb (ELB net/api-nlb/0123456789abcdef) listener tcp/443, forwarding to "
                       "api-1 tcp/8443 with client IP preservation",
                       internet=True, exposes=[Exposure("nlb"),
                                               Exposure("api-1", local_addr=target, local_port=8443)]))
        rng = self.rng("nlb/health")
        t0 = self.times(rng, 1440)
        n = len(t0)
        conv = self.conversations(t0, 0, c_addr=nlb, c_port=self.ephemeral(rng, n), s_addr=target,
                                  s_port=8443, by_f=240, by_r=200, pk_f=4, pk_r=3)
        self.add(Group("nlb/health", TCP, conv, [client_leg("nlb"), server_leg("api-1")],
                       "NLB health checks to api-1 tcp/8443 every minute (internal)"))

    def east_west(self) -> None:
        """Case 13: internal traffic, no findings."""
        db = self.ip("db-1")
        for client, short in (("app-1", 400), ("app-2", 400), ("checkout-fargate", 300), ("checkout-ec2", 300)):
            name = f"{client}/db"
            rng = self.rng(name)
            t_pool = self.times(rng, 4)
            t_short = self.times(rng, short, WEB)
            n_p, n_s = len(t_pool), len(t_short)
            n = n_p + n_s
            conv = self.conversations(
                np.concatenate([t_pool, t_short]),
                np.concatenate([rng.integers(3600, 4 * 3600, n_p), rng.integers(0, 20, n_s)]),
                c_addr=self.ip(client), c_port=self.ephemeral(rng, n), s_addr=db, s_port=5432,
                by_f=rng.integers(1_000, 500_000, n), by_r=rng.integers(1_000, 5_000_000, n),
            )
            self.add(Group(name, TCP, conv, [client_leg(client), server_leg("db-1")],
                           f"{client} -> db-1 postgres (internal)"))
        for web, task in (("web-1", "checkout-fargate"), ("web-2", "checkout-ec2")):
            name = f"{web}/{task}"
            rng = self.rng(name)
            t0 = self.times(rng, 600, WEB)
            n = len(t0)
            conv = self.conversations(
                t0, rng.integers(0, 10, n), c_addr=self.ip(web), c_port=self.ephemeral(rng, n),
                s_addr=self.ip(task), s_port=8080, by_f=rng.integers(500, 5_000, n),
                by_r=rng.integers(500, 50_000, n),
            )
            self.add(Group(name, TCP, conv, [client_leg(web), server_leg(task)],
                           f"{web} -> {task} tcp/8080 (internal)"))

    def edge(self) -> None:
        """Cases 5, 7 and 8 in eu-west-1: UDP services, ICMP behind a stateless NACL,
        a port that answers only with resets and one that never answers."""
        name = "vpn/wireguard"
        rng = self.rng(name)
        t0 = self.times(rng, 50, OFFICE)
        n = len(t0)
        dur = rng.integers(600, 6 * 3600, n)
        conv = self.conversations(
            t0, dur, c_addr=self.pick(rng, VPN_PEERS, n, 0.5), c_port=self.ephemeral(rng, n, 1024, 65535),
            s_addr=self.ip("vpn"), s_port=51820, by_f=dur * rng.integers(500, 20_000, n),
            by_r=dur * rng.integers(2_000, 80_000, n),
        )
        self.add(Group(name, UDP, conv, [server_leg("vpn", tp=2)],
                       "vpn WireGuard udp/51820: internet peers from random high source ports",
                       internet=True, exposes=[Exposure("vpn")]))
        self._pings("vpn/ping", "vpn", 120, kind=NACL,
                    description="vpn: internet pings accepted by the security group, the echo "
                                "replies rejected by the subnet's stateless network ACL")
        for proto, per_day, label in ((UDP, 3500, "udp"), (TCP, 40, "tcp")):
            name = f"ns1/dns-{label}"
            rng = self.rng(name)
            t0 = self.times(rng, per_day, WEB)
            n = len(t0)
            conv = self.conversations(
                t0, 0 if proto == UDP else rng.integers(0, 3, n), c_addr=self.pick(rng, RESOLVERS, n),
                c_port=self.ephemeral(rng, n, 1024, 65535), s_addr=self.ip("ns1"), s_port=53,
                by_f=rng.integers(60, 100, n), by_r=rng.integers(100, 1_400, n),
                pk_f=1 if proto == UDP else None, pk_r=1 if proto == UDP else None,
            )
            self.add(Group(name, proto, conv, [server_leg("ns1", tp=8)],
                           f"ns1 authoritative DNS on {label}/53 answering internet resolvers",
                           internet=True, exposes=[Exposure("ns1")]))
        for port, kind, per_day, what in (
            (8081, RST, 150, "accepted but answered only with a reset (RST, flags 4): nothing listens"),
            (9000, NOANSWER, 100, "accepted but never answered (a host firewall drops them)"),
        ):
            name = f"app-edge/{port}"
            rng = self.rng(name)
            t0 = self.times(rng, per_day)
            n = len(t0)
            tries = rng.integers(1, 4, n) if kind == NOANSWER else np.ones(n, dtype=np.int64)
            conv = self.conversations(
                t0, (tries - 1) * 2, c_addr=self.pick(rng, WEB_CLIENTS, n),
                c_port=self.ephemeral(rng, n, 1024, 65535), s_addr=self.ip("app-edge"), s_port=port,
                by_f=tries * 60, by_r=40, pk_f=tries, pk_r=1, kind=kind,
            )
            self.add(Group(name, TCP, conv, [server_leg("app-edge", tp=2)],
                           f"app-edge tcp/{port}: internet SYNs {what}",
                           internet=True, exposes=[Exposure("app-edge")]))

    def transit(self) -> None:
        """Case 10: a shared-services VPC reaches the internet through a transit gateway and
        the egress VPC's NAT gateway; and an internal proxy across the transit gateway."""
        tgw_in = hop_in_leg("tgw-shared", self.ip("tgw-shared"))
        tgw_out = hop_out_leg("tgw-egress", self.ip("tgw-egress"))
        why = "reply to own connection through transit gateway and NAT gateway"
        self._via_nat("ci-runner/git", "ci-runner", "nat-egress", 120, servers=[GIT], port=443,
                      why=why, extra_legs=(tgw_in, tgw_out), profile=BATCH_JOBS,
                      description="ci-runner pulls from a git host via transit gateway + NAT gateway")
        self._via_nat("ci-runner/mirror", "ci-runner", "nat-egress", 80, servers=[MIRROR], port=443,
                      why=why, extra_legs=(tgw_in, tgw_out), profile=BATCH_JOBS,
                      description="ci-runner downloads packages via transit gateway + NAT gateway")
        name = "ci-runner/proxy"
        rng = self.rng(name)
        t0 = self.times(rng, 400, BATCH_JOBS)
        n = len(t0)
        conv = self.conversations(
            t0, rng.integers(0, 120, n), c_addr=self.ip("ci-runner"), c_port=self.ephemeral(rng, n),
            s_addr=self.ip("proxy"), s_port=3128, by_f=rng.integers(500, 20_000, n),
            by_r=rng.integers(1_000, 2_000_000, n),
        )
        self.add(Group(name, TCP, conv, [client_leg("ci-runner"), tgw_in, tgw_out, server_leg("proxy")],
                       "ci-runner -> egress proxy tcp/3128 across the transit gateway (internal)"))

    def sandbox(self) -> None:
        """Case 14's idle interface: an all-traffic rule, only its own updates at 03h/15h."""
        self._outbound("sandbox-1/mirror", "sandbox-1", 60, servers=[MIRROR], port=443, tp=2,
                       active=lambda h: h % 24 in (3, 15), dur=(5, 120),
                       why="reply to own call to a package mirror",
                       description="sandbox-1 package updates (its only traffic)")

    def answered_scanner(self) -> None:
        """Case 16: a scanner (on the watchlist) sweeps web-legacy's ports: SSH, open to the
        internet, answers; every other port is rejected by the security group."""
        name = "scan/web-legacy-ssh"
        rng = self.rng(name)
        sweeps = self.times(rng, 6)
        ports = np.array([22, 23, 25, 110, 143, 445, 1433, 3306, 3389, 5432, 5900, 6379], dtype=np.int64)
        n = len(sweeps) * len(ports)
        t0 = np.repeat(sweeps, len(ports)) + np.tile(np.arange(len(ports)) * 2, len(sweeps))
        port = np.tile(ports, len(sweeps))
        order = np.argsort(t0, kind="stable")
        t0, port = t0[order], port[order]
        ok = port == 22
        conv = self.conversations(
            t0, np.where(ok, rng.integers(2, 12, n), 0), c_addr=SSH_SCANNER, c_port=self.ephemeral(rng, n),
            s_addr=self.ip("web-legacy"), s_port=port, by_f=np.where(ok, rng.integers(1_500, 4_000, n), 44),
            by_r=np.where(ok, rng.integers(2_000, 5_000, n), 0), pk_f=np.where(ok, rng.integers(8, 20, n), 1),
            pk_r=np.where(ok, rng.integers(6, 15, n), 0), kind=np.where(ok, OK, REJECTED),
        )
        self.add(Group(name, TCP, conv, [server_leg("web-legacy", tp=2)],
                       f"case 16: {SSH_SCANNER} (on the watchlist) sweeps 12 ports of web-legacy: SSH (open "
                       "to the internet) answers, the others are rejected by its security group",
                       internet=True, exposes=[Exposure("web-legacy")]))

    def reports_live(self) -> None:
        """Case 17: reports, idle on the first day, serves internet viewers from the second."""
        h0 = REPORTS_LIVE_HOUR
        self._web_clients("reports/viewers", "reports", 8000, 1500, long_per_day=10, profile=OFFICE,
                          active=lambda h: h >= h0,
                          description="case 17: reports goes live on the second day: internet viewers on "
                                      "tcp/8000 (its security group's 8000-8100 rule)")

    def game_server(self) -> None:
        """Case 18: a game server on an unregistered UDP port used by ONE internet tester from
        one source port, logged in the default format (no flags, no direction): each window
        holds the request and the reply with the same start, the reply written first."""
        name = "web-legacy/game"
        rng = self.rng(name)
        days = -(-self.hours // 24)
        t0 = np.array([self.base + d * 24 * HOUR + s for d in range(days) for s, _ in GAME_SESSIONS], dtype=np.int64)
        dur = np.array([d for _ in range(days) for _, d in GAME_SESSIONS], dtype=np.int64)
        keep = t0 < self.end
        t0, dur = t0[keep], dur[keep]
        n = len(t0)
        by_f, by_r = dur * rng.integers(2_000, 3_000, n), dur * rng.integers(5_000, 8_000, n)
        conv = self.conversations(t0, dur, c_addr=GAME_PEER, c_port=GAME_PEER_PORT, s_addr=self.ip("web-legacy"),
                                  s_port=GAME_PORT, by_f=by_f, by_r=by_r, pk_f=by_f // 80, pk_r=by_r // 300)
        leg = server_leg("web-legacy", tp=2)
        self.add(Group(name, UDP, conv, [Leg(leg.iface, tuple(reversed(leg.halves)))],
                       f"case 18: web-legacy game server on udp/{GAME_PORT}, used by one tester "
                       f"({GAME_PEER} port {GAME_PEER_PORT}) in the default format: who was seen first "
                       "is a tie in every window",
                       internet=True, exposes=[Exposure("web-legacy")], ambiguous=True))

    def unlogged_batch(self) -> None:
        """Case 19: batch workers in a subnet no flow log covers reach the internet through
        nat-prod, whose interface alone logs it: both legs (the inside one keeps the worker's
        address in ``srcaddr`` and the internet host in ``pkt-dstaddr``; the outside one is
        translated), so the worker's bytes are attributed to it through the inside leg and
        counted once. batch-1 exports to a partner and writes to S3 through the gateway (no
        S3 endpoint in its route table); batch-2 calls the external API."""
        nat = "nat-prod"
        why = "reply to own connection through the NAT gateway (the instance's subnet is not logged)"
        self._via_nat("batch-1/export", "batch-1", nat, 40, servers=[PARTNER], port=443, dur=(60, 1800),
                      up=(2_000_000, 120_000_000), down=(2_000, 60_000), profile=BATCH_JOBS, why=why,
                      logged=False, description="case 19: batch-1 (no flow log) uploads nightly exports to a "
                                                "partner through the NAT gateway")
        self._via_nat("batch-1/s3", "batch-1", nat, 150, servers=S3_USE1, port=443, up=(50_000, 20_000_000),
                      down=(1_000, 100_000), profile=BATCH_JOBS, why=why, logged=False,
                      description="case 19: batch-1 (no flow log) writes to S3 through the NAT gateway "
                                  "(no gateway endpoint in its route table)")
        self._via_nat("batch-2/api", "batch-2", nat, 300, servers=[API], port=443, why=why, profile=WEB,
                      logged=False, description="case 19: batch-2 (no flow log) calls an external API "
                                                "through the NAT gateway")

    # -- records that carry no traffic ----------------------------------------------------

    def _busy_windows(self, iface: str, agg: int) -> np.ndarray:
        """The start of every aggregation window in which ``iface`` logs traffic."""
        out = [np.zeros(0, dtype=np.int64)]
        for g in self.groups:
            if any(leg.iface == iface for leg in g.legs) and g.conversations.height:
                k0 = g.conversations["t0"].to_numpy() // agg
                k1 = g.conversations["t1"].to_numpy() // agg
                nw = k1 - k0 + 1
                out.append((np.repeat(k0, nw) + np.arange(nw.sum()) - np.repeat(np.cumsum(nw) - nw, nw)) * agg)
        return np.unique(np.concatenate(out))

    def status_frames(self) -> list[pl.DataFrame]:
        """NODATA for idle interfaces (every window: reports; sandbox-1 outside its update
        hours) and a few SKIPDATA windows on web-1 at 14:05Z."""
        frames = []
        agg = self.estate.agg("reports")
        starts = np.arange(self.base, self.end, agg, dtype=np.int64)
        starts = starts[~np.isin(starts, self._busy_windows("reports", agg))]  # case 17's day
        frames.append(status_records("reports", starts, agg, "NODATA"))
        agg = self.estate.agg("sandbox-1")
        starts = np.arange(self.base, self.end, agg, dtype=np.int64)
        starts = starts[~np.isin(((starts - self.base) // HOUR) % 24, (3, 15))]
        frames.append(status_records("sandbox-1", starts, agg, "NODATA"))
        agg = self.estate.agg("web-1")
        starts = self.base + 14 * HOUR + 5 * 60 + np.arange(3, dtype=np.int64) * agg
        frames.append(status_records("web-1", starts[starts + agg <= self.end], agg, "SKIPDATA"))
        return frames

"""The PromQL the Grafana dashboard uses, evaluated over a series of /metrics scrapes.

Only what `charts/swg-operator/dashboards/swg-operator.json` needs: selectors with `=`, `!=`,
`=~` matchers and a range, `sum`/`max`/`min`/`avg`/`count` with `by (...)`, `rate`, `increase`
and `histogram_quantile`. Anything else raises `UnsupportedQueryError`, so a panel is drawn as
unsupported rather than wrong.

Differences from Prometheus, said where the rendering is shown: `rate` and `increase` take the
first and last samples inside the range without extrapolating to the range's edges (counter
resets are handled); the range is cut to the scrapes there are.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]
Points = list[tuple[float, float]]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)(?P<unit>[smhdw])?(?![\w])|(?P<str>\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>=~|!~|!=|=|[(){}\[\],])|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*))"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
AGGREGATIONS = {"sum", "max", "min", "avg", "count"}


class UnsupportedQueryError(ValueError):
    """A query this evaluator does not handle; the message names what."""


@dataclass
class Scrapes:
    """Every sample of every scrape: metric name -> labels -> [(time, value)]."""

    series: dict[str, dict[Labels, Points]] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    def add(self, t: float, text: str, extra: Mapping[str, str] | None = None) -> None:
        """One scrape's text at time `t`; `extra` labels are added to each sample (as
        Prometheus adds target labels)."""
        if not self.times or self.times[-1] != t:
            self.times.append(t)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = dict(sample.labels) | dict(extra or {})
                key = tuple(sorted(labels.items()))
                self.series.setdefault(sample.name, {}).setdefault(key, []).append(
                    (t, float(sample.value))
                )

    def names(self) -> set[str]:
        return set(self.series)


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]
    range_seconds: float | None


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregation:
    op: str
    by: tuple[str, ...]
    expr: Node


@dataclass(frozen=True)
class Number:
    value: float


Node = Selector | Call | Aggregation | Number


def _tokens(query: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(query.rstrip()):
        match = _TOKEN.match(query, pos)
        if match is None or match.end() == pos:
            raise UnsupportedQueryError(f"cannot read {query[pos:]!r}")
        kind = match.lastgroup if match.lastgroup != "unit" else "num"
        if match.group("num") is not None:
            unit = match.group("unit")
            out.append(("dur" if unit else "num", match.group("num") + (unit or "")))
        else:
            out.append((kind or "", match.group(kind or "")))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokens(query)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> str:
        _, value = self.peek()
        if text is not None and value != text:
            raise UnsupportedQueryError(f"expected {text!r}, found {value!r}")
        self.i += 1
        return value

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            names.append(self.take())
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return tuple(names)

    def expr(self) -> Node:
        kind, value = self.peek()
        if kind == "num":
            self.take()
            return Number(float(value))
        if kind != "ident":
            raise UnsupportedQueryError(f"unexpected {value!r}")
        self.take()
        if value in AGGREGATIONS:
            by: tuple[str, ...] = ()
            if self.peek()[1] == "by":
                self.take()
                by = self.labels()
            elif self.peek()[1] == "without":
                raise UnsupportedQueryError("without (...)")
            self.take("(")
            inner = self.expr()
            self.take(")")
            if self.peek()[1] == "by":
                self.take()
                by = self.labels()
            return Aggregation(value, by, inner)
        if self.peek()[1] == "(":
            if value not in ("rate", "increase", "histogram_quantile"):
                raise UnsupportedQueryError(f"function {value}")
            self.take("(")
            args = [self.expr()]
            while self.peek()[1] == ",":
                self.take(",")
                args.append(self.expr())
            self.take(")")
            return Call(value, tuple(args))
        matchers: list[tuple[str, str, str]] = []
        if self.peek()[1] == "{":
            self.take("{")
            while self.peek()[1] != "}":
                label, op, text = self.take(), self.take(), self.take()
                if op not in ("=", "!=", "=~"):
                    raise UnsupportedQueryError(f"matcher {op}")
                matchers.append((label, op, text[1:-1].encode().decode("unicode_escape")))
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
        range_seconds = None
        if self.peek()[1] == "[":
            self.take("[")
            duration = self.take()
            range_seconds = float(duration[:-1]) * _UNITS[duration[-1]]
            self.take("]")
        return Selector(value, tuple(matchers), range_seconds)


def parse(query: str) -> Node:
    parser = _Parser(query)
    node = parser.expr()
    if parser.peek()[0] != "end":
        raise UnsupportedQueryError(f"unexpected {parser.peek()[1]!r} after the expression")
    return node


def metric_names(node: Node) -> set[str]:
    if isinstance(node, Selector):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(metric_names(a) for a in node.args))
    if isinstance(node, Aggregation):
        return metric_names(node.expr)
    return set()


# --- evaluation -----------------------------------------------------------------------------


def _matches(labels: Labels, matchers: Iterable[tuple[str, str, str]]) -> bool:
    found = dict(labels)
    for label, op, text in matchers:
        value = found.get(label, "")
        if op == "=" and value != text:
            return False
        if op == "!=" and value == text:
            return False
        if op == "=~" and not re.fullmatch(text, value):
            return False
    return True


def _increase(points: Points) -> float:
    total = 0.0
    for (_, before), (_, after) in itertools.pairwise(points):
        total += after - before if after >= before else after  # a reset starts from zero
    return total


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets.sort()
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    start, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    end, count = buckets[index]
    if count == below:
        return end
    return start + (end - start) * (rank - below) / (count - below)


def _reduce(op: str, values: list[float]) -> float:
    if op == "sum":
        return float(sum(values))
    if op == "max":
        return max(values)
    if op == "min":
        return min(values)
    if op == "count":
        return float(len(values))
    return sum(values) / len(values)


def evaluate(node: Node, scrapes: Scrapes, t: float) -> Vector:
    """The instant vector of `node` at time `t`."""
    if isinstance(node, Number):
        return {(): node.value}
    if isinstance(node, Selector):
        if node.range_seconds is not None:
            raise UnsupportedQueryError("a range vector outside rate/increase")
        out: Vector = {}
        for labels, points in scrapes.series.get(node.name, {}).items():
            if _matches(labels, node.matchers):
                present = [v for (ts, v) in points if ts <= t]
                if present:
                    out[labels] = present[-1]
        return out
    if isinstance(node, Aggregation):
        groups: dict[Labels, list[float]] = {}
        for labels, value in evaluate(node.expr, scrapes, t).items():
            key = tuple((k, v) for k, v in labels if k in node.by)
            groups.setdefault(key, []).append(value)
        return {key: _reduce(node.op, values) for key, values in groups.items()}
    if node.function in ("rate", "increase"):
        (arg,) = node.args
        if not isinstance(arg, Selector) or arg.range_seconds is None:
            raise UnsupportedQueryError(f"{node.function} of something else than a range")
        out = {}
        for labels, points in scrapes.series.get(arg.name, {}).items():
            if not _matches(labels, arg.matchers):
                continue
            inside = [(ts, v) for (ts, v) in points if t - arg.range_seconds < ts <= t]
            if len(inside) < 2:
                continue
            grown = _increase(inside)
            span = inside[-1][0] - inside[0][0]
            out[labels] = grown if node.function == "increase" else grown / span
        return out
    q_node, vector_node = node.args
    if not isinstance(q_node, Number):
        raise UnsupportedQueryError("histogram_quantile with a computed quantile")
    grouped: dict[Labels, list[tuple[float, float]]] = {}
    for labels, value in evaluate(vector_node, scrapes, t).items():
        le = dict(labels).get("le")
        if le is None:
            continue
        key = tuple((k, v) for k, v in labels if k != "le")
        grouped.setdefault(key, []).append((float(le), value))
    return {key: _quantile(q_node.value, buckets) for key, buckets in grouped.items()}


def legend(template: str, labels: Labels) -> str:
    """Grafana's legendFormat: `{{label}}` replaced by the series' value."""
    found = dict(labels)
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: found.get(m.group(1), ""), template)
    return text.strip() or (", ".join(f"{k}={v}" for k, v in labels) or "value")


def timeline(node: Node, scrapes: Scrapes) -> dict[Labels, Points]:
    """`node` evaluated at every scrape's time: each series' points (NaN kept out)."""
    out: dict[Labels, Points] = {}
    for t in scrapes.times:
        for labels, value in evaluate(node, scrapes, t).items():
            if not math.isnan(value):
                out.setdefault(labels, []).append((t, value))
    return out

"""``GET /metrics``: counters and latency histograms in the Prometheus text format.

Everything is updated on the event loop, so plain integers suffice. Paths other
than the server's own are counted as ``other`` (a scanner cannot grow the table).

>>> m = Metrics(("/get_reward",))
>>> m.start("/get_reward"); m.observe("/get_reward", 200, 0.012)
>>> 'specc_requests_total{path="/get_reward",status="200"} 1' in m.render({}, {})
True
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping

#: Upper bounds of the latency buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, paths: Iterable[str]):
        self.paths = tuple(paths)
        self.requests: Counter[tuple[str, int]] = Counter()
        self.buckets: dict[str, list[int]] = {p: [0] * (len(BUCKETS) + 1) for p in self.paths}
        self.seconds: dict[str, float] = dict.fromkeys(self.paths, 0.0)
        self.errors: Counter[str] = Counter()  # by kind: grader, overloaded, bad_request
        self.in_flight: Counter[str] = Counter()  # requests started, not yet answered

    def path(self, raw: str) -> str:
        return raw if raw in self.paths else "other"

    def start(self, path: str) -> None:
        self.in_flight[self.path(path)] += 1

    def observe(self, path: str, status: int, seconds: float) -> None:
        path = self.path(path)
        self.in_flight[path] -= 1
        self.requests[(path, status)] += 1
        if path in self.buckets:
            self.buckets[path][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.seconds[path] += seconds

    def render(
        self, gauges: Mapping[str, float], labelled: Mapping[str, Mapping[str, float]]
    ) -> str:
        """The exposition text; ``gauges`` are plain ``name: value`` samples and
        ``labelled`` ``name: {constraint: value}`` (the Lagrange multipliers)."""
        out = [
            "# HELP specc_requests_total HTTP requests answered, by path and status.",
            "# TYPE specc_requests_total counter",
        ]
        for (path, status), n in sorted(self.requests.items()):
            out.append(f'specc_requests_total{{path="{path}",status="{status}"}} {n}')
        out += [
            "# HELP specc_request_seconds Time from request to response, by path.",
            "# TYPE specc_request_seconds histogram",
        ]
        for path, counts in self.buckets.items():
            total = 0
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                total += n
                out.append(f'specc_request_seconds_bucket{{path="{path}",le="{bound}"}} {total}')
            out.append(f'specc_request_seconds_sum{{path="{path}"}} {self.seconds[path]:.6f}')
            out.append(f'specc_request_seconds_count{{path="{path}"}} {total}')
        out += [
            "# HELP specc_requests_in_flight Requests received and not yet answered.",
            "# TYPE specc_requests_in_flight gauge",
        ]
        for path in self.paths:
            out.append(f'specc_requests_in_flight{{path="{path}"}} {self.in_flight[path]}')
        out += [
            "# HELP specc_errors_total Requests that failed, by kind.",
            "# TYPE specc_errors_total counter",
        ]
        for kind in ("bad_request", "grader", "overloaded"):
            out.append(f'specc_errors_total{{kind="{kind}"}} {self.errors[kind]}')
        for name, value in gauges.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            out += [f"# TYPE {name} {kind}", f"{name} {_num(value)}"]
        for name, values in labelled.items():
            if not values:
                continue
            out.append(f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}")
            for label, value in values.items():
                out.append(f'{name}{{constraint="{label}"}} {_num(value)}')
        return "\n".join(out) + "\n"


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)

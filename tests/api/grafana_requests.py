"""The requests Grafana 10/11's Prometheus data source sends, replayed against dcops.

Where each comes from (grafana/grafana, read through the code search):
- pkg/promlib/healthcheck.go: "Save & test" runs the instant query ``1+1`` over the time
  range Unix(1)..Unix(4), so ``time=4``; pkg/promlib/heuristics.go then reads
  ``api/v1/status/buildinfo`` and treats an answer without ``features`` as Prometheus.
- pkg/promlib/client/client.go: with HTTP method POST, query and query_range go as a form
  body (``Content-Type: application/x-www-form-urlencoded``, Go's ``url.Values.Encode``:
  keys sorted, ``+`` written ``%2B``), times as ``FormatFloat(seconds, 'f', -1)``, the step
  in seconds, and ``timeout`` when a query timeout is set. Resource calls under
  ``api/v1/label/``, ``api/v1/metadata`` and ``api/v1/status/buildinfo`` are always GET;
  others are POSTed and retried as GET on a 400 or 405.
- packages/grafana-prometheus/src/constants.ts (GET_AND_POST_METADATA_ENDPOINTS: query,
  query_range, series, labels) and language_provider.ts: the query editor and Explore load
  ``/api/v1/labels`` and ``/api/v1/label/__name__/values`` with ``start``/``end`` (unix
  seconds) from the time picker, ``/api/v1/series`` with ``match[]``, and
  ``/api/v1/metadata`` with no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

NOW_S = 1_700_000_000
"""The tests' FakeClock time; Grafana's time picker is "last 1 hour" ending here."""

HOUR_AGO_S = NOW_S - 3600


@dataclass(frozen=True)
class GrafanaRequest:
    """One HTTP request as Grafana sends it: method, path with query string, form body."""

    what: str
    method: str
    path: str
    form: str | None = None


GRAFANA_REQUESTS = [
    GrafanaRequest("buildinfo (heuristics after Save & test)", "GET",
                   "/api/v1/status/buildinfo"),
    GrafanaRequest("Save & test health check", "POST", "/api/v1/query",
                   "query=1%2B1&time=4"),
    GrafanaRequest("Save & test, query timeout set", "POST", "/api/v1/query",
                   "query=1+%2B+1&time=4&timeout=60s"),
    GrafanaRequest("dashboard panel", "POST", "/api/v1/query_range",
                   f"end={NOW_S}&query=sum+by+%28node%29+%28dcops_gpu_utilization_percent%29"
                   f"&start={HOUR_AGO_S}&step=15"),
    GrafanaRequest("Explore instant query", "POST", "/api/v1/query",
                   f"query=dcops_gpu_utilization_percent&time={NOW_S}.123"),
    GrafanaRequest("query editor: label names", "GET",
                   f"/api/v1/labels?start={HOUR_AGO_S}&end={NOW_S}"),
    GrafanaRequest("query editor: label names (POST)", "POST", "/api/v1/labels",
                   f"start={HOUR_AGO_S}&end={NOW_S}"),
    GrafanaRequest("metrics browser: metric names", "GET",
                   f"/api/v1/label/__name__/values?start={HOUR_AGO_S}&end={NOW_S}"),
    GrafanaRequest("label values of a metric", "GET",
                   "/api/v1/label/gpu/values?match%5B%5D=dcops_gpu_utilization_percent"
                   f"&start={HOUR_AGO_S}&end={NOW_S}"),
    GrafanaRequest("series of a selector", "GET",
                   "/api/v1/series?match%5B%5D=dcops_gpu_utilization_percent%7Bnode%3D"
                   f"%22gpu-node-1%22%7D&start={HOUR_AGO_S}&end={NOW_S}"),
    GrafanaRequest("series of a selector (POST)", "POST", "/api/v1/series",
                   f"end={NOW_S}&match%5B%5D=dcops_gpu_utilization_percent%7Bnode%3D"
                   f"%22gpu-node-1%22%7D&start={HOUR_AGO_S}"),
    GrafanaRequest("metric metadata", "GET", "/api/v1/metadata"),
]

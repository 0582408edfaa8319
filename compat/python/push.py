#!/usr/bin/python3
"""Pushes a fixed set of metrics with prometheus_client's Pushgateway API.

Run by the Go tests in compat/ (clients_test.go) with Debian's interpreter,
/usr/bin/python3, which sees the python3-prometheus-client package:

    push.py ACTION GATEWAY JOB GROUPING_KEY_JSON [METRICS]

ACTION is push (push_to_gateway: PUT), pushadd (pushadd_to_gateway: POST) or
delete (delete_from_gateway: DELETE). GROUPING_KEY_JSON is a JSON object of
grouping labels; values containing '/' and empty values are sent by the
client as <label>@base64/<value>. METRICS is a comma-separated subset of
counter,gauge,histogram,summary (default: all four). When GATEWAY_USERNAME
and GATEWAY_PASSWORD are set, the request goes through basic_auth_handler.

A failed request (e.g. 401, 400) exits with status 1 and the error on stderr.
"""

import json
import os
import sys

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)
from prometheus_client.exposition import basic_auth_handler, default_handler

ALL_METRICS = ("counter", "gauge", "histogram", "summary")


def registry_with(metrics):
    """The same values on every call; the Go test knows them."""
    registry = CollectorRegistry()
    if "counter" in metrics:
        c = Counter("compat_py_requests", "Requests handled.", ["code"], registry=registry)
        c.labels("200").inc(3)
        c.labels("500").inc(1)
    if "gauge" in metrics:
        g = Gauge("compat_py_temperature_celsius", "Temperature.", registry=registry)
        g.set(21.5)
    if "histogram" in metrics:
        h = Histogram("compat_py_latency_seconds", "Latency.", buckets=(0.3, 1.0), registry=registry)
        for v in (0.25, 0.5, 2.0):
            h.observe(v)
    if "summary" in metrics:
        s = Summary("compat_py_payload_bytes", "Payload size.", registry=registry)
        s.observe(200)
    return registry


def main(argv):
    if len(argv) not in (5, 6):
        sys.exit(__doc__)
    action, gateway, job, grouping_json = argv[1:5]
    metrics = argv[5].split(",") if len(argv) == 6 else ALL_METRICS
    for m in metrics:
        if m not in ALL_METRICS:
            sys.exit(f"unknown metric kind {m!r}, want one of {ALL_METRICS}")
    grouping_key = json.loads(grouping_json)

    username = os.environ.get("GATEWAY_USERNAME")
    password = os.environ.get("GATEWAY_PASSWORD")
    handler = default_handler
    if username is not None and password is not None:
        def handler(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

    if action == "delete":
        delete_from_gateway(gateway, job=job, grouping_key=grouping_key, timeout=10, handler=handler)
        return
    push = {"push": push_to_gateway, "pushadd": pushadd_to_gateway}.get(action)
    if push is None:
        sys.exit(f"unknown action {action!r}, want push, pushadd or delete")
    push(gateway, job=job, registry=registry_with(metrics), grouping_key=grouping_key,
         timeout=10, handler=handler)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as e:  # urllib's HTTPError carries the status and reason
        body = e.read().decode("utf-8", "replace") if hasattr(e, "read") else ""
        print(f"{type(e).__name__}: {e} {body}".rstrip(), file=sys.stderr)
        sys.exit(1)

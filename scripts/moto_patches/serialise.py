"""One lock around every request (the whole WSGI dispatch), and a count of requests per
service and operation.

moto's models are not thread-safe: Kinesis PutRecord computes "last sequence number + 1"
unlocked, so two concurrent puts get the same number and one record silently overwrites the
other; DynamoDB scans can fail with "dictionary changed size during iteration". moto is
CPU-bound Python under the GIL anyway, so serialising costs little. The other patches rely on
this lock: nothing they index changes while a request runs.

`GET /_orders/requests` answers {"requests": {"dynamodb": {"PutItem": 12, ...}, ...},
"seconds": {"dynamodb": {"PutItem": 0.031, ...}, ...}} (the benchmarks' "requests per order",
and where the emulator's time goes); `DELETE /_orders/requests` sets them back to zero.
"""

import collections
import json
import threading
import time

import moto.server
from moto.core.responses import BaseResponse

LOCK = threading.RLock()
REQUESTS = collections.Counter()
# Seconds spent answering, per (service, operation): where the emulator's time goes.
SECONDS = collections.Counter()
REQUESTS_PATH = "/_orders/requests"

# Called with the handler after each request, still under the lock (see gsi_index).
AFTER_REQUEST = []

_call_action = BaseResponse.call_action


def _operation(handler):
    try:
        return handler._get_action() or "unknown"
    except Exception:
        return "unknown"


def call_action(self):
    with LOCK:
        key = (self.service_name or "unknown", _operation(self))
        REQUESTS[key] += 1
        started = time.perf_counter()
        try:
            return _call_action(self)
        finally:
            for hook in AFTER_REQUEST:
                hook(self)
            SECONDS[key] += time.perf_counter() - started


class CountingDispatcher(moto.server.DomainDispatcherApplication):
    """moto's WSGI application, plus the request counts on REQUESTS_PATH."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != REQUESTS_PATH:
            # The whole dispatch, not only `call_action`: some services' handlers (API Gateway
            # v2's among them) answer outside it, and routing creates per-service apps lazily.
            with LOCK:
                return super().__call__(environ, start_response)
        with LOCK:
            if environ.get("REQUEST_METHOD") == "DELETE":
                REQUESTS.clear()
                SECONDS.clear()
            by_service, seconds = {}, {}
            for (service, operation), count in sorted(REQUESTS.items()):
                by_service.setdefault(service, {})[operation] = count
                seconds.setdefault(service, {})[operation] = round(SECONDS[(service, operation)], 6)
        body = json.dumps({"requests": by_service, "seconds": seconds}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def install():
    BaseResponse.call_action = call_action
    # moto.server.main builds its application from this module attribute.
    moto.server.DomainDispatcherApplication = CountingDispatcher

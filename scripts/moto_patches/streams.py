"""DynamoDB Streams reads at the cost of the records, not of botocore's serialiser.

The outbox relay polls the orders table's change stream. Stock moto answered each GetRecords
through botocore's per-attribute response serialiser: 7.7 ms per call under our load (1.5 s of
emulator time for 300 orders, `GET /_orders/requests`), more than any other read. The records
are already wire-format JSON (moto builds them with `Item.to_json()` when the write happens),
so plain `json.dumps` gives the same document; only `ApproximateCreationDateTime` is a
datetime, which the JSON protocol sends as epoch seconds.

Every GetRecords also registered a new shard iterator that was never dropped: iterators now
expire like AWS's (15 minutes), checked when the table of iterators grows.
"""

import json
import time
from datetime import datetime, timezone

from moto.core.responses import ActionResult
from moto.dynamodbstreams import models as streams_models
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from . import fast_paths

ITERATOR_SECONDS = 15 * 60
_PRUNE_EVERY = 1000
_serialized = DynamoDBStreamsHandler.serialized


def _json_value(value):
    """Images hold what DynamoDB reads hold (binary as base64, sets); records add a time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        # Whole milliseconds, as botocore's serialiser sends them.
        return int(value.timestamp() * 1000) / 1000
    return fast_paths.json_value(value)


def serialized(self, action_result):
    if type(action_result) is ActionResult and isinstance(action_result.result, dict) \
            and self._get_action() == "GetRecords":
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        headers.update(self.response_headers)
        return 200, headers, json.dumps(action_result.result, default=_json_value)
    return _serialized(self, action_result)


class _ExpiringIterators(dict):
    """Shard iterators by ARN, forgotten 15 minutes after they were issued."""

    def __setitem__(self, key, value):
        super().__setitem__(key, (time.monotonic(), value))
        if len(self) % _PRUNE_EVERY == 0:
            cutoff = time.monotonic() - ITERATOR_SECONDS
            for stale in [k for k, (issued, _) in self.items() if issued < cutoff]:
                del self[stale]

    def __getitem__(self, key):
        issued, value = super().__getitem__(key)
        if issued < time.monotonic() - ITERATOR_SECONDS:
            raise KeyError(key)  # ExpiredIteratorException on AWS
        return value


_init = streams_models.DynamoDBStreamsBackend.__init__


def _backend_init(self, region_name, account_id):
    _init(self, region_name, account_id)
    self.shard_iterators = _ExpiringIterators()


def install():
    DynamoDBStreamsHandler.serialized = serialized
    streams_models.DynamoDBStreamsBackend.__init__ = _backend_init

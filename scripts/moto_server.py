"""Starts moto_server (pinned moto 5.2.5) with fixes for concurrent clients.

1. Requests are serialised. moto's models are not thread-safe: Kinesis PutRecord computes
   "last sequence number + 1" unlocked, so two concurrent puts get the same number and one
   record silently overwrites the other (an acknowledged event that never reaches consumers);
   DynamoDB scans can fail with "dictionary changed size during iteration". moto is CPU-bound
   Python under the GIL anyway, so serialising costs little.

2. moto's TransactWriteItems backs up *whole tables* with deepcopy before a transaction and
puts the copies back when the transaction is cancelled. Under concurrent requests that

  * erases every write other requests made while the transaction ran (orders placed during
    a cancelled stock reservation simply vanished), and
  * fails with "dictionary changed size during iteration" (HTTP 500) when a table changes
    while it is being copied — and costs O(table size) per transaction.

Here a cancelled transaction restores only the items it touched, as DynamoDB guarantees.

3. Every request is counted by service and operation, for the benchmarks' "requests per
   order": `GET /_orders/requests` answers {"requests": {"dynamodb": {"PutItem": 12, ...}, ...}}
   and `DELETE /_orders/requests` sets every count back to zero.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p 4566 (same arguments as moto_server).
"""

import collections
import copy
import json
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.core.responses import BaseResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
import moto.server
from moto.server import main

LOCK = threading.RLock()
REQUESTS = collections.Counter()
REQUESTS_PATH = "/_orders/requests"

_call_action = BaseResponse.call_action


def call_action(self):
    with LOCK:
        try:
            REQUESTS[(self.service_name or "unknown", self._get_action() or "unknown")] += 1
        except Exception:
            REQUESTS[(self.service_name or "unknown", "unknown")] += 1
        return _call_action(self)


class CountingDispatcher(moto.server.DomainDispatcherApplication):
    """moto's WSGI application, plus the request counts on REQUESTS_PATH."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != REQUESTS_PATH:
            return super().__call__(environ, start_response)
        with LOCK:
            if environ.get("REQUEST_METHOD") == "DELETE":
                REQUESTS.clear()
            by_service = {}
            for (service, operation), count in sorted(REQUESTS.items()):
                by_service.setdefault(service, {})[operation] = count
        body = json.dumps({"requests": by_service}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class _NoTableCopies:
    """Stands in for the `copy` module inside moto's transaction code: tables are not
    copied (the item backups below replace that), everything else is."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


_transact_write_items = DynamoDBBackend.transact_write_items


def _key_of(table, op_type, op):
    if op_type == "Put":
        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
        if table.range_key_attr:
            key[table.range_key_attr] = op["Item"][table.range_key_attr]
        return key
    return op["Key"]


def transact_write_items(self, transact_items):
    with LOCK:
        backups = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            try:
                table = self.get_table(op["TableName"])
                hash_value, range_value = self.get_keys_value(table, _key_of(table, op_type, op))
            except Exception:
                continue  # moto's own validation reports it
            backups.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        dynamodb_models.copy = _NoTableCopies
        try:
            return _transact_write_items(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, old in reversed(backups):
                if old is None:
                    try:
                        table.delete_item(hash_value, range_value)
                    except Exception:
                        pass
                elif table.has_range_key:
                    table.items[hash_value][range_value] = old
                else:
                    table.items[hash_value] = old
            raise
        finally:
            dynamodb_models.copy = copy


BaseResponse.call_action = call_action
DynamoDBBackend.transact_write_items = transact_write_items
# moto.server.main builds its application from this module attribute.
moto.server.DomainDispatcherApplication = CountingDispatcher

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

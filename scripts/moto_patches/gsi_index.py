"""Query on a global secondary index reads a sorted index of one partition, not the table.

moto answers every GSI Query by walking *all* items of the table, sorting the matches with
Python-level comparisons and then applying Limit: O(table) per request. Our listings query 16
index partitions per page, so a page took seconds at a few thousand orders and the stack slowed
to 503s as data grew.

Here each GSI with one hash and one range key gets an index: per hash value, a sorted list of
(range value, table key). A Query finds its slice by binary search (key condition and
ExclusiveStartKey), takes at most Limit + 1 items in the asked direction and hands only those
to moto's own query code, which still does the rest exactly as before (sort, Limit,
LastEvaluatedKey, projection, FilterExpression). Cost: O(log n + Limit).

The index is built from the table on its first Query and kept current after every request
that writes items (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems: the
touched keys are re-read, so conditional failures and cancelled transactions are covered).
Any other request that may change a table (UpdateTable, UpdateTimeToLive, PartiQL, restores,
…) drops the indexes of the table it names, or of every table of that account and region when
it names none; they are rebuilt on the next Query. All of this
runs under the request lock (`serialise`), so no request sees an index mid-update.
"""

import base64
from bisect import bisect_left, bisect_right, insort
from decimal import Decimal

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from .serialise import AFTER_REQUEST

ATTR = "_orders_gsi_indexes"

# Requests that never change items or tables.
READS = {
    "BatchGetItem", "DescribeContinuousBackups", "DescribeContributorInsights", "DescribeEndpoints",
    "DescribeKinesisStreamingDestination", "DescribeLimits", "DescribeTable",
    "DescribeTableReplicaAutoScaling", "DescribeTimeToLive", "GetItem", "GetResourcePolicy",
    "ListBackups", "ListGlobalTables", "ListTables", "ListTagsOfResource", "Query", "Scan",
    "TransactGetItems",
}
ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _sortable(value):
    """The Python value DynamoDB orders a key attribute by, or None if it cannot be a key.
    (Python orders str by code point, which is the UTF-8 byte order DynamoDB uses.)"""
    if value is None:
        return None
    if value.type == "S":
        return value.value
    if value.type == "N":
        return Decimal(value.value)
    if value.type == "B":
        raw = value.value
        return raw if isinstance(raw, bytes) else base64.b64decode(raw)
    return None


def _attr(raw):
    """A key attribute as sent in a request ({"S": "…"}), or None when it is malformed."""
    try:
        return DynamoType(raw)
    except Exception:
        return None


class PartitionIndex:
    """One GSI: hash value -> sorted [(range value, table key)], and where each item is."""

    def __init__(self, table, gsi, hash_attr, range_attr):
        self.name = gsi.name
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.buckets = {}
        self.placed = {}  # table key -> (hash value, entry)
        self.keys = {}  # table key -> (hash DynamoType, range DynamoType | None), for get_item
        for item in table.all_items():
            self._add(self._table_key(item.hash_key, item.range_key), item)

    @staticmethod
    def _table_key(hash_key, range_key):
        return (_sortable(hash_key), _sortable(range_key))

    def _add(self, table_key, item):
        hash_value = _sortable(item.attrs.get(self.hash_attr))
        range_value = _sortable(item.attrs.get(self.range_attr))
        if hash_value is None or range_value is None:
            return  # sparse index: items without both key attributes are not in it
        entry = (range_value, table_key)
        insort(self.buckets.setdefault(hash_value, []), entry)
        self.placed[table_key] = (hash_value, entry)
        self.keys[table_key] = (item.hash_key, item.range_key)

    def _remove(self, table_key):
        placed = self.placed.pop(table_key, None)
        self.keys.pop(table_key, None)
        if placed is None:
            return
        hash_value, entry = placed
        bucket = self.buckets[hash_value]
        at = bisect_left(bucket, entry)
        if at < len(bucket) and bucket[at] == entry:
            del bucket[at]
        if not bucket:
            del self.buckets[hash_value]

    def refresh(self, table, hash_key, range_key):
        table_key = self._table_key(hash_key, range_key)
        self._remove(table_key)
        item = table.get_item(hash_key, range_key) if hash_key is not None else None
        if item is not None:
            self._add(table_key, item)

    def candidates(self, table, hash_key, comparison, range_objs, start_key, forward, limit):
        """The items a Query can return, at most limit + 1, or None when this index cannot
        answer it (moto's own query then runs)."""
        bucket = self.buckets.get(_sortable(hash_key), [])
        low, high = 0, len(bucket)
        if comparison:
            values = [_sortable(v) for v in range_objs]
            if not values or any(v is None for v in values):
                return None
            op = comparison.upper()

            def left(v):
                return bisect_left(bucket, v, key=lambda e: e[0])

            def right(v):
                return bisect_right(bucket, v, key=lambda e: e[0])

            if op in ("=", "EQ"):
                low, high = left(values[0]), right(values[0])
            elif op in ("<", "LT"):
                high = left(values[0])
            elif op in ("<=", "LE"):
                high = right(values[0])
            elif op in (">", "GT"):
                low = right(values[0])
            elif op in (">=", "GE"):
                low = left(values[0])
            elif op == "BETWEEN" and len(values) == 2:
                low, high = left(values[0]), right(values[1])
            else:
                return None
        if start_key:
            start_range = _sortable(_attr(start_key.get(self.range_attr)))
            start_hash = _sortable(_attr(start_key.get(table.hash_key_attr)))
            start_table_range = (
                _sortable(_attr(start_key.get(table.range_key_attr))) if table.range_key_attr else None
            )
            if start_range is None or start_hash is None:
                return None
            start = (start_range, (start_hash, start_table_range))
            if forward:
                low = max(low, bisect_right(bucket, start))
            else:
                high = min(high, bisect_left(bucket, start))
        if low >= high:
            return []
        take = high - low if not limit else min(high - low, int(limit) + 1)
        chosen = bucket[low : low + take] if forward else bucket[high - take : high]
        items = []
        for _, table_key in chosen:
            item = table.get_item(*self.keys[table_key])
            if item is not None:
                items.append(item)
        return items


def _index(table, index_name):
    indexes = getattr(table, ATTR, None)
    if indexes is None:
        indexes = {}
        setattr(table, ATTR, indexes)
    if index_name not in indexes:
        index = None
        for gsi in table.global_indexes:
            if gsi.name != index_name:
                continue
            hashes = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "RANGE"]
            if len(hashes) == 1 and len(ranges) == 1:
                index = PartitionIndex(table, gsi, hashes[0], ranges[0])
        indexes[index_name] = index
    return indexes[index_name]


_query = Table.query


def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
          scan_index_forward, projection_expressions, index_name=None, consistent_read=False,
          filter_expression=None, hash_key_conditions=None, range_key_conditions=None,
          **filter_kwargs):
    args = (hash_key, range_comparison, range_objs, limit)
    rest = (scan_index_forward, projection_expressions, index_name, consistent_read, filter_expression)
    kwargs = dict(hash_key_conditions=hash_key_conditions, range_key_conditions=range_key_conditions,
                  **filter_kwargs)
    index = None
    if index_name and not consistent_read and not filter_kwargs and hash_key is not None:
        index = _index(self, index_name)
    eligible = (
        index is not None
        and [name for name, _ in hash_key_conditions or []] == [index.hash_attr]
        and all(name == index.range_attr for name, _, _ in range_key_conditions or [])
        and len(range_key_conditions or []) <= 1
    )
    candidates = (
        index.candidates(self, hash_key, range_comparison, range_objs, exclusive_start_key,
                         scan_index_forward is not False, limit)
        if eligible else None
    )
    if candidates is None:
        return _query(self, *args, exclusive_start_key, *rest, **kwargs)
    # moto's query walks self.all_items(); for this call that is just the candidates, which
    # already start after ExclusiveStartKey.
    self.all_items = lambda: candidates
    try:
        return _query(self, *args, None, *rest, **kwargs)
    finally:
        del self.all_items


def _drop_all(backend):
    for table in list(backend.tables.values()):
        if hasattr(table, ATTR):
            delattr(table, ATTR)


def _written_keys(action, body):
    """(table name, key or item) pairs an item write touched."""
    if action == "PutItem":
        yield body.get("TableName"), body.get("Item") or {}
    elif action in ("UpdateItem", "DeleteItem"):
        yield body.get("TableName"), body.get("Key") or {}
    elif action == "BatchWriteItem":
        for name, requests in (body.get("RequestItems") or {}).items():
            for request in requests or []:
                if "PutRequest" in request:
                    yield name, request["PutRequest"].get("Item") or {}
                elif "DeleteRequest" in request:
                    yield name, request["DeleteRequest"].get("Key") or {}
    elif action == "TransactWriteItems":
        for entry in body.get("TransactItems") or []:
            for op_type, op in entry.items():
                if op_type == "Put":
                    yield op.get("TableName"), op.get("Item") or {}
                elif op_type in ("Update", "Delete"):
                    yield op.get("TableName"), op.get("Key") or {}


def after_request(handler):
    if handler.service_name != "dynamodb":
        return
    try:
        action = handler._get_action()
    except Exception:
        action = None
    if action in READS:
        return
    backend = handler.dynamodb_backend
    body = handler.body if isinstance(handler.body, dict) else None
    if action not in ITEM_WRITES or body is None:
        # A table-level change: only that table's indexes, when the request names one (a
        # created table has none yet, a deleted one is gone); anything else, all of them.
        named = (body or {}).get("TableName")
        if named is None:
            _drop_all(backend)
            return
        try:
            table = backend.get_table(named)
        except Exception:
            return
        if hasattr(table, ATTR):
            delattr(table, ATTR)
        return
    for name, attrs in _written_keys(action, handler.body):
        try:
            table = backend.get_table(name)
        except Exception:
            continue  # no such table: nothing was written
        indexes = getattr(table, ATTR, None)
        if not indexes:
            continue
        hash_key = _attr(attrs.get(table.hash_key_attr))
        range_key = _attr(attrs.get(table.range_key_attr)) if table.range_key_attr else None
        if hash_key is None or (table.range_key_attr and range_key is None):
            delattr(table, ATTR)  # cannot tell what changed: rebuild on the next Query
            continue
        for index in indexes.values():
            if index is not None:
                index.refresh(table, hash_key, range_key)


def install():
    Table.query = query
    AFTER_REQUEST.append(after_request)

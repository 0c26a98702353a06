"""A cancelled TransactWriteItems restores only the items it touched, as DynamoDB guarantees.

moto backs up *whole tables* with deepcopy before a transaction and puts the copies back when
it is cancelled. Under concurrent requests that erases every write other requests made while
the transaction ran (orders placed during a cancelled stock reservation simply vanished),
fails with "dictionary changed size during iteration" (HTTP 500) when a table changes while it
is copied, and costs O(table size) per transaction.

The writes a cancelled transaction made before its failing condition also left their records
on the tables' DynamoDB streams: a change stream that reports a write DynamoDB never made
(the outbox relay would publish an order version that does not exist). They are dropped with
the rollback; the lock guarantees nothing else appended in between.
"""

import copy

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from .serialise import LOCK


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
        streams = {}
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            try:
                table = self.get_table(op["TableName"])
                hash_value, range_value = self.get_keys_value(table, _key_of(table, op_type, op))
            except Exception:
                continue  # moto's own validation reports it
            backups.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
            if table.stream_shard is not None:
                streams.setdefault(id(table.stream_shard), (table.stream_shard, len(table.stream_shard.items)))
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
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            dynamodb_models.copy = copy


def install():
    DynamoDBBackend.transact_write_items = transact_write_items

"""Kinesis PutRecord in O(1) and GetRecords in O(log n + Limit), not O(records in the shard).

moto finds the next sequence number with `list(self.records.keys())[-1]` and answers
GetRecords by walking every record of the shard from the first: both grow with the stream,
which keeps every record for the life of the emulator (100k orders put ~300k records on it).
Here each shard keeps its sequence numbers in a sorted list beside moto's records.
"""

from bisect import bisect_right

from moto.kinesis.models import Record, Shard

ATTR = "_orders_sequence_numbers"


def _sequence_numbers(shard):
    numbers = getattr(shard, ATTR, None)
    if numbers is None or len(numbers) != len(shard.records):
        # First use, or moto moved records itself (resharding): rebuild from its records.
        numbers = sorted(shard.records.keys())
        setattr(shard, ATTR, numbers)
    return numbers


def put_record(self, partition_key, data, explicit_hash_key):
    numbers = _sequence_numbers(self)
    sequence_number = (numbers[-1] if numbers else 0) + 1
    self.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
    numbers.append(sequence_number)
    return str(sequence_number)


def get_records(self, last_sequence_id, limit):
    numbers = _sequence_numbers(self)
    last = int(last_sequence_id)
    start = bisect_right(numbers, last)
    chosen = numbers[start : start + limit] if limit else numbers[start:]
    results = [self.records[n] for n in chosen]
    if not results:
        return results, last, 0
    newest = self.records[numbers[-1]]
    return results, chosen[-1], int((newest.created_at - results[-1].created_at) * 1000)


def get_min_sequence_number(self):
    numbers = _sequence_numbers(self)
    return numbers[0] if numbers else 0


def get_max_sequence_number(self):
    numbers = _sequence_numbers(self)
    return numbers[-1] if numbers else 0


def install():
    Shard.put_record = put_record
    Shard.get_records = get_records
    Shard.get_min_sequence_number = get_min_sequence_number
    Shard.get_max_sequence_number = get_max_sequence_number

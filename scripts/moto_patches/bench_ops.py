"""What one request costs inside moto, stock or with our patches: in process (no HTTP), a
table shaped like the orders table (INCLUDE-projected GSIs) holding N orders, and a one-shard
stream holding 2N records. Prints one JSON line of medians (ms).

    .local/venv/bin/python scripts/moto_patches/bench_ops.py stock 10000
    .local/venv/bin/python scripts/moto_patches/bench_ops.py patched 10000

Run both in separate processes (the patches change moto for the whole process); `make bench`
does (step `emulator`).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t")
patched = len(sys.argv) > 1 and sys.argv[1] == "patched"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
import moto.server  # noqa: E402
from werkzeug.test import Client  # noqa: E402

if patched:
    import moto_patches

    moto_patches.install_all()

CLIENT = Client(moto.server.DomainDispatcherApplication(moto.server.create_backend_app))
TARGETS = {"dynamodb": ("DynamoDB_20120810", "1.0"), "kinesis": ("Kinesis_20131202", "1.1")}
PROJECTED = ["customerId", "status", "currency", "items", "total", "version", "createdAt", "updatedAt"]


def call(service, operation, body):
    prefix, json_version = TARGETS[service]
    response = CLIENT.post("/", data=json.dumps(body), headers={
        "X-Amz-Target": f"{prefix}.{operation}",
        "Content-Type": f"application/x-amz-json-{json_version}",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=t/20261206/us-east-1/{service}/aws4_request, "
                         "SignedHeaders=host, Signature=x",
    })
    assert response.status_code == 200, (operation, response.data[:300])
    return json.loads(response.data or b"{}")


def order(i):
    return {
        "orderId": {"S": f"01J{i:08d}"}, "customerId": {"S": f"c-{i % 500}"},
        "statusShard": {"S": f"PROCESSED#{i % 16}"}, "listShard": {"S": str(i % 16)},
        "status": {"S": "PROCESSED"}, "currency": {"S": "USD"}, "total": {"N": "2598"},
        "items": {"L": [{"M": {"productId": {"S": f"sku-{i % 40}"}, "quantity": {"N": "2"},
                               "unitPrice": {"N": "1299"}, "lineTotal": {"N": "2598"}}}]},
        "version": {"N": "2"}, "createdAt": {"S": "2026-12-06T10:00:00Z"},
        "updatedAt": {"S": "2026-12-06T10:00:01Z"},
    }


def median_ms(request, count):
    samples = []
    for k in range(count):
        started = time.perf_counter()
        request(k)
        samples.append((time.perf_counter() - started) * 1000)
    return round(sorted(samples)[count // 2], 2)


def main():
    call("dynamodb", "CreateTable", {
        "TableName": "orders", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"}
                                 for a in ("orderId", "customerId", "statusShard", "listShard")],
        "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {"IndexName": name,
             "KeySchema": [{"AttributeName": key, "KeyType": "HASH"},
                           {"AttributeName": "orderId", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": PROJECTED}}
            for name, key in (("byCustomer", "customerId"), ("byStatus", "statusShard"),
                              ("byCreated", "listShard"))],
    })
    started = time.time()
    for first in range(0, N, 25):
        call("dynamodb", "BatchWriteItem", {"RequestItems": {"orders": [
            {"PutRequest": {"Item": order(i)}} for i in range(first, min(N, first + 25))]}})
    load_seconds = time.time() - started

    query = median_ms(lambda k: call("dynamodb", "Query", {
        "TableName": "orders", "IndexName": "byCreated",
        "KeyConditionExpression": "listShard = :s",
        "ExpressionAttributeValues": {":s": {"S": str(k % 16)}},
        "ScanIndexForward": False, "Limit": 21}), 20)
    get = median_ms(lambda k: call("dynamodb", "GetItem", {
        "TableName": "orders", "Key": {"orderId": {"S": f"01J{k:08d}"}}, "ConsistentRead": True}), 200)

    # An aggregate-style counter write: 20 ADDs and a SET on one of ten items.
    call("dynamodb", "CreateTable", {
        "TableName": "counters", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]})
    names = {f"#c{j}": f"count{j}" for j in range(20)} | {"#w": "watermark"}
    values = {f":v{j}": {"N": "1"} for j in range(20)} | {":w": {"S": "x"}}
    expression = "ADD " + ", ".join(f"#c{j} :v{j}" for j in range(20)) + " SET #w = :w"
    update = median_ms(lambda k: call("dynamodb", "UpdateItem", {
        "TableName": "counters", "Key": {"pk": {"S": f"b{k % 10}"}}, "UpdateExpression": expression,
        "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}), 200)

    call("kinesis", "CreateStream", {"StreamName": "events", "ShardCount": 1})
    for _ in range(2 * N):
        call("kinesis", "PutRecord", {"StreamName": "events", "Data": "eHh4", "PartitionKey": "k"})
    put = median_ms(lambda k: call("kinesis", "PutRecord", {
        "StreamName": "events", "Data": "eHh4", "PartitionKey": "k"}), 100)
    shard = call("kinesis", "ListShards", {"StreamName": "events"})["Shards"][0]["ShardId"]
    position = {"iterator": call("kinesis", "GetShardIterator", {
        "StreamName": "events", "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER",
        "StartingSequenceNumber": str(N)})["ShardIterator"]}

    def get_records(_):
        page = call("kinesis", "GetRecords", {"ShardIterator": position["iterator"], "Limit": 100})
        position["iterator"] = page["NextShardIterator"]

    records = median_ms(get_records, 50)
    print(json.dumps({
        "moto": "patched" if patched else "stock", "orders": N, "load_seconds": round(load_seconds, 1),
        "gsi_query_ms": query, "get_item_ms": get, "update_item_ms": update,
        "put_record_ms": put, "get_records_ms": records,
    }))


if __name__ == "__main__":
    main()

"""Tests of the moto patches, in process (moto's mock goes through the same request path).

Random writes (puts, updates that move items between index partitions, deletes, batch writes,
transactions that commit and that are cancelled) interleaved with paged GSI queries in both
directions with key conditions; every page is compared with a model computed from a Scan.
Kinesis: sequence numbers grow by one, and GetRecords pages through a shard in order.

Run: .local/venv/bin/python -m unittest discover -s scripts/moto_patches -p 'test_*.py'
"""

import json
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# In process, never against a running emulator (make test exports its endpoint).
for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KINESIS", "AWS_PROFILE"):
    os.environ.pop(name, None)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import moto_patches  # noqa: E402

moto_patches.install_all()

SHARDS = 4
STATUSES = ["PENDING", "PROCESSED", "FAILED"]


def create_table(client):
    client.create_table(
        TableName="orders",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("orderId", "customerId", "statusShard", "listShard")
        ],
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": "orderId", "KeyType": "RANGE"},
                ],
                # byStatus projects like the real table (INCLUDE): checked in check_queries.
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}
                if name == "byStatus" else {"ProjectionType": "ALL"},
            }
            for name, pk in (("byCustomer", "customerId"), ("byStatus", "statusShard"), ("byCreated", "listShard"))
        ],
    )


def item(order_id, customer, status, shard):
    return {
        "orderId": {"S": order_id},
        "customerId": {"S": customer},
        "statusShard": {"S": f"{status}#{shard}"},
        "listShard": {"S": str(shard)},
        "status": {"S": status},
    }


class GsiQueryMatchesModel(unittest.TestCase):
    @mock_aws
    def test_random_writes_and_paged_queries(self):
        rng = random.Random(7)
        client = boto3.client("dynamodb")
        create_table(client)
        ids = [f"01J{n:06d}" for n in range(400)]
        for step in range(1500):
            order_id = rng.choice(ids)
            shard = int(order_id[-3:]) % SHARDS
            roll = rng.random()
            if roll < 0.45:
                client.put_item(TableName="orders",
                                Item=item(order_id, f"c-{rng.randrange(6)}", rng.choice(STATUSES), shard))
            elif roll < 0.65:
                status = rng.choice(STATUSES)
                try:  # conditional: fails when the order does not exist
                    client.update_item(
                        TableName="orders", Key={"orderId": {"S": order_id}},
                        UpdateExpression="SET #s = :s, statusShard = :ss",
                        ConditionExpression="attribute_exists(orderId)",
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":s": {"S": status}, ":ss": {"S": f"{status}#{shard}"}})
                except client.exceptions.ConditionalCheckFailedException:
                    pass
            elif roll < 0.75:
                client.delete_item(TableName="orders", Key={"orderId": {"S": order_id}})
            elif roll < 0.85:
                batch = rng.sample(ids, 5)
                client.batch_write_item(RequestItems={"orders": [
                    {"PutRequest": {"Item": item(b, "c-0", "PENDING", int(b[-3:]) % SHARDS)}} if n % 2
                    else {"DeleteRequest": {"Key": {"orderId": {"S": b}}}}
                    for n, b in enumerate(batch)]})
            else:
                other = rng.choice([i for i in ids if i != order_id])
                try:  # cancelled whenever `other` exists: the put must be rolled back
                    client.transact_write_items(TransactItems=[
                        {"Put": {"TableName": "orders",
                                 "Item": item(order_id, "c-9", "FAILED", shard)}},
                        {"ConditionCheck": {"TableName": "orders", "Key": {"orderId": {"S": other}},
                                            "ConditionExpression": "attribute_not_exists(orderId)"}},
                    ])
                except client.exceptions.TransactionCanceledException:
                    pass
            if step % 25 == 0:
                self.check_queries(client, rng)
            if step % 300 == 150:  # table-level requests drop (some) indexes: still right after
                client.create_table(
                    TableName=f"other-{step}", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
                client.update_time_to_live(TableName="orders", TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": f"ttl{step}"})
                client.delete_table(TableName=f"other-{step}")

    def check_queries(self, client, rng):
        everything = []
        for page in client.get_paginator("scan").paginate(TableName="orders"):
            everything.extend(page["Items"])
        for index, attr, value in (
            ("byCreated", "listShard", str(rng.randrange(SHARDS))),
            ("byStatus", "statusShard", f"{rng.choice(STATUSES)}#{rng.randrange(SHARDS)}"),
            ("byCustomer", "customerId", f"c-{rng.randrange(7)}"),
        ):
            forward = rng.random() < 0.5
            bound = rng.choice([None, f"01J{rng.randrange(400):06d}"])
            op = rng.choice(["<", ">=", "<="])
            expected = sorted(
                (i["orderId"]["S"] for i in everything if i.get(attr, {}).get("S") == value
                 and (bound is None or {"<": i["orderId"]["S"] < (bound or ""),
                                        ">=": i["orderId"]["S"] >= (bound or ""),
                                        "<=": i["orderId"]["S"] <= (bound or "")}[op])),
                reverse=not forward)
            condition = "#pk = :pk" + ("" if bound is None else f" AND orderId {op} :b")
            values = {":pk": {"S": value}}
            if bound is not None:
                values[":b"] = {"S": bound}
            got, start = [], None
            limit = rng.choice([1, 3, 21])
            while True:
                args = dict(TableName="orders", IndexName=index, KeyConditionExpression=condition,
                            ExpressionAttributeNames={"#pk": attr}, ExpressionAttributeValues=values,
                            ScanIndexForward=forward, Limit=limit)
                if start:
                    args["ExclusiveStartKey"] = start
                page = client.query(**args)
                self.assertLessEqual(len(page["Items"]), limit)
                if index == "byStatus":
                    for found in page["Items"]:
                        self.assertEqual(set(found), {"orderId", "statusShard", "status"})
                        self.assertEqual(found["statusShard"]["S"].split("#")[0], found["status"]["S"])
                got.extend(i["orderId"]["S"] for i in page["Items"])
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            self.assertEqual(got, expected, f"{index} {value} {condition} {bound} forward={forward}")


class ReadsRoundTrip(unittest.TestCase):
    """Reads answer with plain JSON (fast_paths): every attribute type must come back as written."""

    @mock_aws
    def test_every_attribute_type(self):
        client = boto3.client("dynamodb")
        create_table(client)
        written = item("01JALL", "c-1", "PENDING", 1)
        written.update({
            "b": {"B": b"\x00\xffbinary"}, "n": {"N": "1.50"}, "bool": {"BOOL": False},
            "null": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
            "bs": {"BS": [b"x", b"y"]},
            "l": {"L": [{"M": {"q": {"N": "2"}, "s": {"S": "é ✓"}}}, {"L": []}]},
        })
        client.put_item(TableName="orders", Item=written)
        got = client.get_item(TableName="orders", Key={"orderId": {"S": "01JALL"}})["Item"]
        self.assertEqual(normalise(got), normalise(written))
        page = client.query(TableName="orders", KeyConditionExpression="orderId = :id",
                            ExpressionAttributeValues={":id": {"S": "01JALL"}})
        self.assertEqual([normalise(i) for i in page["Items"]], [normalise(written)])
        batch = client.batch_get_item(RequestItems={"orders": {"Keys": [{"orderId": {"S": "01JALL"}}]}})
        self.assertEqual([normalise(i) for i in batch["Responses"]["orders"]], [normalise(written)])
        # Writes that return attributes answer with plain JSON too.
        key = {"orderId": {"S": "01JALL"}}
        old = client.put_item(TableName="orders", Item=written, ReturnValues="ALL_OLD")
        self.assertEqual(normalise(old["Attributes"]), normalise(written))
        new = client.update_item(TableName="orders", Key=key, UpdateExpression="SET #b = :b ADD #n :one",
                                 ExpressionAttributeNames={"#b": "b2", "#n": "count"},
                                 ExpressionAttributeValues={":b": {"B": b"\x01"}, ":one": {"N": "1"}},
                                 ReturnValues="ALL_NEW")["Attributes"]
        self.assertEqual(normalise(new), normalise(written | {"b2": {"B": b"\x01"}, "count": {"N": "1"}}))
        client.transact_write_items(TransactItems=[{"Update": {
            "TableName": "orders", "Key": key, "UpdateExpression": "REMOVE b2"}}])
        client.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": item("01JB", "c-2", "PENDING", 2)}}]})
        deleted = client.delete_item(TableName="orders", Key=key, ReturnValues="ALL_OLD")["Attributes"]
        self.assertEqual(normalise(deleted), normalise(written | {"count": {"N": "1"}}))


class CancelledTransactionsLeaveNoStreamRecords(unittest.TestCase):
    """The outbox relay publishes what the orders table's stream reports: a cancelled
    transaction (stock ran out on its second item) must report nothing, a committed one
    exactly its writes, in order."""

    @mock_aws
    def test_stream_holds_committed_writes_only(self):
        client = boto3.client("dynamodb")
        for name, key in (("orders", "orderId"), ("products", "productId")):
            client.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
        client.put_item(TableName="orders", Item={"orderId": {"S": "o-1"}, "version": {"N": "1"}})
        for sku, stock in (("a", "5"), ("b", "0")):
            client.put_item(TableName="products", Item={"productId": {"S": sku}, "stock": {"N": stock}})

        def reserve(skus):
            items = [{"Update": {
                "TableName": "orders", "Key": {"orderId": {"S": "o-1"}},
                "UpdateExpression": "SET version = :n", "ConditionExpression": "version = :o",
                "ExpressionAttributeValues": {":n": {"N": "2"}, ":o": {"N": "1"}}}}]
            items += [{"Update": {
                "TableName": "products", "Key": {"productId": {"S": sku}},
                "UpdateExpression": "SET stock = stock - :q", "ConditionExpression": "stock >= :q",
                "ExpressionAttributeValues": {":q": {"N": "1"}}}} for sku in skus]
            client.transact_write_items(TransactItems=items)

        with self.assertRaises(client.exceptions.TransactionCanceledException):
            reserve(["a", "b"])
        reserve(["a"])

        # In process moto does not route the Streams API; its stream shard is what that API reads.
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        def records(table):
            shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table).stream_shard
            return [(r["eventName"], r["dynamodb"]["NewImage"].get("version", r["dynamodb"]["NewImage"].get("stock")))
                    for r in (i.to_json() for i in shard.items)]

        self.assertEqual(records("orders"), [("INSERT", {"N": "1"}), ("MODIFY", {"N": "2"})])
        self.assertEqual(records("products"), [("INSERT", {"N": "5"}), ("INSERT", {"N": "0"}), ("MODIFY", {"N": "4"})])


class StreamReadsRoundTrip(unittest.TestCase):
    """GetRecords of a table's change stream answered with plain JSON (streams.py) parses to
    exactly what moto's own serialiser gives, for every attribute type, inserts, modifies and
    removes, old and new images and the creation time."""

    @mock_aws
    def test_plain_json_equals_the_stock_serialiser(self):
        import botocore.parsers
        import botocore.session
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.responses import ActionResult
        from moto.dynamodbstreams.models import dynamodbstreams_backends
        from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

        client = boto3.client("dynamodb")
        client.create_table(
            TableName="changes", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        written = item("01JALL", "c-1", "PENDING", 1)
        written.update({
            "b": {"B": b"\x00\xffbinary"}, "n": {"N": "1.50"}, "bool": {"BOOL": False},
            "null": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
            "bs": {"BS": [b"x", b"y"]},
            "l": {"L": [{"M": {"q": {"N": "2"}, "s": {"S": "é ✓"}}}, {"L": []}]},
        })
        client.put_item(TableName="changes", Item=written)
        client.update_item(TableName="changes", Key={"orderId": {"S": "01JALL"}},
                           UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
                           ExpressionAttributeValues={":s": {"S": "PROCESSED"}})
        client.delete_item(TableName="changes", Key={"orderId": {"S": "01JALL"}})

        backend = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        arn = client.describe_table(TableName="changes")["Table"]["LatestStreamArn"]
        shard = backend.describe_stream(arn)["Shards"][0]["ShardId"]
        iterator = backend.get_shard_iterator(arn, shard, "TRIM_HORIZON").arn
        result = backend.get_records(iterator, 1000)
        self.assertEqual([r["eventName"] for r in result["Records"]], ["INSERT", "MODIFY", "REMOVE"])

        handler = DynamoDBStreamsHandler()
        handler._get_action = lambda: "GetRecords"
        handler.response_headers = {}
        handler.headers = {"Content-Type": "application/x-amz-json-1.0"}
        shape = botocore.session.get_session().get_service_model("dynamodbstreams") \
            .operation_model("GetRecords").output_shape
        parse = botocore.parsers.create_parser("json")

        def parsed(serialise):
            status, _, body = serialise(handler, ActionResult(result))
            self.assertEqual(status, 200)
            body = body.encode() if isinstance(body, str) else body
            return parse.parse({"body": body, "headers": {}, "status_code": 200}, shape)

        ours, stock = parsed(moto_patches.streams.serialized), parsed(moto_patches.streams._serialized)
        for answer in (ours, stock):
            answer.pop("ResponseMetadata", None)
        self.assertEqual(normalise(ours), normalise(stock))
        self.assertIn("ApproximateCreationDateTime", ours["Records"][0]["dynamodb"])


def normalise(value):
    """Sets compare as sets (DynamoDB keeps no order in them)."""
    if isinstance(value, dict):
        return {k: (sorted(v) if k in ("SS", "NS", "BS") else normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


class UpdateExpressionsStillValidated(unittest.TestCase):
    """fast_paths checks clause counts and overlapping paths at the root only: invalid
    expressions must still be rejected, valid ones applied."""

    @mock_aws
    def test_rejects_duplicates_and_repeated_clauses(self):
        client = boto3.client("dynamodb")
        create_table(client)
        client.put_item(TableName="orders", Item=item("01JUPD", "c-1", "PENDING", 1))
        key = {"orderId": {"S": "01JUPD"}}
        counters = ", ".join(f"#c{j} :one" for j in range(12))
        names = {f"#c{j}": f"count{j}" for j in range(12)}
        for expression, extra_names in (
            (f"ADD {counters}, #c3 :one", {}),  # the same path twice, deep in the list
            (f"ADD {counters} ADD #d :one", {"#d": "other"}),  # two ADD clauses
            (f"ADD {counters} SET #d = :one SET #e = :one", {"#d": "d", "#e": "e"}),  # two SETs
            (f"ADD {counters} SET #c11 = :one", {}),  # a path both added and set
        ):
            with self.assertRaises(client.exceptions.ClientError, msg=expression) as raised:
                client.update_item(TableName="orders", Key=key, UpdateExpression=expression,
                                   ExpressionAttributeNames=names | extra_names,
                                   ExpressionAttributeValues={":one": {"N": "1"}})
            self.assertEqual(raised.exception.response["Error"]["Code"], "ValidationException", expression)
        client.update_item(TableName="orders", Key=key, UpdateExpression=f"ADD {counters}",
                           ExpressionAttributeNames=names, ExpressionAttributeValues={":one": {"N": "1"}})
        client.update_item(TableName="orders", Key=key, UpdateExpression=f"ADD {counters}",
                           ExpressionAttributeNames=names, ExpressionAttributeValues={":one": {"N": "1"}})
        stored = client.get_item(TableName="orders", Key=key)["Item"]
        self.assertEqual([stored[f"count{j}"]["N"] for j in range(12)], ["2"] * 12)


class ExpressionsOverFourKilobytesRefused(unittest.TestCase):
    @mock_aws
    def test_a_long_update_expression_is_refused_and_changes_nothing(self):
        client = boto3.client("dynamodb")
        create_table(client)
        key = {"orderId": {"S": "01JLIM"}}
        client.put_item(TableName="orders", Item=item("01JLIM", "c-1", "PENDING", 1))

        def add(n):
            clauses = ", ".join(f"#a{j} :v{j}" for j in range(n))
            client.update_item(
                TableName="orders", Key=key, UpdateExpression=f"ADD {clauses}",
                ExpressionAttributeNames={f"#a{j}": f"u#{j}" for j in range(n)},
                ExpressionAttributeValues={f":v{j}": {"N": "1"} for j in range(n)})

        add(297)  # 3.9 KB: what the aggregate may send at most
        with self.assertRaises(client.exceptions.ClientError) as raised:
            add(400)
        self.assertEqual(raised.exception.response["Error"]["Code"], "ValidationException")
        self.assertIn("Expression size has exceeded", raised.exception.response["Error"]["Message"])
        stored = client.get_item(TableName="orders", Key=key)["Item"]
        self.assertEqual(stored["u#0"]["N"], "1")
        self.assertNotIn("u#350", stored)


class RetriedCreateFunction(unittest.TestCase):
    @mock_aws
    def test_an_exact_repeat_returns_the_function_and_another_body_conflicts(self):
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda")
        spec = dict(FunctionName="f", Runtime="provided.al2023", Role=role, Handler="bootstrap",
                    Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        first = client.create_function(**spec)
        again = client.create_function(**spec)
        self.assertEqual(again["FunctionArn"], first["FunctionArn"])
        with self.assertRaises(client.exceptions.ResourceConflictException):
            client.create_function(**(spec | {"Handler": "other"}))


class RouteKeysUnique(unittest.TestCase):
    @mock_aws
    def test_a_repeated_create_route_returns_the_route_and_a_different_one_conflicts(self):
        client = boto3.client("apigatewayv2")
        api = client.create_api(Name="orders", ProtocolType="HTTP")["ApiId"]
        first = client.create_route(ApiId=api, RouteKey="GET /health", Target="integrations/a")
        again = client.create_route(ApiId=api, RouteKey="GET /health", Target="integrations/a")
        self.assertEqual(again["RouteId"], first["RouteId"])
        with self.assertRaises(client.exceptions.ClientError) as raised:
            client.create_route(ApiId=api, RouteKey="GET /health", Target="integrations/b")
        self.assertEqual(raised.exception.response["Error"]["Code"], "ConflictException")
        client.create_route(ApiId=api, RouteKey="GET /orders", Target="integrations/a")
        keys = sorted(r["RouteKey"] for r in client.get_routes(ApiId=api)["Items"])
        self.assertEqual(keys, ["GET /health", "GET /orders"])


class ResourceServersDeleted(unittest.TestCase):
    @mock_aws
    def test_a_deleted_resource_server_is_gone_and_a_second_delete_is_not_found(self):
        client = boto3.client("cognito-idp")
        pool = client.create_user_pool(PoolName="users")["UserPool"]["Id"]
        client.create_resource_server(UserPoolId=pool, Identifier="orders", Name="orders",
                                      Scopes=[{"ScopeName": "admin", "ScopeDescription": "staff"}])
        client.delete_resource_server(UserPoolId=pool, Identifier="orders")
        with self.assertRaises(client.exceptions.ResourceNotFoundException):
            client.describe_resource_server(UserPoolId=pool, Identifier="orders")
        with self.assertRaises(client.exceptions.ResourceNotFoundException):
            client.delete_resource_server(UserPoolId=pool, Identifier="orders")


class KinesisShard(unittest.TestCase):
    @mock_aws
    def test_sequence_numbers_and_paging(self):
        client = boto3.client("kinesis")
        client.create_stream(StreamName="s", ShardCount=1)
        sequence = [int(client.put_record(StreamName="s", Data=str(n).encode(), PartitionKey="k")["SequenceNumber"])
                    for n in range(250)]
        self.assertEqual(sequence, list(range(sequence[0], sequence[0] + 250)))
        shard = client.describe_stream(StreamName="s")["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = client.get_shard_iterator(StreamName="s", ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                             StartingSequenceNumber=str(sequence[99]))["ShardIterator"]
        seen = []
        while True:
            page = client.get_records(ShardIterator=iterator, Limit=40)
            seen.extend(int(r["Data"]) for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
        self.assertEqual(seen, list(range(100, 250)))
        latest = client.get_shard_iterator(StreamName="s", ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
        client.put_record(StreamName="s", Data=b"new", PartitionKey="k")
        self.assertEqual([r["Data"] for r in client.get_records(ShardIterator=latest)["Records"]], [b"new"])


class CachedConditionsUseEachRequestsValues(unittest.TestCase):
    """conditions.py: one tree per expression, evaluated with the values of each request."""

    @mock_aws
    def test_the_same_expression_with_other_values_and_names(self):
        client = boto3.client("dynamodb")
        client.create_table(TableName="c", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        key = {"pk": {"S": "a"}}

        def move(name, low, high):
            # The aggregate's watermark write: only when the stored mark is below `low`.
            client.update_item(TableName="c", Key=key, UpdateExpression="SET #w = :high ADD n :one",
                               ConditionExpression="attribute_not_exists(#w) OR #w < :low",
                               ExpressionAttributeNames={"#w": name},
                               ExpressionAttributeValues={":high": {"N": str(high)}, ":low": {"N": str(low)},
                                                          ":one": {"N": "1"}})

        move("wm1", 1, 5)
        move("wm1", 6, 9)  # 5 < 6: applies
        with self.assertRaises(client.exceptions.ConditionalCheckFailedException):
            move("wm1", 3, 4)  # 9 >= 3: refused, although the first request's :low was 1
        move("wm2", 3, 4)  # another name, another attribute: applies
        stored = client.get_item(TableName="c", Key=key)["Item"]
        self.assertEqual((stored["wm1"], stored["wm2"], stored["n"]), ({"N": "9"}, {"N": "4"}, {"N": "3"}))
        # An invalid expression fails every time, and so does a missing placeholder (moto lets
        # ValueError / KeyError out for these: a 500 in server mode, as without the patch).
        for _ in range(2):
            with self.assertRaises((client.exceptions.ClientError, ValueError)):
                client.put_item(TableName="c", Item=key, ConditionExpression="#w <",
                                ExpressionAttributeNames={"#w": "wm1"})
            with self.assertRaises((client.exceptions.ClientError, KeyError)):
                client.put_item(TableName="c", Item=key, ConditionExpression="#w < :missing",
                                ExpressionAttributeNames={"#w": "wm1"},
                                ExpressionAttributeValues={":other": {"N": "1"}})


class DirectDispatchAnswersAsFlaskDoes(unittest.TestCase):
    """direct_dispatch.py: data-plane calls skip moto's Flask app and answer the same."""

    def test_answers_equal_moto_routing_its_own(self):
        import moto.server
        from werkzeug.test import Client

        from moto_patches import direct_dispatch, serialise

        direct_calls = []
        answer = direct_dispatch.answer

        def counting(*args):
            direct_calls.append(1)
            return answer(*args)

        direct_dispatch.answer = counting
        self.addCleanup(setattr, direct_dispatch, "answer", answer)
        direct = Client(moto.server.DomainDispatcherApplication(moto.server.create_backend_app))
        # The application direct_dispatch extends: moto's Flask routing, same lock and counts.
        routed = Client(serialise.CountingDispatcher(moto.server.create_backend_app))

        def call(client, service, operation, body):
            prefix, version = {"dynamodb": ("DynamoDB_20120810", "1.0"),
                               "kinesis": ("Kinesis_20131202", "1.1")}[service]
            return client.post("/", data=json.dumps(body), headers={
                "X-Amz-Target": f"{prefix}.{operation}",
                "Content-Type": f"application/x-amz-json-{version}",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=t/20261207/us-east-1/{service}/aws4_request, "
                                 "SignedHeaders=host, Signature=x"})

        with mock_aws():
            call(routed, "dynamodb", "CreateTable", {
                "TableName": "d", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]})
            self.assertEqual(call(direct, "dynamodb", "PutItem", {
                "TableName": "d", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}).status_code, 200)
            call(routed, "kinesis", "CreateStream", {"StreamName": "s", "ShardCount": 1})
            call(direct, "kinesis", "PutRecord", {"StreamName": "s", "Data": "eA==", "PartitionKey": "k"})
            before = len(direct_calls)
            requests = [
                ("dynamodb", "GetItem", {"TableName": "d", "Key": {"pk": {"S": "a"}}}),
                ("dynamodb", "Scan", {"TableName": "d"}),
                # Refused without changing anything: the error answer, both ways.
                ("dynamodb", "PutItem", {"TableName": "d", "Item": {"pk": {"S": "a"}},
                                         "ConditionExpression": "attribute_not_exists(pk)"}),
                ("dynamodb", "GetItem", {"TableName": "missing", "Key": {"pk": {"S": "a"}}}),
                ("kinesis", "ListShards", {"StreamName": "s"}),
            ]
            for service, operation, body in requests:
                ours, moto_s = call(direct, service, operation, body), call(routed, service, operation, body)
                self.assertEqual(ours.status_code, moto_s.status_code, operation)
                self.assertEqual(json.loads(ours.data), json.loads(moto_s.data), operation)
                self.assertEqual(ours.headers["Content-Type"], moto_s.headers["Content-Type"], operation)
                self.assertEqual(ours.headers["Content-Length"], str(len(ours.data)), operation)
            self.assertEqual(len(direct_calls) - before, len(requests))
            self.assertEqual(json.loads(call(direct, "dynamodb", "PutItem", requests[2][2]).data)["__type"],
                             "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException")

class SimpleUpdatesAnswerAsMotoDoes(unittest.TestCase):
    """simple_updates.py: random SET/ADD writes, through the fast path and through moto's own
    validator on an identical table, give the same answer (item or error) every time."""

    @mock_aws
    def test_random_plain_writes(self):
        from botocore.exceptions import ClientError

        from moto_patches import simple_updates

        client = boto3.client("dynamodb")
        for table in ("fast", "stock"):
            client.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "g", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                         "Projection": {"ProjectionType": "ALL"}}])
        names = ["a", "b", "c", "d", "e"]
        values = [{"N": "1"}, {"N": "-2.5"}, {"N": "10"}, {"N": "1e3"}, {"N": "x"}, {"S": ""}, {"S": "s"},
                  {"SS": ["x"]}, {"NS": ["1"]}, {"B": b"\x01"}, {"BOOL": True}, {"NULL": True}, {"L": []}]
        rng = random.Random(11)
        fast = {"taken": 0}
        execute = simple_updates._Apply.execute

        def counted(self):
            fast["taken"] += 1
            return execute(self)

        simple_updates._Apply.execute = counted
        self.addCleanup(setattr, simple_updates._Apply, "execute", execute)
        self.addCleanup(setattr, simple_updates, "ENABLED", True)
        for step in range(600):
            key = {"pk": {"S": f"k{rng.randrange(4)}"}}
            if rng.random() < 0.15:
                item = dict(key, **{n: rng.choice(values[:3] + values[6:8]) for n in rng.sample(["a", "b", "c"], 2)})
                for table in ("fast", "stock"):
                    client.put_item(TableName=table, Item=item)
            sets, adds = rng.randrange(3), rng.randrange(4) or 1
            # Mostly distinct plain attributes; sometimes repeats, the key or an index key.
            targets = (rng.sample(names, sets + adds) if rng.random() < 0.7
                       else [rng.choice(names + ["g", "pk"]) for _ in range(sets + adds)])
            placeholders = {f"#n{i}": target for i, target in enumerate(targets)}
            given = {f":v{i}": rng.choice(values if rng.random() < 0.3 else values[:3]) for i in range(sets + adds)}
            clauses = []
            if sets:
                clauses.append("SET " + ", ".join(f"#n{i} = :v{i}" for i in range(sets)))
            clauses.append("ADD " + ", ".join(f"#n{i} :v{i}" for i in range(sets, sets + adds)))
            if rng.random() < 0.05:
                clauses.append(clauses[-1])  # two ADD clauses: moto refuses them
            if rng.random() < 0.05:
                given.pop(rng.choice(sorted(given)))  # a placeholder without a value
            request = dict(Key=key, UpdateExpression=" ".join(clauses), ExpressionAttributeNames=placeholders,
                           ExpressionAttributeValues=given, ReturnValues="ALL_NEW")
            answers = []
            for table, enabled in (("fast", True), ("stock", False)):
                simple_updates.ENABLED = enabled
                try:
                    answers.append(("ok", normalise(client.update_item(TableName=table, **request).get("Attributes"))))
                except ClientError as e:
                    answers.append(("error", e.response["Error"]["Code"], e.response["Error"]["Message"]))
                except Exception as e:  # moto lets some errors out as they are
                    answers.append(("raised", type(e).__name__, str(e)))
            simple_updates.ENABLED = True
            self.assertEqual(answers[0], answers[1], (step, request))
        items = [sorted((normalise(i) for i in client.scan(TableName=t)["Items"]), key=lambda i: i["pk"]["S"])
                 for t in ("fast", "stock")]
        self.assertEqual(items[0], items[1])
        self.assertGreater(fast["taken"], 150)

if __name__ == "__main__":
    unittest.main()

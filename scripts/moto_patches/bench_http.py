"""What one aggregate-style write costs the emulator through HTTP: the emulator's CPU time per
request while 8 keep-alive connections send conditional UpdateItems (a watermark SET and
three ADDs, as the aggregate writes), HTTP parsing and routing included.

    EMULATOR_PORT=4703 AWS_ENDPOINT_URL= scripts/emulator.sh start
    .local/venv/bin/python scripts/moto_patches/bench_http.py 4703 3000
    EMULATOR_PORT=4703 AWS_ENDPOINT_URL= scripts/emulator.sh stop

Prints one JSON line. The CPU is read from /proc for every process on the port's command
line (the server and its launcher), so run nothing else against that emulator meanwhile.
"""

import asyncio
import json
import os
import sys
import time

CONNECTIONS = 8
AUTH = ("AWS4-HMAC-SHA256 Credential=t/20261207/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=x")


def request(port, target, body):
    data = json.dumps(body).encode()
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nAuthorization: {AUTH}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


def update(port, i, base):
    mark = f"{base + i:020d}"
    return request(port, "UpdateItem", {
        "TableName": "bench_http", "Key": {"pk": {"S": f"k{i % 50}"}},
        "UpdateExpression": "SET #wm = :wm ADD #a :one, #b :two, #c :one",
        "ConditionExpression": "attribute_not_exists(#wm) OR #wm < :wm",
        "ExpressionAttributeNames": {"#wm": "wm#shardId-0", "#a": "orders", "#b": "revenue", "#c": "p#x"},
        "ExpressionAttributeValues": {":wm": {"S": mark}, ":one": {"N": "1"}, ":two": {"N": "2"}},
    })


async def connection(port, queue, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while not queue.empty():
        writer.write(queue.get_nowait())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        status = head.split(b" ")[1].decode()
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


def cpu_ticks(port):
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
            if "moto_server" in command and f"-p {port}" in command:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


async def main(port, count):
    create = request(port, "CreateTable", {
        "TableName": "bench_http", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(create)
    await reader.read(65536)  # created, or already there from an earlier run
    writer.close()
    base = time.time_ns() // 1000
    for run in ("warm-up", "measured"):
        queue = asyncio.Queue()
        for i in range(count if run == "measured" else count // 10):
            queue.put_nowait(update(port, i, base))
        base += count
        statuses = {}
        ticks, started = cpu_ticks(port), time.perf_counter()
        await asyncio.gather(*(connection(port, queue, statuses) for _ in range(CONNECTIONS)))
        seconds, used = time.perf_counter() - started, (cpu_ticks(port) - ticks) / os.sysconf("SC_CLK_TCK")
    print(json.dumps({"requests": count, "connections": CONNECTIONS, "requests_per_s": round(count / seconds),
                      "emulator_cpu_ms_per_request": round(used * 1000 / count, 3), "statuses": statuses}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3000))

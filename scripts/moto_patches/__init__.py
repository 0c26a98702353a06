"""Patches that make moto 5.2.5 correct under concurrent clients and fast as tables grow.

Each module fixes one thing and has an `install()`; `install_all()` installs them in order
(`scripts/moto_server.py`, and the patch tests).

- `serialise`: one lock around every request, and request counts per operation.
- `direct_dispatch`: DynamoDB, DynamoDB Streams and Kinesis calls go straight to moto's
  handlers, not through a Flask application per service.
- `transactions`: a cancelled TransactWriteItems restores only the items it touched.
- `gsi_index`: Query on a global secondary index reads a sorted index of its partition, not
  every item of the table (moto scans and sorts the whole table per Query).
- `kinesis_shards`: PutRecord and GetRecords in O(1) / O(log n), not O(records in the shard).
- `fast_paths`: work moto repeats per request with the same answer (routing tables, method
  lists, parsed update expressions) is done once.
- `conditions`: condition expressions are parsed once per expression, not per request.
- `simple_updates`: plain `SET #a = :v` / `ADD #n :x` writes skip moto's expression
  validator (copying and walking the tree eight times) when moto would accept them anyway.
- `gc_freeze`: the emulator's data is kept out of Python's full garbage collections (a 3 s
  pause at 100k orders).
- `route_keys`: an HTTP API's route keys are unique (a retried CreateRoute made two).
- `lambda_creates`: a retried CreateFunction with the same body returns the function it
  created instead of "Function already exist".
- `limits`: expressions over 4 KB are refused, as DynamoDB refuses them.
- `no_lambda_invoke`: moto does not try to run functions for event source mappings (it can
  only do so in Docker; the local runner is the consumer).
"""


def install_all():
    from . import (cognito_resource_servers, conditions, direct_dispatch, fast_paths, gc_freeze, gsi_index,
                   kinesis_shards, lambda_creates, limits, no_lambda_invoke, route_keys, serialise,
                   simple_updates, streams, transactions)

    # `serialise` first: `direct_dispatch` extends its application, the others rely on its lock.
    for patch in (serialise, direct_dispatch, transactions, gsi_index, kinesis_shards, no_lambda_invoke,
                  fast_paths, conditions, simple_updates, route_keys, streams, limits,
                  lambda_creates, cognito_resource_servers, gc_freeze):
        patch.install()

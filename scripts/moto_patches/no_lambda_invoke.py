"""moto does not try to run functions for Kinesis or DynamoDB Streams event source mappings.

For every PutRecord moto invokes each mapped function, which it can only do in Docker: without
Docker each attempt fails after building a client and writing a log group — twice per record
with our two mappings, under the request lock. The local runner reads the mappings and is the
only consumer (tools/local-runner), as Lambda is on AWS.
"""

from moto.awslambda.models import LambdaBackend


def _not_here(self, *args, **kwargs):
    return None


def install():
    LambdaBackend.send_kinesis_message = _not_here
    # For a table's stream moto would also *clear* the stream's records after a delivery.
    LambdaBackend.send_dynamodb_items = _not_here

"""A CreateFunction the client sends again returns the function it created.

Under load, the AWS provider's first CreateFunction sometimes lands while its answer is lost
on the way back (the SDK logs no response and retries on a new connection); moto then
answers the retry "Function already exist" (409), which Terraform cannot recover from: once
in CI `terraform apply` failed that way, and a soak's deploy spent minutes retrying. The
retry carries the same body as the first attempt, so, like `route_keys`, a repeat that asks
for exactly the function that exists gets that function (201), and a CreateFunction with
any other body for an existing name is still the conflict it is on AWS.
"""

import json

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.responses import LambdaResponse

_create_function = LambdaResponse.create_function


def _canonical(body):
    return json.dumps(body, sort_keys=True)


def create_function(self):
    function_name = self.json_body["FunctionName"].rsplit(":", 1)[-1]
    try:
        fn = self.backend.get_function(function_name, None)
    except UnknownFunctionException:
        status, headers, body = _create_function(self)
        created = self.backend.get_function(function_name, None)
        created._orders_create_request = _canonical(self.json_body)
        return status, headers, body
    if getattr(fn, "_orders_create_request", None) == _canonical(self.json_body):
        return 201, {"status": 201}, json.dumps(fn.get_configuration(on_create=True))
    return _create_function(self)


def install():
    LambdaResponse.create_function = create_function

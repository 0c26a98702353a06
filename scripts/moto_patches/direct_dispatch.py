"""The functions' data-plane requests (DynamoDB, DynamoDB Streams and Kinesis JSON calls) go
straight to moto's handler instead of through a Flask application per service.

Each of these is a `POST /` whose `X-Amz-Target` names the service, and moto's Flask app
only routes it to `<Handler>.dispatch` (one URL rule per service) after building a request
context, matching the URL map and running flask-cors on the answer — 11 % of the
emulator's CPU time under our load (py-spy, `--gil`), for requests that make up nearly all
of it. Here the handler gets the same normalised request type moto's Flask app would give
it (`from_wsgi_server`: the server sets the Date header) and its (status, headers, body)
answer is sent as is. Any other request (Terraform's control-plane calls, Lambda, IAM,
S3-style paths) takes moto's own route.
"""

import functools
import http

import moto.server
from botocore.exceptions import ClientError
from moto.core.request import Request
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.kinesis.responses import KinesisResponse

# Target prefix → (handler, content type of its protocol).
HANDLERS = {
    "DynamoDB_20120810": (DynamoHandler, "application/x-amz-json-1.0"),
    "DynamoDBStreams_20120810": (DynamoDBStreamsHandler, "application/x-amz-json-1.0"),
    "Kinesis_20131202": (KinesisResponse, "application/x-amz-json-1.1"),
}


class ServerRequest(Request):
    """What moto's Flask app hands its handlers (`BackendRequest`), without Flask."""

    from_wsgi_server = True


def handler_for(environ):
    """The handler of a data-plane call, or None for anything moto should route itself."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/":
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return HANDLERS.get(target.partition(".")[0])


def answer(handler, environ, start_response):
    cls, content_type = handler
    request = ServerRequest(environ)
    try:
        result = cls.dispatch(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        # As moto's `convert_to_flask_response` does.
        result = 400, {}, exc.response["Error"]["Message"]
    if len(result) == 3:
        status, headers, body = result
    else:
        status, headers, body = 200, {}, result
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    status = int(status)
    out = [(str(k), str(v)) for k, v in headers.items() if k.lower() not in ("content-length", "status")]
    if not any(k.lower() == "content-type" for k, _ in out):
        out.append(("Content-Type", content_type))
    out.append(("Content-Length", str(len(body))))
    start_response(f"{status} {http.HTTPStatus(status).phrase}", out)
    return [body]


def install():
    # After `serialise`: this subclasses its counting, locking application.
    base = moto.server.DomainDispatcherApplication

    class DirectDispatcher(base):
        def get_application(self, environ):
            handler = handler_for(environ)
            if handler is not None:
                return functools.partial(answer, handler)
            return super().get_application(environ)

    moto.server.DomainDispatcherApplication = DirectDispatcher

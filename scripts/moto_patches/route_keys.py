"""A route key is unique within an HTTP API, as API Gateway guarantees.

moto's CreateRoute adds a route on every call, so a request the client sends again (the AWS
SDK retries after a transport error or a 5xx, not knowing whether the first attempt landed)
left two routes with the same key: once in CI, `terraform apply` created
`GET /analytics/top-products` once and the emulator held it twice, and the local runner refused
the API. API Gateway answers such a repeat with ConflictException. Here a repeat that asks for
exactly the route that exists returns that route (what the retrying client wanted), and one
that asks for a different route under an existing key is a conflict, as on AWS.
"""

from moto.apigatewayv2.models import Api
from moto.core.exceptions import JsonRESTError

_create_route = Api.create_route


class RouteKeyConflict(JsonRESTError):
    code = 409

    def __init__(self, route_key):
        super().__init__("ConflictException", f"Route with key {route_key} already exists for this API")


def create_route(self, api_key_required, authorization_scopes, route_key, target, authorization_type=None,
                 authorizer_id=None, **rest):
    for existing in self.routes.values():
        if existing.route_key != route_key:
            continue
        same = (existing.target, existing.authorization_type, existing.authorizer_id) == (
            target, authorization_type, authorizer_id)
        if same:
            return existing
        raise RouteKeyConflict(route_key)
    return _create_route(self, api_key_required, authorization_scopes, route_key, target,
                         authorization_type=authorization_type, authorizer_id=authorizer_id, **rest)


def install():
    Api.create_route = create_route

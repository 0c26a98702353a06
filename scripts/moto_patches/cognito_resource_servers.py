"""DeleteResourceServer, which moto 5.2.5 lacks.

The AWS root creates a Cognito resource server (the API's scopes). moto answers its
DeleteResourceServer with a 500 (not implemented); the provider retries that until its
timeout, so `terraform destroy` of the root spent ten minutes on it in `infra-check`. Deleting
it is what AWS does: the server and its scopes are gone, a second delete is not found.
"""

from moto.cognitoidp.exceptions import ResourceNotFoundError
from moto.cognitoidp.models import CognitoIdpBackend
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.responses import EmptyResult


def delete_resource_server_model(self, user_pool_id, identifier):
    user_pool = self.user_pools.get(user_pool_id)
    if not user_pool:
        raise ResourceNotFoundError(f"User pool {user_pool_id} does not exist.")
    if user_pool.resource_servers.pop(identifier, None) is None:
        raise ResourceNotFoundError(f"Resource server {identifier} does not exist.")


def delete_resource_server(self):
    self.backend.delete_resource_server(
        self._get_param("UserPoolId"), self._get_param("Identifier")
    )
    return EmptyResult()


def install():
    CognitoIdpBackend.delete_resource_server = delete_resource_server_model
    CognitoIdpResponse.delete_resource_server = delete_resource_server

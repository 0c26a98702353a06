"""DynamoDB's expression limit, which moto does not enforce.

DynamoDB refuses any expression string over 4 KB with a ValidationException; moto accepts any
length, so code that builds expressions from data (counters per product, one per clause) passed
every local test and would fail on AWS. Checked before anything is evaluated, so a refused
request changes nothing, as on AWS.

The other side of the same limit: moto parses `ADD a :x, b :y, …` into a tree one level
deeper per clause, and copies it recursively (pickle, deepcopy), so an expression of a few
hundred clauses that DynamoDB accepts hit Python's recursion limit (HTTP 500). The limit is
raised to what 4 KB of clauses needs, with request threads given the C stack for it.
"""

import sys
import threading

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend

MAX_EXPRESSION_BYTES = 4096

_wrapped = {}


def _check(kind, expression):
    if expression and len(expression.encode()) > MAX_EXPRESSION_BYTES:
        raise MockValidationException(
            f"Invalid {kind}: Expression size has exceeded the maximum allowed size; "
            f"expression size: {len(expression.encode())}"
        )


def update_item(self, table_name, key, update_expression, expression_attribute_names,
                expression_attribute_values, attribute_updates=None, expected=None,
                condition_expression=None, return_values_on_condition_check_failure=None):
    _check("UpdateExpression", update_expression)
    _check("ConditionExpression", condition_expression)
    return _wrapped["update_item"](self, table_name, key, update_expression, expression_attribute_names,
                        expression_attribute_values, attribute_updates, expected,
                        condition_expression, return_values_on_condition_check_failure)


def install():
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    threading.stack_size(64 * 1024 * 1024)
    # Wraps whatever is installed now (another patch may have replaced it first).
    _wrapped["update_item"] = DynamoDBBackend.update_item
    DynamoDBBackend.update_item = update_item

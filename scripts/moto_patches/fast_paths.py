"""Less Python per request: moto redoes, for every request, work whose answer never changes.

Measured with cProfile on our own workload (orders placed, processed and aggregated), these
took most of the emulator's time before any DynamoDB work was done:

- Routing a request to a service lists moto's package directory (`os.listdir` plus an
  `isdir` per entry) — twice per request. The list is fixed once moto is installed.
- Each request lists the handler class's methods with `inspect.getmembers`.
- Every UpdateItem parses its expression twice (handler and model), although the aggregate
  sends the same few expressions over and over; the validator then `deepcopy`s the tree
  (pickling is ~3× faster for these trees, and gives the same independent copy).
- Each node of an expression tree asks every processor to rebuild its map of node types,
  and the walk over the tree (eight processors, ~150 nodes for an aggregate write) looks up
  the same methods again at every node: 17 % of the emulator's time under our load.
- Two validators (clause counts, overlapping paths) check every nested sub-expression of an
  update expression, each time collecting all clauses below it: O(clauses²) — 71 checks for
  one aggregate write of 21 clauses. The check at the root sees every clause, so it alone
  decides (the same exception when an expression is invalid).
- A Query on an index with an INCLUDE projection converts the *whole* item to plain JSON once
  per projected attribute, then back: O(attributes²) per item. Projecting top-level
  attributes is picking them by name.
- Reads (GetItem, Query, Scan, BatchGetItem) are serialised by walking botocore's output
  model, attribute by attribute: ~3 ms per returned order item, 1 s for a listing page of
  16 Queries. Their results are already in the wire format (moto converted them), so plain
  `json.dumps` gives the same document, with binary values in base64 as the model does.
  Writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems) answer the
  same way: 6 % of the emulator's time under our load went to serialising their capacity
  and returned attributes.

Each is replaced by the same answer, computed once. Behaviour does not change.
"""

import base64
import functools
import json
import pickle

import moto.backends as backends
import moto.core.responses as core_responses
import moto.core.utils as core_utils
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.parsing.validators as validators
import moto.dynamodb.responses as dynamodb_responses
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node, UpdateExpression
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import SecondaryIndex
from moto.dynamodb.responses import DynamoHandler, DynamoResult


def _copy(value, memo=None):
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


class _CachedUpdateExpressionParser:
    """UpdateExpressionParser with a cache of parsed trees. Callers share the cached tree:
    the handlers only search it for placeholders, and the validator works on its own copy
    (`Validator.__init__` deep-copies the tree it is given before changing it)."""

    _parsed = {}
    _LIMIT = 4096

    @classmethod
    def make(cls, expression):
        cached = cls._parsed.get(expression)
        if cached is None:
            cached = UpdateExpressionParser.make(expression)
            if len(cls._parsed) >= cls._LIMIT:
                cls._parsed.clear()
            cls._parsed[expression] = cached
        return cached


def _processing_map(self):
    cached = self.__dict__.get("_orders_processing_map")
    if cached is None:
        cached = self._processing_map()
        self.__dict__["_orders_processing_map"] = cached
        self.__dict__["_orders_node_types"] = tuple(cached)
    return cached


def nodes_to_be_processed(self):
    _processing_map(self)
    return self.__dict__["_orders_node_types"]


def process(self, node):
    for node_type, processor in _processing_map(self).items():
        if isinstance(node, node_type):
            return processor(node)
    return None


_NO_PRE_PROCESSING = DepthFirstTraverser.pre_processing_of_child
_project = SecondaryIndex.project


def project(self, item):
    """KEYS_ONLY / INCLUDE: the item's key attributes and the index's, plus the included
    ones — all top-level names — taken by name (ALL keeps moto's own path)."""
    projection_type = (self.projection or {}).get("ProjectionType")
    if projection_type not in ("KEYS_ONLY", "INCLUDE"):
        return _project(self, item)
    wanted = set(self.table_key_attrs) | {key["AttributeName"] for key in self.schema}
    if projection_type == "INCLUDE":
        wanted.update(self.projection.get("NonKeyAttributes", []))
    projected = Item(item.hash_key, item.range_key, {})
    # Straight into the dict: the values passed the size checks when the item was written.
    dict.update(projected.attrs, {k: v for k, v in item.attrs.items() if k in wanted})
    return projected


def _walk(node, child_id, types, process, pre):
    """moto's `traverse_node_recursively`, step for step, with the per-node lookups hoisted."""
    parent = node.parent
    children = node.children
    if children is not None:
        for i, child in enumerate(children):
            if pre is not None:
                pre(node, i)
            if isinstance(child, Node):
                _walk(child, i, types, process, pre)
    if isinstance(node, types):
        node = process(node)
        node.parent = parent
        if parent:
            parent.children[child_id] = node
    return node


def traverse_node_recursively(self, node, child_id=-1):
    if not isinstance(node, Node):
        return node
    hook = type(self).pre_processing_of_child
    pre = None if hook is _NO_PRE_PROCESSING else self.pre_processing_of_child
    return _walk(node, child_id, nodes_to_be_processed(self), self.process, pre)


def _check_root_only(self, node):
    return self.process(node) if isinstance(node, UpdateExpression) else node


# Answers that are plain wire-format items (see the module docs): reads, and writes that
# return attributes (`ReturnValues`) or nothing but capacity.
JSON_ANSWERS = {"GetItem", "Query", "Scan", "BatchGetItem",
                "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_serialized = DynamoHandler.serialized


def json_value(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def serialized(self, action_result):
    if type(action_result) is DynamoResult and isinstance(action_result.result, dict) \
            and self._get_action() in JSON_ANSWERS:
        try:
            body = json.dumps(action_result.result, default=json_value)
        except TypeError:
            # Something that is not wire format yet: moto's serialiser knows the model.
            return _serialized(self, action_result)
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        headers.update(self.response_headers)
        return 200, headers, body
    return _serialized(self, action_result)


def install():
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    methods = functools.lru_cache(maxsize=None)(core_utils.method_names_from_class)
    core_utils.method_names_from_class = methods
    core_responses.method_names_from_class = methods
    validators.deepcopy = _copy
    dynamodb_models.UpdateExpressionParser = _CachedUpdateExpressionParser
    dynamodb_responses.UpdateExpressionParser = _CachedUpdateExpressionParser
    # Only the base class: subclasses that order their node types themselves keep doing so.
    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process
    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively
    DynamoHandler.serialized = serialized
    SecondaryIndex.project = project
    validators.ActionCountValidator.traverse = _check_root_only
    validators.OverlappingPathsValidator.traverse = _check_root_only

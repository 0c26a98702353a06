"""Plain update expressions (`SET #a = :v`, `ADD #n :x`) are applied without moto's
expression validator.

moto validates an UpdateExpression by copying its whole syntax tree and walking the copy
with eight processors, then executes it with a third walk. The aggregate's counter writes
are exactly this shape but carry up to ~300 clauses (a product shard's counters): copying
and walking those trees took 40 % of the emulator's time under our load (py-spy, `--gil`),
for writes that only add numbers to top-level attributes and set a watermark.

A parsed tree made only of such actions gets a plan once (its actions in order). Each
request then checks that this write is one moto would apply without complaint: every
placeholder defined, no attribute written twice, no key attribute or attribute the table
declares (index keys have type rules), values of plain types, an ADD of a valid number to a
missing or numeric attribute. If so, the plan is applied the way moto's executors do
(`DynamoType` arithmetic, one item assignment per action, so its size limit still holds).
Anything else — another shape or any doubt — goes through moto's own validator and gets its
exact answer, errors included. `test_patches.py` compares both on random writes.
"""

import re

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.parsing.ast_nodes import (
    ExpressionAttributeName,
    ExpressionAttributeValue,
    UpdateExpression,
    UpdateExpressionAddAction,
    UpdateExpressionAddActions,
    UpdateExpressionAddClause,
    UpdateExpressionPath,
    UpdateExpressionSetAction,
    UpdateExpressionSetActions,
    UpdateExpressionSetClause,
    UpdateExpressionValue,
)

ENABLED = True

_Validator = dynamodb_models.UpdateExpressionValidator
_Executor = dynamodb_models.UpdateExpressionExecutor

_STRUCTURE = (UpdateExpression, UpdateExpressionSetClause, UpdateExpressionSetActions,
              UpdateExpressionAddClause, UpdateExpressionAddActions)
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_SET_TYPES = {"S", "N", "B", "BOOL"}
_NOT_SIMPLE = ()


def _placeholder(node, kind):
    """The placeholder of `kind(placeholder)`, or None."""
    if type(node) is kind and len(node.children) == 1 and isinstance(node.children[0], str):
        return node.children[0]
    return None


def _action(node):
    """("SET" | "ADD", name placeholder, value placeholder) of a plain action, or None."""
    children = node.children or []
    if len(children) != 2 or type(children[0]) is not UpdateExpressionPath:
        return None
    path = children[0].children or []
    name = _placeholder(path[0], ExpressionAttributeName) if len(path) == 1 else None
    if name is None:
        return None
    if type(node) is UpdateExpressionAddAction:
        value = _placeholder(children[1], ExpressionAttributeValue)
        return ("ADD", name, value) if value else None
    value_node = children[1]
    if type(value_node) is not UpdateExpressionValue or len(value_node.children or []) != 1:
        return None
    value = _placeholder(value_node.children[0], ExpressionAttributeValue)
    return ("SET", name, value) if value else None


def _plan_of(tree):
    """The tree's actions in order, or () when it is not made of plain actions only (or has
    two SET or two ADD clauses, which moto refuses)."""
    plan = []
    clauses = []

    def walk(node):
        if type(node) in (UpdateExpressionSetClause, UpdateExpressionAddClause):
            clauses.append(type(node))
        if type(node) in (UpdateExpressionSetAction, UpdateExpressionAddAction):
            action = _action(node)
            if action is None:
                return False
            plan.append(action)
            return True
        if type(node) not in _STRUCTURE:
            return False
        return all(walk(child) for child in node.children or [])

    if not walk(tree) or len(clauses) != len(set(clauses)):
        return _NOT_SIMPLE
    return tuple(plan)


def plan_for(tree):
    plan = tree.__dict__.get("_orders_plan")
    if plan is None:
        plan = _plan_of(tree)
        tree.__dict__["_orders_plan"] = plan
    return plan


def _resolve(plan, names, values, item, table):
    """The writes of this request, or None when moto's validator must decide."""
    names, values = names or {}, values or {}
    declared = {d["AttributeName"] for d in table.attr} | set(table.table_key_attrs)
    existing = item.attrs if item is not None else {}
    writes, seen = [], set()
    for op, name_placeholder, value_placeholder in plan:
        name, value = names.get(name_placeholder), values.get(value_placeholder)
        if name is None or value is None or name in seen or name in declared:
            return None
        seen.add(name)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (kind, raw), = value.items()
        if kind == "N" and not (isinstance(raw, str) and _NUMBER.fullmatch(raw)):
            return None
        if op == "ADD":
            current = existing.get(name)
            if kind != "N" or (current is not None and current.type != "N"):
                return None
        elif kind not in _SET_TYPES:
            return None
        writes.append((op, name, DynamoType(value)))
    return writes


class _Writes:
    """A plain write's actions, in order: what `validator` gives moto's update_item in place
    of a validator, and what that validator's `validate()` then returns as the tree."""

    def __init__(self, writes):
        self.writes = writes

    def validate(self):
        return self

    def normalize(self):
        pass


class _Apply:
    def __init__(self, writes, item):
        self.writes, self.item = writes, item

    def execute(self):
        attrs = self.item.attrs
        for op, name, value in self.writes.writes:
            if op == "ADD":
                current = attrs.get(name)
                value = (current if current is not None else DynamoType({"N": "0"})) + value
            attrs[name] = value


def validator(expression, expression_attribute_names, expression_attribute_values, item, table):
    if ENABLED:
        plan = plan_for(expression)
        if plan:
            writes = _resolve(plan, expression_attribute_names, expression_attribute_values, item, table)
            if writes is not None:
                return _Writes(writes)
    return _Validator(expression, expression_attribute_names=expression_attribute_names,
                      expression_attribute_values=expression_attribute_values, item=item, table=table)


def executor(validated, item, expression_attribute_names):
    if isinstance(validated, _Writes):
        return _Apply(validated, item)
    return _Executor(validated, item, expression_attribute_names)


def install():
    dynamodb_models.UpdateExpressionValidator = validator
    dynamodb_models.UpdateExpressionExecutor = executor

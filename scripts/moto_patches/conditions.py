"""Condition expressions are parsed once per expression, not once per request.

moto lexes and parses a ConditionExpression from scratch every time — twice per conditional
UpdateItem or PutItem (the handler parses it to check the names used, the model to evaluate
it) and once per conditional write of a transaction. Our writers send a handful of
expressions over and over with new values (the aggregate's watermark conditions, the
processing transaction's stock checks): parsing was 28 % of an aggregate UpdateItem's time
in the emulator (py-spy).

The syntax tree depends on the expression and the attribute *names* (they are resolved into
the paths), not on the values: a value node is looked up by its placeholder when the tree is
turned into an operator for this request. So the cache key is (expression, names, the value
placeholders given); an expression that fails to parse is never cached and fails the same
way every time. Behaviour does not change.
"""

from moto.dynamodb.comparisons import AttributeValue, ConditionExpressionParser

_parse = ConditionExpressionParser.parse
_make_operand = ConditionExpressionParser._make_operand
_make_op_condition = ConditionExpressionParser._make_op_condition

# (expression, names, value placeholders) → (root node, names found, values found)
_TREES = {}
_LIMIT = 4096


def _key(parser):
    names = parser.expression_attribute_names
    values = parser.expression_attribute_values
    # Sorted: clients build these maps in any order (the Rust SDK's are hash maps).
    return (
        parser.condition_expression,
        tuple(sorted(names.items())) if names else None,
        tuple(sorted(values)) if values else None,
    )


def parse(self):
    if not self.condition_expression:
        return _parse(self)
    key = _key(self)
    cached = _TREES.get(key)
    if cached is not None:
        root, names_found, values_found = cached
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return self._make_op_condition(root)
    names_before = len(self.expr_attr_names_found)
    values_before = len(self.expr_attr_values_found)
    # moto's parse ends in `_make_op_condition(root)`: the first node it is given is the root.
    roots = []

    def capture(node):
        if not roots:
            roots.append(node)
        return _make_op_condition(self, node)

    self._make_op_condition = capture
    try:
        op = _parse(self)
    finally:
        del self._make_op_condition
    if len(_TREES) >= _LIMIT:
        _TREES.clear()
    _TREES[key] = (
        roots[0],
        tuple(self.expr_attr_names_found[names_before:]),
        tuple(self.expr_attr_values_found[values_before:]),
    )
    return op


def make_operand(self, node):
    # A cached tree holds the values of the request that parsed it first: use this one's.
    if node.kind == self.Kind.EXPRESSION_ATTRIBUTE_VALUE:
        return AttributeValue(self.expression_attribute_values[node.text])
    return _make_operand(self, node)


def install():
    ConditionExpressionParser.parse = parse
    ConditionExpressionParser._make_operand = make_operand

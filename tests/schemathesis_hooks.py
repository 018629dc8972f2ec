"""Loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS.

It only works around a CPython 3.11 bug, not Cairn's: `ast.parse` can raise
"SystemError: AST constructor recursion depth mismatch" (CPython gh-106905, fixed in
later releases) when Hypothesis describes a filter function for a strategy's repr, which
stops schemathesis's coverage phase on an operation. The description is cosmetic, so a
failure falls back to the function's name. No generation, check or request changes.
"""

import hypothesis.internal.reflection as reflection
import hypothesis.strategies._internal.lazy as lazy

_describe = reflection.get_pretty_function_description


def _describe_safely(f):
    try:
        return _describe(f)
    except SystemError:
        return getattr(f, "__name__", "<function>")


reflection.get_pretty_function_description = _describe_safely
lazy.get_pretty_function_description = _describe_safely

"""``calculator``: safe arithmetic for judges that check numbers (Themis' calculator tool).

    calculator("2+3*4")            # "14"
    calculator("7/2")              # "3.5"
    calculator("sqrt(16)+2**10")   # "1028"

The expression is parsed with ``ast.parse(mode="eval")`` and evaluated by walking a whitelist of node types;
nothing is ever passed to ``eval``/``exec`` or compiled to code. Work is bounded before it is done: at most
``MAX_CHARS`` characters and ``MAX_NODES`` syntax nodes, exponents up to ``MAX_EXPONENT``, powers whose result
would reach ``MAX_FLOAT`` are refused rather than computed, ``factorial`` takes at most ``MAX_FACTORIAL``, and
a wall-clock budget is checked at every node.

Numbers: integers are exact up to ``MAX_INT`` and become floats beyond it; results at or above ``MAX_FLOAT`` in
magnitude (or inf / nan) are errors. Floats print with 15 significant digits, so float noise does not show
(``0.1+0.2`` -> "0.3") and integral floats print like integers (``sqrt(16)`` -> "4"); integers print in full.
"""

import ast
import math
import operator
import time

from mmreward.agent.tools.context import ToolError
from mmreward.agent.untrusted import shown

__all__ = ["FUNCTIONS", "calculator"]

MAX_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 100
MAX_INT = 10**100
MAX_FLOAT = 1e300
MAX_FACTORIAL = 100
TIME_BUDGET_S = 0.2

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: None,  # handled by _power, which bounds the result before computing it
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
CONSTANTS = {"pi": math.pi, "e": math.e}


def _factorial(x: float) -> int:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int) or not 0 <= x <= MAX_FACTORIAL:
        raise ToolError(f"calculator: factorial takes a whole number from 0 to {MAX_FACTORIAL}, got {_show(x)}")
    return math.factorial(x)


def _round(x: float, ndigits: int | None = None) -> float:
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 15):
        raise ToolError("calculator: round's second argument must be a whole number from -15 to 15")
    return round(x) if ndigits is None else round(x, ndigits)


FUNCTIONS = {
    **{name: getattr(math, name) for name in (
        "sqrt", "log", "log10", "log2", "exp", "sin", "cos", "tan", "asin", "acos", "atan", "floor", "ceil", "fabs",
    )},
    "factorial": _factorial,
    "abs": abs,
    "round": _round,
    # Variadic wrappers: min(3) is 3, not "'int' object is not iterable".
    "min": lambda *args: min(args),
    "max": lambda *args: max(args),
}
_HELP = "use numbers, + - * / // % **, parentheses, pi, e and " + ", ".join(FUNCTIONS)
_FORBIDDEN = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "and/or are not allowed",
    ast.IfExp: "if/else is not allowed",
    ast.NamedExpr: "assignments are not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Starred: "* unpacking is not allowed",
}


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly as written and return the result.

    Supports numbers, + - * / // % ** (power), unary minus, parentheses, the constants pi and e, and the
    functions sqrt, log (natural; log(x, base) also works), log10, log2, exp, sin, cos, tan, asin, acos, atan
    (radians), floor, ceil, fabs, factorial, abs, round, min and max. No variables, strings or comparisons.

    Args:
        expression: The expression to evaluate, e.g. "(3.5 + 2) * 4 / sqrt(2)".

    Returns:
        The result as text, e.g. "15.556349186104" (integers print without a decimal point).
    """
    if not isinstance(expression, str):
        raise ToolError(f"calculator: the expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_CHARS:
        raise ToolError(f"calculator: the expression is {len(expression)} characters long (at most {MAX_CHARS})")
    if not expression.strip():
        raise ToolError("calculator: the expression is empty")
    tree = _parse(expression)
    _check(tree)
    value = _Walker(time.monotonic() + TIME_BUDGET_S).eval(tree.body)
    return _format(value)


def _parse(expression: str) -> ast.Expression:
    """Syntax tree of the expression (parsing only: no code object is ever built)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ToolError(
            f"calculator: could not parse {_show(expression)} as an arithmetic expression ({e.msg})"
        ) from None
    except (ValueError, RecursionError, MemoryError) as e:  # NUL bytes, absurd nesting
        raise ToolError(f"calculator: could not parse the expression ({type(e).__name__})") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ToolError(f"calculator: the expression is too complex ({nodes} parts, at most {MAX_NODES})")
    return tree


def _check(tree: ast.Expression) -> None:
    """Refuse anything outside the whitelist before any evaluation starts."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.unaryop)):
            if isinstance(node, ast.BitXor):
                raise ToolError("calculator: ^ is not allowed; use ** for powers")
            if isinstance(node, (ast.operator, ast.unaryop)) and type(node) not in _BINARY | _UNARY:
                raise ToolError(f"calculator: the operator {type(node).__name__} is not allowed; {_HELP}")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                what = "strings" if isinstance(node.value, (str, bytes)) else f"{type(node.value).__name__} values"
                raise ToolError(f"calculator: {what} are not allowed; {_HELP}")
        elif isinstance(node, ast.Name):
            if node.id not in CONSTANTS and node.id not in FUNCTIONS:
                raise ToolError(f"calculator: names like {node.id!r} are not allowed; {_HELP}")
        elif isinstance(node, ast.Call):
            _check_call(node)
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            continue
        else:
            reason = _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed")
            raise ToolError(f"calculator: {reason}; {_HELP}")


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
        raise ToolError(f"calculator: names like {name!r} are not allowed; {_HELP}")
    if node.keywords:
        raise ToolError(f"calculator: {node.func.id}() takes positional arguments only")
    if not node.args:
        raise ToolError(f"calculator: {node.func.id}() needs an argument")


class _Walker:
    """Evaluates a checked tree node by node, bounding every intermediate value."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def eval(self, node: ast.AST) -> int | float:
        if time.monotonic() > self.deadline:
            raise ToolError("calculator: the expression took too long to evaluate")
        if isinstance(node, ast.Constant):
            return _bounded(node.value)
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ToolError(f"calculator: {node.id} is a function; call it like {node.id}(2)")
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            return _bounded(_UNARY[type(node.op)](self.eval(node.operand)))
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                return _bounded(_power(left, right))
            return _bounded(_apply(_BINARY[type(node.op)], left, right))
        if isinstance(node, ast.Call):
            args = [self.eval(a) for a in node.args]
            return _bounded(_apply(FUNCTIONS[node.func.id], *args))
        raise ToolError(f"calculator: {type(node).__name__} is not allowed")  # unreachable after _check


def _apply(fn, *args: int | float) -> int | float:
    """Call a whitelisted operator or function, turning maths errors into messages for the model."""
    try:
        return fn(*args)
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError("calculator: division by zero") from None
    except OverflowError:
        raise ToolError(f"calculator: the result is too large (at least {MAX_FLOAT:g})") from None
    except (ValueError, TypeError) as e:  # math domain errors, wrong argument counts
        raise ToolError(f"calculator: {e}") from None


def _power(base: int | float, exponent: int | float) -> int | float:
    """``base ** exponent``, refused before computing when it would be huge (9**9**9 never runs)."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"calculator: exponents are limited to {MAX_EXPONENT} in magnitude, got {_show(exponent)}")
    if base < 0 and not float(exponent).is_integer():
        raise ToolError("calculator: a negative number to a fractional power is not a real number")
    if base == 0:
        return _apply(operator.pow, base, exponent)
    digits = exponent * math.log10(abs(base))  # log10 of the result's magnitude
    if digits >= math.log10(MAX_FLOAT):
        raise ToolError(f"calculator: the result is too large (at least {MAX_FLOAT:g})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0 and digits > math.log10(MAX_INT):
        base = float(base)  # beyond exact integers: compute as a float rather than a 100+-digit integer
    return _apply(operator.pow, base, exponent)


def _bounded(value: int | float) -> int | float:
    """The value if it is within bounds: big integers become floats, huge or non-finite values are errors."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"calculator: unexpected value {_show(value)}")
    if isinstance(value, int):
        if abs(value) <= MAX_INT:
            return value
        if value.bit_length() > 1100:  # far beyond MAX_FLOAT; float() would overflow
            raise ToolError(f"calculator: the result is too large (at least {MAX_FLOAT:g})")
        value = float(value)
    if not math.isfinite(value) or abs(value) >= MAX_FLOAT:
        raise ToolError(f"calculator: the result is too large or not a number ({_show(value)})")
    return value


def _format(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value + 0.0, ".15g")  # + 0.0 turns -0.0 into 0.0


def _show(value: object) -> str:
    return shown(value, 60)


# The line the judge's prompt gives this tool ("call calculator to ..."; `agent.tools.tool_use_prompt`).
calculator.hint = "check arithmetic"

"""``calculer``: arithmetic on an expression a model wrote, without ever running code.

The text is parsed by :func:`ast.parse` (``mode="eval"``: one expression) and the tree is walked
by hand. Only numbers, ``+ - * / // % **``, unary signs, parentheses and the calls
``racine(x)``, ``abs(x)``, ``arrondi(x[, n])`` are allowed: a name, an attribute, a subscript, a
lambda, a comprehension... is refused before anything is computed. Nothing is ever passed to
``eval``, ``exec`` or ``compile``, so ``__import__('os')`` is just an erreur.

Limits are checked, not timed (the same on every system, no signal, no thread): 200 characters,
30 levels of nesting, values of at most 10^300 in magnitude. A power is refused *before* it is
computed when its result would pass 1,000 bits (``9**9**9`` answers at once), and so is a product
of two integers: no computation ever handles an integer of more than about 2,000 bits.

What a French speaker writes is accepted: ``3,5`` for 3.5 (see :func:`_readings`), ``^`` for a
power, ``×``, ``÷``, `` : `` (with its spaces) and ``x`` between numbers, ``1 000`` with a space between groups of three digits.
The result is an ``int`` when the value is whole and below 10^15, else a float rounded to 10
significant digits.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from decimal import ROUND_HALF_UP, Decimal, localcontext

from causette.tools.schema import ToolError

MAX_LENGTH = 200
MAX_DEPTH = 30
MAX_INT_BITS = 1000  # an integer computed on the way never exceeds about twice this
LIMIT = 1e300  # the largest magnitude of a value (compared exactly with an int: 10**300 passes)
FUNCTIONS = {"racine": (1, 1), "abs": (1, 1), "arrondi": (1, 2)}  # name: (fewest, most) arguments
ALLOWED = ("des nombres, les opérations + - * / // % ** (ou ^), des parenthèses et les fonctions racine, abs, "
           "arrondi")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: None}
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007]+")
_SYMBOLS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})
_DIVIDED = re.compile(r" : ")  # 12 : 4, spaced as in French; 12:30 (a time) stays an error
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?: \d{3})+(?![\d])")
_TIMES_X = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=[\d(.])")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")


def calculate(expression: str) -> int | float:
    """The value of ``expression``; a :class:`ToolError` (French, naming the expression) otherwise."""
    if not isinstance(expression, str):
        raise ToolError("L'argument « expression » doit être une chaîne de caractères.")
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"L'expression est trop longue ({len(expression)} caractères, {MAX_LENGTH} au plus).")
    text = _normalize(expression)
    if not text:
        raise ToolError("L'argument « expression » est vide.")
    return _result(_evaluate(_parse_one(text)))


def _normalize(text: str) -> str:
    text = _SPACES.sub(" ", text).strip().translate(_SYMBOLS).replace("^", "**")
    text = _DIVIDED.sub(" / ", text)
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(" ", ""), text)
    return _TIMES_X.sub("*", text)


def _readings(text: str) -> list[str]:
    """The ways to read the commas of ``text``: a comma between two digits is a decimal comma
    (``3,5``) unless it separates the arguments of ``arrondi``. Both readings are tried; the
    one that makes a valid expression wins, and when both do (``arrondi(3,5)``) we refuse
    rather than guess."""
    decimal = _DECIMAL_COMMA.sub(".", text)
    return [decimal, text] if decimal != text else [text]


def _parse_one(text: str) -> ast.expr:
    trees, errors = [], []
    for reading in _readings(text):
        try:
            trees.append(_parse(reading))
        except ToolError as e:
            errors.append(e)
    if not trees:
        raise errors[0]
    if len(trees) == 2:
        raise ToolError("L'expression est ambiguë : une virgule entre deux chiffres peut être une virgule "
                        "décimale ou séparer les arguments ; écrivez 3.5 pour un nombre décimal, ou "
                        "arrondi(x, 2) avec une espace après la virgule.")
    return trees[0]


def _parse(text: str) -> ast.expr:
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" (2abs(3)), "invalid escape sequence"...
            warnings.simplefilter("ignore")  # the parser's warnings: our erreur says what matters
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError(f"L'expression n'est pas un calcul valide : elle ne peut contenir que {ALLOWED}.") from None
    _check(tree.body, 1)
    return tree.body


def _check(node: ast.AST, depth: int) -> None:
    """Refuse any node but numbers, the operations and the three functions (nothing is computed here)."""
    if depth > MAX_DEPTH:
        raise ToolError(f"L'expression est trop imbriquée ({MAX_DEPTH} niveaux au plus).")
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ToolError(f"L'expression contient {node.value!r}, qui n'est pas un nombre.")
        if abs(node.value) > LIMIT:
            raise ToolError("L'expression contient un nombre trop grand.")
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _check(node.operand, depth + 1)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, depth + 1)
        return _check(node.right, depth + 1)
    if isinstance(node, ast.Call):
        return _check_call(node, depth)
    if isinstance(node, ast.Name):
        raise ToolError(f"L'expression contient « {node.id} », qui n'est pas permis : elle ne peut contenir "
                        f"que {ALLOWED}.")
    raise ToolError(f"L'expression ne peut contenir que {ALLOWED}.")


def _check_call(node: ast.Call, depth: int) -> None:
    name = node.func.id.lower() if isinstance(node.func, ast.Name) else None
    if name not in FUNCTIONS:
        shown = f"« {node.func.id} » n'est pas une fonction permise" if isinstance(node.func, ast.Name) \
            else "cet appel n'est pas permis"
        raise ToolError(f"L'expression contient un appel refusé ({shown}) : seules racine, abs et arrondi le sont.")
    fewest, most = FUNCTIONS[name]
    starred = any(isinstance(a, ast.Starred) for a in node.args)
    if node.keywords or starred or not fewest <= len(node.args) <= most:
        usage = {"racine": "racine(x)", "abs": "abs(x)", "arrondi": "arrondi(x) ou arrondi(x, n)"}[name]
        raise ToolError(f"Dans l'expression, {name} s'écrit {usage}, sans nom d'argument.")
    for arg in node.args:
        _check(arg, depth + 1)


def _evaluate(node: ast.expr) -> int | float:
    """The value of a tree that :func:`_check` accepted (so its depth is bounded)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _size(_binary(type(node.op), _evaluate(node.left), _evaluate(node.right)))
    args = [_evaluate(a) for a in node.args]
    return _size(_call(node.func.id.lower(), args))


def _binary(op: type, a: int | float, b: int | float) -> int | float:
    if op in (ast.Div, ast.FloorDiv, ast.Mod) and b == 0:
        raise ToolError("L'expression contient une division par zéro.")
    if op is ast.Pow:
        return _power(a, b)
    both_int = isinstance(a, int) and isinstance(b, int)
    if op is ast.Mult and both_int and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise _too_large()
    try:
        return _BINARY[op](a, b)
    except OverflowError:
        raise _too_large() from None


def _power(a: int | float, b: int | float) -> int | float:
    """``a ** b``, refused before it is computed when the result would be too large or not real."""
    if a == 0 and b < 0:
        raise ToolError("L'expression contient une division par zéro (0 à une puissance négative).")
    if isinstance(a, int) and isinstance(b, int):
        if abs(a) <= 1 or b == 0:
            return a ** b  # at most a thousand squarings of -1, 0 or 1: instant
        if (abs(a).bit_length() - 1) * abs(b) > MAX_INT_BITS + 100:
            if b > 0:
                raise _too_large()
            return 0.0  # a tiny fraction: what Python's float gives
        return a ** b
    if a < 0 and not float(b).is_integer():
        raise ToolError("L'expression élève un nombre négatif à une puissance non entière : le résultat "
                        "n'est pas réel.")
    try:
        return math.pow(a, b)
    except OverflowError:
        raise _too_large() from None


def _call(name: str, args: list) -> int | float:
    x = args[0]
    if name == "abs":
        return abs(x)
    if name == "racine":
        if x < 0:
            raise ToolError("L'expression demande la racine d'un nombre négatif.")
        if isinstance(x, int) and math.isqrt(x) ** 2 == x:
            return math.isqrt(x)
        return math.sqrt(x)
    digits = args[1] if len(args) > 1 else 0
    if not float(digits).is_integer() or abs(digits) > 15:
        raise ToolError("Dans l'expression, le second argument d'arrondi doit être un entier entre -15 et 15.")
    return _round_half_up(x, int(digits))


def _round_half_up(x: int | float, digits: int) -> int | float:
    """``x`` rounded to ``digits`` decimals, halves away from zero (arrondi(2.5) = 3, as at school)."""
    with localcontext() as ctx:
        ctx.prec = 400
        exact = Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
        rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return int(rounded) if digits <= 0 else float(rounded)


def _size(value: int | float) -> int | float:
    if not abs(value) <= LIMIT:  # also true of inf and nan
        raise _too_large()
    return value


def _too_large() -> ToolError:
    return ToolError("Le résultat de l'expression est trop grand (au-delà de 10^300).")


def _result(value: int | float) -> int | float:
    """An int when whole and below 10^15, else a float with 10 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, int) and abs(value) < 10**15:
        return value
    return float(f"{float(value):.10g}")

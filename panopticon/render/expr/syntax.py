"""Lexer and parser for the expression language (govaluate-like), producing an AST.

    expr     := coalesce ['?' expr ':' expr]          (right-associative ternary)
    coalesce := or ('??' or)*
    or       := and ('||' and)*
    and      := compare ('&&' compare)*
    compare  := additive [('=='|'!='|'<'|'<='|'>'|'>='|'=~'|'!~'|'in') additive]
    additive := term (('+'|'-') term)*
    term     := power (('*'|'/'|'%') power)*
    power    := unary ['**' power]
    unary    := ('!'|'-'|'+') unary | primary
    primary  := number | string | 'true' | 'false' | 'nil' | name | name '(' args ')'
              | '[' text ']' (a parameter whose name has other characters)
              | '(' expr ')' | '(' expr (',' expr)+ ')' (a list, for `in`)

Untrusted input: the text, the token count and the nesting depth are bounded, and
the parser is iterative where input controls repetition, so no input can exhaust the
Python stack or run for long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from panopticon.errors import ExpressionError

MAX_EXPRESSION_LENGTH = 4096
"""Longest expression text; upstream configs stay under 100 characters."""
MAX_TOKENS = 512
"""Most tokens in one expression; bounds parse and evaluation cost."""
MAX_DEPTH = 48
"""Deepest nesting of parentheses, calls and operators."""
MAX_STRING_LITERAL = 1024


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, name, op, bracket_name, end
    value: Any
    pos: int


_OPERATORS = (
    "??", "**", "==", "!=", "<=", ">=", "=~", "!~", "&&", "||",
    "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", "(", ")", ",",
)  # fmt: skip
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_UNSUPPORTED = {
    "&": "bitwise &",
    "|": "bitwise |",
    "^": "bitwise ^",
    "~": "bitwise ~",
    "<<": "<<",
    ">>": ">>",
}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if len(tokens) >= MAX_TOKENS:
            raise ExpressionError(f"expression has more than {MAX_TOKENS} tokens")
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            assert m is not None
            lexeme = m.group()
            if len(lexeme) > 64:
                raise ExpressionError(f"number at position {i} has more than 64 characters")
            value: Any = float(lexeme) if any(ch in lexeme for ch in ".eE") else int(lexeme)
            tokens.append(Token("num", value, i))
            i = m.end()
        elif c in "'\"":
            value, end = _read_string(text, i)
            tokens.append(Token("str", value, i))
            i = end
        elif c == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise ExpressionError(f"unclosed '[' at position {i}")
            tokens.append(Token("bracket_name", text[i + 1 : end], i))
            i = end + 1
        elif c in _NAME_START:
            m = _NAME.match(text, i)
            assert m is not None
            tokens.append(Token("name", m.group(), i))
            i = m.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("op", op, i))
                    i += len(op)
                    break
            else:
                two = text[i : i + 2]
                what = _UNSUPPORTED.get(two) or _UNSUPPORTED.get(c)
                if what:
                    raise ExpressionError(f"operator {what} at position {i} is not supported")
                raise ExpressionError(f"unexpected character {c!r} at position {i}")
    tokens.append(Token("end", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(escapes.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        if c == quote:
            if len(out) > MAX_STRING_LITERAL:
                raise ExpressionError(
                    f"string literal at position {start} is longer than {MAX_STRING_LITERAL}"
                )
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ExpressionError(f"unterminated string starting at position {start}")


# --- AST ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Ternary:
    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Node, ...]


Node = Literal | Name | Unary | Binary | Ternary | Call | ListExpr

_CONSTANTS = {"true": True, "false": False, "nil": None}
_COMPARE = {"==", "!=", "<", "<=", ">", ">=", "=~", "!~", "in"}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.tokens[self.i]
        return (tok.kind == "op" and tok.value in ops) or (tok.kind == "name" and tok.value in ops)

    def expect(self, op: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.value != op:
            raise ExpressionError(f"expected {op!r} at position {tok.pos}, found {_describe(tok)}")

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested more than {MAX_DEPTH} levels deep")

    def expr(self) -> Node:
        self.nested()
        cond = self.binary_level(0)
        if self.at_op("?"):
            self.take()
            then = self.expr()
            self.expect(":")
            otherwise = self.expr()
            cond = Ternary(cond, then, otherwise)
        self.depth -= 1
        return cond

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("??",),
        ("||",),
        ("&&",),
        ("compare",),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary_level(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.power()
        ops = self._LEVELS[level]
        left = self.binary_level(level + 1)
        if ops == ("compare",):
            if self.at_op(*_COMPARE):
                tok = self.take()
                right = self.binary_level(level + 1)
                left = Binary(tok.value, left, right, tok.pos)
                if self.at_op(*_COMPARE):
                    raise ExpressionError(f"comparisons cannot be chained (position {self.peek().pos})")
            return left
        while self.at_op(*ops):
            tok = self.take()
            right = self.binary_level(level + 1)
            left = Binary(tok.value, left, right, tok.pos)
        return left

    def power(self) -> Node:
        base = self.unary()
        if self.at_op("**"):
            tok = self.take()
            self.nested()
            exponent = self.power()
            self.depth -= 1
            return Binary("**", base, exponent, tok.pos)
        return base

    def unary(self) -> Node:
        if self.at_op("!", "-", "+"):
            tok = self.take()
            self.nested()
            operand = self.unary()
            self.depth -= 1
            return operand if tok.value == "+" else Unary(tok.value, operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return Literal(tok.value)
        if tok.kind == "bracket_name":
            return Name(tok.value, tok.pos)
        if tok.kind == "name":
            if tok.value in _CONSTANTS:
                return Literal(_CONSTANTS[tok.value])
            if self.at_op("("):
                self.take()
                args: list[Node] = []
                if not self.at_op(")"):
                    args.append(self.expr())
                    while self.at_op(","):
                        self.take()
                        args.append(self.expr())
                self.expect(")")
                return Call(tok.value, tuple(args), tok.pos)
            return Name(tok.value, tok.pos)
        if tok.kind == "op" and tok.value == "(":
            first = self.expr()
            if self.at_op(","):
                items = [first]
                while self.at_op(","):
                    self.take()
                    items.append(self.expr())
                self.expect(")")
                return ListExpr(tuple(items))
            self.expect(")")
            return first
        raise ExpressionError(f"unexpected {_describe(tok)} at position {tok.pos}")


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of expression"
    return repr(tok.value)


def parse(text: str) -> Node:
    """Parse `text` into an AST; raise ExpressionError with the position of the problem."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty expression")
    parser = _Parser(tokenize(text))
    node = parser.expr()
    tok = parser.peek()
    if tok.kind != "end":
        raise ExpressionError(f"unexpected {_describe(tok)} at position {tok.pos}")
    return node

"""Read model completions: fenced code, the function to test, assert statements, the <think> block.

Parsing uses tree-sitter's Python grammar, which recovers from errors, so a function is found even
in prose or half-finished output. tree-sitter also accepts some code that Python rejects (Python 2
`print "x"`, a top-level `return`), so `syntax_ok` confirms with Python's own `compile` (which
parses and compiles only; nothing is executed). No function here raises on any string.
"""

from __future__ import annotations

import builtins
import re
import symtable
import textwrap
from functools import lru_cache

import tree_sitter_python
from tree_sitter import Language, Node, Parser

from apps.codegen.prompts import THINK_CLOSE, THINK_OPEN

MAX_CHARS = 20_000  # completions are cut to this length before parsing
PYTHON_TAGS = {"python", "py", "python3", "py3"}
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:```|\Z)", re.DOTALL)
_IMPORTS = {"import_statement", "import_from_statement", "future_import_statement"}
_DEFINITIONS = {"function_definition", "class_definition", "decorated_definition"}
_BUILTINS = frozenset(dir(builtins))


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_python.language()))


def parse_tree(code: str) -> tuple[Node, bytes]:
    """Return (tree-sitter root node, the UTF-8 bytes its offsets index) for `code`."""
    data = code.encode("utf-8", "replace")
    return _parser().parse(data).root_node, data


def node_text(node: Node, data: bytes) -> str:
    """Return the source text of a node."""
    return data[node.start_byte:node.end_byte].decode("utf-8", "replace")


def syntax_ok(code: str) -> bool:
    """True when `code` parses without ERROR/MISSING nodes and Python compiles it."""
    if not isinstance(code, str) or "\x00" in code:
        return False
    try:
        if parse_tree(code)[0].has_error:
            return False
        compile(code, "<completion>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _fenced_blocks(text: str) -> list[str]:
    """Return the contents of the ```python blocks, then of the bare ``` blocks, each in order."""
    tagged, bare = [], []
    for match in _FENCE.finditer(text):
        tag = match.group(1).strip().lower()
        if tag in PYTHON_TAGS:
            tagged.append(match.group(2))
        elif not tag:
            bare.append(match.group(2))
    return tagged + bare


def extract_code(text: str) -> str:
    """Return the first ```python (else bare ```) block's content, else the text; an unclosed fence runs to the end."""
    blocks = _fenced_blocks(text)
    return blocks[0] if blocks else text


def strip_think(text: str) -> tuple[str | None, str]:
    """Return (the reasoning inside <think>...</think>, the text after it); (None, text) when absent or malformed.

    Well formed means one THINK_OPEN followed by one THINK_CLOSE, and no further tags after it.
    An empty block gives "" rather than None: the model did write the tags.
    """
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE, start + len(THINK_OPEN)) if start >= 0 else -1
    if end < 0:
        return None, text
    reasoning, rest = text[start + len(THINK_OPEN):end], text[end + len(THINK_CLOSE):]
    if THINK_OPEN in reasoning or THINK_OPEN in rest or THINK_CLOSE in rest or THINK_CLOSE in text[:start]:
        return None, text
    return reasoning.strip(), rest


def _top_level(root: Node) -> list[Node]:
    """Return the module's statements, looking one level into ERROR nodes that tree-sitter's recovery made."""
    nodes = []
    for child in root.children:
        if child.type == "ERROR":
            nodes.extend(c for c in child.children if c.start_point[1] == 0 and c.is_named)
        else:
            nodes.append(child)
    return nodes


def _defined_name(node: Node, data: bytes) -> str | None:
    if node.type == "decorated_definition":
        node = node.child_by_field_name("definition") or node
    name = node.child_by_field_name("name")
    return node_text(name, data) if name is not None else None


def _identifiers(node: Node, data: bytes) -> set[str]:
    found, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            found.add(node_text(n, data))
        stack.extend(n.children)
    return found


def _assigned_name(node: Node, data: bytes) -> str | None:
    """Return NAME for a top-level `NAME = value` statement, else None."""
    if node.type != "expression_statement" or node.named_child_count != 1:
        return None
    assignment = node.named_children[0]
    left = assignment.child_by_field_name("left") if assignment.type == "assignment" else None
    return node_text(left, data) if left is not None and left.type == "identifier" else None


def _function_program(code: str, entry_point: str) -> str | None:
    root, data = parse_tree(code)
    statements = [n for n in _top_level(root) if not n.has_error]
    kept = [n for n in statements if n.type in _IMPORTS | _DEFINITIONS]
    if not any(_defined_name(n, data) == entry_point for n in kept if n.type in _DEFINITIONS):
        return None
    # Keep a module constant (`VOWELS = "aeiou"`) only when a kept definition reads it; example
    # calls such as `result = f(3)` are dropped with the other top-level statements.
    used = set().union(*(_identifiers(n, data) for n in kept if n.type in _DEFINITIONS))
    kept_ids = {id(n) for n in kept}
    program = [node_text(n, data) for n in statements
               if id(n) in kept_ids or _assigned_name(n, data) in used - {entry_point}]
    result = "\n\n".join(program) + "\n"
    return result if syntax_ok(result) else None


def extract_function(text: str, entry_point: str) -> str | None:
    """Return the completion's imports, top-level definitions and used constants as a program defining `entry_point`.

    The fenced blocks are tried in order (```python first), then the whole text; the part after
    a </think> block is used when there is one. None when no top-level `def entry_point` parses.
    """
    if not isinstance(text, str) or not isinstance(entry_point, str) or not entry_point.isidentifier():
        return None
    text = strip_think(text[:MAX_CHARS])[1]
    for code in [*_fenced_blocks(text), text]:
        try:
            program = _function_program(code, entry_point)
        except (ValueError, RecursionError):
            continue
        if program is not None:
            return program
    return None


def free_names(code: str) -> set[str] | None:
    """Return the global names `code` reads without binding them (builtins included); None if it does not compile."""
    try:
        table = symtable.symtable(code, "<assert>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    names, stack = set(), [table]
    while stack:
        t = stack.pop()
        module = t.get_type() == "module"
        for sym in t.get_symbols():
            unbound = not sym.is_assigned() and not sym.is_imported() if module else sym.is_global()
            if sym.is_referenced() and unbound:
                names.add(sym.get_name())
        stack.extend(t.get_children())
    return names


def _calls(node: Node, data: bytes, name: str) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "call":
            function = n.child_by_field_name("function")
            if function is not None and function.type == "identifier" and node_text(function, data) == name:
                return True
        stack.extend(n.children)
    return False


def _is_label(identifier: Node) -> bool:
    """True for an identifier that names no variable: `obj.NAME` or a keyword argument `NAME=...`."""
    parent = identifier.parent
    if parent is None:
        return False
    field = {"attribute": "attribute", "keyword_argument": "name"}.get(parent.type)
    return field is not None and parent.child_by_field_name(field) == identifier


def rename_identifier(code: str, old: str, new: str) -> str:
    """Return `code` stripped and dedented, with the variable `old` renamed to `new` (strings, attributes untouched)."""
    root, data = parse_tree(code)
    return _renamed(root, data, old, new)


def _renamed(node: Node, data: bytes, old: str | None, new: str) -> str:
    """Return the statement's source, dedented, with identifiers `old` renamed to `new` (strings untouched)."""
    spans = []
    if old is not None and old != new:
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type == "identifier" and node_text(n, data) == old and not _is_label(n):
                spans.append((n.start_byte, n.end_byte))
            stack.extend(n.children)
    out, pos = [], node.start_byte
    for start, end in sorted(spans):
        out += [data[pos:start], new.encode()]
        pos = end
    out.append(data[pos:node.end_byte])
    source = b"".join(out).decode("utf-8", "replace")
    return textwrap.dedent(" " * node.start_point[1] + source).strip()


def _first_parameter(function: Node, data: bytes) -> str | None:
    parameters = function.child_by_field_name("parameters")
    for p in parameters.named_children if parameters is not None else []:
        if p.type == "identifier":
            return node_text(p, data)
        if p.type in ("typed_parameter", "default_parameter", "typed_default_parameter"):
            ident = p.child_by_field_name("name") or (p.named_children[0] if p.named_children else None)
            return node_text(ident, data) if ident is not None and ident.type == "identifier" else None
        return None
    return None


def _assert_nodes(root: Node, data: bytes) -> list[tuple[Node, str | None]]:
    """Return (assert node, name to rename to entry_point) for the asserts a test file would run.

    Looked at: top-level asserts, and those directly inside `def test_*` / `def check(candidate)`
    (whose first parameter stands for the function) or an `if __name__ == "__main__":` block.
    """
    found = []
    for node in _top_level(root):
        if node.type == "decorated_definition":
            node = node.child_by_field_name("definition") or node
        if node.type == "assert_statement":
            found.append((node, None))
            continue
        rename = None
        if node.type == "function_definition":
            name = _defined_name(node, data) or ""
            if name == "check":
                rename = _first_parameter(node, data)
            elif not name.startswith("test"):
                continue
        elif node.type == "if_statement":
            condition = node.child_by_field_name("condition")
            if condition is None or "__main__" not in node_text(condition, data):
                continue
        else:
            continue
        body = node.child_by_field_name("body") or node.child_by_field_name("consequence")
        for statement in body.named_children if body is not None else []:
            if statement.type == "assert_statement":
                found.append((statement, rename))
    return found


def extract_asserts(text: str, entry_point: str, limit: int | None = None) -> list[str]:
    """Return the distinct standalone `assert` statements that call `entry_point`, in order (at most `limit`).

    Standalone means each compiles on its own and reads no name but `entry_point` and builtins,
    so `code + asserts` runs them; asserts on a test function's local variables are dropped.
    """
    if not isinstance(text, str) or not isinstance(entry_point, str) or not entry_point.isidentifier():
        return []
    text = strip_think(text[:MAX_CHARS])[1]
    allowed = _BUILTINS | {entry_point}
    out: list[str] = []
    for code in _fenced_blocks(text) or [text]:
        try:
            root, data = parse_tree(code)
            nodes = _assert_nodes(root, data)
        except (ValueError, RecursionError):
            continue
        for node, rename in nodes:
            if limit is not None and len(out) >= limit:
                return out
            if node.has_error:
                continue
            statement = _renamed(node, data, rename, entry_point)
            root2, data2 = parse_tree(statement)
            names = free_names(statement)
            if (statement in out or names is None or not names <= allowed
                    or not _calls(root2, data2, entry_point) or not syntax_ok(statement)):
                continue
            out.append(statement)
    return out[:limit] if limit is not None else out

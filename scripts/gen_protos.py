"""Generate the Python code for protos/crossrank/v1/*.proto.

    python scripts/gen_protos.py          # write the generated files
    python scripts/gen_protos.py --check  # exit 1 when the committed files are stale

The generated modules import each other as ``crossrank.v1.*``; protoc has no option for
relative imports, so that one line is rewritten to ``from . import`` to make them work
under the ``crossrank.protos`` package.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = PROTO_ROOT / "crossrank" / "v1"
_ABSOLUTE_IMPORT = re.compile(r"^from crossrank\.v1 import ", re.MULTILINE)


def generate(out_dir: Path) -> None:
    """Run protoc over every .proto file and write the Python modules under out_dir."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in (out_dir / "crossrank" / "v1").glob("*.py"):
        path.write_text(_ABSOLUTE_IMPORT.sub("from . import ", path.read_text()))


def generated_files(out_dir: Path) -> dict[str, str]:
    base = out_dir / "crossrank" / "v1"
    return {p.name: p.read_text() for p in sorted(base.glob("*_pb2*.py*"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the generated files are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = generated_files(Path(tmp))
    current = generated_files(PROTO_ROOT)
    if check:
        stale = sorted(set(fresh.items()) ^ set(current.items()))
        if stale:
            names = sorted({name for name, _ in stale})
            print(f"stale generated code: {', '.join(names)}; run python scripts/gen_protos.py", file=sys.stderr)
            return 1
        return 0
    for name, text in fresh.items():
        (PACKAGE_DIR / name).write_text(text)
    for name in set(current) - set(fresh):
        (PACKAGE_DIR / name).unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

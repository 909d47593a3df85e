"""`causette --help` and `causette corpus build` never import PyTorch: they answer in a fraction
of a second, and the corpus stage runs where PyTorch is not even installed.

The policy: package ``__init__`` modules import their heavy attributes lazily (PEP 562), and the
settings a command line needs (configs, sampling defaults) live in torch-free ``config`` modules.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO, demo_excerpt

PROBE = """
import sys
from causette.cli import main
code = 0
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("TORCH_LOADED" if "torch" in sys.modules else "TORCH_FREE")
sys.exit(code)
"""


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_help_does_not_import_torch(tmp_path):
    for args in (["--help"], ["train", "--help"], ["chat", "--help"], ["run", "--help"]):
        r = run(args, REPO)
        assert r.returncode == 0 and "usage: causette" in r.stdout, r.stderr
        assert r.stdout.rstrip().endswith("TORCH_FREE"), args


def test_corpus_build_does_not_import_torch(tmp_path):
    (tmp_path / "livre.txt").write_text("\n\n".join(demo_excerpt(2, 12_000)), encoding="utf-8")
    r = run(["corpus", "build", "livre.txt", "--name", "t", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "corpus: 1 documents" in r.stdout and r.stdout.rstrip().endswith("TORCH_FREE")


def test_the_probe_sees_torch_when_it_is_imported(tmp_path):
    """The check can fail: `causette tokenizer --help` is torch-free, but the probe reports a real import."""
    r = subprocess.run([sys.executable, "-c", "import torch\n" + PROBE, "--help"], cwd=REPO, capture_output=True, text=True)
    assert r.stdout.rstrip().endswith("TORCH_LOADED")

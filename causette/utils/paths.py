"""Where things are: the files shipped inside the package, and the layout of a run folder.

Shipped with the package (so that ``pip install .`` works as well as an editable install; the
repository's ``configs/`` and ``data/`` are links to these folders)::

    causette/configs/   the YAML configs (demo, seed16m, model/llama...)
    causette/demo/      the demo corpus, the demo conversations and the grammar suite, with their provenance

A run folder, ``runs/<name>/`` (:class:`RunLayout`)::

    corpus/          docs.jsonl.gz, manifest.json            causette corpus build
    tokenizer/       tokenizer.json (+ hf/)                    causette tokenizer train
    data/            train.bin, val.bin, meta.json             causette prepare
    checkpoints/     step_XXXXXXX/, latest, best               causette train
    metrics.jsonl, tb/                                         causette train (curves)
    sft/             checkpoints/, metrics.jsonl, tb/, eval.json   causette sft
    eval.json, report.md, report/                              causette eval, causette report
    stages.json                                                causette run (what is up to date)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from causette.checkpoint.files import CHECKPOINTS

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = PACKAGE_DIR / "configs"
SHIPPED_DIR = PACKAGE_DIR / "demo"
DEMO_CORPUS = SHIPPED_DIR / "demo_fr_pd.txt.gz"  # 35 public-domain works (see causette/demo/README.md)
DEMO_SFT = SHIPPED_DIR / "sft_demo.jsonl.gz"  # conversations generated from them (causette sft demo)
SMALL_TALK = SHIPPED_DIR / "sft_smalltalk.jsonl"  # written by hand for this project
GRAMMAR_SUITE = SHIPPED_DIR / "grammaire.jsonl.gz"  # minimal pairs made from UD French (causette eval --suite grammaire)
# In a checkout of the repository only: the public corpus laid beside it (../shared/data).
SHARED_DATA = PACKAGE_DIR.parent.parent / "shared" / "data"


def user_cache_dir() -> Path:
    """This user's Causette cache (compiled decoding steps, matmul peaks): ``$CAUSETTE_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/causette``, else ``~/.cache/causette``."""
    root = os.environ.get("CAUSETTE_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "causette")
    return Path(root)


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder (``runs/<name>``), or of its ``sft/`` sub-run."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    corpus = property(lambda self: self.root / "corpus")
    corpus_manifest = property(lambda self: self.root / "corpus" / "manifest.json")
    tokenizer = property(lambda self: self.root / "tokenizer")
    tokenizer_file = property(lambda self: self.root / "tokenizer" / "tokenizer.json")
    data = property(lambda self: self.root / "data")
    data_meta = property(lambda self: self.root / "data" / "meta.json")
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    metrics = property(lambda self: self.root / "metrics.jsonl")
    tensorboard = property(lambda self: self.root / "tb")
    eval_json = property(lambda self: self.root / "eval.json")
    report = property(lambda self: self.root / "report.md")
    report_dir = property(lambda self: self.root / "report")
    stages = property(lambda self: self.root / "stages.json")

    @property
    def sft(self) -> "RunLayout":
        """``runs/<name>/sft``: the chat model's own checkpoints, curves and ``eval.json``."""
        return RunLayout(self.root / "sft")

    @classmethod
    def find(cls, checkpoint: Path) -> "RunLayout | None":
        """The run a checkpoint belongs to (``runs/<name>`` for ``runs/<name>/[sft/]checkpoints/step_…``)."""
        for parent in Path(checkpoint).resolve().parents:
            here = cls(parent)
            if here.corpus.is_dir() or here.data_meta.is_file():
                return here
        return None

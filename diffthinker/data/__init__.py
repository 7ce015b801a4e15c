"""Datasets of the puzzle layer: build HF ``datasets`` of generated puzzles, import/export the official
DiffThinker folders, de-duplicate, and keep official test items out of training.

Modules, one job each:

- ``schema``: the columns, item ids, deterministic PNG encoding, image decoding;
- ``build``: ``build_dataset(task, level, n, seed, size, exclude=..., num_proc=...)``;
- ``store``: atomic ``save_dataset`` / ``load_dataset`` with a manifest;
- ``dedup``: ``collect_hashes`` (for ``--exclude``), ``assert_no_official``, ``load_training_dataset``;
- ``official``: ``find_official_folders``, ``import_official``, ``export_official``, ``load_data``.
"""

from .build import BuildConfig, BuildStats, build_dataset
from .dedup import assert_no_official, collect_hashes, load_training_dataset
from .official import export_official, find_official_folders, import_official, load_data, read_official_tree
from .schema import COLUMNS, FEATURES, generated_id, official_item_id
from .store import MANIFEST, dataset_summary, load_dataset, make_manifest, read_manifest, save_dataset

__all__ = [
    "BuildConfig", "BuildStats", "COLUMNS", "FEATURES", "MANIFEST", "assert_no_official", "build_dataset",
    "collect_hashes", "dataset_summary", "export_official", "find_official_folders", "generated_id",
    "import_official", "load_data", "load_dataset", "load_training_dataset", "make_manifest",
    "official_item_id", "read_manifest", "read_official_tree", "save_dataset",
]

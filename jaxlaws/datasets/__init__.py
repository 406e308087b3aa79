"""Bundled datasets: the authors' public training runs, as pandas DataFrames.

>>> from jaxlaws import datasets
>>> df = datasets.load("chinchilla-epoch", subset="standard")
>>> len(df), list(df.columns)
(240, ['N', 'D', 'C', 'loss', 'standard'])

Each dataset's source, licence and paper are in :data:`DATASETS` (``datasets.info(name)``)
and in ``jaxlaws/datasets/data/SOURCES.md``.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import pandas as pd

from jaxlaws.laws._law import suggest

__all__ = ["Dataset", "DATASETS", "load", "info", "names"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A bundled table and where it comes from.

    Attributes:
        name: the name given to :func:`load`.
        filename: the CSV under ``jaxlaws/datasets/data``.
        description: what the rows are; what each column means.
        source: repository and commit the numbers were taken from.
        licence: the licence stated there.
        citation: the paper to credit.
        law: the built-in law the table is usually fitted with.
        subsets: named row filters: subset name -> boolean column.
        fit_subset: the subset the standard fit uses (the command line's default).
    """

    name: str
    filename: str
    description: str
    source: str
    licence: str
    citation: str
    law: str
    subsets: tuple[tuple[str, str], ...] = ()
    fit_subset: str | None = None


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="chinchilla-epoch",
            filename="chinchilla_epoch.csv",
            description=(
                "245 training runs read off Hoffmann et al. (2022) Fig. 4 by Epoch AI. "
                "Columns: N (parameters, 'Model Size'), C (FLOPs, 'Training FLOP'), "
                "D = C / (6 N) (tokens), loss, and standard: False for the 5 highest "
                "losses, which Epoch AI and jaxlaws drop for the standard 240-point fit "
                "(subset='standard')."
            ),
            source="epoch-research/analyzing-chinchilla @ 9225883, data/svg_extracted_data.csv",
            licence="none stated (values read off a published figure); numbers only",
            citation=(
                "Hoffmann et al., 'Training Compute-Optimal Large Language Models', 2022; "
                "Besiroglu, Erdil, Barnett and You, "
                "'Chinchilla Scaling: A replication attempt', 2024."
            ),
            law="chinchilla",
            subsets=(("standard", "standard"),),
            fit_subset="standard",
        ),
        Dataset(
            name="datablations-c4",
            filename="datablations_c4.csv",
            description=(
                "The 182 C4 runs of the data-constrained fit. Columns: run_name, N "
                "(parameters), D (training tokens), U (unique tokens), epochs = D / U, loss "
                "(final test cross-entropy, nats/token, C4 validation)."
            ),
            source="huggingface/datablations @ 1370131, utils/parametric_fit.ipynb",
            licence="Apache-2.0",
            citation=("Muennighoff et al., 'Scaling Data-Constrained Language Models', NeurIPS 2023."),
            law="data_constrained",
        ),
        Dataset(
            name="openclip-imagenet",
            filename="openclip_imagenet.csv",
            description=(
                "Cherti et al.'s 18 OpenCLIP runs (ViT-B/16 and ViT-B/32 on LAION 80M, 400M "
                "and 2B, 2.4B to 34B samples seen, up to 428 passes): zero-shot ImageNet "
                "accuracy acc1 and error = 1 - acc1. Columns: arch, pool, samples (seen), "
                "pool_size (unique samples: 80,000,415 and 413M from the training logs; 2.32B "
                "for LAION-2B-en), acc1, error, passes = samples / pool_size."
            ),
            source=(
                "LAION-AI/scaling-laws-openclip @ 652b1e7 (zeroshot_results.csv, trained_models_info.csv)"
            ),
            licence="none stated; numbers only",
            citation=(
                "Cherti et al., 'Reproducible scaling laws for contrastive language-image "
                "learning', CVPR 2023; re-fitted with repetition in Goyal et al. 2024, Fig. 6."
            ),
            law="filtering",
        ),
        Dataset(
            name="gadre-overtraining",
            filename="gadre_overtraining.csv",
            description=(
                "104 language-model runs of Gadre et al. (11M to 6.9B parameters, 5 to 640 "
                "tokens per parameter) on three datasets (c4_original, rpj, rw_original), with "
                "the validation loss on several evaluation sets: one table for laws of N and D "
                "and for laws with several outputs. Columns: dataset, model, N (parameters), "
                "N_nonembed (non-embedding parameters), D (tokens), tokens_per_param, loss_c4 "
                "(C4 validation), loss_openlm, loss_paloma_c4, loss_paloma_code (Paloma's 100 "
                "programming languages), loss_paloma_falcon (RefinedWeb), loss_paloma_ptb, "
                "loss_paloma_redpajama, loss_de_en."
            ),
            source="mlfoundations/scaling @ a003c49 (exp_data: models and evals, as a flat table)",
            licence="MIT",
            citation=(
                "Gadre et al., 'Language models scale reliably with over-training and on "
                "downstream tasks', 2024."
            ),
            law="chinchilla",
        ),
    )
}


def names() -> list[str]:
    """The names of the bundled datasets."""
    return sorted(DATASETS)


def info(name: str) -> Dataset:
    """The :class:`Dataset` record of ``name`` (source, licence, columns)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}{suggest(name, DATASETS)}; bundled: {names()}")
    return DATASETS[name]


def load(name: str, subset: str | None = None) -> pd.DataFrame:
    """Load a bundled dataset.

    Args:
        name: one of :func:`names` (``"chinchilla-epoch"``, ``"datablations-c4"``).
        subset: a named subset of rows, e.g. ``"standard"`` for the 240 Chinchilla points.

    Returns:
        A fresh ``pandas.DataFrame`` (float64 numbers).

    Raises:
        ValueError: for an unknown dataset or subset.
    """
    ds = info(name)
    with resources.files(__name__).joinpath("data", ds.filename).open("r") as fh:
        df = pd.read_csv(fh)
    if subset is None:
        return df
    subsets = dict(ds.subsets)
    if subset not in subsets:
        raise ValueError(f"dataset {name!r} has no subset {subset!r}; subsets: {sorted(subsets) or 'none'}")
    return df[df[subsets[subset]].astype(bool)].reset_index(drop=True)

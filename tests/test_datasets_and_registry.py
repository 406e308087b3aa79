"""Bundled datasets and the law registry."""

import pathlib

import numpy as np
import pandas as pd
import pytest

import jaxlaws
from jaxlaws import datasets, laws

ANCHORS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "anchors"


def test_chinchilla_epoch_has_245_points_and_a_standard_subset_of_240():
    df = datasets.load("chinchilla-epoch")
    assert len(df) == 245 and df["standard"].sum() == 240
    std = datasets.load("chinchilla-epoch", subset="standard")
    assert len(std) == 240
    # the 5 dropped points are the 5 highest losses (Besiroglu et al. 2024)
    assert df.loc[~df["standard"], "loss"].min() > std["loss"].max()
    np.testing.assert_allclose(df["D"], df["C"] / (6 * df["N"]), rtol=1e-15)


def test_datablations_c4_has_the_182_runs():
    df = datasets.load("datablations-c4")
    assert len(df) == 182
    assert list(df.columns) == ["run_name", "N", "D", "U", "epochs", "loss"]
    np.testing.assert_allclose(df["epochs"], df["D"] / df["U"], rtol=1e-12)
    assert (df[["N", "D", "U", "loss"]] > 0).all().all()


@pytest.mark.skipif(not ANCHORS.exists(), reason="needs the project's shared/anchors beside the checkout")
def test_bundled_numbers_equal_the_anchors():
    src = pd.read_csv(ANCHORS / "chinchilla" / "svg_extracted_data.csv")
    df = datasets.load("chinchilla-epoch")
    np.testing.assert_array_equal(df["N"].values, src["Model Size"].values)
    np.testing.assert_array_equal(df["C"].values, src["Training FLOP"].values)
    np.testing.assert_array_equal(df["loss"].values, src["loss"].values)
    src = pd.read_csv(ANCHORS / "muennighoff" / "datablations_fit182_c4.csv")
    df = datasets.load("datablations-c4")
    np.testing.assert_array_equal(df["loss"].values, src["final_test_loss"].values)
    np.testing.assert_array_equal(df["U"].values, src["unique_tokens_U"].values)
    src = pd.read_csv(ANCHORS / "gadre_overtraining" / "models_flat_derived.csv")
    src = src.sort_values(["dataset_name", "params", "tokens"], kind="stable").reset_index(drop=True)
    df = datasets.load("gadre-overtraining")
    for ours, theirs in [
        ("N", "params"),
        ("D", "tokens"),
        ("loss_c4", "loss_c4_val"),
        ("loss_de_en", "loss_val_de-en_100"),
    ]:
        np.testing.assert_array_equal(df[ours].values, src[theirs].values)


def test_every_dataset_states_its_source_licence_and_paper():
    assert datasets.names() == [
        "chinchilla-epoch",
        "datablations-c4",
        "gadre-overtraining",
        "openclip-imagenet",
    ]
    for name in datasets.names():
        info = datasets.info(name)
        assert info.source and info.licence and info.citation
        assert info.law in laws.REGISTRY


def test_unknown_dataset_and_subset_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown dataset 'chinchilla'.*did you mean 'chinchilla-epoch'"):
        datasets.load("chinchilla")
    with pytest.raises(ValueError, match="has no subset 'std'"):
        datasets.load("chinchilla-epoch", subset="std")


def test_laws_by_name():
    assert laws.get("chinchilla") is laws.CHINCHILLA
    assert laws.get("data-constrained") is laws.DATA_CONSTRAINED
    assert laws.get(laws.FILTERING) is laws.FILTERING
    with pytest.raises(ValueError, match=r"unknown law 'chinchila'.*did you mean 'chinchilla'"):
        laws.get("chinchila")


def test_law_options_and_params():
    code = laws.FILTERING.with_options(form="reference_code")
    p = laws.params_from_reference_code(0.025, -0.16, 6.7272727272727275, 0.1)
    assert float(code(p, 19.2e6, 12.8e6)) == pytest.approx(0.8773121908836914, rel=1e-12)
    assert float(code(p, 19.2e6, 12.8e6, form="paper")) == pytest.approx(0.882996525798457, rel=1e-12)
    assert "form='reference_code'" in repr(code)
    made = laws.CHINCHILLA.make_params({"E": 1.7, "A": 400, "B": 410, "alpha": 0.34, "beta": 0.28})
    assert isinstance(made, laws.ChinchillaParams)
    with pytest.raises(ValueError, match=r"unknown \['Alpha'\]; missing \['alpha'\]"):
        laws.CHINCHILLA.make_params({"E": 1.7, "A": 400, "B": 410, "Alpha": 0.34, "beta": 0.28})


def test_x64_is_on_after_import():
    import jax.numpy as jnp

    assert (
        jaxlaws.laws.chinchilla(laws.ChinchillaParams(1.0, 1.0, 1.0, 0.5, 0.5), 4.0, 4.0).dtype == jnp.float64
    )

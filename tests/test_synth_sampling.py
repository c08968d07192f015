"""Tests of faderlib.synth.sampling: the attribute names, CelebA's frequencies and splits, independence."""

import numpy as np
import pytest

from faderlib import synth
from faderlib.celeba_facts import CELEBA_ATTRIBUTES, SPLIT_SIZES


def test_attributes_are_celeba_names_in_header_order():
    assert set(synth.ATTRIBUTES) <= set(CELEBA_ATTRIBUTES)
    assert list(synth.ATTRIBUTES) == [a for a in CELEBA_ATTRIBUTES if a in synth.ATTRIBUTES]
    for name in ("Smiling", "Male", "Eyeglasses", "Young", "Mouth_Slightly_Open", "Bangs",
                 "Black_Hair", "Blond_Hair", "Wearing_Hat", "Mustache", "Pale_Skin"):
        assert name in synth.ATTRIBUTES


def test_split_sizes_follow_celeba():
    assert synth.split_sizes(sum(SPLIT_SIZES)) == SPLIT_SIZES
    train, valid, test = synth.split_sizes(2000)
    assert train + valid + test == 2000
    assert abs(train - 2000 * 162770 / 202599) <= 1
    assert abs(valid - 2000 * 19867 / 202599) <= 1
    assert abs(test - 2000 * 19962 / 202599) <= 1


# ---- attribute statistics (sampling only, no drawing) ------------------------------------


@pytest.fixture(scope="module")
def sampled():
    rows = [synth.sample_attributes(np.random.default_rng([11, i, 0])) for i in range(20000)]
    return {a: np.array([r[a] for r in rows]) for a in synth.ATTRIBUTES}


CELEBA_RATES = {"Smiling": 48.21, "Male": 41.68, "Eyeglasses": 6.51, "Young": 77.36,
                "Mouth_Slightly_Open": 48.34, "Bangs": 15.16, "Black_Hair": 23.93,
                "Blond_Hair": 14.80, "Wearing_Hat": 4.85, "Mustache": 4.15, "Pale_Skin": 4.29}


@pytest.mark.parametrize("name", sorted(CELEBA_RATES))
def test_frequencies_near_celeba(sampled, name):
    assert abs(100 * sampled[name].mean() - CELEBA_RATES[name]) < 1.5


def test_constraints_and_independence(sampled):
    male, smiling, glasses = sampled["Male"] == 1, sampled["Smiling"] == 1, sampled["Eyeglasses"] == 1
    assert not np.any((sampled["Mustache"] == 1) & ~male)
    assert not np.any((sampled["Black_Hair"] == 1) & (sampled["Blond_Hair"] == 1))
    assert abs(smiling[male].mean() - smiling[~male].mean()) < 0.03
    assert abs(glasses[male].mean() - glasses[~male].mean()) < 0.015
    assert abs(glasses[smiling].mean() - glasses[~smiling].mean()) < 0.015


def test_identity_does_not_depend_on_attributes():
    faces = [synth.face_params(0, i) for i in range(3000)]
    male = np.array([a["Male"] for _, a in faces]) == 1
    for key in ("hair_length", "face_rx", "skin"):
        values = np.array([identity[key] for identity, _ in faces])
        assert abs(values[male].mean() - values[~male].mean()) < 0.2 * values.std()

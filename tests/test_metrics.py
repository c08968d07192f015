"""The measures (faderlib.metrics): plain functions of tensors and numbers. Their use on a trained
run (the counterfactual mask, the latent probe) is tested in test_evaluate.py."""

import math

import pytest
import torch

from faderlib.config import ModelConfig
from faderlib.metrics import accuracy, balanced_accuracy, correct_counts, predict_classes, psnr


def test_psnr():
    assert psnr(4.0) == 0.0
    assert psnr(0.04) == pytest.approx(20.0)
    assert math.isinf(psnr(0.0))


def test_balanced_accuracy_of_a_blind_answer_is_one_over_k():
    # balanced accuracy: a blind answer scores 1/K whatever the class frequencies
    assert balanced_accuracy(torch.zeros(10, dtype=torch.long), torch.tensor([0] * 9 + [1]), 2) == 0.5


def test_predictions_and_right_answers_by_hand():
    c = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling", "Hair.3"])
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -0.5],     # Smiling 0, Hair 0
                           [0.0, 1.0, -1.0, 2.0, 0.0],      # Smiling 1, Hair 1
                           [0.0, 3.0, -1.0, 0.0, 4.0]])     # Smiling 1, Hair 2
    y = torch.tensor([[0, 2], [1, 1], [0, 2]])
    assert predict_classes(logits, c).tolist() == [[0, 0], [1, 1], [1, 2]]
    assert correct_counts(logits, y, c).tolist() == [2.0, 2.0]
    assert float(accuracy(logits, y, c)) == pytest.approx(2 / 3)

import json
import math

import numpy as np
import pytest
import torch

from faderlib.classifier import ClassifierConfig, load_classifier, predict, train_classifier
from faderlib.evaluate import evaluate
from faderlib.metrics import psnr
from faderlib.reports import format_report
from faderlib.runs import load_run
from faderlib.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory):
    """A tiny run and classifier on the synthetic faces (seconds, not quality)."""
    root = tmp_path_factory.mktemp("evaluate")
    config = TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling", "Eyeglasses"), image_size=32, steps=20,
                         batch_size=8, lambda_e=0.01, lambda_ramp=5, eval_every=20, eval_images=16, device="cpu")
    Trainer(config, root / "run", progress=False).train()
    train_classifier(ClassifierConfig(data_dir=str(synthetic_dir), image_size=32, steps=20, device="cpu"),
                     root / "clf", progress=False)
    return root


def test_evaluation_report_has_every_part(trained):
    r = evaluate(trained / "run", trained / "clf", max_images=24, counterfactual_images=6)
    assert r["test_images"] == 24 and r["step"] == 20
    assert r["reconstruction"]["psnr"] == pytest.approx(psnr(r["reconstruction"]["mse"]))
    for name in ("Smiling", "Eyeglasses"):
        d = r["latent_discriminator"][name]
        assert 0 <= d["accuracy"] <= 1 and 0.5 <= d["majority_rate"] <= 1 and 0 <= d["balanced_accuracy"] <= 1
        assert set(r["swap_accuracy"][name]) == {"0", "1"}
        assert 0 <= r["classifier_accuracy"][name] <= 1
        assert r["counterfactual_psnr"][name] > 5 and r["counterfactual_psnr_unedited"][name] > 5
    json.dumps(r)  # plain data, as `fader evaluate --json` prints it
    assert "Eyeglasses" in format_report(r)


def test_swap_accuracy_follows_the_protocol(trained):
    """Recompute swap accuracy by hand: edit the images whose value differs from the target,
    and count how many the classifier reads as the target."""
    n = 24
    r = evaluate(trained / "run", trained / "clf", max_images=n, counterfactual_images=2)
    run = load_run(trained / "run")
    clf = load_classifier(trained / "clf")
    from faderlib.cache import prepared
    from faderlib.data import FaderDataset

    test = FaderDataset(prepared(run.data_dir, 32, progress=False), "test", ["Smiling", "Eyeglasses"], flip=False)
    x, y = test.batch(torch.arange(n))
    with torch.no_grad():
        z = run.autoencoder.encode(x)
        for j, name in enumerate(["Smiling", "Eyeglasses"]):
            for target in (0, 1):
                keep = y[:, j] != target
                if not keep.any():
                    assert r["swap_accuracy"][name][str(target)] is None
                    continue
                y2 = y[keep].clone()
                y2[:, j] = target
                read = predict(clf, run.autoencoder.decode(z[keep], y2))[:, clf.config.attribute_names.index(name)]
                expected = float((read == target).float().mean())
                assert r["swap_accuracy"][name][str(target)] == pytest.approx(expected)


def test_evaluation_without_classifier_or_on_celeba_format(trained, tmp_path):
    r = evaluate(trained / "run", max_images=8, counterfactual_images=2)
    assert "swap_accuracy" not in r and "reconstruction" in r

    from celeba_fixture import write_celeba_fixture

    data = write_celeba_fixture(tmp_path / "celeba", n=40, layout="kaggle")
    config = TrainConfig(data_dir=str(data), attributes=("Smiling",), image_size=32, steps=4, batch_size=4,
                         eval_every=4, eval_images=4, device="cpu")
    Trainer(config, tmp_path / "run", progress=False).train()
    r = evaluate(tmp_path / "run")
    assert "counterfactual_psnr" not in r  # no ground truth for photographs
    assert r["test_images"] > 0


def test_classifier_is_reused_and_never_overwritten(trained, synthetic_dir):
    again = train_classifier(ClassifierConfig(data_dir=str(synthetic_dir), image_size=32, steps=20, device="cpu"),
                             trained / "clf", progress=False)
    assert again["train"]["steps"] == 20
    with pytest.raises(FileExistsError, match="other settings"):
        train_classifier(ClassifierConfig(data_dir=str(synthetic_dir), image_size=32, steps=21, device="cpu"),
                         trained / "clf", progress=False)


def test_swap_strength_pushes_binary_alphas_past_the_ends():
    from faderlib.config import ModelConfig
    from faderlib.models import swapped_attributes as swap_code

    c = ModelConfig.from_preset("official", 32, ["Smiling", "Male"])
    y = torch.tensor([[0, 1], [1, 0]])
    assert swap_code(y, 0, 1, 1.0, c).tolist() == [[1, 1], [1, 0]]
    assert swap_code(y, 0, 1, 1.5, c).tolist() == [[1.5, 1.0], [1.5, 0.0]]
    assert swap_code(y, 1, 0, 1.5, c).tolist() == [[0.0, -0.5], [1.0, -0.5]]


def test_other_strengths_are_reported_beside(trained):
    r = evaluate(trained / "run", trained / "clf", max_images=16, counterfactual_images=2, also_strengths=(1.5, 2.0))
    plain = evaluate(trained / "run", trained / "clf", max_images=16, counterfactual_images=2, strength=1.5)
    assert set(r["swap_accuracy_at"]) == {"1.5", "2"}
    assert r["swap_accuracy_at"]["1.5"] == plain["swap_accuracy"]


def test_counterfactual_edits_agree_with_the_scores(course_dir):
    from faderlib.evaluate import counterfactual_edits, counterfactual_scores

    run = load_run(course_dir.fader)
    cf = counterfactual_edits(run, "Smiling", n=3)
    assert cf.x.shape == cf.edit.shape == cf.truth.shape == (3, 3, 32, 32)
    assert torch.equal(cf.y_edit, 1 - cf.y)  # the edit flips the attribute
    scores = counterfactual_scores(run.autoencoder, run.dataset("test"), run.data_dir, 3, "cpu")
    assert psnr(float(((cf.edit - cf.truth) ** 2).mean())) == pytest.approx(scores["counterfactual_psnr"]["Smiling"])
    assert psnr(float(((cf.reconstruction - cf.truth) ** 2).mean())) == \
        pytest.approx(scores["counterfactual_psnr_unedited"]["Smiling"])
    assert cf.psnr_edit[0] == pytest.approx(psnr(float(((cf.edit[0] - cf.truth[0]) ** 2).mean())))


def test_swap_failures_are_the_edits_the_classifier_does_not_read(course_dir):
    from faderlib.evaluate import swap_failures

    run = load_run(course_dir.fader)
    f = swap_failures(run, course_dir.classifier, "Smiling", target=1, n=2, max_images=20)
    x, y = run.images(20)
    assert f.tried == int((y[:, 0] != 1).sum())  # every test image without a smile was edited
    assert 0 <= f.failed <= f.tried and len(f.x) == len(f.edits) == min(2, f.failed)
    assert all(p < 0.5 for p in f.probability) and f.probability == sorted(f.probability)  # worst first


def test_counterfactual_gain_is_the_edits_psnr_over_the_unedited_and_the_mask_is_what_changes(course_dir):
    from faderlib.evaluate import counterfactual_scores, counterfactual_truth
    from faderlib.metrics import changed_pixels, masked_psnr

    run = load_run(course_dir.fader)
    test = run.dataset("test")
    s = counterfactual_scores(run.autoencoder, test, run.data_dir, 6, "cpu")
    for name in ("Smiling", "Male"):
        assert s["counterfactual_gain"][name] == pytest.approx(
            s["counterfactual_psnr"][name] - s["counterfactual_psnr_unedited"][name])
        assert 0 < s["changed_share"][name] < 0.6  # an attribute changes a part of the face, not all of it
    # the bound, by hand: the reconstruction's PSNR against the face as drawn minus against the truth
    x6, y6 = test.batch(torch.arange(6))
    with torch.no_grad():
        rec6 = run.autoencoder.decode(run.autoencoder.encode(x6), y6)
    assert s["counterfactual_gain_bound"]["Smiling"] == pytest.approx(
        psnr(float(((rec6 - x6) ** 2).mean())) - s["counterfactual_psnr_unedited"]["Smiling"])
    # the mask, by hand: the true counterfactual against the face as drawn
    x, y = test.batch(torch.arange(6))
    truth = counterfactual_truth(run.data_dir, test, torch.arange(6), "Smiling", 1 - y[:, 0])
    mask = changed_pixels(x, truth)
    assert mask.shape == (6, 1, 32, 32)
    assert float(((truth - x) ** 2 * (1 - mask)).sum(1).max()) <= 1e-3  # nothing outside it changed
    assert torch.equal(changed_pixels(x, x), torch.zeros_like(mask))
    # a masked PSNR reads only the masked pixels: a difference outside the mask is not seen
    noisy = x.clone()
    noisy[(1 - mask).expand_as(x).bool()] += 0.5
    assert masked_psnr(noisy, x, mask) == math.inf
    assert math.isnan(masked_psnr(x, truth, torch.zeros_like(mask)))


def test_an_edit_that_changes_nothing_gains_nothing(course_dir, monkeypatch):
    """The gain by construction: a decoder that ignores y gains exactly 0 (whatever a classifier would read)."""
    from faderlib import evaluate as ev

    run = load_run(course_dir.fader)
    test = run.dataset("test")
    ae = run.autoencoder
    ignore_y = ae.decode
    monkeypatch.setattr(ae, "decode", lambda z, y: ignore_y(z, torch.zeros_like(y)))
    null = ev.counterfactual_scores(ae, test, run.data_dir, 4, "cpu")
    assert all(g == pytest.approx(0.0, abs=1e-9) for g in null["counterfactual_gain"].values())


def test_latent_probe_reads_a_linear_attribute_and_not_noise():
    from faderlib.evaluate import fit_probe
    from faderlib.metrics import balanced_accuracy

    g = torch.Generator().manual_seed(0)
    z = torch.randn(600, 20, generator=g)
    readable = (z[:, 3] + 0.2 * z[:, 7] > 1.2).long()      # rare (about 12 %) and linear in z
    noise = (torch.rand(600, generator=g) < 0.5).long()     # nothing in z says it
    for labels, low, high in ((readable, 0.9, 1.0), (noise, 0.35, 0.65)):
        probe = fit_probe(z[:400], labels[:400])
        predicted = probe(z[400:]).argmax(1)
        assert low <= balanced_accuracy(predicted, labels[400:], 2) <= high


def test_evaluate_reports_the_latent_probe(trained):
    r = evaluate(trained / "run", trained / "clf", max_images=24, counterfactual_images=4, probe_images=64)
    assert set(r["latent_probe"]) == {"Smiling", "Eyeglasses"}
    assert all(0 <= v["balanced_accuracy"] <= 1 for v in r["latent_probe"].values())
    assert set(r["probe_floor"]) == {"Smiling", "Eyeglasses"}
    assert all(0 <= v["balanced_accuracy"] <= 1 for v in r["probe_floor"].values())
    none = evaluate(trained / "run", max_images=8, counterfactual_images=2, probe_images=0)
    assert "latent_probe" not in none and "probe_floor" not in none


def test_the_probe_floor_reads_y_from_the_other_attributes_that_tell_it_and_not_from_the_others():
    """A y column copied by another column of the table has a floor near 1 (any z that must carry that
    other column gives y away); a y independent of every other column, a floor near 0.5."""
    from types import SimpleNamespace

    import pandas as pd

    from faderlib.config import ModelConfig
    from faderlib.evaluate import other_attributes, probe_floor

    rng = np.random.default_rng(0)
    n = 1200
    told, alone = rng.random(n) < 0.3, rng.random(n) < 0.5
    table = pd.DataFrame({"Told": told.astype(int), "Alone": alone.astype(int),
                          "Copy": (told ^ (rng.random(n) < 0.05)).astype(int),  # Told, 5 % of labels flipped
                          "Noise": (rng.random(n) < 0.4).astype(int), "Hair": rng.integers(0, 3, n)})
    names = ("Told", "Alone")

    def split(rows):
        y = torch.from_numpy(table[list(names)].to_numpy(np.int64)[rows])
        return SimpleNamespace(prepared=SimpleNamespace(attributes=table), rows=rows, y=y)

    train, test = split(np.arange(0, 800)), split(np.arange(800, n))
    features = other_attributes(train, names, 10)
    assert features.shape == (10, 1 + 1 + 3)   # Copy, Noise, Hair one-hot over its 3 values
    assert torch.equal(features[:, 0], torch.from_numpy(table["Copy"].to_numpy()[:10]).float())
    floor = probe_floor(train, test, ModelConfig.from_preset("paper", 32, names))
    assert floor["Told"]["balanced_accuracy"] > 0.9
    assert 0.4 < floor["Alone"]["balanced_accuracy"] < 0.6
    only_y = pd.DataFrame({"Told": table["Told"], "Alone": table["Alone"]})
    train.prepared.attributes = test.prepared.attributes = only_y  # nothing but y in the table: no floor to give
    assert probe_floor(train, test, ModelConfig.from_preset("paper", 32, names)) == {}


def test_an_attribute_with_one_value_in_the_test_split_is_refused_by_name(tmp_path):
    """Eyeglasses on no test face: its balanced accuracy would read a perfect, meaningless 1.000
    and its swaps could be scored in one direction only; the evaluation names it instead."""
    import numpy as np
    from celeba_fixture import write_celeba_fixture

    from faderlib.errors import DataError

    n, attrs = 40, ("Eyeglasses", "Smiling", "Male")
    values = np.random.default_rng(4).integers(0, 2, size=(n, len(attrs)))
    values[:30, 0] = np.arange(30) % 2   # both values in training
    values[35:, 0] = 0                   # the 5 test faces: none with glasses
    root = write_celeba_fixture(tmp_path / "celeba", n=n, attributes=attrs, values=values,
                                split=[0] * 30 + [1] * 5 + [2] * 5)
    config = TrainConfig(data_dir=str(root), attributes=("Eyeglasses", "Smiling"), image_size=32, steps=2,
                         batch_size=4, eval_every=2, eval_images=4, device="cpu")
    run = tmp_path / "run"
    Trainer(config, run, progress=False).train()
    with pytest.raises(DataError, match=r"'Eyeglasses' has no positive example in the test split .*5 negative, 0 positive"):
        evaluate(run, probe_images=0)


def test_the_probe_strength_benchmark_fits_on_more_and_more_codes(tiny_run_dir, capsys):
    """benchmarks/probe_strength.py: one row per number of fitted codes, with the probe and its floor per
    attribute (balanced accuracies), and a word for a number the split cannot give."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "probe_strength.py"
    spec = importlib.util.spec_from_file_location("probe_strength", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tiny_run_dir), "--fit", "40", "80", "100000", "--test-images", "30"]) == 0
    out, err = capsys.readouterr()
    rows = [line.split(" | ") for line in out.splitlines()[1:]]
    assert [r[1] for r in rows] == ["40", "80"]
    for _, _, probe, floor in rows:
        for value in (*probe.split(" / "), *floor.split(" / ")):
            assert 0.0 <= float(value) <= 1.0
        assert len(probe.split(" / ")) == len(floor.split(" / ")) == 3
    assert "the training split has" in err and "not 100000" in err

"""The words and tables of an evaluation (faderlib.reports), from evaluations written by hand. The
report of a real evaluation is tested in test_evaluate.py."""

import json

from faderlib.reports import (ablation_report, balance_report, compare_results, direction_report, invariance_table,
                              swap_table)

RESULT = {
    "reconstruction": {"mse": 0.01, "psnr": 26.0},
    "latent_discriminator": {"Smiling": {"accuracy": 0.52, "majority_rate": 0.51, "balanced_accuracy": 0.5},
                             "Eyeglasses": {"accuracy": 0.93, "majority_rate": 0.935, "balanced_accuracy": 0.5}},
    "swap_accuracy": {"Smiling": {"0": 0.97, "1": 0.95}, "Eyeglasses": {"0": 0.99, "1": 0.7}},
    "classifier_accuracy": {"Smiling": 0.98, "Eyeglasses": 0.99},
    "counterfactual_psnr": {"Smiling": 24.0, "Eyeglasses": 22.0},
    "counterfactual_gain": {"Smiling": 1.5, "Eyeglasses": 2.5},
}


def test_swap_table_and_compare_results():
    table = swap_table(RESULT)
    assert table.loc["Eyeglasses", "add (0 -> 1)"] == 0.7 and table.loc["Eyeglasses", "remove (1 -> 0)"] == 0.99
    assert table.loc["Smiling", "classifier accuracy"] == 0.98
    worse = json.loads(json.dumps(RESULT))
    worse["swap_accuracy"]["Eyeglasses"]["1"] = 0.1
    both = compare_results({"fader": RESULT, "lambda 0": worse})
    assert list(both["swap: add"].columns) == ["fader", "lambda 0"]
    assert both.loc["Eyeglasses", "swap: add"].tolist() == [0.7, 0.1]
    assert both.loc["whole image", ("PSNR dB", "fader")] == 26.0
    assert both.loc["Smiling", ("cf gain dB", "fader")] == 1.5
    assert list(both.index) == ["whole image", "Smiling", "Eyeglasses"]  # a row per attribute, not per measure
    no_clf = {k: v for k, v in RESULT.items() if k in ("reconstruction", "latent_discriminator")}
    measures = compare_results({"x": no_clf}).columns.get_level_values("measure")
    assert "swap: add" not in measures and "disc. balanced" in measures and "probe balanced" not in measures
    probed = {**RESULT, "latent_probe": {"Smiling": {"balanced_accuracy": 0.8}, "Eyeglasses": {"balanced_accuracy": 0.9}}}
    assert compare_results({"a": probed, "b": RESULT}).loc["Eyeglasses", "probe balanced"].tolist()[0] == 0.9


def test_the_ablation_report_says_what_the_numbers_say():
    fader = json.loads(json.dumps(RESULT))
    ablation = json.loads(json.dumps(RESULT))
    ablation["reconstruction"]["psnr"] = 27.5
    ablation["latent_discriminator"]["Smiling"]["balanced_accuracy"] = 0.9
    ablation["swap_accuracy"] = {"Smiling": {"0": 0.3, "1": 0.2}, "Eyeglasses": {"0": 0.1, "1": 0.05}}
    text = ablation_report(fader, ablation)
    assert "better (27.5 dB against 26.0 dB)" in text
    assert "reads Smiling from z" in text and "Eyeglasses from z" not in text
    assert "the decoder ignores y" in text
    # a contrast the runs do not have is not claimed
    same = ablation_report(fader, json.loads(json.dumps(RESULT)))
    assert "not better" in same and "no clear contrast" in same and "reads no attribute" in same


def test_direction_balance_and_invariance_reports_follow_the_numbers():
    text = direction_report(RESULT)
    assert "Smiling: both directions alike" in text and "Eyeglasses: adding is harder here" in text
    collapsed = json.loads(json.dumps(RESULT))
    collapsed["reconstruction"]["psnr"] = 15.6
    text = balance_report(RESULT, collapsed, "Eyeglasses", None)
    assert "10.4 dB apart, a collapse of the balance=None run" in text and "nearly the same" in text
    assert "no collapse" in balance_report(RESULT, RESULT, "Eyeglasses", None)
    probed = {**RESULT, "latent_probe": {"Smiling": {"balanced_accuracy": 0.9}, "Eyeglasses": {"balanced_accuracy": 0.6}}}
    table = invariance_table(probed, RESULT)
    assert table.loc["Smiling", "latent probe"] == 0.9 and table.loc["Smiling", "discriminator"] == 0.5
    assert "latent probe, lambda_E = 0" not in table.columns and "discriminator, lambda_E = 0" in table.columns
    assert "probe floor" not in table.columns
    floored = {**probed, "probe_floor": {"Smiling": {"balanced_accuracy": 0.67}, "Eyeglasses": {"balanced_accuracy": 0.52}}}
    assert invariance_table(floored).loc["Eyeglasses", "probe floor"] == 0.52


def test_the_sweep_table_averages_the_seeds_of_each_objective_and_strength(tmp_path, capsys):
    from faderlib.course import measured_sweep
    from faderlib.reports import sweep_table

    def row(adversary, lam, dis, seed, psnr, smile, male):
        return {"adversary": adversary, "lambda_e": lam, "dis_steps": dis, "seed": seed, "psnr": psnr,
                "probe": {"Smiling": smile, "Male": male}, "probe_mean": (smile + male) / 2,
                "discriminator": {"Smiling": 0.5, "Male": 0.6}, "min_swap": 0.9 + seed / 100}

    rows = [row("flip", 0.0, 1, 0, 24.0, 0.8, 1.0), row("flip", 0.02, 1, 0, 23.0, 0.8, 0.9),
            row("flip", 0.02, 1, 1, 24.0, 0.9, 1.0), row("uniform", 0.1, 4, 0, 21.0, 0.7, 0.9),
            {**row("flip", 0.02, 1, 0, 22.0, 0.6, 0.8), "dis_lr_scale": 4.0}]
    table = sweep_table(rows)
    assert len(table) == 4 and table.loc[("flip, P's lr x4", 0.02, 1)]["PSNR dB"] == 22.0
    flip = table.loc[("flip", 0.02, 1)]
    assert flip["PSNR dB"] == 23.5 and flip["probe Smiling"] == 0.85 and flip["seeds"] == 2
    assert flip["probe (mean)"] == 0.9 and flip["discriminator (mean)"] == 0.55 and flip["min swap"] == 0.905
    assert table.loc[("none (lambda_E = 0)", 0.0, 1)]["seeds"] == 1
    # the kit's own measured rows, read from a file; none where it is missing (said, not raised)
    (tmp_path / "sweep.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert measured_sweep(tmp_path / "sweep.jsonl") == rows
    assert measured_sweep(tmp_path / "missing.jsonl") == [] and "no measured sweep" in capsys.readouterr().out

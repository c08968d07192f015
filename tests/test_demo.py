import json

from faderlib.demo import run_demo, summary_table


def test_quick_demo_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run_demo(out, quick=True, progress=False)
    for name in ("metrics.json", "loss_curves.png", "interpolation_Smiling.png", "interpolation_Eyeglasses.png",
                 "interpolation_Male.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("reconstruction", "latent_discriminator", "swap_accuracy", "classifier_accuracy",
                "counterfactual_psnr", "ablation_lambda0", "timings_s", "checks"):
        assert key in metrics, key
    assert metrics["ablation_lambda0"]["swap_accuracy"].keys() == metrics["swap_accuracy"].keys()
    assert set(metrics["checks"]) == {"min_swap_accuracy", "discriminator_above_blind",
                                      "ablation_mean_swap_lower_by", "minutes"}
    printed = capsys.readouterr().out
    assert "Eyeglasses" in printed and "target" in printed

    # a second run finds everything done: no training again, same weights
    before = (out / "fader" / "checkpoints" / "last.pt").read_bytes()
    again = run_demo(out, quick=True, progress=False)
    assert (out / "fader" / "checkpoints" / "last.pt").read_bytes() == before
    assert again["timings_s"]["fader network"] < summary["timings_s"]["fader network"] + 5
    assert summary_table(again).count("\n") > 5

import json
import os
import subprocess
import sys

from faderlib.cli import main


def test_summary_json_prints_the_reference_counts(capsys):
    assert main(["summary", "--preset", "official", "--size", "256", "--attrs", "Male", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["encoder"] == 6_985_568
    assert counts["decoder"] == 7_014_944
    assert counts["autoencoder"] == 14_000_512
    assert counts["latent_discriminator"] == 8_655_362
    assert set(counts) >= {"encoder", "decoder", "autoencoder", "latent_discriminator", "classifier"}


def test_summary_table_names_layers_shapes_and_totals(capsys):
    assert main(["summary", "--preset", "paper", "--size", "64", "--attrs", "Smiling,Eyeglasses"]) == 0
    out = capsys.readouterr().out
    assert "ConvTranspose2d 260->128" in out  # 256 features + 4 attribute channels
    assert "256x2x2" in out  # the paper's latent
    assert "total encoder" in out and "total latent_discriminator" in out


def test_bad_setting_is_one_clear_line_not_a_traceback(capsys):
    assert main(["summary", "--size", "100"]) == 2
    err = capsys.readouterr().err
    assert "power of two from 32 to 256" in err and "Traceback" not in err


def test_python_dash_m_faderlib_works():
    out = subprocess.run([sys.executable, "-m", "faderlib", "summary", "--size", "32", "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["autoencoder"] > 0


def test_each_train_flag_converts_to_its_field_type():
    import typing

    from faderlib.classifier import ClassifierConfig
    from faderlib.cli import CLASSIFIER_FLAGS, TRAIN_FLAGS
    from faderlib.train import TrainConfig

    for cls, flags in ((TrainConfig, TRAIN_FLAGS), (ClassifierConfig, CLASSIFIER_FLAGS)):
        hints = typing.get_type_hints(cls)
        for name, (flag, kind, _) in flags.items():
            types = typing.get_args(hints[name]) or (hints[name],)
            if kind in (int, float):  # argparse converts the number
                assert kind in types, (cls.__name__, flag)
            else:  # text: the field holds words or lists (parsed by the dataclass), not only numbers
                assert kind is str and not set(types) <= {int, float, type(None)}, (cls.__name__, flag)


def test_a_list_of_alphas_may_start_with_a_negative_number():
    from faderlib.cli import attach_negative_lists, build_parser

    argv = ["grid", "run", "--out", "g.png", "--alphas", "-1,0,2", "--alphas2", "-.5,1", "--index", "-1"]
    args = build_parser().parse_args(attach_negative_lists(argv))
    assert (args.alphas, args.alphas2, args.index) == ("-1,0,2", "-.5,1", -1)
    assert attach_negative_lists(["grid", "--alphas", "--n", "3"]) == ["grid", "--alphas", "--n", "3"]


_SPY = """
import os, sys
seen = []

class Spy:  # notes OMP_WAIT_POLICY when torch is imported: libgomp reads it then, once
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            seen.append(os.environ.get("OMP_WAIT_POLICY"))

sys.meta_path.insert(0, Spy())
import faderlib
assert "OMP_WAIT_POLICY" not in os.environ  # importing faderlib changes nothing
from faderlib.__main__ import main
main(["summary", "--size", "32", "--json"])
print(seen)
"""


def test_the_fader_command_waits_passively_from_before_torch_loads(monkeypatch, capsys):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", _SPY], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['PASSIVE']"
    from faderlib.__main__ import main as fader

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert fader(["summary", "--size", "32", "--json"]) == 0 and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # kept


def test_the_adversary_flags_reach_the_training_configuration(tmp_path, capsys):
    import pytest

    from faderlib.cli import build_parser, train_config

    args = build_parser().parse_args(["train", "--out", "x", "--adversary", "uniform", "--dis-steps", "2",
                                      "--probe-images", "0", "--dis-lr-scale", "4"])
    config = train_config(args)
    assert (config.adversary, config.dis_steps, config.probe_images, config.dis_lr_scale) == ("uniform", 2, 0, 4.0)
    default = train_config(build_parser().parse_args(["train", "--out", "x"]))
    assert (default.adversary, default.dis_steps, default.probe_images, default.dis_lr_scale) == ("flip", 1, 2000, 1.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--adversary ADVERSARY the encoder's target" in help_text and "(default flip)" in help_text
    assert "--dis-steps DIS_STEPS latent-discriminator steps per autoencoder step" in help_text
    for flags, message in ((["--adversary", "unifrom"], "unknown adversary 'unifrom'; choose one of flip, uniform, "
                                                         "reverse. Did you mean 'uniform'?"),
                           (["--dis-steps", "0"], "dis_steps must be a positive integer, got 0")):
        assert main(["train", "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was made

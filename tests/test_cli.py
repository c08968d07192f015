import json
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

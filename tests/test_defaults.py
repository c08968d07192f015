"""The synthetic faces are the default everywhere: nothing to download on a fresh machine."""

import faderlib.cache
import faderlib.celeba
import faderlib.synth
from faderlib.cache import prepared
from faderlib.cli import main


def test_the_default_data_folder_is_drawn_on_first_use(tmp_path, monkeypatch):
    default = tmp_path / "data" / "synthetic"
    monkeypatch.delenv("FADER_DATA", raising=False)
    monkeypatch.setattr(faderlib.celeba, "default_data_dir", lambda: default)
    monkeypatch.setattr(faderlib.cache, "default_data_dir", lambda: default)
    real_generate = faderlib.synth.generate
    calls = []

    def small_generate(out_dir, n=20000, **kw):
        calls.append(n)
        return real_generate(out_dir, n=60, **kw)  # the real default is 20,000 faces

    monkeypatch.setattr(faderlib.synth, "generate", small_generate)
    data = prepared(None, 32, progress=False)
    assert calls == [20000] and faderlib.synth.is_synthetic(default)
    assert len(data) == 60 and data.size == 32
    prepared(None, 32, progress=False)  # a second time: nothing drawn again
    assert calls == [20000]


def test_fader_synth_and_prepare_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "faces"
    assert main(["synth", str(out), "--n", "30", "--seed", "3"]) == 0
    assert main(["prepare", str(out), "--size", "32"]) == 0
    printed = capsys.readouterr().out
    assert "synthetic faces written" in printed and "cache ready" in printed
    assert (out / "fader_cache" / "32" / "images.npy").exists()


def test_missing_celeba_explains_how_to_get_it(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nothing-here"), "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "Kaggle" in err and "list_attr_celeba" in err and "fader synth" in err

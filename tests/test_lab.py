"""Safe in a shared lab, each case as a user meets it: two processes on one folder, checkpoints
that are not what they claim, a full disk, a read-only data folder, outputs that must not be
overwritten, and a metrics log that survives a kill."""

import contextlib
import errno
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import faderlib.checkpoint as ckpt
from faderlib.cli import main
from faderlib.errors import CheckpointError, DiskFullError, FolderInUseError, TrainingError
from faderlib.train import TrainConfig, Trainer
from train_fixture import tiny

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def fader(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faderlib", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def train_args(data, out, steps):
    return [str(a) for a in ("train", "--data", data, "--attrs", "Male", "--size", "32", "--steps", steps,
                             "--batch-size", "8", "--device", "cpu", "--quiet", "--out", out)]


# ------------------------------------------------------------------------------------- one writer per folder
def test_a_second_training_on_the_same_folder_is_refused_at_once(synthetic_dir, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "faderlib", *train_args(synthetic_dir, run, 400)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)  # training has started: the folder is claimed
    second = fader(*train_args(synthetic_dir, run, 400))
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert "is in use" in second.stderr and f"process {first.pid}" in second.stderr
    assert "fader" in second.stderr and "train" in second.stderr  # the other one's command
    with pytest.raises(FolderInUseError, match="is in use"):  # from Python too
        Trainer(TrainConfig.from_dict(json.loads((run / "config.json").read_text())["train"]), run, progress=False)
    assert first.wait(timeout=300) == 0
    steps = [json.loads(r)["step"] for r in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(r)["phase"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 400  # each step logged once, by one writer
    assert not (run / ".fader.lock").exists()  # a finished run leaves no lock behind


def test_a_lock_goes_with_its_process_even_killed(synthetic_dir, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "faderlib", *train_args(synthetic_dir, run, 10**6)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert (run / ".fader.lock").exists()  # the file may stay: it locks nothing once its process is gone
    r = fader(*train_args(synthetic_dir, run, 2))  # a new process takes the folder at once
    assert r.returncode == 0, r.stderr


def test_two_prepares_of_one_cache_build_it_once(tmp_path):
    """A second `fader prepare` waits for the one building the cache, then uses its cache."""
    from faderlib.cache import prepare
    from faderlib.files import FolderLock
    from faderlib.synth import generate

    data = generate(tmp_path / "faces", n=60, seed=0, progress=False)
    builder = FolderLock(data / "fader_cache", "building the 32 px cache (this test)").acquire()
    waiter = subprocess.Popen([sys.executable, "-m", "faderlib", "prepare", data, "--size", "32", "--workers", "1"],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = waiter.stdout.readline()  # it says whom it waits for, and waits
    assert "waiting for process" in first_line and str(os.getpid()) in first_line
    path = prepare(data, 32, workers=1, progress=False)  # the builder (this process) builds it meanwhile
    built = json.loads((path / "meta.json").read_text())["created"]
    time.sleep(1.1)  # a rebuild would stamp a later second
    builder.release()
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert "cache ready" in out
    assert json.loads((path / "meta.json").read_text())["created"] == built  # reused, not built again


# ------------------------------------------------------------------------------------- checkpoints
@pytest.fixture()
def trained(synthetic_dir, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny(synthetic_dir), run, progress=False).train()
    return run


def test_a_checkpoint_of_another_run_is_refused(synthetic_dir, trained, tmp_path):
    other = tmp_path / "other"
    Trainer(tiny(synthetic_dir, attributes=("Eyeglasses", "Male"), steps=10), other, progress=False).train()
    shutil.copy(other / "checkpoints" / "last.pt", trained / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError) as err:
        Trainer(tiny(synthetic_dir), trained, progress=False)
    msg = str(err.value)
    assert "last.pt belongs to another run" in msg and "differs in: " in msg and "attributes" in msg
    assert "best.pt is intact (step 20)" in msg and "--resume-from best.pt" in msg
    resumed = Trainer(tiny(synthetic_dir), trained, progress=False, resume_from="best.pt")
    assert resumed.step == 20  # the one command the message gives works
    resumed.close()


def test_damaged_empty_and_foreign_files_are_refused_with_a_reason(trained, tmp_path, capsys):
    last = trained / "checkpoints" / "last.pt"
    good = last.read_bytes()
    damaged = bytearray(good)
    middle = len(good) // 2
    damaged[middle:middle + 4096] = os.urandom(4096)  # bytes overwritten inside the file
    last.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="does not match its checksum|cannot be read"):
        ckpt.load(last)
    last.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        ckpt.load(last)
    last.write_bytes(good[: len(good) // 3])
    with pytest.raises(CheckpointError, match="cannot be read as a PyTorch checkpoint"):
        ckpt.load(last)
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert main(["evaluate", str(trained), "--checkpoint", str(text)]) == 2
    err = capsys.readouterr().err
    assert str(text) in err and "Traceback" not in err


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_malicious_pickle_is_not_run_and_says_so(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = trained / "checkpoints" / "last.pt"
    torch.save({"format_version": 1, "payload": _Payload()}, evil)
    with pytest.raises(CheckpointError) as err:
        ckpt.load(evil)
    assert "not a plain checkpoint" in str(err.value) and "weights_only=False" not in str(err.value)
    assert not (tmp_path / "PWNED").exists()  # nothing in it ran
    r = fader("evaluate", trained)
    assert r.returncode == 2 and "not a plain checkpoint" in r.stderr and "Traceback" not in r.stderr


def test_checkpoints_are_group_readable_where_the_umask_allows(synthetic_dir, tmp_path):
    old = os.umask(0o022)
    try:
        Trainer(tiny(synthetic_dir, steps=2), tmp_path / "run", progress=False).train()
    finally:
        os.umask(old)
    for name in ("checkpoints/last.pt", "checkpoints/best.pt", "config.json"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


# ------------------------------------------------------------------------------------- full disks
@contextlib.contextmanager
def small_disk(path: Path, mib: int):
    """A tmpfs of ``mib`` MiB at ``path`` where this process may mount one; else None."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0 if shutil.which("mount") and os.geteuid() == 0 else False
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


def test_a_full_disk_is_said_in_plain_words(synthetic_dir, tmp_path, monkeypatch):
    with small_disk(tmp_path / "quota", 20) as disk:
        if disk is not None:  # a real 20 MiB disk: the 32 px official checkpoints are about 38 MB
            r = fader(*train_args(synthetic_dir, disk / "run", 4), "--preset", "official")
            assert r.returncode == 2 and "Traceback" not in r.stderr
            assert "not enough free disk space for the checkpoint" in r.stderr and "free there" in r.stderr
            assert not list((disk / "run" / "checkpoints").glob("*.tmp"))
    # the same, simulated: the disk fills up during the write itself
    trainer = Trainer(tiny(synthetic_dir, steps=2), tmp_path / "run", progress=False)
    trainer.train()
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()

    def full(obj, f):
        f.write(b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match="filled up while last.pt was written.*previous last.pt is kept"):
        trainer.save_checkpoint()
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(DiskFullError, match=r"needs about .* only 1000 B are free|needs about .* only 1\.0 kB"):
        trainer.save_checkpoint()
    trainer.close()


def test_what_a_killed_save_left_is_removed_at_the_next_start(trained, synthetic_dir):
    leftover = trained / "checkpoints" / ".last.pt.x1y2z3.tmp"
    leftover.write_bytes(b"\0" * 1024)
    Trainer(tiny(synthetic_dir), trained, progress=False).close()
    assert not leftover.exists()


# ------------------------------------------------------------------------------------- read-only data
def test_a_read_only_data_folder_trains_with_cache_dir(synthetic_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("FADER_CACHE", raising=False)  # --cache-dir sets it for the process: restored after the test
    data = tmp_path / "share"
    shutil.copytree(synthetic_dir, data, ignore=shutil.ignore_patterns("fader_cache"))
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # as a read-only share answers, even to root
        if str(self).startswith(str(data)):
            raise OSError(30, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(train_args(data, tmp_path / "run", 2)) == 2
    assert main(train_args(data, tmp_path / "run", 2) + ["--cache-dir", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "cache" / "32" / "meta.json").is_file() and not (data / "fader_cache").exists()
    assert main(["evaluate", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]) == 0


def test_the_read_only_error_names_the_flag(synthetic_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FADER_CACHE", raising=False)
    data = tmp_path / "share"
    shutil.copytree(synthetic_dir, data, ignore=shutil.ignore_patterns("fader_cache"))
    real_mkdir = Path.mkdir
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: (_ for _ in ()).throw(OSError(30, "Read-only file system"))
                        if str(self).startswith(str(data)) else real_mkdir(self, *a, **k))
    assert main(train_args(data, tmp_path / "run", 2)) == 2
    err = capsys.readouterr().err
    assert "--cache-dir" in err and "FADER_CACHE" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------- user files
def test_fader_edit_never_overwrites_and_writes_what_the_extension_says(tiny_run_dir, synthetic_dir, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "me.jpg"
    shutil.copy(synthetic_dir / "img_align_celeba" / "000001.jpg", photo)
    before = photo.read_bytes()
    base = ["edit", str(tiny_run_dir), str(photo), "--set", "Smiling=1"]
    assert main(base + ["--out", str(photo)]) == 2 and photo.read_bytes() == before
    assert main(base + ["--out", str(photo), "--force"]) == 2 and photo.read_bytes() == before  # never the input
    assert "the input image itself" in capsys.readouterr().err
    out = tmp_path / "edit.jpg"
    assert main(base + ["--out", str(out)]) == 0
    assert Image.open(out).format == "JPEG"
    stamp = out.stat().st_mtime_ns
    assert main(base + ["--out", str(out)]) == 2 and out.stat().st_mtime_ns == stamp  # exists: left alone
    assert "already exists" in capsys.readouterr().err
    assert main(base + ["--out", str(out), "--force"]) == 0
    assert main(base + ["--out", str(tmp_path / "edit.png")]) == 0 and Image.open(tmp_path / "edit.png").format == "PNG"
    assert main(base + ["--out", str(tmp_path / "edit.gif")]) == 2
    assert "write a .png" in capsys.readouterr().err
    assert main(["edit", str(tiny_run_dir), str(photo), "--set", "Smiling=1", "--set", "Smiling=2",
                 "--out", str(tmp_path / "twice.png")]) == 2
    assert "given twice" in capsys.readouterr().err


def test_fader_synth_keeps_a_set_of_other_settings(tmp_path, capsys):
    folder = tmp_path / "faces"
    assert main(["synth", str(folder), "--n", "12"]) == 0
    assert main(["synth", str(folder), "--n", "6"]) == 2
    assert "--force" in capsys.readouterr().err and len(list((folder / "img_align_celeba").iterdir())) == 12
    assert main(["synth", str(folder), "--n", "6", "--force"]) == 0
    assert len(list((folder / "img_align_celeba").iterdir())) == 6


def test_small_ones(trained, synthetic_dir, tmp_path, capsys):
    # --steps 0 says that nothing was trained
    assert main(train_args(synthetic_dir, tmp_path / "zero", 0)) == 0
    assert "nothing to train" in capsys.readouterr().out and not (tmp_path / "zero" / "checkpoints" / "last.pt").exists()
    # train-classifier pointed at a Fader run says so
    assert main(["train-classifier", "--data", str(synthetic_dir), "--size", "32", "--steps", "2", "--device", "cpu",
                 "--quiet", "--out", str(trained)]) == 2
    assert "run folder of a Fader network" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- the log after a resume
def test_the_metrics_log_of_a_resumed_run_equals_the_uninterrupted_one(synthetic_dir, tmp_path):
    """Checkpoints every 7 steps, rows every 5: killed after the row of step 10, the run resumes
    from step 7, in the middle of the window of steps 6..10."""
    config = dict(steps=30, checkpoint_every=7, log_every=5, eval_every=15)
    Trainer(tiny(synthetic_dir, **config), tmp_path / "straight", progress=False).train()

    def kill_at_10(trainer, row):
        if row["phase"] == "train" and row["step"] == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny(synthetic_dir, **config), tmp_path / "killed", progress=False, callbacks=[kill_at_10]).train()
    Trainer(tiny(synthetic_dir, **config), tmp_path / "killed", progress=False).train()

    def rows(run):
        return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert rows(tmp_path / "killed") == rows(tmp_path / "straight")  # row for row, every value
    assert pickle.dumps(rows(tmp_path / "killed"))  # plain data


def _full_disk_open(real_open, folder):
    """An ``open`` whose files in ``folder`` take no byte: their writes fail as on a full disk."""
    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def opener(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        name = file if isinstance(file, (str, os.PathLike)) else os.readlink(f"/proc/self/fd/{file}")
        if any(m in mode for m in "wax+") and str(name).startswith(str(folder)):
            return Full(f)
        return f
    return opener


@pytest.mark.parametrize("command", ["edit", "grid"])
def test_a_full_disk_leaves_no_picture_and_says_so(tiny_run_dir, synthetic_dir, tmp_path, monkeypatch, capsys,
                                                  command):
    import builtins
    import io

    photo = synthetic_dir / "img_align_celeba" / "000001.jpg"
    folder = tmp_path / "full"
    folder.mkdir()
    out = folder / "out.png"
    argv = (["edit", str(tiny_run_dir), str(photo), "--set", "Smiling=1"] if command == "edit"
            else ["grid", str(tiny_run_dir), "--n", "2"]) + ["--out", str(out)]
    opener = _full_disk_open(builtins.open, folder)
    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)
    assert main(argv) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert f"not enough free disk space to write {out}" in err and "free in" in err and "Traceback" not in err
    assert list(folder.iterdir()) == []  # no empty picture, no temporary file
    assert main(argv) == 0 and Image.open(out).format == "PNG"  # the rerun, with room, needs no --force


def test_a_full_tmpfs_leaves_no_picture(tiny_run_dir, tmp_path, capsys):
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (folder / "filler").write_bytes(b"\0" * (60 * 1024))
        out = folder / "grid.png"
        assert main(["grid", str(tiny_run_dir), "--n", "6", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "not enough free disk space to write" in err and "Traceback" not in err
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_dangling_link_as_out_is_named_and_only_the_link_replaced(tiny_run_dir, tmp_path, capsys):
    target_folder = tmp_path / "gone"
    link = tmp_path / "grid.png"
    link.symlink_to(target_folder / "grid.png")
    base = ["grid", str(tiny_run_dir), "--n", "2", "--out", str(link)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert f"{link} is a link to a missing file" in err and "--force" in err and "Traceback" not in err
    assert link.is_symlink() and not target_folder.exists()
    assert main(base + ["--force"]) == 0
    assert not link.is_symlink() and Image.open(link).format == "PNG" and not target_folder.exists()
    beside = tmp_path / "beside.png"
    link2 = tmp_path / "edit.png"
    link2.symlink_to(beside.name)  # a missing file in an existing folder: never created through the link
    assert main(base[:-1] + [str(link2)]) == 2 and not beside.exists() and link2.is_symlink()
    assert main(base[:-1] + [str(link2), "--force"]) == 0 and not beside.exists() and not link2.is_symlink()


# ------------------------------------------------------------------------------------- what a rerun must not lose
@pytest.fixture()
def cli_trained(synthetic_dir, tmp_path, capsys):
    """A run of `fader train` (train_args) of 20 steps."""
    run = tmp_path / "cli_run"
    assert main(train_args(synthetic_dir, run, 20)) == 0
    capsys.readouterr()
    return run


@pytest.mark.parametrize("how", ["deleted", "dangling link"])
def test_a_missing_last_checkpoint_does_not_start_over_on_best(cli_trained, synthetic_dir, capsys, how):
    """last.pt gone, best.pt there: a rerun must not start from step 0 over best.pt and the log."""
    trained = cli_trained
    last, best = trained / "checkpoints" / "last.pt", trained / "checkpoints" / "best.pt"
    last.unlink()
    if how == "dangling link":
        last.symlink_to("gone.pt")
    before = {name: (trained / name).read_bytes() for name in ("config.json", "metrics.jsonl")}
    best_bytes = best.read_bytes()
    best_step = torch.load(best, weights_only=True)["step"]
    args = train_args(synthetic_dir, trained, 20)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "last.pt" in err and ("is missing" if how == "deleted" else "does not exist") in err
    assert f"best.pt is there (step {best_step})" in err and "--resume-from best.pt" in err and "--out" in err
    assert "Nothing was changed" in err and "Traceback" not in err
    with pytest.raises(TrainingError, match=r"resume_from='best.pt'"):  # from Python too
        Trainer(TrainConfig.from_dict(json.loads(before["config.json"])["train"]), trained, progress=False)
    assert {name: (trained / name).read_bytes() for name in before} == before and best.read_bytes() == best_bytes
    # the advice works: resume from best.pt
    assert main(train_args(synthetic_dir, trained, 30) + ["--resume-from", "best.pt"]) == 0
    assert f"resuming {trained} from step {best_step}" in capsys.readouterr().out
    assert torch.load(last, weights_only=True)["step"] == 30 and not last.is_symlink()


def test_a_smaller_steps_trains_nothing_and_keeps_config_json(cli_trained, synthetic_dir, capsys):
    trained = cli_trained
    config = (trained / "config.json").read_bytes()
    assert json.loads(config)["train"]["steps"] == 20
    assert main(train_args(synthetic_dir, trained, 10)) == 0
    out = capsys.readouterr().out
    assert "nothing to train: the run is already at step 20 (>= --steps 10)" in out
    assert (trained / "config.json").read_bytes() == config  # it still says what the run is


def test_trainer_train_says_when_nothing_remains(trained, synthetic_dir, capsys):
    trainer = Trainer(tiny(synthetic_dir), trained, progress=True)
    try:
        assert trainer.train() == []
    finally:
        trainer.close()
    assert "nothing to train: the run is already at step 20" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- a folder that cannot be written
def test_an_unwritable_checkpoint_folder_is_said_before_training(cli_trained, synthetic_dir, monkeypatch, capsys):
    """Simulated (tests run as root, where chmod stops nothing): the probe finds checkpoints/ unwritable."""
    trained = cli_trained
    import faderlib.runfolder as runfolder

    real = runfolder._probe_writable
    monkeypatch.setattr(runfolder, "_probe_writable",
                        lambda folder: "Permission denied" if folder.name == "checkpoints" else real(folder))
    config = (trained / "config.json").read_bytes()
    assert main(train_args(synthetic_dir, trained, 40)) == 2
    err = capsys.readouterr().err
    assert f"{trained / 'checkpoints'} is not writable (Permission denied)" in err and "--out" in err
    assert "Traceback" not in err and (trained / "config.json").read_bytes() == config
    assert torch.load(trained / "checkpoints" / "last.pt", weights_only=True)["step"] == 20  # no training spent


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the simulated test covers the message")
def test_a_read_only_checkpoint_folder_is_said_before_training(cli_trained, synthetic_dir, capsys):
    trained = cli_trained
    checkpoints = trained / "checkpoints"
    checkpoints.chmod(0o555)
    try:
        assert main(train_args(synthetic_dir, trained, 40)) == 2
    finally:
        checkpoints.chmod(0o755)
    assert f"{checkpoints} is not writable" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- SIGTERM from a job scheduler
def test_sigterm_saves_a_checkpoint_says_so_and_the_rerun_resumes_exactly(synthetic_dir, tmp_path):
    args = ["--checkpoint-every", "1000", "--eval-every", "30", "--lambda-e", "0.05", "--lambda-ramp", "10"]
    straight = fader(*train_args(synthetic_dir, tmp_path / "straight", 60), *args)
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "faderlib", *train_args(synthetic_dir, run, 60), *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)  # a few steps trained (the first row is at step 6); no checkpoint yet (every 1000)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    last = run / "checkpoints" / "last.pt"
    stopped_at = torch.load(last, weights_only=True)["step"]
    assert 0 < stopped_at < 60
    assert f"stopped by SIGTERM at step {stopped_at}; checkpoint saved to {last}; rerun the same command" in err
    assert "Traceback" not in err
    again = fader(*train_args(synthetic_dir, run, 60), *args)
    assert again.returncode == 0, again.stderr
    assert f"resuming {run} from step {stopped_at}" in again.stdout
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert b["step"] == 60
    for key in ("autoencoder", "latent_discriminator", "opt_autoencoder"):
        flat_a, flat_b = _tensors(a[key]), _tensors(b[key])
        assert flat_a.keys() == flat_b.keys() and [k for k in flat_a if not torch.equal(flat_a[k], flat_b[k])] == []


def test_sigterm_is_caught_while_training_only(synthetic_dir, tmp_path):
    before, during = signal.getsignal(signal.SIGTERM), []
    trainer = Trainer(tiny(synthetic_dir, steps=2, log_every=1), tmp_path / "run", progress=False,
                      callbacks=[lambda trainer, row: during.append(signal.getsignal(signal.SIGTERM))])
    trainer.train()
    trainer.close()
    assert during and all(h is not before for h in during)  # caught while training ...
    assert signal.getsignal(signal.SIGTERM) is before        # ... and the previous handler is back


def _tensors(tree, prefix="") -> dict:
    if torch.is_tensor(tree):
        return {prefix: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else []
    return {k: v for key, sub in items for k, v in _tensors(sub, f"{prefix}/{key}").items()}

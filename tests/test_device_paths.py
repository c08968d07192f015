"""The code paths that cross devices, tested without a GPU: on an accelerator emulated on the
CPU (tests/device_emulation.py), whose tensors hold real values and refuse to mix with CPU
tensors as CUDA's do, and with torch.cuda's random-state functions replaced by fakes.
"""

import importlib

import numpy as np
import pytest
import torch

import faderlib.losses as losses
from device_emulation import EmulatedDevice, FakeCudaRng, MixedDevices, device_generator, on_device
from faderlib import checkpoint as ckpt
from faderlib.config import ModelConfig
from faderlib.data import FaderDataset
from faderlib.errors import CheckpointError
from faderlib.fastdecoder import FastDecoder
from faderlib.models import AutoEncoder, Decoder, code_for
from faderlib.runs import load_run
from faderlib.train import Trainer
from train_fixture import tiny

# ----------------------------------------------------------------------------- the emulator itself


def test_the_emulated_device_refuses_what_a_gpu_refuses():
    with EmulatedDevice() as dev:
        x = torch.ones(2, 3).to(dev.device)
        assert on_device(x) and x.device == dev.device and dev.uploads == 1
        assert torch.equal((x * 2).cpu(), torch.full((2, 3), 2.0))
        assert on_device(torch.zeros(3, device=dev.device)) and on_device(x.new_zeros(3))
        x.add_(torch.tensor(1.0))  # a 0-dim CPU tensor is a scalar: allowed, as on CUDA
        with pytest.raises(MixedDevices):
            x.add_(torch.ones(3))
        with pytest.raises(MixedDevices):
            torch.cat([x, torch.ones(1, 3)])
        with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
            torch.set_rng_state(torch.get_rng_state().to(dev.device))


# ----------------------------------------------------------------------------- 1, 2, 5: checkpoints
def test_a_run_resumes_on_another_device_with_its_random_states(synthetic_dir, tmp_path):
    """A run trained on the CPU resumes on the (emulated) accelerator: the Trainer loaded its
    checkpoint with map_location=device, which put the random states there too, and
    torch.set_rng_state refused them ("RNG state must be a torch.ByteTensor")."""
    cfg = dict(steps=3, checkpoint_every=2, eval_every=3, eval_images=8)
    first = Trainer(tiny(synthetic_dir, **cfg), tmp_path / "run", progress=False)
    first.train(2)
    first.close()
    saved = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    with EmulatedDevice() as dev:
        trainer = Trainer(tiny(synthetic_dir, device=str(dev.device), **cfg), tmp_path / "run", progress=False)
        assert trainer.step == 2 and trainer.device == dev.device
        assert torch.equal(torch.get_rng_state(), saved["rng"][0]["torch"])
        assert torch.equal(trainer.generator.get_state(), saved["rng"][0]["generator"])
        weight = next(trainer.ae.parameters())
        assert on_device(weight) and torch.equal(weight.cpu(), saved["autoencoder"][next(iter(saved["autoencoder"]))])
        trainer.train()  # a step, a validation and a checkpoint, on the device
        trainer.close()
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 3


def test_only_the_training_devices_cuda_random_state_is_saved_and_restored(monkeypatch):
    """torch.cuda.get_rng_state_all() read (and woke) every visible GPU, and a checkpoint of two
    GPUs' states raised IndexError where one is visible."""
    cuda = FakeCudaRng(monkeypatch, visible=2)
    state = ckpt.rng_state(device="cuda:1")
    assert cuda.read == [1] and torch.equal(state["cuda"], cuda.state_of(1))
    assert "device" not in state

    cuda = FakeCudaRng(monkeypatch, visible=1)
    earlier = {"torch": torch.get_rng_state(), "cuda": [cuda.state_of(0), cuda.state_of(1)]}  # two GPUs' states
    ckpt.set_rng_state(earlier, device="cuda:0")
    assert cuda.written == [0]
    ckpt.set_rng_state({"torch": torch.get_rng_state(), "cuda": cuda.state_of(0)}, device="cuda")
    assert cuda.written == [0, 0]


def test_a_run_on_the_cpu_leaves_the_gpus_asleep(monkeypatch):
    cuda = FakeCudaRng(monkeypatch, visible=2, initialized=False)
    state = ckpt.rng_state()  # the Trainer on a CPU, on a machine with GPUs
    assert "cuda" not in state and cuda.read == []
    assert "cuda" not in ckpt.rng_state(device="cpu") and cuda.read == []
    ckpt.set_rng_state({**state, "cuda": cuda.state_of(0)}, device="cpu")
    assert cuda.written == []


def test_checkpoints_are_read_to_the_cpu_and_a_missing_gpu_is_named(tiny_run_dir):
    path = tiny_run_dir / "checkpoints" / "last.pt"
    with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False"):
        ckpt.load(path, map_location="cuda")  # was: "truncated, damaged, or not a checkpoint"
    with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False"):
        load_run(tiny_run_dir, device="cuda")
    assert ckpt.load(path, map_location="auto")["step"] == 3
    with EmulatedDevice() as dev:
        state = ckpt.load(path, map_location=dev.device)
        assert not any(on_device(t) for t in _tensors(state))


def test_a_damaged_checkpoint_is_still_called_damaged(tmp_path, tiny_run_dir):
    path = tmp_path / "last.pt"
    path.write_bytes((tiny_run_dir / "checkpoints" / "last.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated, damaged"):
        ckpt.load(path, map_location="cpu")


def test_load_run_resolves_auto(tiny_run_dir):
    run = load_run(tiny_run_dir, device="auto")
    assert next(run.autoencoder.parameters()).device.type == "cpu"  # tests hide CUDA (conftest)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


# ----------------------------------------------------------------------------- 3: the fast decoder
def test_the_fast_decoder_runs_on_another_device():
    """The last layer has no bias: the fast decoder made it torch.zeros(n_out), on the CPU."""
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Eyeglasses"])
    torch.manual_seed(0)
    ae = AutoEncoder(config).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    code = code_for(config, torch.tensor([[0, 1], [1, 0]]), {"Smiling": 1.5})
    with torch.no_grad():
        expected = ae.decoder(ae.encode(x), code)
    with EmulatedDevice() as dev:
        ae.to(dev.device)
        fast = FastDecoder(ae.decoder)
        with torch.no_grad():
            latent = fast.prepare(ae.encode(x.to(dev.device)))
        out = fast.decode(latent, code.to(dev.device))
        assert on_device(out)
        torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)
        assert on_device(fast.decode(latent, code))  # a code left on the CPU is moved, not mixed


# ----------------------------------------------------------------------------- 4: the classifier
def test_edit_reads_the_photo_with_the_classifier_on_the_models_device(course_dir, tmp_path):
    """edit_image moved the photo to the model's device and loaded the run's classifier on the CPU."""
    from faderlib.classifier import load_classifier, read_attributes
    from faderlib.edit import edit_image
    from faderlib.runs import sample_photo

    with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False"):
        load_classifier(course_dir.classifier, "cuda")  # was: "truncated, damaged, or not a checkpoint"
    photo = sample_photo(load_run(course_dir.fader), tmp_path / "face.jpg")
    expected = edit_image(course_dir.fader, photo, {"Smiling": 1.0})
    with EmulatedDevice() as dev:
        run = load_run(course_dir.fader, device=dev.device)
        picture = edit_image(run, photo, {"Smiling": 1.0}, classifier=course_dir.classifier)
        assert np.abs(np.asarray(picture, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
        # a classifier on the device reading a photo on the CPU (the slider app's order)
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        clf = load_classifier(course_dir.classifier, dev.device)
        y = read_attributes(clf, x, run.model_config)
        assert not on_device(y) and torch.equal(y, read_attributes(course_dir.classifier, x, run.model_config))


def test_swap_failures_on_another_device(course_dir):
    module = importlib.import_module("faderlib.evaluate")  # or faderlib.reports, once evaluate.py is split
    swap_failures = getattr(module, "swap_failures", None) or importlib.import_module("faderlib.reports").swap_failures
    with EmulatedDevice() as dev:
        run = load_run(course_dir.fader, device=dev.device)
        f = swap_failures(run, course_dir.classifier, "Smiling", target=1, n=2, max_images=16)
        assert f.tried > 0


# ----------------------------------------------------------------------------- 6: the decoder's code
class _Cats(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the dtypes and layouts of every torch.cat."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.cat.default:
            self.seen.append(([t.dtype for t in args[0]], out.is_contiguous(memory_format=torch.channels_last)))
        return out


def _old_decoder_forward(decoder, z, code):  # what Decoder.forward computed before
    h, c = z, code[:, :, None, None]
    for layer in decoder.layers:
        h = layer(torch.cat([h, c.expand(-1, -1, h.shape[2], h.shape[3])], dim=1))
    return h


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_decoder_concatenates_the_code_in_the_activations_dtype_and_layout(channels_last):
    """In bf16 the code was float32: every decoder layer concatenated in float32 (and cast back);
    with channels-last the broadcast code made every concatenation NCHW."""
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Male"])
    torch.manual_seed(0)
    decoder = Decoder(config).eval()
    z = torch.randn(2, *config.latent_shape)
    code = code_for(config, torch.tensor([[0, 1], [1, 1]]), {"Smiling": 0.3})
    if channels_last:
        decoder.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.equal(decoder(z, code), _old_decoder_forward(decoder, z, code))  # float32: the same bits
        cats = _Cats()
        with torch.autocast("cpu", dtype=torch.bfloat16), cats:
            out = decoder(z.bfloat16(), code)
    assert out.dtype == torch.bfloat16 and len(cats.seen) == config.n_layers
    assert all(dtypes == [torch.bfloat16, torch.bfloat16] for dtypes, _ in cats.seen), cats.seen
    if channels_last:
        assert all(cl for _, cl in cats.seen)


# ----------------------------------------------------------------------------- 7: pixels on a device
def _pixels():
    return torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)


def test_the_emulator_divides_as_cuda_does():
    """CUDA divides a float tensor by a scalar as a multiplication by the scalar's reciprocal: for
    111 of the 256 pixel values that is one ulp off x / 127.5, which the test below must catch."""
    with EmulatedDevice() as dev:
        reciprocal = (_pixels().to(dev.device).float() / 127.5 - 1).cpu()
    numpy_path = torch.from_numpy(_pixels().numpy().astype(np.float32) / np.float32(127.5) - np.float32(1))
    assert int((reciprocal != numpy_path).sum()) == 111


def test_pixels_scaled_on_a_device_are_the_numpy_paths_bits():
    from faderlib.images import to_float

    expected = to_float(_pixels().numpy())
    assert torch.equal(to_float(_pixels()), expected)  # on the CPU
    with EmulatedDevice() as dev:
        assert torch.equal(to_float(_pixels().to(dev.device)).cpu(), expected)


def test_the_feed_on_a_device_gives_the_host_feeds_bits(synthetic_dir):
    from faderlib.cache import prepared
    from faderlib.feed import BatchFeed, resident_split

    data = FaderDataset(prepared(synthetic_dir, 32, progress=False), "train", ["Male", "Smiling"], flip=True)
    host = BatchFeed(data, 16, torch.Generator().manual_seed(5), torch.device("cpu"))
    expected = [host.next() for _ in range(3)]
    with EmulatedDevice() as dev:
        feed = BatchFeed(data, 16, torch.Generator().manual_seed(5), dev.device,
                         resident=resident_split(data, dev.device))
        for want in expected:
            got = feed.next()
            assert on_device(got.x)
            assert torch.equal(got.y.cpu(), want.y) and torch.equal(got.x.cpu(), want.x)


# ----------------------------------------------------------------------------- 8: the flipped targets
def test_k_valued_targets_are_drawn_on_the_device_without_a_copy(monkeypatch):
    """The shifts of K-valued attributes were drawn on the CPU and copied to the device in every
    autoencoder step (a wait for the GPU); on the CPU the numbers must stay those of before."""
    config = ModelConfig.from_preset("official", 32, ["Male", "Hair.4"])
    y = torch.tensor([[0, 0], [1, 3], [0, 2], [1, 1]] * 4)
    g = torch.Generator().manual_seed(7)
    expected = y.clone()
    expected[:, 0] = 1 - y[:, 0]
    expected[:, 1] = (y[:, 1] + torch.randint(1, 4, (len(y),), generator=torch.Generator().manual_seed(7))) % 4
    assert torch.equal(losses.flip_attributes(y, config, g), expected)  # the CPU's numbers, as before

    logits = torch.randn(len(y), config.n_attr_channels)
    monkeypatch.setattr(losses, "_device_generator", device_generator, raising=False)  # none on the emulated device
    with EmulatedDevice() as dev:
        y_dev, logits_dev = y.to(dev.device), logits.to(dev.device)
        before = dev.uploads
        flipped = losses.flip_attributes(y_dev, config, torch.Generator().manual_seed(7))
        loss = losses.adversarial_loss(logits_dev, y_dev, config, torch.Generator().manual_seed(7))
        assert dev.uploads == before  # nothing copied to the device
        assert on_device(flipped) and on_device(loss)
        flipped = flipped.cpu()
        again = losses.flip_attributes(y_dev, config, torch.Generator().manual_seed(7)).cpu()
    assert torch.equal(flipped, again)  # the CPU generator decides the draws
    assert torch.equal(flipped[:, 0], 1 - y[:, 0])
    assert ((flipped[:, 1] != y[:, 1]) & (flipped[:, 1] >= 0) & (flipped[:, 1] < 4)).all()


# ----------------------------------------------------------------------------- a process group of one
def test_a_forced_process_group_of_one_runs_the_distributed_path():
    import torch.distributed as dist
    from faderlib.devices import init_distributed

    assert not dist.is_initialized()
    d, device = init_distributed("cpu", force=True)
    try:
        assert d.group and d.world == 1 and d.main and device == "cpu"
        assert dist.is_initialized() and dist.get_backend() == "gloo" and dist.get_world_size() == 1
        assert isinstance(d.wrap(torch.nn.Linear(2, 2), torch.device("cpu")),
                          torch.nn.parallel.DistributedDataParallel)
        assert d.broadcast({"a": 1}) == {"a": 1} and d.gather(3) == [3] and d.any(True, torch.device("cpu"))
    finally:
        d.close()
    assert not dist.is_initialized()
    assert init_distributed("cpu")[0].group is False  # alone and not forced: no group

"""An accelerator emulated on the CPU, so that the code paths that cross devices are tested on
every machine, with real numbers.

Inside ``with EmulatedDevice() as dev:`` a tensor moved to ``dev.device`` (PyTorch's ``meta``
device type, chosen because PyTorch accepts it everywhere and no faderlib code branches on it)
reports that device but keeps its values: it is a wrapper around a CPU tensor, and every
operation on it runs PyTorch's CPU kernel on the wrapped tensors. What a GPU refuses, it refuses:

* mixing a tensor of the device with a CPU tensor of one or more dimensions in one operation
  (a 0-dim CPU tensor is a scalar, allowed as CUDA allows it; ``copy_`` copies across devices);
* ``.numpy()`` of a tensor of the device; ``torch.set_rng_state`` or a CPU generator's
  ``set_state`` with a state on the device ("RNG state must be a torch.ByteTensor").

And it does what CUDA does where that differs from the CPU, as far as faderlib meets it:

* a floating tensor divided by a scalar is multiplied by the scalar's float32 reciprocal
  (CUDA's ``div_true_kernel``), which rounds differently for some values;
* ``torch.load(..., map_location=dev.device)`` loads to the CPU and moves every tensor to the
  device, as ``map_location="cuda"`` does; ``torch.save`` writes the values of the device's
  tensors (a file that loads, to the CPU, as one saved on a GPU does).

``dev.uploads`` counts the copies from the CPU to the device (each one is a wait for the GPU
when it comes from ordinary memory): a step that should not copy can assert it did not.

The factory functions (``torch.zeros(..., device=dev.device)``, ``torch.randint``) make tensors
of the device; ``torch.tensor(data, device=...)`` and a list used as an index are built on the
CPU and moved (uploads). Limits: a ``torch.Generator`` cannot live on the device
(:func:`device_generator` stands in); ``torch.inference_mode()`` runs as ``torch.no_grad()``
inside (a wrapper cannot be an inference tensor); ``load_state_dict``'s warning about copying
into a meta parameter is silenced (here the copy is real). Speed, memory, CUDA kernels, cuDNN,
NCCL and bf16 on a GPU are not emulated: only where tensors are, and the bits of a division.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

aten = torch.ops.aten

DEVICE = torch.device("meta")


class Elsewhere(torch.Tensor):
    """A tensor of the emulated device: a CPU tensor (``elem``) that says it lives on DEVICE."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        assert type(elem) is torch.Tensor and elem.device.type == "cpu", type(elem)
        r = torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                layout=elem.layout, device=DEVICE, requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return f"Elsewhere({self.elem!r})"

    def tolist(self):  # a CUDA tensor's tolist() copies to the host; PyTorch refuses it for a subclass
        return self.elem.tolist()

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        if _ACTIVE is None:
            raise RuntimeError("a tensor of the emulated device was used outside `with EmulatedDevice()`")
        return _ACTIVE.handle(func, args, kwargs or {})


_ACTIVE: "EmulatedDevice | None" = None

#: Operations that copy between devices by design.
_COPIES = {aten._to_copy.default, aten.copy_.default, *(getattr(aten.to, o) for o in aten.to.overloads())}


def _is_device(d) -> bool:
    return d is not None and torch.device(d).type == DEVICE.type


class MixedDevices(RuntimeError):
    pass


class EmulatedDevice(TorchDispatchMode):
    """The emulated accelerator (see the module docstring). ``device``: the device to move to."""

    device = DEVICE

    def __init__(self):
        super().__init__()
        self.uploads = 0
        self.ops: list = []   # every operation run on the device (func), for tests that look at them

    # ------------------------------------------------------------------ entering
    def __enter__(self):
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("EmulatedDevice is not reentrant")
        _ACTIVE = self
        self._patches = contextlib.ExitStack()
        self._patch_load()
        self._patch_inference_mode()
        # load_state_dict warns that copying into a meta parameter does nothing: here it does copy
        self._patches.enter_context(_TensorLiterals())
        self._patches.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter")
        return super().__enter__()

    def __exit__(self, *exc):
        global _ACTIVE
        try:
            return super().__exit__(*exc)
        finally:
            _ACTIVE = None
            self._patches.close()

    def _patch_load(self):
        real_load = torch.load

        def load(f, map_location=None, **kw):
            if isinstance(map_location, (str, torch.device)) and _is_device(map_location):
                state = real_load(f, map_location="cpu", **kw)
                return tree_map(lambda t: t.to(DEVICE) if isinstance(t, torch.Tensor) else t, state)
            return real_load(f, map_location=map_location, **kw)

        torch.load = load
        self._patches.callback(setattr, torch, "load", real_load)
        real_save = torch.save

        def save(obj, f, *a, **kw):  # a GPU's tensors are written as such; loaded to the CPU, they are these
            return real_save(tree_map(lambda t: t.elem if isinstance(t, Elsewhere) else t, obj), f, *a, **kw)

        torch.save = save
        self._patches.callback(setattr, torch, "save", real_save)

    def _patch_inference_mode(self):
        # A wrapper tensor cannot be an inference tensor (PyTorch: "Cannot set version_counter for
        # inference tensor"): inside the emulator, torch.inference_mode() is torch.no_grad().
        cls = torch.autograd.grad_mode.inference_mode
        enter, exit_ = cls.__enter__, cls.__exit__

        def no_grad_enter(self):
            self._no_grad = torch.no_grad()
            self._no_grad.__enter__()

        def no_grad_exit(self, *exc):
            self._no_grad.__exit__(*exc)

        cls.__enter__, cls.__exit__ = no_grad_enter, no_grad_exit
        self._patches.callback(setattr, cls, "__enter__", enter)
        self._patches.callback(setattr, cls, "__exit__", exit_)

    # ------------------------------------------------------------------ the operations
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.handle(func, args, kwargs or {})

    def handle(self, func, args, kwargs):
        flat, spec = tree_flatten((args, kwargs))
        wrapped = [a for a in flat if isinstance(a, Elsewhere)]
        plain = [a for a in flat if type(a) is torch.Tensor]
        for t in plain:
            if t.device.type != "cpu":
                raise RuntimeError(f"{func}: a plain {t.device} tensor inside EmulatedDevice (only CPU tensors and "
                                   "tensors of the emulated device are expected; a real meta tensor has no values)")
        to_device = _is_device(kwargs.get("device"))

        if func in _COPIES:
            return self._copy(func, args, kwargs)
        if not wrapped and not to_device:
            return func(*args, **kwargs)
        mixed = [t for t in plain if t.dim() > 0]
        if mixed:
            raise MixedDevices(f"Expected all tensors to be on the same device, but found at least two devices, "
                               f"{DEVICE} (emulated accelerator) and cpu! ({func}, a CPU tensor of shape "
                               f"{tuple(mixed[0].shape)})")
        self.ops.append(func)
        if func in (aten.div.Tensor, aten.div_.Tensor) and self._scalar_divisor(args):
            return self._reciprocal_division(func, args)
        unwrapped = [a.elem if isinstance(a, Elsewhere) else a for a in flat]
        a2, k2 = tree_unflatten(unwrapped, spec)
        if to_device:
            k2 = {**k2, "device": torch.device("cpu")}
        out = func(*a2, **k2)
        return self._wrap(out, {id(w.elem): w for w in wrapped})

    @staticmethod
    def _wrap(out, by_elem: dict):
        def wrap(t):
            if type(t) is not torch.Tensor:
                return t
            same = by_elem.get(id(t))  # an in-place result is its input
            return same if same is not None else Elsewhere(t)
        return tree_map(wrap, out)

    def _copy(self, func, args, kwargs):
        if func is aten.copy_.default:
            dst, src = args[0], args[1]
            if isinstance(dst, Elsewhere) and not isinstance(src, Elsewhere):
                self.uploads += 1
            s = src.elem if isinstance(src, Elsewhere) else src
            (dst.elem if isinstance(dst, Elsewhere) else dst).copy_(s, *args[2:], **kwargs)
            return dst
        src, target = args[0], None  # _to_copy and the overloads of to: where does the copy go?
        for v in (*args[1:], *kwargs.values()):
            if isinstance(v, torch.device):
                target = v
            elif isinstance(v, torch.Tensor):  # to(other)
                target = v.device
        here = isinstance(src, Elsewhere)
        goes_there = _is_device(target) or (target is None and here)
        if not here and goes_there:
            self.uploads += 1

        def local(v):
            if isinstance(v, Elsewhere):
                return v.elem
            return torch.device("cpu") if isinstance(v, torch.device) and _is_device(v) else v
        out = func(*[local(a) for a in args], **{k: local(v) for k, v in kwargs.items()})
        if not goes_there:
            return out
        return src if here and out is src.elem else Elsewhere(out)

    @staticmethod
    def _scalar_divisor(args) -> bool:
        a, b = args[0], args[1]
        scalar = isinstance(b, (int, float)) or (type(b) is torch.Tensor and b.dim() == 0)
        return scalar and isinstance(a, Elsewhere) and a.dtype.is_floating_point

    def _reciprocal_division(self, func, args):
        """What CUDA computes for a floating tensor divided by a CPU scalar: a * (1 / b), the
        reciprocal rounded to the tensor's precision first (float32 here)."""
        a, b = args
        b = float(b)
        inv = torch.tensor(np.float32(1.0) / np.float32(b) if a.dtype == torch.float32 else 1.0 / b, dtype=a.dtype)
        if func is aten.div_.Tensor:
            a.elem.mul_(inv)
            return a
        return Elsewhere(a.elem * inv)


class _TensorLiterals(TorchFunctionMode):
    """``torch.tensor(data, device=...)``, and a list used as an index (``t[:, [0, 2]]``), are made
    into tensors of the device in C++, out of the dispatcher's sight: here they are built on the
    CPU, then moved (an upload, as on a GPU)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor, torch.asarray) and _is_device(kwargs.get("device")):
            return func(*args, **{**kwargs, "device": "cpu"}).to(DEVICE)
        if func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__) and isinstance(args[0], Elsewhere):
            index = args[1]
            if isinstance(index, tuple):
                index = tuple(_list_index(i) for i in index)
            args = (args[0], _list_index(index), *args[2:])
        return func(*args, **kwargs)


def _list_index(i):
    return torch.tensor(i).to(DEVICE) if isinstance(i, list) else i


def device_generator(device, seed: int) -> torch.Generator:
    """Stands in for ``torch.Generator(device=device).manual_seed(seed)`` on the emulated device
    (a generator cannot live there): a CPU generator, whose draws the emulator moves there."""
    return torch.Generator().manual_seed(seed)


def on_device(t: torch.Tensor) -> bool:
    """Whether ``t`` lives on the emulated device."""
    return isinstance(t, Elsewhere)


class FakeCudaRng:
    """torch.cuda's random-state functions on a machine without a GPU, for ``visible`` GPUs:
    records which devices' generators are read (``read``) and written (``written``); a device
    index beyond those visible raises IndexError, as ``torch.cuda.default_generators[i]`` does."""

    def __init__(self, monkeypatch, visible: int = 1, current: int = 0, initialized: bool = True):
        self.visible, self.read, self.written = visible, [], []
        for module in (torch.cuda, torch.cuda.random):
            monkeypatch.setattr(module, "get_rng_state", self.get_rng_state, raising=False)
            monkeypatch.setattr(module, "set_rng_state", self.set_rng_state, raising=False)
            monkeypatch.setattr(module, "get_rng_state_all", self.get_rng_state_all, raising=False)
            monkeypatch.setattr(module, "set_rng_state_all", self.set_rng_state_all, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: current)

    @staticmethod
    def state_of(index: int) -> torch.Tensor:
        return torch.full((16,), index, dtype=torch.uint8)

    def _index(self, device) -> int:
        index = device if isinstance(device, int) else (torch.device(device).index or 0)
        if index >= self.visible:
            raise IndexError("tuple index out of range")
        return index

    def get_rng_state(self, device="cuda"):
        index = self._index(device)
        self.read.append(index)
        return self.state_of(index)

    def set_rng_state(self, new_state, device="cuda"):
        if new_state.device.type != "cpu" or new_state.dtype != torch.uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        self.written.append(self._index(device))

    def get_rng_state_all(self):
        return [self.get_rng_state(i) for i in range(self.visible)]

    def set_rng_state_all(self, new_states):
        for i, state in enumerate(new_states):
            self.set_rng_state(state, i)

"""faderlib: Fader Networks (Lample et al., NIPS 2017) as a tested teaching kit."""

import os as _os

# PyTorch's OpenMP threads spin while they wait for work. When another process holds a core
# (a notebook kernel, a browser) they fight over the CPU: on a 2-core machine one training
# step was measured 15x slower (1191 ms against 79 ms with passive waiting). Waiting
# passively costs little when the machine is idle. It only works when set before torch is
# imported, so `import faderlib` first; set OMP_WAIT_POLICY yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

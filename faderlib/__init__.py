"""faderlib: Fader Networks (Lample et al., NIPS 2017) as a tested teaching kit.

Read it in this order (one line per module; docs/paper_notes.md holds the facts it cites):

1. ``config``      the networks' settings: presets, attributes y, one dataclass
2. ``models``      the attribute code [1 - y, y]; encoder E, decoder D(z, y), latent discriminator P
3. ``losses``      the three losses and the lambda_E schedule
4. ``train``       the learning algorithm: TrainConfig and its recipes, the Trainer's two steps
5. ``data``        batches (x, y) from the memory-mapped cache, class balancing
6. ``evaluate``    reconstruction, the discriminator, swap accuracy, counterfactual truth
7. ``sliders``     the live slider app (its fast decoder is an optimisation, in ``fastdecoder``)

Around them: ``celeba`` (reading CelebA's tables), ``images`` (preprocessing; pixels <-> x),
``cache`` (the memory map), ``cache_check`` (what a cache proves about itself: checksums, values
and splits), ``feed`` (a run's data, batches to the device), ``synth`` (the synthetic faces:
sampling, drawing, the data set), ``classifier`` (the judge of swaps), ``metrics`` (accuracy,
balanced accuracy, PSNR), ``runs`` (a run and its folder), ``runfolder`` (what training keeps
there), ``run_data`` (where a run's data is), ``metrics_log`` (its log), ``checkpoint``, ``files``
(atomic writes, locks, free space), ``devices`` (where a run computes), ``progress``, ``errors``;
pictures in ``visual`` (grids), ``plots`` (figures), ``diagrams`` (the networks and the game, drawn
from a configuration), ``interpolate`` (sweeps beyond [0, 1]), ``edit`` (any photo); tables in ``summary``, ``analysis`` and ``reports`` (an evaluation in words
and tables); ``demo``, ``course`` (the notebooks' start-up glue, the course's folder of runs),
``exercises`` (the checks of the notebooks' exercises, one module per notebook) and ``cli`` (the
``fader`` command) on top.
"""

__version__ = "0.1.0"

"""One-off text edits of the course notebooks (issue 21, "Only what holds"): run once, then delete.

What it changes, by cell id (never an exercise cell, ``ex-...``, nor a model answer, ``ans-...``,
and never an output):

* the opening cell of each notebook: what it teaches, what it needs (the notebook or run before it),
  how long it took (``TIME_TBD_NN``: a placeholder for a measured time, to be filled in);
* a closing summary cell, ``cell-summary``, after the final "Exercises" cell: what you learnt, and
  going further (docs/going_further.md, docs/cheatsheet.md);
* text that said more than the measured figures (docs/results.md has them), the paper's human
  study given only as its qualitative result, the citations in one scheme (the paper's sections by
  number, docs/paper_notes.md by a heading's title, a notebook's parts as "part N");
* notebook 05's parameters cell: ``COMPARE_BALANCE = False`` by default (the rest of the cell as is).

    python tools/_nb_text_edits.py                  # edit notebooks/*.ipynb in place
    python tools/_nb_text_edits.py --root DIR       # edit DIR/notebooks/*.ipynb (or DIR/*.ipynb), e.g. a copy
    python tools/_nb_text_edits.py --check          # change nothing; exit 1 if an edit is still to be made
    python tools/_nb_text_edits.py --force          # also replace cells edited since this script was written

Idempotent: a cell that already has its new text is left alone, an inserted cell is inserted once.
A cell whose text is neither the one this script was written against nor its new text is left as
it is and named (exit status 2; the other edits are made) unless ``--force`` is given. Afterwards run
``python tools/solutions.py`` so that notebooks/solutions/ follows the course notebooks.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import nbformat

#: notebook -> edits: {"id", "type", "old_sha" (of the source this script was written against), "new"}
#: or {"insert" (a new markdown cell's id), "after" (the id it follows), "new"}.
EDITS = {
    '01_data_and_attributes': [
        {'id': 'cell-00', 'type': 'markdown', 'old_sha': '9a5998a70a412d6a', 'new': r'''# 1. The data: faces and their attributes

*Fader Networks: Manipulating Images by Sliding Attributes* (Lample et al., NIPS 2017) learns from pairs
$(x, y)$: an image $x$ and its attributes $y \in \{0, 1\}^n$ (smiling or not, glasses or not, ...).
An encoder maps the image to a latent code $z = E(x)$, a decoder rebuilds it from the code **and** the
attributes, $\hat{x} = D(z, y)$, and a latent discriminator $P$ tries to read $y$ back from $z$ while
the encoder learns to make that impossible. The paper's argument (section 3): once $z$ carries no
trace of $y$, the decoder has to take the attributes from $y$, and feeding it other values of $y$ (even
outside $[0, 1]$) slides a smile, glasses or gender up and down. (How much of $y$ really leaves $z$ is
measured in notebook 05.)

**What this notebook teaches.** Before any network, look at what it will learn from:

1. where the data comes from (synthetic faces or CelebA) and what $y$ looks like;
2. what the image $x$ becomes: the crop and the resize;
3. faces with and without each attribute;
4. how frequent each attribute is, in each split;
5. which attributes go together;
6. why a rare attribute (glasses: 6.5 % of CelebA) needs care, and what balanced sampling does.

**What it needs.** Nothing before it: it is the first notebook. The first run draws the synthetic faces
into `data/synthetic` (about a minute); with `DATA_DIR` set, it reads CelebA instead.

**How long.** Running every cell took TIME_TBD_01 (papermill, 2 CPU cores, the default parameters);
reading it and doing the exercises takes a class far longer.

The course: **01 data** → 02 networks and losses → 03 training → 04 interpolation and sliders → 05 evaluation.
Every cell calls the `faderlib` library (tested in `tests/`); the notebooks only show and explain.'''},
        {'id': 'cell-25', 'type': 'markdown', 'old_sha': '61fe8f8e999413b2', 'new': r'''## 6. Imbalance: why glasses are hard

Only 6.5 % of CelebA's faces wear glasses. A classifier that always answers "no glasses" is right
93.5 % of the time while knowing nothing. What rarity does to a Fader network:

* **measure with balanced accuracy** (the mean of the per-class accuracies): any constant answer
  scores 0.5 on it, whatever the frequencies. The latent discriminator should end near that chance
  level, and its plain accuracy near the *majority rate*, once $z$ hides $y$ from it (notebook 05);
* **few faces with glasses per batch**: drawn uniformly, a batch of 32 holds about two. The decoder
  rarely practises drawing glasses, and the latent discriminator can learn the prior "no glasses": it
  is right 93.5 % of the time by ignoring $z$, so its loss, and the pressure it puts on the encoder
  to hide glasses, say little about what $z$ still carries;
* **the two directions of an edit can differ**: on CelebA, adding glasses is reported to be harder
  than removing them (a claim passed on in `docs/paper_notes.md`, 'Evaluation', not measured by this
  kit). Two questions to keep for notebook 05, which measures them on your run: does a run trained
  class-balanced on the synthetic faces add glasses as well as it removes them? And what happens to the
  same network trained *without* class-balanced sampling? Write down what you expect before you look.'''},
        {'id': 'cell-29', 'type': 'markdown', 'old_sha': '6b8f0b529a63cd2d', 'new': r'''## Exercises

The three exercises of part 6 check themselves; these have no single right answer.

1. Set `ATTRIBUTES = ["Mustache", "Wearing_Hat", "Pale_Skin"]` (or, on CelebA, `["Bald", "Mustache"]`).
   Which is the rarest? How many times is each positive image drawn under balanced sampling?
2. With `cooccurrence(celeba)`, find the attribute most tied to `Male`. What do you expect the `Male`
   slider of notebook 04 to change besides the face shape?
3. Change `IMAGE_SIZE` to 32 and to 128: how long does `prepared` take, how large is `images.npy`
   (`data.meta`)? How much would all of CelebA take at 256 px?
4. Exercise 1.2 balanced a 0/1 attribute. What weights draw each value of an attribute with K values
   (say hair colour: black, blond, brown) equally often? Does `faderlib.data.balanced_weights` give them?'''},
        {'insert': 'cell-summary', 'after': 'cell-29', 'new': r'''## Summary

**What you learnt.**

* A training pair is an image $x$ (CelebA's crop of rows 20 to 197, resized, scaled to $[-1, 1]$) and
  its attributes $y$, one class index per attribute, in the order you chose.
* The synthetic faces have CelebA's file layout and CelebA's frequencies for the attributes they draw,
  and they can render the same face with one attribute changed: a ground truth no photo has.
* Attribute frequencies differ between splits, and some attributes go together: a slider may carry
  its correlated attributes along.
* A rare attribute needs balanced accuracy to be judged, and class-balanced sampling to be learnt,
  at the price of showing the same few positive images again and again.

**Next.** Notebook 02 builds the networks that learn from these pairs.

**Going further.** [docs/going_further.md](../docs/going_further.md) takes each idea of the course
further (gradient reversal, attribute leakage and probes, other adversaries, linear projection, later
face editors, attribute control without disentanglement); [docs/cheatsheet.md](../docs/cheatsheet.md)
has the whole course on one page.'''},
    ],
    '02_networks_and_losses': [
        {'id': 'cell-00', 'type': 'markdown', 'old_sha': 'c32ef41a3aabd2b0', 'new': r'''# 2. The networks and the losses

**What this notebook teaches.** Notebook 01 looked at the pairs $(x, y)$. This one builds the three
networks of a Fader network, runs a real batch through them, computes the three losses, checks which
network each gradient reaches, and takes one training step by hand, exactly as
`faderlib.train.Trainer` does it.

**What it needs.** Notebook 01's ideas (the pairs $(x, y)$, a rare attribute); nothing trained. It
draws the synthetic faces if notebook 01 has not.

**How long.** Running every cell took TIME_TBD_02 (papermill, 2 CPU cores, the default parameters).

Notation (the paper, section 3): the encoder $E$ with parameters $\theta_{enc}$, the decoder $D$
($\theta_{dec}$), the latent discriminator $P$ ($\theta_{dis}$); $z = E(x)$,
$\hat{x} = D(z, y)$, and $p_{\theta_{dis}}(y \mid z)$ the probability $P$ gives to the attributes $y$.
A layer $C_k$ is a convolution with $k$ filters of size $4 \times 4$ and stride 2: each one halves
the image side.

The course: 01 data → **02 networks and losses** → 03 training → 04 interpolation and sliders → 05 evaluation.'''},
        {'id': 'cell-03', 'type': 'markdown', 'old_sha': '368d5e968d95f4d6', 'new': r'''## 1. The architecture

* **Encoder** $E$: a stack of $C_k$ layers, each followed by BatchNorm (not on the first layer) and
  LeakyReLU(0.2). Its depth depends on the image size and on a *preset*:
  * the reference code's default (`"official"`): at 256 px $C_{32}$-$C_{64}$-$C_{128}$-$C_{256}$-$C_{512}$-$C_{512}$,
    and a latent $z$ of $512 \times 4 \times 4$;
  * the paper's text (`"paper"`): at 256 px seven layers from $C_{16}$ to $C_{512}$, and $z$ of $512 \times 2 \times 2$;
  * **the course** trains the `"paper"` preset at 64 px: five layers, $C_{16}$-$C_{32}$-$C_{64}$-$C_{128}$-$C_{256}$,
    and $z$ of $256 \times 2 \times 2$ (the table of part 1 below prints it). A preset keeps the side of its
    latent at every image size, so a smaller image has fewer layers.

  Why the 2×2 latent for the course: a smaller $z$ leaves less room to keep the attributes, so the decoder
  has to take them from $y$; in the kit's own runs the reference code's 4×4 latent gave weaker swaps and
  an 8×8 one far weaker (`faderlib.demo` lists what was tried); and networks this small train in minutes
  on a laptop. Either way $z$ is a tensor, not a vector: it keeps a coarse layout of the face.
* **Decoder** $D$: the mirror image, with transposed convolutions, BatchNorm and ReLU, ending in
  $\tanh$ (images live in $[-1, 1]$). The attributes enter **every** layer (part 2 below).
* **Latent discriminator** $P$: reads $z$: one more $C_{512}$ layer per halving down to $1 \times 1$
  (with dropout 0.3), then two fully connected layers, 512 units then one logit per attribute value.

The networks of `faderlib.models` have exactly the reference implementation's parameter counts:
14,000,512 for the autoencoder with one attribute at 256 px (the `"official"` preset), 8,655,362 for
its discriminator (`tests/test_models.py` checks them). The cell below counts the reference networks:'''},
        {'id': 'cell-15', 'type': 'markdown', 'old_sha': '19f4e9bb536e9ce6', 'new': r'''## 4. The three losses

Over a batch of $m$ pairs $(x, y)$, with the encoder's parameters held fixed, the **discriminator**
learns to predict the true attributes from $z$:

$$\mathcal{L}_{dis}(\theta_{dis} \mid \theta_{enc}) = -\frac{1}{m} \sum_{(x, y)} \log p_{\theta_{dis}}\big(y \mid E_{\theta_{enc}}(x)\big) \tag{1}$$

The **autoencoder** must reconstruct $x$ from $(z, y)$,

$$\frac{1}{m} \sum_{(x, y)} \big\| D_{\theta_{dec}}\big(E_{\theta_{enc}}(x), y\big) - x \big\|_2^2 \tag{2}$$

and, at the same time, make the discriminator believe the **flipped** attributes $1 - y$:

$$\mathcal{L}(\theta_{enc}, \theta_{dec} \mid \theta_{dis}) = \frac{1}{m} \sum_{(x, y)} \big\| D_{\theta_{dec}}\big(E_{\theta_{enc}}(x), y\big) - x \big\|_2^2 \; - \; \lambda_E \log p_{\theta_{dis}}\big(1 - y \mid E_{\theta_{enc}}(x)\big) \tag{3}$$

(Equations numbered as in the docstrings of `faderlib.losses`: the kit's own numbering;
`docs/paper_notes.md`, 'Equation numbers', says how it relates to the paper's.) With several attributes, the
log-probabilities are summed over attributes. The squared error is averaged over pixels, as in the
reference code.

**The flipped target.** For a binary attribute, $1 - y$ *is* "the other value": there is nothing
else to choose. For an attribute with $K$ values, "anything but $y$" is what the kit uses: a value
drawn uniformly among the $K - 1$ others, afresh at every step (`faderlib.losses.flip_attributes`).
The encoder *minimises* $P$'s cross-entropy against these targets; getting the flip or the sign of
this term wrong is the classic bug of reimplementations that never converge.

A question worth an answer: why push $P$ towards the *wrong* answer, rather than towards "no idea",
a uniform target $1/K$ for every value (what a $P$ that reads nothing from $z$ would predict)?'''},
        {'id': 'cell-22', 'type': 'markdown', 'old_sha': 'e7d371990e1a25dc', 'new': r'''## 6. The schedule of $\lambda_E$

$\lambda_E$ weighs invariance against reconstruction. At the start the encoder has learnt nothing
worth hiding, and a strong adversary could scramble $z$ before it holds anything; so the paper grows
$\lambda_E$ linearly from 0 to $10^{-4}$ over the first 500,000 iterations (`faderlib.losses.lambda_e`).
That is days on a laptop; the course's recipe uses a larger $\lambda_E$, 0.02, reached after a ramp of
1,000 steps (right): chosen by measuring a few candidates on runs of a few thousand steps at 64 px
(`faderlib.demo` and `docs/results.md` list them, with what each reached).'''},
        {'id': 'cell-24', 'type': 'markdown', 'old_sha': 'd9381c66e4a7aefe', 'new': r'''## 7. One training step, by hand

Training alternates two updates (the paper, section 3), each on its own random batch:

$$\theta_{dis} \leftarrow \theta_{dis} - \eta\, \nabla_{\theta_{dis}} \mathcal{L}_{dis}, \qquad
[\theta_{enc}, \theta_{dec}] \leftarrow [\theta_{enc}, \theta_{dec}] - \eta\, \nabla_{\theta_{enc}, \theta_{dec}} \mathcal{L} \tag{4}$$

with Adam ($\eta = 2 \cdot 10^{-4}$, $\beta_1 = 0.5$) for both, and gradient norms clipped at 5: the
reference code's settings (its `train.py`; the paper's text gives $\eta = 0.002$).
Two optimisers, one per side of the game:'''},
        {'id': 'cell-28', 'type': 'markdown', 'old_sha': '2400bacbf452b01d', 'new': r'''**Step 2, the autoencoder** reconstructs and fools $P$, equation (3), on a fresh batch. $P$ runs in
eval mode (no dropout) and only `opt_ae` steps: $P$'s parameters do receive a gradient here (the
table of part 5), but it is never applied, and `opt_dis.zero_grad()` clears it before $P$'s next
step. (The `Trainer` also freezes $P$ with `requires_grad_(False)` during this step, which saves
computing that gradient at all.)'''},
        {'id': 'cell-32', 'type': 'markdown', 'old_sha': '73531d4703d69196', 'new': r'''## Exercises

The five exercises of parts 2 and 4 check themselves; these have no single right answer.

1. Build the `"paper"` preset at 256 px (`ModelConfig.from_preset("paper", 256, ["Male"])`): how many
   layers, what latent shape, how many parameters? (`fader summary --preset paper --size 256` prints the same.)
2. Each extra binary attribute adds 2 channels to every decoder layer. Predict the parameter count of the
   256 px autoencoder with 40 attributes, then check with `parameter_counts` (the reference says 15,242,272).
3. In step 2, replace `adversarial_loss(dis(z2), y2, config)` by `discriminator_loss(dis(z2), y2, config)`
   (the true $y$ instead of $1 - y$). What would the encoder learn to do to $z$? Why would the sliders
   then do nothing?
4. With your `my_flip` and `my_cross_entropy` (exercises 2.3 and 2.4), compute the adversarial term of (3)
   on the batch of part 3 and compare it with `adversarial_loss(logits, y, config)`. Are they equal?
   Would they be for an attribute with $K > 2$ values?'''},
        {'insert': 'cell-summary', 'after': 'cell-32', 'new': r'''## Summary

**What you learnt.**

* The three networks and their shapes: the course's encoder turns a 64 px face into $z$ of
  $256 \times 2 \times 2$; the reference code's, at 256 px, into $512 \times 4 \times 4$; the
  discriminator $P$ reads $z$ down to one logit per attribute value.
* The attributes enter every decoder layer as the code $[1 - \alpha,\ \alpha]$, which also takes values
  that training never showed.
* The three losses: $P$ learns the true $y$ (1); the autoencoder reconstructs (2) and, at the same time,
  pushes $P$ towards the flipped $y$ (3); and why a uniform target is a possible alternative.
* Which network each gradient reaches, and so which network each step may update: one step is a
  discriminator update ($E$ frozen, $z$ without gradient), then an autoencoder update on another batch.

**Next.** Notebook 03 repeats this step thousands of times.

**Going further.** [docs/going_further.md](../docs/going_further.md) takes each idea of the course
further (gradient reversal, attribute leakage and probes, other adversaries, linear projection, later
face editors, attribute control without disentanglement); [docs/cheatsheet.md](../docs/cheatsheet.md)
has the whole course on one page.'''},
    ],
    '03_training': [
        {'id': 'cell-00', 'type': 'markdown', 'old_sha': '50ae1022eb44fe0a', 'new': r'''# 3. Training

**What this notebook teaches.** Notebook 02 took one step of the game by hand. This one plays it a few
thousand times with `faderlib.train.Trainer`, watches the losses live, interrupts the run and resumes
it, evaluates the result with an attribute classifier, and trains the same network with
$\lambda_E = 0$ to see what the adversary is for. It ends with what to expect on a lab GPU (estimates)
and the commands for long runs.

**What it needs.** Notebook 02 (the step it repeats). Nothing trained: it trains its own runs and a
classifier into `runs/course` (it does not touch the demo's `runs/demo`), and draws the faces if needed.

**How long.** The defaults train what `make demo` trains: two runs of the course recipe (9,000 steps
of 16 faces at 64 px) one after the other, and a small classifier. On a 2-core laptop that is **too long
for a class: about 32 minutes** on the slowest 2-core machine the kit was measured on (an AVX2-only AMD
EPYC; extrapolated from the run below; a faster machine should take less, not measured). **In class, set
`TRAIN_STEPS = 2000`**: the whole notebook took **8.7 minutes** there (papermill, 2 cores, 2026-12-03),
with blurrier faces and weaker edits than the demo's; or run `make demo` before class and let
notebooks 04 and 05 use its run. With a CUDA GPU, `TRAIN_STEPS = None` trains 20,000 steps.

The course: 01 data → 02 networks and losses → **03 training** → 04 interpolation and sliders → 05 evaluation.'''},
        {'id': 'cell-03', 'type': 'markdown', 'old_sha': '3c12906d1a33be94', 'new': r'''## 1. The configuration

`TrainConfig` holds every setting of a run, with the reference code's defaults (its `train.py`: Adam
with $\eta = 2 \cdot 10^{-4}$, where the paper's text says $0.002$; $\beta_1 = 0.5$, batch 32, gradient
norms clipped at 5, random horizontal flips). The course's recipe
(`TrainConfig.from_recipe("course", ...)`, the same as `fader demo`'s) changes what a laptop needs:
smaller networks (the `"paper"` preset at 64 px, $z$ of $256 \times 2 \times 2$: notebook 02), batches
of 16, a learning rate of $5 \cdot 10^{-4}$ that falls to 0
over the second half of the run (`lr_decay=0.5`: a short run then ends settled instead of on the
noise of its last steps; the paper keeps it constant), a stronger $\lambda_E$ reached after a short
ramp (the paper: $10^{-4}$ over 500,000 steps), and the rarest attribute drawn class-balanced when it is under 15 % (`balance="auto"`, which
the `Trainer` decides on the data: Eyeglasses with the default attributes). The cell prints every setting.

Everything of a run lives in one folder: `config.json`, `metrics.jsonl` (one line per logged step),
`checkpoints/last.pt` and `best.pt`, and `samples/` (a grid of edits at every validation);
while a `Trainer` has the folder open, `.fader.lock` keeps any other process from writing it (a classmate's
`fader train` on the same folder is refused, and told who holds it). A folder
holds one run: after changing a setting other than `TRAIN_STEPS` or `DEVICE`, choose a new `RUN_DIR`
(the `Trainer` refuses to mix two configurations in one folder, and says so).'''},
        {'id': 'cell-05', 'type': 'markdown', 'old_sha': '34c315edd5b3d9cb', 'new': r'''## 2. Train, with a progress bar and the losses drawn live

Each step is one discriminator update, equation (1), then one autoencoder update, equation (3),
each on its own batch. `LiveLossPlot` redraws five panels as training goes:

* the **reconstruction error** (2) falls quickly, then slowly;
* the **discriminator's loss** first falls (it learns to read $y$ from $z$), then should climb back as
  $\lambda_E$ grows and the encoder hides $y$ from it;
* its **accuracy** should end near chance, not near 1: the majority rate of each attribute, or about
  0.5 for an attribute drawn class-balanced (its batches are half positive);
* $\lambda_E$ follows its ramp;
* at each validation, a **fresh linear probe** is fitted on the frozen $z$ of held-out faces and
  scored on others (balanced accuracy; 0.5: a line reads nothing). The discriminator was trained
  *against* the encoder, so its blindness may only mean that the encoder fools that one network;
  the probe is an independent witness. Watch whether it falls with the discriminator's accuracy,
  or stays high (notebook 05 measures it on the whole test split).

To show that a run survives an interruption, train only half of the steps now, as if the laptop
had gone to sleep.'''},
        {'id': 'cell-16', 'type': 'markdown', 'old_sha': 'b8d32a04c73b680f', 'new': r'''## 4. Evaluation

Did the edits work? The paper asked people, and also used a classifier; the usual automatic protocol
(the paper, section 4; AttGAN and STGAN later) trains an **attribute classifier** on real images, then asks it whether each
edited image shows the attribute it was asked to show. `course.ensure_classifier` trains one with
`faderlib.classifier.train_classifier` on the run's data (or reuses the one in `RUN_DIR/classifier`).'''},
        {'id': 'cell-18', 'type': 'markdown', 'old_sha': '40a2d35eed8136fc', 'new': r'''How to read the table (notebook 05 goes through it in detail):

* **disc. acc**, **majority** and **balanced**: the latent discriminator's accuracy on test images,
  what always answering the most frequent class scores, and the balanced accuracy (the mean of the
  per-class accuracies). A balanced accuracy near 0.5 means $P$ cannot read the attribute from $z$:
  the encoder has learnt to hide it *from $P$* (a fresh probe may still read it: part 2 above, and
  notebook 05). Plain accuracy then sits near the majority rate, or near 0.5 for the attribute drawn
  class-balanced in training, whose prior $P$ learnt as 50/50;
* **swap->0** and **swap->1**: the share of edits (removing, adding) that the classifier reads as
  asked; **clf acc** is the classifier's own accuracy on real images, the ceiling of both;
* **cf PSNR** (synthetic faces only): how close each edit is to the true face re-rendered with that
  attribute changed; **cf gain**: how many dB closer than the unedited reconstruction (0: the edit did
  nothing), on the whole image and on the pixels the attribute changes (**changed**). Unlike swap
  accuracy it does not saturate: a faint smile and a clear one both fool the classifier, but only the
  clear one gains.'''},
        {'id': 'cell-19', 'type': 'markdown', 'old_sha': 'c14d41c286b8e8ae', 'new': r'''## 5. The ablation: $\lambda_E = 0$

Without the adversarial term, equation (3) is a plain autoencoder conditioned on $y$. Nothing stops
$z$ from keeping the attribute, and then the decoder can rebuild $x$ from $z$ alone and learn to
**rely on $z$ rather than $y$**: expect the sliders to do much less. Train the same network, same data, same seed, with
$\lambda_E = 0$ (the discriminator still trains, and shows how much of $y$ is left in $z$):'''},
        {'id': 'cell-22', 'type': 'markdown', 'old_sha': 'c9c6d98f6bb90d9b', 'new': r'''The sentences above the pictures are computed from the two runs (`faderlib.reports.ablation_report`).
In the demo's run (`docs/results.md`), $\lambda_E = 0$ reconstructed better (28.0 dB against 26.7 dB:
one objective instead of two), its discriminator read the attributes from $z$ (balanced accuracy
0.87 / 1.00 / 1.00 for Smiling / Eyeglasses / Male, against about 0.5 for the Fader network's), and
its swaps mostly failed (0.10 to 0.43 by direction). Its counterfactual gains were much smaller than
the Fader network's but not zero (+0.06 / +0.83 / +0.25 dB against +0.36 / +2.65 / +3.31 dB): its
decoder relies mostly on $z$, and still a little on $y$. Your run, shorter, may differ; on the tiny
runs of a test the contrast may not be there at all, and the report says so rather than claiming it.

## 6. On a lab GPU, and long runs outside the notebook

**What to expect (estimates, not measurements).** No GPU has run this kit yet: every GPU figure
below comes from the layer shapes and from the reference code's reported timing, not from a run.

* *Compute.* One iteration (a discriminator step and an autoencoder step, batch 32) costs about
  300 GFLOP at 256 px with the reference networks, 72 GFLOP at 128 px, and a few GFLOP for the
  course's 64 px networks (convolutions counted from the layer shapes: forward, plus twice that for backward).
* *The reference code's timing* (its issue tracker, `docs/paper_notes.md`, 'Training'): a user reports
  about 750 "epochs" of 50,000 images (1,563 iterations each) in 3 days 4.5 hours at 256 px on one GPU
  of 2017, about **6 minutes per epoch** (about 1.3 TFLOP/s effective); its author says 100 to 200
  epochs usually converge: **10 to 20 hours**.
* *A current lab GPU* (A100 or H100 class, bf16): the kit's estimate is **50 to 150 iterations/s** at
  256 px (an effective 15 to 45 TFLOP/s: a small share of such a card's peak, since these networks
  are small), so **10 to 30 s per reference epoch**, and 100 to 200 epochs (150,000 to 300,000
  iterations) in **about 15 minutes to 2 hours**. At 128 px, about a quarter of the arithmetic.
  `docs/lab_gpu.md` gives the same estimate.
* *Memory.* Weights, gradients and Adam's two moments are 16 bytes per parameter; activations were
  estimated at about three stored tensors per layer. At 256 px and batch 32 that is about 1.2 GiB
  plus CUDA's context: any lab GPU should fit it, and batches up to a few hundred.
* *The data path.* Batches travel to the GPU as uint8 (read ahead by a thread, scaled on the GPU), or the
  whole training split sits on the GPU when it fits (CelebA's: 2 GB at 64 px, 8 GB at 128 px, 32 GB at
  256 px); `faderlib.feed` explains both, and `benchmarks/gpu_check.py` measures them on a GPU. No GPU
  has run that check for this kit yet: the figures above stay estimates until one does.
* *This machine.* The course's run above measured its own speed (`faderlib.metrics_log.speed_report`): multiply by
  the compute ratio for another size.'''},
        {'id': 'cell-24', 'type': 'markdown', 'old_sha': '860f5b20b76dc7c8', 'new': r'''**Long runs belong in a terminal**, not in a notebook: a closed browser tab or an expired session
kills the kernel. The same `Trainer` runs from the command line, and rerunning a command on its
`--out` folder resumes it exactly (run it inside `tmux` or `nohup`):

```bash
fader train --data /data/celeba --attrs Smiling,Eyeglasses,Male --size 128 \
    --steps 200000 --lambda-e 1e-4 --lambda-ramp 500000 --balance Eyeglasses --bf16 \
    --out runs/celeba128
fader train-classifier --data /data/celeba --size 128 --out runs/celeba128_classifier
fader evaluate runs/celeba128 --classifier runs/celeba128_classifier
```

On a machine with several GPUs, `torchrun` starts one process per GPU (distributed data parallel);
each draws its own batch, so the effective batch is N × 32, and the images per second should grow
up to N times (not measured here: no GPU has run the kit yet). Same arguments, same resumable `--out` folder:

```bash
torchrun --nproc_per_node=4 -m faderlib train --data /data/celeba --attrs Smiling,Eyeglasses,Male \
    --size 256 --steps 300000 --bf16 --out runs/celeba256
```

A reference "epoch" of 50,000 images is 1,563 steps at batch 32; the 100 to 200 epochs that the
reference code's author says usually converge (its issue tracker) are 150,000 to 300,000 steps. Notebooks 04 and 05 open any such run: set `RUN_DIR` to its `--out` folder.

## Exercises

1. The ablation answers "set $\lambda_E$ to 0 and retrain: what happens to the sliders?" with numbers.
   Open the slider app of notebook 04 on it (`SliderApp.from_run_dir(runs.ablation)`) and move the
   sliders: what happens, and why does the reconstruction look fine all the same?
2. Train with five times the course's adversarial weight (0.1 instead of 0.02:
   `course.train_variant(runs.fader, RUN_DIR + "/lambda01", lambda_e=0.1)`): what happens to the
   reconstruction PSNR, to the swap accuracy and to the counterfactual gain?
3. Resume the run for twice as many steps (`TrainConfig.from_recipe("course", ..., steps=2 * config.steps)`
   on the same folder; `steps` may change on resume, the other settings may not). Does the discriminator's
   accuracy get closer to the majority rate? The learning rate's decay follows the new total: at the
   resumed step it is back at its full value; find the jump in the loss curves.
4. Kill the kernel in the middle of `trainer.train()`, restart it, and run the notebook again: from
   which step does it continue, and why not from the exact step where you killed it?'''},
        {'insert': 'cell-summary', 'after': 'cell-24', 'new': r'''## Summary

**What you learnt.**

* The `Trainer` alternates the two steps of notebook 02, with $\lambda_E$ ramped up; the live curves
  show the reconstruction falling and the discriminator's accuracy moving towards chance as the encoder
  learns to fool it.
* A run lives in one folder; its checkpoints resume it exactly, even after a killed process.
* Swap accuracy asks a classifier whether an edit shows the attribute; the counterfactual gain asks
  how much closer to the true edited face the edit came, and does not saturate.
* The $\lambda_E = 0$ ablation reconstructs better, its discriminator reads $y$ from $z$, and its swaps
  mostly fail: the adversary is what makes the decoder follow $y$. A fooled discriminator is not an
  empty $z$: the fresh probe is the witness to watch (notebook 05).
* Long runs belong in a terminal and resume on their own; the GPU figures are estimates until a GPU
  measures them.

**Next.** Notebook 04 turns the trained run into sliders.

**Going further.** [docs/going_further.md](../docs/going_further.md) takes each idea of the course
further (gradient reversal, attribute leakage and probes, other adversaries, linear projection, later
face editors, attribute control without disentanglement); [docs/cheatsheet.md](../docs/cheatsheet.md)
has the whole course on one page.'''},
    ],
    '04_interpolation_and_sliders': [
        {'id': 'cell-00', 'type': 'markdown', 'old_sha': '7104e040a1bdacf0', 'new': r'''# 4. Interpolation and sliders

A trained Fader network turns attributes into knobs. At test time the discriminator $P$ is dropped:
encode an image once, $z = E(x)$, then decode it with any attribute values, $\hat{x} = D(z, y')$.
What holds after training, measured in notebooks 03 and 05: the decoder follows $y'$ (the classifier
reads the asked attribute in most edits); the encoder fooled its own discriminator, which reads $y$
from $z$ at about chance; yet a fresh linear probe still reads $y$ from $z$ (notebook 05 measures it).
So the edits come from $y'$, but $z$ has not lost the attributes.

A binary attribute enters the decoder as the pair $[1 - \alpha,\ \alpha]$. Training only ever showed
$\alpha \in \{0, 1\}$, but nothing stops us from feeding $\alpha = 0.5$ (half way) or $\alpha = 2$
(more than any training image): the reference code's interpolation went up to $\alpha = 2$ for glasses
and gender, and up to 10 for age (`docs/paper_notes.md`, 'Interpolation beyond [0, 1]').

**What this notebook teaches.** Interpolation grids beyond $[0, 1]$, two attributes at once, the live
slider app, and how to edit your own photo.

**What it needs.** A trained run: notebook 03's (`runs/course`) or the demo's (`make demo`: `runs/demo`).
Without either, it trains one first with the settings of its parameters cell (minutes on a CPU).

**How long.** With a run already there, running every cell took TIME_TBD_04 (papermill, 2 CPU cores,
the default parameters).

The course: 01 data → 02 networks and losses → 03 training → **04 interpolation and sliders** → 05 evaluation.'''},
        {'id': 'cell-10', 'type': 'markdown', 'old_sha': '2b7922ed65e809bf', 'new': r'''With the default attributes the last one is `Male`. Watch what else changes with it past $\alpha = 1$.
The decoder learnt what "male" looks like *in this data*, and notebook 01 showed that mustaches
only come with men: expect the slider to carry correlated attributes along. Does it, on this run?'''},
        {'id': 'cell-22', 'type': 'markdown', 'old_sha': '0ce9bb42b1cf5fbd', 'new': r'''## Exercises

The two exercises of part 1 check themselves; these have no single right answer.

1. For each attribute, find the $\alpha$ beyond which the images stop looking like faces. Is it the
   same for every attribute? (The reference went to 2 for glasses and gender, 10 for age.)
2. After notebook 03, open the app on the $\lambda_E = 0$ ablation: `SliderApp.from_run_dir(runs.ablation)`.
   Do the sliders change anything? Compare the reconstructions with this run's.
3. Edit the photo with `classifier=None`, so that every attribute you do not set is 0, and compare with
   the default, which reads them with the run's classifier (after notebook 03 or `make demo`): which
   edits change, and why?
4. Save a grid with `faderlib.interpolate.save_grid(grid, "grid.png")`. Why PNG and never JPEG when
   the grid is used to measure anything?'''},
        {'insert': 'cell-summary', 'after': 'cell-22', 'new': r'''## Summary

**What you learnt.**

* An edit is one encoding and one decoding: $z = E(x)$ once, then $D(z, y')$ for any $y'$; the slider
  app reruns only the decoder.
* A binary attribute's code $[1 - \alpha,\ \alpha]$ takes values training never showed: between 0 and 1,
  and beyond, where the decoder at some point stops drawing faces.
* Several attributes can be edited at once, and a slider may carry correlated attributes along.
* A photo of your own must be prepared like the training images, and a model only knows its training
  domain: one trained on the synthetic faces draws a synthetic face.

**Next.** Notebook 05 measures how well the edits work, and what $z$ still carries.

**Going further.** [docs/going_further.md](../docs/going_further.md) takes each idea of the course
further (gradient reversal, attribute leakage and probes, other adversaries, linear projection, later
face editors, attribute control without disentanglement); [docs/cheatsheet.md](../docs/cheatsheet.md)
has the whole course on one page.'''},
    ],
    '05_evaluation': [
        {'id': 'cell-00', 'type': 'markdown', 'old_sha': '6de22ea2ef6e691a', 'new': r'''# 5. Evaluation: did the edits work?

A Fader network is judged here on three things:

* **reconstruction**: with its true attributes, $D(E(x), y)$ should give $x$ back (MSE, PSNR);
* **invariance**: the latent discriminator should fail to read $y$ from $z = E(x)$ on held-out images,
  and so should a fresh classifier fitted afterwards (a *latent probe*: the discriminator was trained
  against the encoder, the probe was not);
* **edits**: with an attribute changed, $D(E(x), y')$ should show the new value, and nothing else
  should change.

The paper (section 4) had people judge the edits: whether swapped faces look natural, and whether they
show the attribute asked for. Its qualitative result: the Fader network's swaps were judged far more
natural than those of IcGAN (an earlier method), and mostly accurate, though below real images
(`docs/paper_notes.md`, 'Evaluation', says why the kit repeats no percentages). The automatic
protocol used since (AttGAN, STGAN) asks an **attribute classifier** trained on real images whether
each edited image shows what was asked.

**What this notebook teaches.** The discriminator against a latent probe; swap accuracy by direction
(adding against removing); edits compared with the **true** counterfactual faces that the synthetic
set can render (the *counterfactual gain*, a measure a classifier cannot saturate); the rare attribute
and class-balanced sampling; the cases that fail.

**What it needs.** A trained run and its classifier: notebook 03's (`runs/course`) or the demo's
(`make demo`: `runs/demo`); without either it trains one first (minutes on a CPU). The comparison with
the $\lambda_E = 0$ ablation needs the ablation that notebook 03 or `make demo` trained.

**How long.** With a run already there and `COMPARE_BALANCE = False` (the default), running every cell
took TIME_TBD_05 (papermill, 2 CPU cores).

The course: 01 data → 02 networks and losses → 03 training → 04 interpolation and sliders → **05 evaluation**.'''},
        {'id': 'cell-01', 'type': 'markdown', 'old_sha': '4fc7ca82acf017bb', 'new': r'''## Parameters

As in notebook 04: the run of `RUN_DIR` (notebook 03's), else the demo's, else one trained here with
the settings below. `COMPARE_BALANCE = False` (the default) uses only what notebook 03 or `make demo`
trained: the run and its $\lambda_E = 0$ ablation. `True` also trains the run once more with the other
class-balancing choice, for part 4 (as long as one training of notebook 03: estimated at about
15 minutes on 2 slow CPU cores at the defaults; run it the day before, not in class).'''},
        {'id': 'cell-02', 'type': 'code', 'old_sha': '6b834cdd1ee7b102', 'new': r'''RUN_DIR = "../runs/course"                        # notebook 03's runs (or any run folder)
DEMO_DIR = "../runs/demo"                         # used when RUN_DIR holds no run; None: never
DATA_DIR = None                                   # the settings below only matter if a run must be trained here
CACHE_DIR = None                                  # None: $FADER_CACHE, else DATA_DIR/fader_cache (set it for a read-only data folder)
IMAGE_SIZE = 64
ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]
TRAIN_STEPS = None
BATCH_SIZE = None                                 # None: the recipe's (16)
DEVICE = "auto"
COMPARE_BALANCE = False                           # the comparison run is trained only when asked (True); `make demo` trains what notebook 05 compares'''},
        {'id': 'cell-05', 'type': 'markdown', 'old_sha': 'c9c384fb04127f5a', 'new': r'''## 1. Invariance: can the discriminator still read $y$ from $z$?

If the encoder hides $y$, the latent discriminator can only guess. How well a guess scores depends
on the class frequencies: always answering the most frequent class gives the **majority rate**
(93.5 % for "never glasses"). The telling number is the **balanced accuracy**, the mean of the
per-class accuracies: 0.5 means $P$ learnt nothing from $z$, whatever the frequencies. (An attribute
drawn class-balanced in training was seen half positive, so $P$'s guess is 50/50 and its plain
accuracy on the imbalanced test split falls to about 0.5, *below* the majority rate.)

The discriminator is a weak witness, though: it was trained *against* the encoder, and an encoder
can learn to fool that one network without emptying $z$. The **latent probe** is a fairer one:
freeze the encoder, fit a fresh logistic regression of each attribute on the flattened codes $z$ of
2,000 training images, and score it on test images (`faderlib.evaluate.latent_probe`; linear probes
of latent spaces as in InterFaceGAN, `docs/paper_notes.md`, 'Evaluation'). The table puts the two side
by side, and beside them the same for the $\lambda_E = 0$ ablation when notebook 03 (or the demo)
trained one.'''},
        {'id': 'cell-06b', 'type': 'markdown', 'old_sha': 'b47c20ed23b97279', 'new': r'''How to read it: a balanced accuracy near 0.5 says "nothing to read"; near 1, "the attribute is in
$z$". When the discriminator sits near 0.5 **and the probe far above it**, the adversary was fooled
but $z$ still carries the attribute. Two reasons, both worth remembering:

* the flipped target of equation (3) rewards a $z$ that $P$ reads *backwards*: for a fixed $P$, the
  encoder's best answer is to move the attribute where $P$ will misread it, not to delete it; $P$ then
  relearns, and the game can circle instead of settling on an empty $z$;
* $z$ must keep what the reconstruction needs and $y$ does not give: an open mouth (not one of the
  attributes, and it goes with a smile in this data: notebook 01), the colour and shape of a pair of
  glasses (only visible when they are worn). Whatever $z$ keeps of those tells a probe the attribute.

This is a known limit of adversarial removal (Elazar and Goldberg found the same for text,
`docs/paper_notes.md`, 'Evaluation'). The decoder can still take the attribute from $y$ (the swaps
below show it does); what the probe says is that "invariant" means "invariant to this
discriminator", not "free of the attribute".'''},
        {'id': 'cell-07', 'type': 'markdown', 'old_sha': 'c6a37a1a8de7e9aa', 'new': r'''## 2. Swap accuracy, by direction

For each attribute and target value, take the test images that do *not* have that value, decode them
with it, and count how many the classifier reads as the target:

* **remove (1 → 0)**: images with the attribute, decoded with $y_i = 0$;
* **add (0 → 1)**: images without it, decoded with $y_i = 1$.

The two directions can differ: removing glasses only has to paint skin where the frames were, adding
them must invent frames (on CelebA adding glasses is reported harder; the sentence under the table
says what this run measured). The classifier's own accuracy
on real images is the ceiling of both (it also makes mistakes). The paper's people judged the Fader
network's swaps mostly accurate, below real images (its qualitative result, `docs/paper_notes.md`,
'Evaluation'); a classifier is another judge, and its figures are not comparable with theirs.'''},
        {'id': 'cell-12', 'type': 'markdown', 'old_sha': '4ec841e6ca564e11', 'new': r'''## 4. The rare attribute, and class-balanced sampling

With uniform sampling a batch of 32 holds about two faces with glasses (6.5 %). The discriminator can
then score well by ignoring them, the encoder has little to hide, and the decoder rarely practises
drawing glasses: expect the adding direction to suffer first. Class-balanced sampling
(`TrainConfig(balance=...)`, notebook 01) shows both classes equally often, at the price of seeing the
same few positive images many times.

With `COMPARE_BALANCE = True` (parameters cell), the run is trained once more with the other choice
(balanced if it was not, uniform if it was), same data, seed and steps, and both are evaluated with
the same classifier; then both runs draw the same test faces. The sentences under the table are
computed from the two evaluations. With the default `False` the next cells show nothing; one such
pair was measured on the course's recipe (7,000 × 16 faces, seed 0, `docs/results.md`): drawn without
class balance, the run reconstructed at 19.9 dB against 26.4 dB, its faces averaged, while every swap
still scored 0.955 or more.'''},
        {'id': 'cell-14c', 'type': 'markdown', 'old_sha': '243e7328fd9b92f0', 'new': r'''What to look for. When the run drawn without balancing reconstructs far worse, and its faces all look
alike (one average face, whatever the input), the game has **collapsed**. The likely cause is the flipped
target of equation (3) under an imbalanced prior. Drawn naturally, 93.5 % of the discriminator's
batches are faces without glasses, so a discriminator that reads nothing from $z$ learns to answer
"no glasses" with probability about 0.935. The encoder is asked to make it say the *opposite*:
"glasses" for the 93.5 % without, at a cost of $-\log 0.065 \approx 2.7$ nats per face. A $z$ that
says nothing cannot lower that cost: only a $z$ that $P$ reads backwards can (write "glasses" into
the code of faces without them). With $\lambda_E$ large enough, that term outweighs the
reconstruction, and the encoder sacrifices the face to it. Balanced draws make the blind answer a
coin flip, whose flipped cost, $\log 2$, a blind $z$ already pays: nothing left to gain by
scrambling.

And note what swap accuracy says about a collapsed run: the decoder still paints glasses, on the
average face, and the classifier reads them, so the swaps can look as good as the balanced run's.
Swap accuracy only asks "is the attribute there?". The reconstruction PSNR and the counterfactual
gain ask "is it still this face?", and they see the collapse.'''},
        {'insert': 'cell-summary', 'after': 'cell-18', 'new': r'''## Summary

**What you learnt.**

* Balanced accuracy is the measure of invariance: 0.5 means nothing read, whatever the frequencies.
* The latent discriminator is a weak witness: it was trained against the encoder. A fresh probe is a
  fairer one, and on the kit's runs it still reads the attributes from $z$: the adversary was fooled,
  $z$ was not emptied (`docs/results.md` has the demo's figures).
* Swap accuracy, by direction, asks whether the edit shows the attribute; the counterfactual gain asks
  whether the edit reached the true edited face, and it sees what swap accuracy cannot, such as a
  collapsed run whose swaps still score well.
* A rare attribute needs class-balanced sampling; without it the flipped target can make the game
  collapse.
* Failure cases show what the numbers hide: a faint edit, something else changed, or a wrong judge.

**Going further.** [docs/going_further.md](../docs/going_further.md) takes each idea of the course
further (gradient reversal, attribute leakage and probes, other adversaries, linear projection, later
face editors, attribute control without disentanglement); [docs/cheatsheet.md](../docs/cheatsheet.md)
has the whole course on one page.'''},
    ],
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply(nb, edits: list[dict], force: bool = False) -> tuple[list[str], list[str]]:
    """Apply ``edits`` to the notebook ``nb`` in place; return (what changed, what was refused)."""
    changed, refused = [], []
    for e in edits:
        ids = [c.get("id") for c in nb.cells]
        if "insert" in e:
            if e["insert"] in ids:
                cell = nb.cells[ids.index(e["insert"])]
                if cell.source != e["new"]:
                    cell.source = e["new"]
                    changed.append(f"{e['insert']} (updated)")
                continue
            assert e["after"] in ids, f"cell {e['after']} not found: cannot insert {e['insert']} after it"
            cell = nbformat.v4.new_markdown_cell(e["new"])
            cell.id = e["insert"]
            nb.cells.insert(ids.index(e["after"]) + 1, cell)
            changed.append(f"{e['insert']} (inserted after {e['after']})")
            continue
        assert not e["id"].startswith(("ex-", "ans-")), e["id"]
        assert e["id"] in ids, f"cell {e['id']} not found"
        cell = nb.cells[ids.index(e["id"])]
        assert cell.cell_type == e["type"], f"cell {e['id']} is a {cell.cell_type} cell, expected {e['type']}"
        if cell.source == e["new"]:
            continue
        if sha(cell.source) != e["old_sha"] and not force:
            refused.append(e["id"])
            continue
        cell.source = e["new"]  # the source only: metadata, tags and outputs stay as they are
        changed.append(e["id"])
    return changed, refused


def notebook_folder(root: Path) -> Path:
    return root / "notebooks" if (root / "notebooks").is_dir() else root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository (or a folder of notebooks) to edit; default: this repository")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if an edit is still to be made")
    parser.add_argument("--force", action="store_true", help="replace cells edited since this script was written")
    args = parser.parse_args(argv)
    folder = notebook_folder(args.root)
    pending, refused_all = False, []
    for name, edits in EDITS.items():
        path = folder / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        changed, refused = apply(nb, edits, force=args.force)
        refused_all += [f"{name}: {cid}" for cid in refused]
        if changed:
            pending = True
            nbformat.validate(nb)
            if not args.check:
                path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
            print(f"{name}: {'to change' if args.check else 'changed'}: {', '.join(changed)}")
        else:
            print(f"{name}: nothing to change")
    if refused_all:
        print("not replaced, edited since this script was written (look, then rerun with --force):\n  "
              + "\n  ".join(refused_all), file=sys.stderr)
        return 2
    return 1 if (args.check and pending) else 0


if __name__ == "__main__":
    sys.exit(main())

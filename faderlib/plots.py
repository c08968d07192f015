"""Training curves: a static figure of a run's metrics, and a live one for notebooks."""

from __future__ import annotations

from matplotlib.figure import Figure


def plot_training(metrics, majority_rates: dict[str, float] | None = None, title: str = "") -> Figure:
    """Four panels from a metrics log (:func:`faderlib.train.read_metrics`): the
    reconstruction loss (train and validation), the discriminator's loss, its accuracy
    (with the majority rate it should fall to), and the schedule of lambda_E."""
    train = metrics[metrics["phase"] == "train"]
    valid = metrics[metrics["phase"] == "valid"]
    fig = Figure(figsize=(12, 3.2), layout="constrained")
    ax = fig.subplots(1, 4)
    ax[0].plot(train["step"], train["rec_loss"], label="train")
    if len(valid):
        ax[0].plot(valid["step"], valid["rec_loss"], "o-", label="validation")
    ax[0].set(title="reconstruction MSE", xlabel="step", yscale="log")
    ax[0].legend()
    ax[1].plot(train["step"], train["dis_loss"], color="C2")
    ax[1].set(title="discriminator loss (eq. 1)", xlabel="step")
    ax[2].plot(train["step"], train["dis_accuracy"], color="C3", label="train batches")
    for col in (c for c in valid.columns if c.startswith("dis_accuracy/")):
        ax[2].plot(valid["step"], valid[col], "o-", ms=3, label=col.split("/", 1)[1] + " (valid)")
    for name, rate in (majority_rates or {}).items():
        ax[2].axhline(rate, ls="--", lw=1, color="grey")
        ax[2].annotate(f"majority {name}", (0, rate), fontsize=7, color="grey", va="bottom")
    ax[2].set(title="discriminator accuracy", xlabel="step", ylim=(0, 1.02))
    ax[2].legend(fontsize=7)
    ax[3].plot(train["step"], train["lambda_e"], color="C4")
    ax[3].set(title="lambda_E", xlabel="step")
    if title:
        fig.suptitle(title)
    return fig


class LiveLossPlot:
    """A training callback that redraws :func:`plot_training` in a notebook cell every
    ``every`` logged rows (pass it in ``Trainer(..., callbacks=[LiveLossPlot()])``)."""

    def __init__(self, every: int = 4):
        self.every = every
        self.rows: list[dict] = []
        self.handle = None

    def __call__(self, trainer, row: dict) -> None:
        import pandas as pd
        from IPython.display import display

        self.rows.append(row)
        if len(self.rows) % self.every:
            return
        fig = plot_training(pd.DataFrame(self.rows))
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)

"""The tiny training configuration the feed and lab tests share (32 px, 20 steps: seconds)."""

from faderlib.train import TrainConfig


def tiny(data_dir, **kw) -> TrainConfig:
    values = dict(data_dir=str(data_dir), attributes=("Male", "Smiling"), image_size=32, steps=20, batch_size=8,
                  lambda_e=0.05, lambda_ramp=10, checkpoint_every=10, eval_every=10, eval_images=16, log_every=5,
                  device="cpu", precision="fp32")
    values.update(kw)
    return TrainConfig(**values)

"""Run by tests/test_distributed.py under torchrun: train a few steps with DDP (gloo, CPU),
then gather every rank's weights and let rank 0 write whether they are identical."""

import json
import sys

import torch
import torch.distributed as dist

from faderlib.train import TrainConfig, Trainer

data_dir, run_dir, report = sys.argv[1:4]
config = TrainConfig(data_dir=data_dir, attributes=("Male", "Smiling"), image_size=32, steps=6, batch_size=4,
                     lambda_e=0.05, lambda_ramp=2, checkpoint_every=3, eval_every=6, eval_images=8, log_every=2,
                     device="cpu")
trainer = Trainer(config, run_dir, progress=False)
trainer.train()
# parameters (BatchNorm's running statistics are buffers, synchronised from rank 0 at each forward)
flat = torch.cat([p.detach().flatten().double() for p in list(trainer.ae.parameters()) + list(trainer.dis.parameters())])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
# the ranks drew different batches: check that they did, so that equality means synchronisation
batch = trainer.train_set.sample(4, trainer.generator)[1].double().flatten()
batches = [torch.zeros_like(batch) for _ in range(dist.get_world_size())]
dist.all_gather(batches, batch)
if dist.get_rank() == 0:
    json.dump({"world": dist.get_world_size(), "step": trainer.step,
               "max_diff": max(float((g - gathered[0]).abs().max()) for g in gathered),
               "batches_differ": any(not torch.equal(b, batches[0]) for b in batches[1:])}, open(report, "w"))
trainer.close()

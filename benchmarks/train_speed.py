"""Training speed of the paper's VIB model (784-1024-1024-2x256, K=256) at batch 100.

Prints, all measured in this one run:
  * the machine's fp32 matmul peak (a 2048x2048 matmul);
  * vib-bench's training loop (tensors in memory, fused Adam, EMA): examples/s, GFLOP/s and the
    fraction of the peak it reaches (nominal 6 x MACs per example, as the issue counts it);
  * the common loop: torchvision-style dataset (PIL image + ToTensor per sample) through a
    DataLoader, plain Adam; and the speed-up of ours over it.

    python benchmarks/train_speed.py [--steps 300] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def mnist_like(n=10_000):
    """Real MNIST if the data set is available locally, else random images of the same shape."""
    from bench.data import load_dataset
    from bench.errors import BenchError

    try:
        ds = load_dataset("mnist")
        x, y = ds.split("train")
        return x[:n], y[:n], "MNIST"
    except BenchError:
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), "random 28x28"


def time_ours(model_name, x, y, steps, warmup, device):
    import copy

    from bench.train.recipe import TrainConfig, make_optimizer, make_train_step
    from models import create_model

    torch.manual_seed(0)
    model = create_model(model_name).to(device).train()
    ema = copy.deepcopy(model)
    cfg = TrainConfig()
    step = make_train_step(model, ema, make_optimizer([p for p in model.parameters()], cfg, device), cfg)
    x, y = x.to(device), y.to(device)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g).to(device)
    per_step = []
    for i in range(warmup + steps):
        j = (i * 100) % (len(x) - 100)
        idx = perm[j : j + 100]
        t0 = time.perf_counter()
        step(x[idx], y[idx], i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            per_step.append(time.perf_counter() - t0)
    return model, per_step


def time_dataloader(model_name, x, y, steps, warmup):
    """The loop most tutorials write: a torchvision dataset of PIL images, ToTensor, DataLoader."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from models import create_model

    images = (x[:, 0] * 255).round().to(torch.uint8).numpy()
    labels = y.numpy()

    class TorchvisionStyleMNIST(Dataset):  # what torchvision.datasets.MNIST.__getitem__ does
        def __init__(self):
            self.transform = transforms.ToTensor()

        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            img = Image.fromarray(images[i], mode="L")
            return self.transform(img), int(labels[i])

    torch.manual_seed(0)
    model = create_model(model_name).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
    loader = DataLoader(TorchvisionStyleMNIST(), batch_size=100, shuffle=True, num_workers=0)
    per_step, i = [], 0
    while i < warmup + steps:
        t0 = time.perf_counter()
        for xb, yb in loader:
            loss, _ = model.loss(xb, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t1 = time.perf_counter()
            if i >= warmup:
                per_step.append(t1 - t0)
            t0, i = t1, i + 1
            if i >= warmup + steps:
                break
    return per_step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--model", default="vib_beta1e-3")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-baseline", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from bench.env import device_name
    from bench.flops import matmul_peak_gflops, train_flops_per_example

    x, y, what = mnist_like()
    peak = matmul_peak_gflops(device, seconds=2.0)
    model, ours = time_ours(args.model, x, y, args.steps, args.warmup, device)
    flops = train_flops_per_example(model)
    med = statistics.median(ours)
    ex_s = 100 / med
    gflops = flops * ex_s / 1e9
    print(
        f"device: {device_name(device)} ({device}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"data: {what}"
    )
    print(
        f"model: {args.model}, {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{flops / 1e6:.1f} MFLOP per training example (6 x MACs)"
    )
    print(f"fp32 matmul peak (2048x2048):          {peak:8.1f} GFLOP/s")
    print(
        f"vib-bench loop:   {med * 1e3:7.2f} ms/step  {ex_s:9.0f} examples/s  {gflops:7.1f} GFLOP/s  "
        f"= {gflops / peak:.2f} of peak   (median of {len(ours)} steps, IQR "
        f"{(statistics.quantiles(ours, n=4)[2] - statistics.quantiles(ours, n=4)[0]) * 1e3:.2f} ms)"
    )
    print(f"  -> one MNIST epoch (50,000 examples) ~ {50_000 / ex_s:.1f} s")
    if not args.skip_baseline and device.type == "cpu":
        base = time_dataloader(args.model, x, y, max(args.steps // 3, 50), 10)
        bmed = statistics.median(base)
        print(
            f"DataLoader loop:  {bmed * 1e3:7.2f} ms/step  {100 / bmed:9.0f} examples/s  "
            f"{flops * 100 / bmed / 1e9:7.1f} GFLOP/s  = {flops * 100 / bmed / 1e9 / peak:.2f} of peak"
        )
        print(f"speed-up of vib-bench's loop over the DataLoader loop: {bmed / med:.2f}x")


if __name__ == "__main__":
    main()

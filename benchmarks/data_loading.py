"""``python -m benchmarks.data_loading``: DataLoader workers, chainrule (threads) against PyTorch
(processes), on datasets whose ``__getitem__`` reads files.

Two datasets of the same images: PNG files decoded with Pillow (file I/O and decoding, work that
releases Python's lock), and the same with 2 ms of latency per file added (a network disk or a
cold cache: waiting, which overlaps in any number of workers). Each loader runs whole epochs,
interleaved repetitions, median samples/s; ratios are chainrule / PyTorch at the same
``num_workers``. PyTorch's workers are started per epoch (its default, persistent_workers=False),
and so are ours.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import interleaved_medians, machine, set_threads


class PngFiles:
    """Images stored one PNG per example; ``latency`` seconds of waiting per read."""

    def __init__(self, folder: Path, count: int, latency: float = 0.0):
        self.paths, self.latency = sorted(folder.glob("*.png"))[:count], latency

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        if self.latency:
            time.sleep(self.latency)
        with Image.open(self.paths[i]) as image:
            pixels = np.asarray(image, dtype=np.float32) / 255
        return pixels.transpose(2, 0, 1), i % 10


def write_pngs(folder: Path, count: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        smooth = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        image = Image.fromarray(smooth).resize((size, size), Image.BILINEAR)
        image.save(folder / f"{i:05d}.png")


def epoch_runner(make_loader):
    def run():
        started, seen = time.perf_counter(), 0
        for x, _ in make_loader():
            seen += len(x)
        return seen / (time.perf_counter() - started)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_loading", description=__doc__)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="0,2,4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    set_threads(1)

    import torch
    import torch.utils.data

    import chainrule as cr

    workers = [int(w) for w in args.workers.split(",")]
    print(machine())
    print(f"{args.images} PNG images {args.size}x{args.size} RGB, batch {args.batch_size}\n")
    print("| dataset | workers | chainrule (threads), samples/s | PyTorch (processes) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        write_pngs(Path(folder), args.images, args.size)
        for label, latency in (("PNG files", 0.0), ("PNG files + 2 ms latency", 0.002)):
            dataset = PngFiles(Path(folder), args.images, latency)
            for n in workers:
                runners = {
                    "chainrule": epoch_runner(
                        lambda n=n, d=dataset: cr.utils.data.DataLoader(
                            d, batch_size=args.batch_size, shuffle=True, num_workers=n
                        )
                    ),
                    "pytorch": epoch_runner(
                        lambda n=n, d=dataset: torch.utils.data.DataLoader(
                            d, batch_size=args.batch_size, shuffle=True, num_workers=n
                        )
                    ),
                }
                speed = interleaved_medians(runners, args.repeats)
                ratio = speed["chainrule"] / speed["pytorch"]
                print(
                    f"| {label} | {n} | {speed['chainrule']:,.0f} | {speed['pytorch']:,.0f} | "
                    f"{ratio:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

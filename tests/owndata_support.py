"""Small generated datasets as researchers keep them: a folder of PNGs per class, a folder of .txt
files per class, a CSV of pixel rows, a CSV with a text column. Each class is easy to tell apart,
so a tiny search gets above chance in a few seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

POS = ["good", "great", "fine", "lovely", "superb", "warm", "bright", "happy"]
NEG = ["bad", "awful", "dull", "boring", "poor", "cold", "grim", "sad"]

FAST_CNN = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_size": 16,
            "batch_norm": False, "optimizer": "adam", "learning_rate": (5e-3, 1e-2), "activation": "relu",
            "pooling": "max", "dropout": 0.0}
FAST_LSTM = {"embedding_dim": 16, "lstm_units": 16, "lstm_layers": 1, "bidirectional": False, "dense_layers": 0,
             "optimizer": "adam", "learning_rate": (1e-2, 2e-2), "batch_size": 16, "dropout": 0.0,
             "embedding_dropout": 0.0}


def images(n: int = 40, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (2n, size, size): class 0 dark noise, class 1 a bright square on dark noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (2 * n, size, size)).astype("uint8")
    x[n:, 2:-2, 2:-2] += 180
    return x, np.repeat([0, 1], n)


def sentences(n: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(["the", "film", "was", *rng.choice(words, 3)]) for words in (POS, NEG) for _ in range(n)]
    return texts, ["pos"] * n + ["neg"] * n


def png_folder(root: Path, n: int = 40) -> Path:
    from PIL import Image

    x, y = images(n)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / ("square" if label else "plain")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


def text_folder(root: Path, n: int = 40) -> Path:
    texts, labels = sentences(n)
    for i, (text, label) in enumerate(zip(texts, labels)):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_7.txt").write_text(text + "<br /><br />", encoding="utf-8")
    return root


def pixel_csv(path: Path, n: int = 40) -> Path:
    x, y = images(n)
    df = pd.DataFrame(x.reshape(len(x), -1), columns=[f"pixel{i}" for i in range(x[0].size)])
    df.insert(0, "label", np.where(y == 1, "square", "plain"))
    df.to_csv(path, index=False)
    return path


def text_csv(path: Path, n: int = 40) -> Path:
    texts, labels = sentences(n)
    pd.DataFrame({"id": range(len(texts)), "review": texts, "sentiment": labels}).to_csv(path, index=False)
    return path

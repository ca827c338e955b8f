"""The backup benchmark's corpus: three successive checkpoints of a model in safetensors
layout, and a directory of 10,000 small JSON files (configs and metrics).

Each checkpoint (``ckpt-1``, ``ckpt-2``, ``ckpt-3``, ~1 GB at scale 1) is a decoder-only
model's float32 weights, normal(0, 0.02) as trained weights look (norm weights around 1),
in 3-4 shard files ``model-0000i-of-0000n.safetensors`` plus ``model.safetensors.index.json``
and ``config.json``: token embedding and untied LM head, and per layer the q/k/v/o
projections with q/k/v biases, the gate/up/down MLP matrices and two RMS norms. Each
checkpoint after the first is the one before with ~10% of the tensors (~10% of the bytes)
rewritten whole with new values, in place (same offsets), and its header's step changed.

Imported by ``backup.py`` beside it (``python benchmarks/X.py`` puts this folder on the path).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHECKPOINT_BYTES = 1_000_000_000
JSON_FILES = 10_000
CHANGED_FRACTION = 0.10
CHUNK = 1 << 23  # values generated at a time


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    norm: bool = False
    shard: int = 0
    begin: int = 0  # offsets within the shard's data section

    @property
    def nbytes(self) -> int:
        return 4 * math.prod(self.shape)


@dataclass
class Corpus:
    root: Path
    checkpoints: list[str]
    json_dir: str
    tensors: int
    changed: list[tuple[int, int]] = field(default_factory=list)
    """Per checkpoint after the first: (tensors rewritten, bytes rewritten)."""

    def logical_bytes(self, *names: str) -> int:
        return sum(p.stat().st_size for name in names for p in (self.root / name).rglob("*")
                   if p.is_file())


def layout(scale: float) -> tuple[list[Tensor], dict[str, object]]:
    """The model's tensors, sized so that they total ~1 GB x scale (every matrix has one
    dimension scaled by sqrt(scale), so the number of layers stays about the same)."""
    r = math.sqrt(scale)
    hidden = max(64, round(1536 * r / 64) * 64)
    inter = max(128, round(hidden * 8 / 3 / 64) * 64)
    vocab = max(512, round(32000 * r / 64) * 64)
    per_layer = 4 * hidden * hidden + 3 * hidden * inter + 5 * hidden
    layers = max(2, round((CHECKPOINT_BYTES * scale / 4 - 2 * vocab * hidden) / per_layer))
    tensors = [Tensor("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors.append(Tensor(p + "input_layernorm.weight", (hidden,), norm=True))
        for proj in "qkvo":
            tensors.append(Tensor(p + f"self_attn.{proj}_proj.weight", (hidden, hidden)))
            if proj != "o":
                tensors.append(Tensor(p + f"self_attn.{proj}_proj.bias", (hidden,)))
        tensors.append(Tensor(p + "post_attention_layernorm.weight", (hidden,), norm=True))
        tensors += [Tensor(p + "mlp.gate_proj.weight", (inter, hidden)),
                    Tensor(p + "mlp.up_proj.weight", (inter, hidden)),
                    Tensor(p + "mlp.down_proj.weight", (hidden, inter))]
    tensors += [Tensor("model.norm.weight", (hidden,), norm=True),
                Tensor("lm_head.weight", (vocab, hidden))]
    config: dict[str, object] = {
        "hidden_size": hidden, "intermediate_size": inter, "vocab_size": vocab,
        "num_hidden_layers": layers, "torch_dtype": "float32"}
    return tensors, config


def shard(tensors: list[Tensor]) -> list[list[Tensor]]:
    """Split in file order into shards of at most a third of the total (3-4 files)."""
    limit = sum(t.nbytes for t in tensors) / 3
    shards: list[list[Tensor]] = [[]]
    size = 0
    for t in tensors:
        if shards[-1] and size + t.nbytes > limit:
            shards.append([])
            size = 0
        t.shard, t.begin = len(shards) - 1, size
        shards[-1].append(t)
        size += t.nbytes
    return shards


def header(tensors: list[Tensor], step: int) -> bytes:
    """The safetensors header: u64 little-endian length, then JSON padded to 8 bytes."""
    meta: dict[str, object] = {"__metadata__": {"format": "pt", "step": str(step)}}
    for t in tensors:
        meta[t.name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [t.begin, t.begin + t.nbytes]}
    text = json.dumps(meta, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write_values(f: object, t: Tensor, rng: np.random.Generator) -> None:
    left = t.nbytes // 4
    while left:
        n = min(left, CHUNK)
        values = rng.standard_normal(n, dtype=np.float32)
        values *= np.float32(0.02)
        if t.norm:
            values += np.float32(1.0)
        values.tofile(f)  # type: ignore[arg-type]
        left -= n


def shard_name(i: int, n: int) -> str:
    return f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def write_checkpoint(out: Path, shards: list[list[Tensor]], config: dict[str, object],
                     rng: np.random.Generator, step: int) -> None:
    out.mkdir(parents=True)
    for i, tensors in enumerate(shards):
        with (out / shard_name(i, len(shards))).open("wb") as f:
            f.write(header(tensors, step))
            for t in tensors:
                write_values(f, t, rng)
    weight_map = {t.name: shard_name(t.shard, len(shards)) for s in shards for t in s}
    total = sum(t.nbytes for s in shards for t in s)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (out / "config.json").write_text(json.dumps(config, indent=2))


def rewrite(prev: Path, out: Path, shards: list[list[Tensor]], rng: np.random.Generator,
            step: int) -> tuple[int, int]:
    """``out`` = ``prev`` with ~10% of the tensors' bytes rewritten whole (tensors chosen at
    random among those that fit the budget); (tensors, bytes) rewritten."""
    shutil.copytree(prev, out)
    tensors = [t for s in shards for t in s]
    budget = CHANGED_FRACTION * sum(t.nbytes for t in tensors)
    order = list(range(len(tensors)))
    random.Random(int(rng.integers(1 << 31))).shuffle(order)
    chosen: list[Tensor] = []
    size = 0
    for i in order:
        if size + tensors[i].nbytes <= budget * 1.1:
            chosen.append(tensors[i])
            size += tensors[i].nbytes
        if size >= budget * 0.9:
            break
    for i, members in enumerate(shards):
        with (out / shard_name(i, len(shards))).open("r+b") as f:
            head = header(members, step)
            f.write(head)
            for t in sorted((t for t in chosen if t.shard == i), key=lambda t: t.begin):
                f.seek(len(head) + t.begin)
                write_values(f, t, rng)
    return len(chosen), size


def write_json(out: Path, rng: random.Random) -> None:
    """10,000 JSON files of 200 B - 4 KB, 100 runs x 100 files of configs and metrics."""
    kinds = ("config", "metrics", "eval", "optimizer")
    for i in range(JSON_FILES):
        run, j = divmod(i, 100)
        folder = out / f"run-{run:03d}"
        if j == 0:
            folder.mkdir(parents=True)
        kind = kinds[j % len(kinds)]
        target = rng.randint(200, 4096)
        doc: dict[str, object] = {"run": f"run-{run:03d}", "step": j * 500, "kind": kind,
                                  "lr": round(3e-4 * rng.random(), 8), "seed": rng.randint(0, 9999)}
        text = json.dumps(doc)
        count = max(0, (target - len(text) - 14) // 11)
        doc["values"] = [round(rng.gauss(2.0, 0.5), 6) for _ in range(count)]
        (folder / f"{kind}-{j:03d}.json").write_text(json.dumps(doc))


def build(root: Path, scale: float, seed: int = 1) -> Corpus:
    tensors, config = layout(scale)
    shards = shard(tensors)
    rng = np.random.default_rng(seed)
    corpus = Corpus(root, ["ckpt-1", "ckpt-2", "ckpt-3"], "json", len(tensors))
    write_checkpoint(root / "ckpt-1", shards, config, rng, 1000)
    for k in (2, 3):
        corpus.changed.append(rewrite(root / f"ckpt-{k - 1}", root / f"ckpt-{k}", shards,
                                      rng, 1000 * k))
    write_json(root / corpus.json_dir, random.Random(seed))
    return corpus

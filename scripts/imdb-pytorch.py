#!/usr/bin/env python3
"""The plain IMDB recipe a PyTorch user writes first, for issue 28's comparison with
`seqlab classify` (docs/text-classification.md): the same tokens as seqlab's `--tokenizer word`
(lower-cased words and single punctuation marks, `<br />` read as a space), a vocabulary of the
30,000 most frequent tokens seen at least twice, at most 400 tokens a review, embedding 100, one
bidirectional LSTM of 128 (over the padded batch, or packed to each review's length with
--packed), the mean over its real steps, a
linear read-out; Adam, batches of 64 shuffled each epoch, 2 epochs, a stratified 80/20 split.
Options choose the schedule (constant, or fastai's one-cycle as seqlab trains) and clipping.

    pip install torch
    python3 scripts/imdb-pytorch.py --csv reviews.csv --seed 0

Prints one line per epoch (held-out accuracy, seconds) and a last JSON line.
"""

import argparse
import collections
import csv
import json
import math
import random
import re
import sys
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

TOKEN = re.compile(r"(?:[^\W_]|')+|[^\w\s]|_")


def tokens(text):
    return TOKEN.findall(text.replace("<br />", " ").replace("<br/>", " ").lower())


def read(path, text_col, label_col):
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r[text_col] for r in rows], [r[label_col] for r in rows]


def stratified_split(labels, valid_fraction, seed):
    rng = random.Random(seed)
    by_class = collections.defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    train, valid = [], []
    for label in sorted(by_class):
        rows = by_class[label]
        rng.shuffle(rows)
        take = round(len(rows) * valid_fraction)
        valid += rows[:take]
        train += rows[take:]
    return sorted(train), sorted(valid)


class Classifier(nn.Module):
    def __init__(self, vocab, embedding, hidden, classes, packed):
        super().__init__()
        self.packed = packed
        self.embedding = nn.Embedding(vocab, embedding, padding_idx=0)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * hidden, classes)

    def forward(self, ids, lengths):
        embedded = self.embedding(ids)
        if self.packed:
            packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True)
        else:
            # The padded batch as is: the backward direction reads the padding first.
            out, _ = self.lstm(embedded)
            steps = torch.arange(out.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
            out = out * steps.unsqueeze(2).to(out.dtype)
        mean = out.sum(1) / lengths.unsqueeze(1).to(out.dtype)
        return self.output(mean)


def one_cycle(step, total, peak, pct=0.25, div=25.0, div_final=1e5):
    """fastai's fit_one_cycle learning rate at `step` of `total` (cosine up, cosine down)."""
    warm = pct * total
    if step < warm:
        lo, hi, t = peak / div, peak, step / warm
    else:
        lo, hi, t = peak, peak / div_final, (step - warm) / (total - warm)
    return hi + (lo - hi) * (1 + math.cos(math.pi * t)) / 2


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--text-col", default="text")
    p.add_argument("--label-col", default="label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--schedule", choices=["constant", "one-cycle"], default="constant")
    p.add_argument("--clip", type=float, default=1.0, help="global gradient norm (0: none)")
    p.add_argument("--packed", action="store_true",
                   help="pack each batch to its lengths (exact, but 4-7x slower on this CPU)")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    texts, labels = read(a.csv, a.text_col, a.label_col)
    classes = sorted(set(labels))
    train, valid = stratified_split(labels, 0.2, a.seed)
    tokenised = [tokens(t)[:400] for t in texts]
    counts = collections.Counter(tok for i in train for tok in tokenised[i])
    itos = ["<pad>", "<unk>"] + [t for t, c in counts.most_common(30000 - 2) if c >= 2]
    stoi = {t: i for i, t in enumerate(itos)}
    ids = [[stoi.get(t, 1) for t in toks] or [1] for toks in tokenised]
    y = [classes.index(l) for l in labels]
    model = Classifier(len(itos), 100, 128, len(classes), a.packed)
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    batches_per_epoch = math.ceil(len(train) / 64)
    total = a.epochs * batches_per_epoch

    def batch(rows):
        lengths = torch.tensor([len(ids[r]) for r in rows])
        padded = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for k, r in enumerate(rows):
            padded[k, : len(ids[r])] = torch.tensor(ids[r])
        return padded, lengths, torch.tensor([y[r] for r in rows])

    step, accuracies, start = 0, [], time.time()
    rng = random.Random(a.seed)
    for epoch in range(a.epochs):
        model.train()
        order = train[:]
        rng.shuffle(order)
        for b in range(0, len(order), 64):
            lr = a.lr if a.schedule == "constant" else one_cycle(step, total, a.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, lengths, target = batch(order[b : b + 64])
            loss = nn.functional.cross_entropy(model(x, lengths), target)
            optimizer.zero_grad()
            loss.backward()
            if a.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            optimizer.step()
            step += 1
            if step % 100 == 0:
                print(f"  step {step}/{total}, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
        model.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(valid), 256):
                x, lengths, target = batch(valid[b : b + 256])
                correct += (model(x, lengths).argmax(1) == target).sum().item()
        accuracies.append(correct / len(valid))
        print(f"epoch {epoch}: accuracy {accuracies[-1]:.4f}, {time.time() - start:.0f} s", flush=True)
    print(json.dumps({"seed": a.seed, "schedule": a.schedule, "clip": a.clip, "packed": a.packed,
                      "accuracy": accuracies, "seconds": time.time() - start,
                      "vocab": len(itos), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

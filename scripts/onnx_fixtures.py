#!/usr/bin/env python
"""Writes the ONNX files exported from PyTorch that seqlab's import tests read.

Needs `pip install torch onnx onnxscript` (CI does not: the fixtures are committed).
Run from the repository root:  python scripts/onnx_fixtures.py

tests/fixtures/onnx/, for each model: NAME.onnx (from torch.onnx.export) and NAME.json (its
input and PyTorch's outputs, float64 values of float32 runs):
- lstm_lm: Embedding(20, 8) -> LSTM(8, 12, 2 layers) -> Linear(12, 20), with the state in and
  out, exported by torch.onnx.export's default exporter (torch.export, dynamo=True).
- lstm_lm_legacy: the same model through the TorchScript exporter (dynamo=False).
- bigru_classifier: Embedding(30, 6) -> bidirectional GRU(6, 8) over pack_padded_sequence ->
  pad_packed_sequence -> the mean over each sequence's own steps -> Linear(16, 3), through
  the TorchScript exporter: torch 2.15's torch.export cannot trace pack_padded_sequence, and
  neither exporter traces a packed GRU's h_n (see docs/onnx.md).
"""
import json
import os
import warnings

import onnx
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

warnings.filterwarnings("ignore")
OUT = os.path.join("tests", "fixtures", "onnx")


def flat(t):
    return {"shape": list(t.shape), "data": [round(float(v), 9) for v in t.detach().reshape(-1)]}


class LstmLm(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 12, 2, batch_first=True)
        self.out = nn.Linear(12, 20)

    def forward(self, tokens, h0, c0):
        y, (h, c) = self.rnn(self.emb(tokens), (h0, c0))
        return self.out(y), h, c


class BiGruClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 6)
        self.rnn = nn.GRU(6, 8, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(16, 3)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.emb(tokens), lengths, batch_first=True)
        y, _ = self.rnn(packed)
        y, _ = pad_packed_sequence(y, batch_first=True)
        return self.out(y.sum(1) / lengths.unsqueeze(1))


def write(name, model, inputs, input_names, output_names, dynamic_axes, dynamo):
    path = os.path.join(OUT, f"{name}.onnx")
    kwargs = {"dynamo": dynamo}
    if not dynamo:
        kwargs.update(dynamic_axes=dynamic_axes, opset_version=17)
    torch.onnx.export(model, inputs, path, input_names=input_names,
                      output_names=output_names, **kwargs)
    # The default exporter puts the weights in a side file (PATH.data): one file is kept.
    onnx.save(onnx.load(path), path)
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    with torch.no_grad():
        outputs = model(*inputs)
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    case = {
        "inputs": {n: flat(t) for n, t in zip(input_names, inputs)},
        "outputs": {n: flat(t) for n, t in zip(output_names, outputs)},
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(case, f)
    print(f"wrote {path}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    lm = LstmLm().eval()
    tokens = torch.randint(0, 20, (3, 7))
    h0, c0 = torch.randn(2, 3, 12) * 0.5, torch.randn(2, 3, 12) * 0.5
    names = (["tokens", "h0", "c0"], ["logits", "h_n", "c_n"])
    state_axes = {"tokens": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"}}
    write("lstm_lm", lm, (tokens, h0, c0), *names, None, True)
    write("lstm_lm_legacy", lm, (tokens, h0, c0), *names, state_axes, False)

    torch.manual_seed(1)
    classifier = BiGruClassifier().eval()
    lengths = torch.tensor([9, 6, 4, 1])
    tokens = torch.randint(1, 30, (4, 9))
    for b, length in enumerate(lengths):
        tokens[b, length:] = 0
    write("bigru_classifier", classifier, (tokens, lengths), ["tokens", "lengths"], ["logits"],
          {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, False)


if __name__ == "__main__":
    main()

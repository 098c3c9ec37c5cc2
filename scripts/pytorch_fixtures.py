#!/usr/bin/env python
"""Writes the PyTorch parity fixtures that seqlab's tests compare against.

Needs `pip install torch safetensors` (CI does not: the fixtures are committed).
Run from the repository root:  python scripts/pytorch_fixtures.py

tests/fixtures/pytorch/recurrent.json: for each case, nn.RNN / nn.LSTM / nn.GRU with random
weights (PyTorch's names), a random input (and initial state, and lengths through
pack_padded_sequence), the outputs, the final states, and the gradients of the scalar loss
    sum(out * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c)]
with respect to the input, the initial state and every weight. Float64 values of float32 runs.

tests/fixtures/pytorch/tiny_lm.safetensors and tiny_lm.pt: the state_dict of Embedding(11, 4)
-> LSTM(4, 6, 2 layers) -> Linear(6, 11), saved by safetensors and by torch.save, with
tiny_lm.json holding an input and its logits, for the state_dict import tests.
"""
import json
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OUT = os.path.join("tests", "fixtures", "pytorch")


def flat(t):
    return {"shape": list(t.shape), "data": [round(float(v), 9) for v in t.detach().reshape(-1)]}


def make_layer(kind, input_size, hidden, layers, bidirectional):
    if kind == "lstm":
        return nn.LSTM(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)
    if kind == "gru":
        return nn.GRU(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)
    nonlinearity = kind.split("_")[1]
    return nn.RNN(input_size, hidden, layers, nonlinearity=nonlinearity, batch_first=True,
                  bidirectional=bidirectional)


def case(name, kind, layers, bidirectional, with_state, lengths, seed):
    torch.manual_seed(seed)
    batch, time, input_size, hidden = 3, 5, 4, 6
    layer = make_layer(kind, input_size, hidden, layers, bidirectional)
    directions = 2 if bidirectional else 1
    x = torch.randn(batch, time, input_size, requires_grad=True)
    h0 = torch.randn(directions * layers, batch, hidden, requires_grad=True) if with_state else None
    c0 = (torch.randn(directions * layers, batch, hidden, requires_grad=True)
          if with_state and kind == "lstm" else None)
    state = None
    if with_state:
        state = (h0, c0) if kind == "lstm" else h0
    if lengths is None:
        out, final = layer(x, state)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
        out, final = layer(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=time)
    h_n, c_n = final if kind == "lstm" else (final, None)
    w_out = torch.randn_like(out)
    w_h = torch.randn_like(h_n)
    w_c = torch.randn_like(c_n) if c_n is not None else None
    loss = (out * w_out).sum() + (h_n * w_h).sum()
    if c_n is not None:
        loss = loss + (c_n * w_c).sum()
    loss.backward()
    grads = {"x": flat(x.grad)}
    if h0 is not None:
        grads["h0"] = flat(h0.grad)
    if c0 is not None:
        grads["c0"] = flat(c0.grad)
    for pname, p in layer.named_parameters():
        grads[pname] = flat(p.grad)
    return {
        "name": name, "kind": kind, "input_size": input_size, "hidden_size": hidden,
        "num_layers": layers, "bidirectional": bidirectional, "batch": batch, "time": time,
        "lengths": lengths,
        "params": {pname: flat(p) for pname, p in layer.named_parameters()},
        "x": flat(x), "h0": flat(h0) if h0 is not None else None,
        "c0": flat(c0) if c0 is not None else None,
        "w_out": flat(w_out), "w_h": flat(w_h), "w_c": flat(w_c) if w_c is not None else None,
        "out": flat(out), "h_n": flat(h_n), "c_n": flat(c_n) if c_n is not None else None,
        "loss": float(loss.detach()), "grads": grads,
    }


def tiny_lm():
    from safetensors.torch import save_file
    torch.manual_seed(7)

    class TinyLm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(11, 4)
            self.rnn = nn.LSTM(4, 6, 2, batch_first=True)
            self.output = nn.Linear(6, 11)

        def forward(self, tokens):
            return self.output(self.rnn(self.embedding(tokens))[0])

    model = TinyLm()
    tokens = torch.randint(0, 11, (2, 7))
    with torch.no_grad():
        logits = model(tokens)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(OUT, "tiny_lm.safetensors"))
    torch.save(model.state_dict(), os.path.join(OUT, "tiny_lm.pt"))
    with open(os.path.join(OUT, "tiny_lm.json"), "w") as f:
        json.dump({"tokens": tokens.tolist(), "logits": flat(logits)}, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases, seed = [], 0
    for kind in ["rnn_tanh", "rnn_relu", "lstm", "gru"]:
        for layers in [1, 2]:
            for bidirectional in [False, True]:
                for with_state in [False, True]:
                    for lengths in [None, [5, 2, 4]]:
                        seed += 1
                        name = (f"{kind}_l{layers}_{'bi' if bidirectional else 'uni'}"
                                f"_{'state' if with_state else 'zero'}"
                                f"_{'lengths' if lengths else 'full'}")
                        cases.append(case(name, kind, layers, bidirectional, with_state, lengths, seed))
    with open(os.path.join(OUT, "recurrent.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
    tiny_lm()
    print(f"wrote {len(cases)} cases and the tiny LM to {OUT}")


if __name__ == "__main__":
    main()

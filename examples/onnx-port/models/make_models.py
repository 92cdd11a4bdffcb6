"""Writes the ONNX files, PyTorch weights and expected values the onnx-port example tests use.

Run by hand from this folder (CI never needs PyTorch):

    pip install torch onnx onnxscript
    python3 make_models.py

Every value is stored as its f32 bit pattern, so NaN, infinities and -0 survive JSON.
"""

import json

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn import functional as F

torch.manual_seed(0)


def bits(tensor):
    return tensor.detach().numpy().astype(np.float32).view(np.uint32).ravel().tolist()


def special_inputs(rows, cols, lambdas):
    """Random values plus every edge a threshold has: ±λ, their neighbours, ±0, ±inf, NaN."""
    x = torch.randn(rows, cols) * 1.5
    edges = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-45, -1e-45]
    for lam in lambdas:
        lam = np.float32(lam)
        up, down = np.nextafter(lam, np.float32(np.inf)), np.nextafter(lam, np.float32(0))
        edges += [lam, -lam, up, -up, down, -down]
    flat = x.view(-1)
    flat[: len(edges)] = torch.tensor(edges, dtype=torch.float32)
    return x


class Pair(nn.Module):
    """Two Hardshrinks with elementwise work around them: every output is exact in f32."""

    def __init__(self):
        super().__init__()
        self.small = nn.Hardshrink(0.5)
        self.large = nn.Hardshrink(1.25)

    def forward(self, x):
        return self.small(x) + self.large(x * 2.0)


def export_pair():
    model = Pair().eval()
    # x * 2 crosses 1.25 where x crosses 0.625: put those edges in too.
    x = special_inputs(8, 16, [0.5, 0.625])
    common = dict(input_names=["x"], output_names=["y"])
    torch.onnx.export(model, (x,), "pair_torchscript.onnx", dynamo=False, opset_version=18,
                      dynamic_axes={"x": {0: "batch"}}, **common)
    torch.onnx.export(model, (x,), "pair_dynamo.onnx", dynamo=True, external_data=False,
                      **common)
    x.requires_grad_(True)
    y = model(x)
    weight = torch.randn_like(y)
    (y * weight).sum().backward()
    grad = x.grad.clone()
    # PyTorch's vectorised CPU backward gives 0 at NaN inputs, its scalar and CUDA paths pass
    # the gradient (pytorch/pytorch#195075, open); the scalar path is the rule burn-hardshrink
    # follows, so NaN entries take their gradient from one-element tensors.
    for index in torch.nonzero(torch.isnan(x)):
        one = x[tuple(index)].detach().reshape(1).requires_grad_(True)
        (model(one) * weight[tuple(index)]).sum().backward()
        grad[tuple(index)] = one.grad[0]
    expected = dict(shape=list(x.shape), x=bits(x), y=bits(y), weight=bits(weight),
                    grad=bits(grad))
    json.dump(expected, open("pair_expected.json", "w"))


def write_shrink_with_bias():
    """ONNX `Shrink` with a bias: not a Hardshrink, so Burn's own code runs it."""
    from onnx import TensorProto, helper

    node = helper.make_node("Shrink", ["x"], ["y"], lambd=0.5, bias=0.25)
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in "xy"]
    graph = helper.make_graph([node], "shrink_bias", [io[0]], [io[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, "shrink_bias.onnx")


class LearnedHardshrink(nn.Module):
    """The burn-hardshrink parametrisation: one threshold per feature, lambd = softplus(theta)."""

    def __init__(self, features, initial=0.5):
        super().__init__()
        theta = initial + np.log(-np.expm1(-initial))  # softplus's inverse
        self.theta = nn.Parameter(torch.full((features,), float(theta)))

    def forward(self, x):
        lambd = F.softplus(self.theta)
        return torch.where(x.abs() <= lambd, torch.zeros_like(x), x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act1 = nn.Hardshrink(0.5)
        self.fc2 = nn.Linear(16, 4)
        self.act2 = LearnedHardshrink(4)

    def forward(self, x):
        return self.act2(self.fc2(self.act1(self.fc1(x))))


def train_and_save_net():
    """A few hundred Adam steps on a sparse target, so the thresholds move apart."""
    net = Net()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    teacher = torch.randn(8, 4)
    for _ in range(300):
        x = torch.randn(64, 8)
        target = F.hardshrink(x @ teacher, 1.0)
        # The hard threshold passes no gradient to theta: a soft surrogate trains it.
        lambd = F.softplus(net.act2.theta)
        z = net.fc2(net.act1(net.fc1(x)))
        soft = torch.sign(z) * F.relu(z.abs() - lambd)
        loss = F.mse_loss(soft, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    torch.save(net.state_dict(), "learned.pt")
    x = torch.randn(32, 8)
    with torch.no_grad():
        y = net(x)
    expected = dict(shape=list(x.shape), x=bits(x), y=bits(y),
                    lambd=bits(F.softplus(net.act2.theta)))
    json.dump(expected, open("learned_expected.json", "w"))
    print("trained thresholds:", F.softplus(net.act2.theta).detach().numpy())


def write_renamed_key():
    """The same weights under a key the Burn model does not have: the loader must name it."""
    state = torch.load("learned.pt")
    state["act2.threshold"] = state.pop("act2.theta")
    torch.save(state, "learned_renamed.pt")


if __name__ == "__main__":
    export_pair()
    write_shrink_with_bias()
    train_and_save_net()
    write_renamed_key()
    for name in ["pair_torchscript.onnx", "pair_dynamo.onnx"]:
        ops = [node.op_type for node in onnx.load(name).graph.node]
        print(name, ops)

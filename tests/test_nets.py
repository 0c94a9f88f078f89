"""The networks of §3.2 at the paper's size and at a smaller width."""

from __future__ import annotations

import pytest
import torch

from dsslic.compnet import CompNet
from dsslic.discriminator import MultiscaleDiscriminator
from dsslic.finenet import FineNet, RecNet


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_sizes():
    # pix2pixHD's global generator with 9 residual blocks: 45.6M parameters for a 3-channel input
    assert n_params(FineNet(0)) == pytest.approx(45.59e6, rel=1e-3)
    assert n_params(CompNet(0)) == pytest.approx(1.634e6, rel=1e-3)
    assert n_params(FineNet(0, width=32, n_blocks=6)) < n_params(FineNet(0)) / 5


def test_shapes_and_ranges():
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    s = torch.randint(0, 5, (2, 64, 96))
    c = CompNet(5, width=8)(x, s)
    assert c.shape == (2, 3, 8, 12) and c.abs().max() <= 1  # 1/8 of the size, tanh
    rec = RecNet(FineNet(5, width=8, n_blocks=2), alpha=8)
    y = rec(s, c)
    assert y.shape == x.shape
    assert torch.equal(RecNet(None, alpha=8)(s, c), torch.nn.functional.interpolate(c, scale_factor=8, mode="bilinear"))


def test_discriminators_two_scales():
    d = MultiscaleDiscriminator(3 + 6, width=8)
    outs = d(torch.rand(1, 9, 64, 64))
    assert len(outs) == 2 and len(outs[0]) == 5  # C64..C512 + the 1-channel output
    assert outs[0][-1].shape[1] == 1 and outs[1][-1].shape[-1] < outs[0][-1].shape[-1]

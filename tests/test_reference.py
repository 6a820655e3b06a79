"""The trusted side's ResNet18 (a spec and a functional forward, no torchvision) is torchvision's."""

import torch
import torchvision
from torch import nn

from assignments.notebook10 import reference
from assignments.notebook10 import seeded as probe


def _torchvision_adapted() -> nn.Module:
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def test_the_resnet18_spec_has_torchvisions_state_dict_names_shapes_and_order():
    theirs = [(k, tuple(v.shape)) for k, v in _torchvision_adapted().state_dict().items()]
    assert list(probe.resnet18_shapes().items()) == theirs


def test_the_functional_resnet18_computes_what_torchvisions_model_computes():
    params = probe.make_resnet_params(123)
    model = _torchvision_adapted()
    model.load_state_dict(params)
    x = probe.make_input([3, 1, 28, 28], 7)
    with torch.no_grad():
        want = model.eval()(x)
        got = reference.resnet18_forward(params, x)
    assert got.shape == (3, 2)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, reference.resnet18_forward(probe.make_resnet_params(124), x), atol=1e-3)

"""Convolutional image encoders that turn an image into a grid of feature vectors.

    enc = build_image_encoder("resnet18")          # or resnet34, mobilenet_v2, small
    grid = enc(images)                             # (B, 3, H, W) -> (B, C, H/r, W/r), r = enc.reduction
    feats = grid.flatten(2).transpose(1, 2)        # (B, S, C): what attention attends over

* ``resnet18`` / ``resnet34`` - He et al. 2016 ("Deep Residual Learning"), BasicBlock layout, the
  classifier dropped: features of ``layer4`` (512 channels, stride 32).
* ``mobilenet_v2`` - Sandler et al. 2018 (inverted residuals, width 1.0), the classifier dropped:
  features of the last 1x1 convolution (1280 channels, stride 32).
* ``small`` - four 3x3 conv + group-norm + ReLU stages for small images (64 px scenes): 128 channels,
  stride 8. Group norm, not batch norm: trained from scratch with batch norm, its running statistics
  left the eval-mode loss of the scene captioner 60% above the train-mode loss on the same batch.

The ResNet and MobileNet modules use torchvision's parameter names and shapes, so a ``state_dict`` saved
from ``torchvision.models.resnet18()`` (``torch.save(model.state_dict(), "r18.pth")``) loads with
:func:`load_encoder_weights`; its classifier (``fc.*`` / ``classifier.*``) is ignored. torchvision itself
is not needed and nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

ENCODERS = ("small", "resnet18", "resnet34", "mobilenet_v2")
CLASSIFIER_PREFIXES = ("fc.", "classifier.")


# ------------------------------------------------------------------------------------------ ResNet

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut; torchvision's names."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.downsample is None else self.downsample(x)
        return self.relu(out + short)


class ResNet(nn.Module):
    """ResNet with BasicBlocks; ``blocks`` per stage: (2, 2, 2, 2) = ResNet-18, (3, 4, 6, 3) = ResNet-34."""
    reduction = 32
    out_channels = 512

    def __init__(self, blocks: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, cout) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
            stride = 1 if i == 1 else 2
            layers = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layers))
            cin = cout
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))                 # (B, 64, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))         # (B, 512, H/32, W/32)


# --------------------------------------------------------------------------------------- MobileNet

def conv_bn_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation with ReLU6: keys ``0`` (conv) and ``1`` (batch norm)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear); residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    reduction = 32
    out_channels = 1280
    # expansion t, channels c, repeats n, first stride s (Sandler et al. 2018, table 2)
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_act(cin, self.out_channels, 1))
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)                                              # (B, 1280, H/32, W/32)


# ------------------------------------------------------------------------------------- small CNN

class SmallCNN(nn.Module):
    """For small images (32-96 px): 3x3 conv-GroupNorm(8)-ReLU stages of 32, 64, 128, 128 channels, stride 8."""
    reduction = 8
    out_channels = 128

    def __init__(self):
        super().__init__()
        chans, strides = (32, 64, 128, 128), (2, 2, 2, 1)
        layers: list[nn.Module] = []
        cin = 3
        for c, s in zip(chans, strides):
            layers += [nn.Conv2d(cin, c, 3, s, 1, bias=False), nn.GroupNorm(8, c), nn.ReLU(inplace=True)]
            cin = c
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)                                              # (B, 128, H/8, W/8)


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "small": SmallCNN,
    "resnet18": lambda: ResNet((2, 2, 2, 2)),
    "resnet34": lambda: ResNet((3, 4, 6, 3)),
    "mobilenet_v2": MobileNetV2,
}


def build_image_encoder(name: str) -> nn.Module:
    """A freshly initialised encoder; it has ``out_channels`` and ``reduction`` (input px per grid cell)."""
    if name not in BUILDERS:
        raise ValueError(f"image encoder must be one of {', '.join(ENCODERS)}, got {name!r}")
    return BUILDERS[name]()


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``torch.save``'d state_dict (read with ``weights_only=True``) or a ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--encoder-weights {path}: no such file")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises pickle, zip, EOF and runtime errors alike; all mean "not a state_dict"
        raise ValueError(f"--encoder-weights {path}: not a readable state_dict ({type(err).__name__}: {err})") from err
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ValueError(f"--encoder-weights {path}: expected a state_dict (parameter name -> tensor)")
    return sd


def load_encoder_weights(encoder: nn.Module, path: str | Path, name: str = "") -> int:
    """Load torchvision-layout weights into ``encoder`` (classifier keys ignored, ``module.`` prefixes of
    DataParallel stripped); every encoder key must be present with its shape. Returns tensors loaded."""
    sd = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    sd = {k: v for k, v in sd.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    own = encoder.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k}: file {tuple(sd[k].shape)}, encoder {tuple(own[k].shape)}" for k in own
             if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        what = f"a torchvision {name} state_dict" if name else "this encoder's state_dict"
        details = "; ".join(x for x in (
            f"missing {len(missing)} (e.g. {', '.join(missing[:3])})" if missing else "",
            f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
            f"wrong shapes: {'; '.join(wrong[:3])}" if wrong else "") if x)
        raise ValueError(f"--encoder-weights {path}: not {what}: {details}")
    encoder.load_state_dict(sd)
    return len(sd)

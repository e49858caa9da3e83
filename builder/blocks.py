"""The ResNeXt block in the paper's three forms, the basic block, and the network.

This file needs only torch: `builder.export` copies these definitions, as they are, into the
standalone model source, so the exported code and the app's model can never drift apart.

Forms (paper Fig. 3), for a block of C paths of width d (block width w = C*d):
  (a) C paths `1x1 in->d, 3x3 d->d, 1x1 d->out`, outputs summed, one BN on the sum;
  (b) C paths `1x1 in->d, 3x3 d->d`, outputs concatenated (w channels), one `1x1 w->out`;
  (c) `1x1 in->w`, `3x3 w->w, groups=C`, `1x1 w->out`: torchvision's Bottleneck, key for key.
BN follows every conv and ReLU every BN, except that the last ReLU comes after the shortcut
is added. The per-path BNs of (a) and (b) are channel slices of the BNs of (c).
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1, no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups,
                     bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """Form (c): 1x1 in->w, 3x3 w->w with groups=C, 1x1 w->out (torchvision's Bottleneck)."""

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        stride1, stride3 = (1, stride) if stride_on == "3x3" else (stride, 1)
        self.conv1 = conv1x1(in_channels, width, stride1)  # stride here only in ResNet v1
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride3, groups=cardinality)  # C groups of d
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (N, in, H, W) -> (N, w, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # -> (N, w, H/s, W/s), C groups
        out = self.bn3(self.conv3(out))  # -> (N, out, H/s, W/s)
        out += identity  # in place, as torchvision: BN's output is fresh, and not saved
        return self.relu(out)


class BottleneckPath(nn.Module):
    """One of the C paths of forms (a) and (b): 1x1 in->d, 3x3 d->d, and in form (a) only,
    1x1 d->out (`out_channels` set). Its BNs are d-channel slices of form (c)'s."""

    def __init__(self, in_channels: int, d: int, out_channels: int | None = None,
                 stride1: int = 1, stride3: int = 1):
        super().__init__()
        self.conv1 = conv1x1(in_channels, d, stride1)
        self.bn1 = nn.BatchNorm2d(d)
        self.conv2 = conv3x3(d, d, stride3)
        self.bn2 = nn.BatchNorm2d(d)
        self.conv3 = conv1x1(d, out_channels) if out_channels else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, in, H, W) -> (N, d, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # -> (N, d, H/s, W/s)
        return out if self.conv3 is None else self.conv3(out)  # (a): -> (N, out, H/s, W/s)


class AggregatedBottleneck(nn.Module):
    """Form (a): y = relu(x + BN(sum of C paths)), every path 1x1, 3x3, 1x1."""

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        stride1, stride3 = (1, stride) if stride_on == "3x3" else (stride, 1)
        d = width // cardinality
        self.paths = nn.ModuleList(
            BottleneckPath(in_channels, d, out_channels, stride1, stride3)
            for _ in range(cardinality))
        self.bn3 = nn.BatchNorm2d(out_channels)  # acts on the aggregated sum
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @staticmethod
    def aggregate(outputs) -> torch.Tensor:  # the paths' outputs, as they come
        return sum(outputs)  # one path at a time: two outputs held, not C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.aggregate(path(x) for path in self.paths)  # C x (N, out, H/s, W/s)
        out = self.bn3(out)
        out += identity  # in place: BN's output is fresh, and not saved for backward
        return self.relu(out)


class ConcatBottleneck(nn.Module):
    """Form (b): C paths of 1x1, 3x3, concatenated to w = C*d channels, then one 1x1 w->out."""

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        stride1, stride3 = (1, stride) if stride_on == "3x3" else (stride, 1)
        d = width // cardinality
        self.paths = nn.ModuleList(
            BottleneckPath(in_channels, d, None, stride1, stride3) for _ in range(cardinality))
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @staticmethod
    def aggregate(outputs) -> torch.Tensor:  # the paths' outputs, as they come
        return torch.cat(list(outputs), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.aggregate(path(x) for path in self.paths)  # -> (N, w, H/s, W/s)
        out = self.bn3(self.conv3(out))  # -> (N, out, H/s, W/s)
        out += identity  # in place, as torchvision: BN's output is fresh, and not saved
        return self.relu(out)


class BasicBlock(nn.Module):
    """Depth-2 block, form (c): 3x3 in->w, 3x3 w->out (torchvision's BasicBlock).

    Aggregating C two-layer paths of width d gives exactly this dense block of width w = C*d
    (paper Fig. 4): both layers merge, nothing stays grouped. So there is no groups here.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int = 1,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (N, in, H, W) -> (N, w, H/s, W/s)
        out = self.bn2(self.conv2(out))  # -> (N, out, H/s, W/s)
        out += identity  # in place, as torchvision: BN's output is fresh, and not saved
        return self.relu(out)


class BasicPath(nn.Module):
    """One of the C paths of a depth-2 block: 3x3 in->d, and in form (a) 3x3 d->out."""

    def __init__(self, in_channels: int, d: int, out_channels: int | None = None,
                 stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, d, stride)
        self.bn1 = nn.BatchNorm2d(d)
        self.conv2 = conv3x3(d, out_channels) if out_channels else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, in, H, W) -> (N, d, H/s, W/s)
        return out if self.conv2 is None else self.conv2(out)  # (a): -> (N, out, H/s, W/s)


class AggregatedBasicBlock(nn.Module):
    """Depth-2 block, form (a): C paths of 3x3, 3x3, summed. Equal to a dense BasicBlock of
    width C*d (paper Fig. 4): drawn as paths here only to show it."""

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        d = width // cardinality
        self.paths = nn.ModuleList(
            BasicPath(in_channels, d, out_channels, stride) for _ in range(cardinality))
        self.bn2 = nn.BatchNorm2d(out_channels)  # acts on the aggregated sum
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @staticmethod
    def aggregate(outputs) -> torch.Tensor:  # the paths' outputs, as they come
        return sum(outputs)  # one path at a time: two outputs held, not C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.aggregate(path(x) for path in self.paths)  # C x (N, out, H/s, W/s)
        out = self.bn2(out)
        out += identity  # in place: BN's output is fresh, and not saved for backward
        return self.relu(out)


class ConcatBasicBlock(nn.Module):
    """Depth-2 block, form (b): C paths of one 3x3, concatenated, then one 3x3 w->out."""

    def __init__(self, in_channels: int, width: int, out_channels: int, cardinality: int,
                 stride: int = 1, stride_on: str = "3x3", downsample: nn.Module | None = None):
        super().__init__()
        d = width // cardinality
        self.paths = nn.ModuleList(
            BasicPath(in_channels, d, None, stride) for _ in range(cardinality))
        self.conv2 = conv3x3(width, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @staticmethod
    def aggregate(outputs) -> torch.Tensor:  # the paths' outputs, as they come
        return torch.cat(list(outputs), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.aggregate(path(x) for path in self.paths)  # -> (N, w, H/s, W/s)
        out = self.bn2(self.conv2(out))  # -> (N, out, H/s, W/s)
        out += identity  # in place, as torchvision: BN's output is fresh, and not saved
        return self.relu(out)


# (block type, form) -> block class. builder.registry fills it, from its one description of
# each form; an exported file writes its own, with its one block.
BLOCK_CLASSES: dict[tuple[str, str], type[nn.Module]] = {}


class ResNeXt(nn.Module):
    """Stem, stages of blocks, global average pool, classifier (paper Table 1).

    Args:
        block: "bottleneck" or "basic".
        form: "a", "b" or "c" (see the module docstring).
        cardinality: C, paths per block.
        width_per_group: d, path width in the first stage; doubles with each stage.
        depths: blocks per stage, e.g. (3, 4, 6, 3).
        num_classes: classifier outputs. Default 1000.
        in_channels: image channels. Default 3.
        stem: "imagenet" (7x7/2 conv, 3x3/2 max-pool) or "cifar" (3x3/1 conv). Default imagenet.
        stem_width: channels after the stem. Default 64.
        stride_on: "3x3" (paper, torchvision) or "1x1" (ResNet v1). Default "3x3".
        zero_init_residual: start each block's last BN at 0. Default False.
        init_weights: apply torchvision's initialisation. Default True; False leaves
            PyTorch's defaults (builder uses it for shape-only models on the meta device).
    """

    def __init__(self, block: str, form: str, cardinality: int, width_per_group: int,
                 depths: tuple[int, ...], num_classes: int = 1000, in_channels: int = 3,
                 stem: str = "imagenet", stem_width: int = 64, stride_on: str = "3x3",
                 zero_init_residual: bool = False, init_weights: bool = True):
        super().__init__()
        block_class = BLOCK_CLASSES[block, form]
        expansion = 4 if block == "bottleneck" else 1
        if stem == "imagenet":  # 224 -> 112 -> 56
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:  # CIFAR: 32 -> 32, no pooling
            self.conv1 = nn.Conv2d(in_channels, stem_width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)

        self.stage_names = []
        channels = stem_width
        for i, depth in enumerate(depths):
            planes = 64 * 2**i
            width = int(planes * width_per_group / 64) * cardinality  # torchvision's rule
            out_channels = planes * expansion
            stride = 1 if i == 0 else 2  # each later stage halves the size, doubles the width
            blocks = []
            for j in range(depth):
                downsample = None
                if j == 0 and (stride != 1 or channels != out_channels):
                    downsample = nn.Sequential(conv1x1(channels, out_channels, stride),
                                               nn.BatchNorm2d(out_channels))
                blocks.append(block_class(channels, width, out_channels, cardinality,
                                          stride if j == 0 else 1, stride_on, downsample))
                channels = out_channels
            name = f"layer{i + 1}"  # torchvision's names: layer1 .. layer4
            setattr(self, name, nn.Sequential(*blocks))
            self.stage_names.append(name)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules() if init_weights else ():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual and init_weights:  # each block starts as the identity
            for m in self.modules():
                last_bn = getattr(m, "bn3", None) if block == "bottleneck" else getattr(
                    m, "bn2", None)
                if isinstance(m, block_class) and last_bn is not None:
                    nn.init.zeros_(last_bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 3, 224, 224) -> (N, 64, 56, 56)
        for name in self.stage_names:
            x = getattr(self, name)(x)  # each later stage: half the size, twice the channels
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, C, H, W) -> (N, C)
        return self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

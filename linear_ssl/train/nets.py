"""Networks of the reference runs (theory.md section 5): ResNet backbones, the MLP
projector / predictor, and the linear predictor Wp that closed-form rules overwrite.

All modules are plain ``nn.Module``s: device- and dtype-agnostic, channels_last-friendly
(no ``.view`` on feature maps), and free of host syncs in ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn

_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
_STEMS = ("cifar", "imagenet")
DEPTHS, STEMS = tuple(_STAGES), _STEMS  # what config.validate accepts


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, ch * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, as in torchvision's ResNet v1.5) -> 1x1 with expansion 4."""

    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, ch * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(ch * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, ch * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResNet(nn.Module):
    """ResNet backbone without the classifier: images (N, 3, H, W) -> pooled (N, out_dim).

    Stages ``layer1``..``layer4`` have ``width * (1, 2, 4, 8)`` channels (times the block's
    expansion); ``stem`` is the CIFAR 3x3 stride-1 convolution without max-pool or the
    ImageNet 7x7 stride-2 convolution followed by a 3x3 stride-2 max-pool.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        stages: tuple[int, ...],
        stem: str = "cifar",
        width: int = 64,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if stem == "cifar":
            conv = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            pool: nn.Module = nn.Identity()
        else:
            conv = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            pool = nn.MaxPool2d(3, 2, 1)
        self.stem = nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True), pool)
        in_ch = width
        layers = []
        for i, n_blocks in enumerate(stages):
            ch = width * 2**i
            blocks = []
            for j in range(n_blocks):
                blocks.append(block(in_ch, ch, stride=2 if (i > 0 and j == 0) else 1))
                in_ch = ch * block.expansion
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = in_ch
        _init_standard(self)
        if zero_init_residual:  # each residual branch starts as zero (Goyal et al. 2017)
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


def _init_standard(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions; BatchNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet(
    depth: int = 18, stem: str = "cifar", width: int = 64, *, zero_init_residual: bool = False
) -> ResNet:
    """The backbone of theory.md section 5, returning pooled features of size ``.out_dim``.

    depth: 18 or 34 (BasicBlock) or 50 or 101 (Bottleneck). stem: "cifar" ([T] CIFAR-10:
    3x3 stride 1, no max-pool) or "imagenet" ([T] STL-10 at 96 px and [E] ImageNet).
    width: channels of the first stage (64 standard; 8 or 16 make CPU-sized networks).
    ``.out_dim`` is 8 * width * expansion: 512 for ResNet-18, 2048 for ResNet-50.
    """
    if depth not in _STAGES:
        raise ValueError(f"resnet depth={depth!r} is not supported: use one of {list(_STAGES)}")
    if stem not in _STEMS:
        raise ValueError(f"resnet stem={stem!r} is unknown: use 'cifar' or 'imagenet'")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"resnet width={width!r} is invalid: it must be a positive integer")
    block = BasicBlock if depth < 50 else Bottleneck
    return ResNet(block, _STAGES[depth], stem, width, zero_init_residual)


class MLP(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU -> Linear (-> BatchNorm1d if ``last_bn``): the projector
    (or 2-layer predictor) of theory.md section 5.

    [T] CIFAR/STL: ``mlp(512, 512, 128)`` = 512 -> 512 -> BatchNorm1d(affine=False) -> ReLU
    -> 128, biases on (as in the reference code); its 2-layer predictor is ``mlp(128, 512,
    128)``. [E]/BYOL ImageNet: ``mlp(2048, 4096, 256, bn_affine=True)`` and the predictor
    ``mlp(256, 4096, 256, bn_affine=True)``. ``last_bn`` appends a BatchNorm1d on the output
    (the SimSiam projector's ending).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        *,
        bn_affine: bool = False,
        last_bn: bool = False,
        bias: bool = True,
    ) -> None:
        for name, dim in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if not isinstance(dim, int) or dim < 1:
                raise ValueError(f"mlp {name}={dim!r} is invalid: it must be a positive integer")
        layers: list[nn.Module] = [
            nn.Linear(in_dim, hidden_dim, bias=bias),
            nn.BatchNorm1d(hidden_dim, affine=bn_affine),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=bias),
        ]
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=bn_affine))
        super().__init__(*layers)
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim


#: the lower-case name the trainer and configs use for the section 5 MLP
mlp = MLP


class LinearPredictor(nn.Module):
    """The linear predictor Wp: f -> Wp f (+ b), for a batch of rows x -> x Wp^T (+ b).

    ``symmetric=True`` is [T] Table 3's symmetrised variant: the trainable parameter is A
    and the effective predictor Wp = (A + A^T) / 2, so gradients reach A through both
    halves. ``matrix`` is the effective Wp (dim, dim), differentiable; ``set_matrix``
    overwrites it (closed-form rules R1-R9, applied after the optimiser step).
    """

    def __init__(self, dim: int, bias: bool = False, symmetric: bool = False) -> None:
        super().__init__()
        self.dim, self.symmetric = dim, symmetric
        # nn.Linear's default initialisation: U(-1/sqrt(dim), 1/sqrt(dim)).
        ref = nn.Linear(dim, dim, bias=bias)
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if bias else None

    @property
    def matrix(self) -> torch.Tensor:
        """The effective Wp, shape (dim, dim)."""
        if self.symmetric:
            return (self.weight + self.weight.mT) / 2
        return self.weight

    @torch.no_grad()
    def set_matrix(self, Wp: torch.Tensor) -> None:
        """Overwrite Wp in place (no autograd, optimiser state untouched).

        For the symmetric variant A is set to Wp, so the effective matrix becomes Wp's
        symmetric part (Wp itself whenever Wp is symmetric, as R1/R2/R6 produce).
        """
        if tuple(Wp.shape) != (self.dim, self.dim):
            raise ValueError(
                f"set_matrix got Wp of shape {tuple(Wp.shape)}: it must be ({self.dim}, {self.dim})"
            )
        self.weight.copy_(Wp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.matrix, self.bias)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, bias={self.bias is not None}, symmetric={self.symmetric}"


def linear_predictor(dim: int, bias: bool = False, symmetric: bool = False) -> LinearPredictor:
    """The bias-free dim x dim linear predictor of [T] (DirectPred, linear baselines)."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"linear_predictor dim={dim!r} is invalid: it must be a positive integer")
    return LinearPredictor(dim, bias=bias, symmetric=symmetric)


class PixelEncoder(nn.Module):
    """The ladder's encoders on pixels (theory.md section 8, rungs 1-3).

    x = flatten(avg_pool(view, to ``pixels`` x ``pixels``)) / sqrt(n1), n1 = 3 pixels^2 (a
    fixed linear map, so that tr E[x x^T] is about 1 for normalised images), then
    ``arch="linear"``: f = W x (one bias-free layer, ``.weight`` is W of T1) or
    ``arch="mlp"``: f = W2 ReLU(W1 x) (bias-free). ``pixel_features`` gives x itself, the
    input whose X and X' the bridge measures.
    """

    def __init__(self, arch: str, pixels: int, out_dim: int, hidden_dim: int = 512) -> None:
        super().__init__()
        self.arch, self.pixels = arch, pixels
        self.in_dim = 3 * pixels * pixels
        if arch == "linear":
            self.net: nn.Module = nn.Linear(self.in_dim, out_dim, bias=False)
        else:
            self.net = nn.Sequential(
                nn.Linear(self.in_dim, hidden_dim, bias=False),
                nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, out_dim, bias=False),
            )
        self.out_dim = out_dim

    @property
    def weight(self) -> torch.Tensor | None:
        """W of the linear encoder (out_dim, n1); None for the MLP."""
        return self.net.weight if self.arch == "linear" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_features(x, self.pixels))


def pixel_features(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """The pixel encoders' input (N, 3 pixels^2): images (N, 3, H, W) average-pooled to
    pixels x pixels, flattened and divided by sqrt(3 pixels^2)."""
    if x.shape[-1] != pixels or x.shape[-2] != pixels:
        x = nn.functional.adaptive_avg_pool2d(x, pixels)
    return torch.flatten(x, 1) / (3 * pixels * pixels) ** 0.5


def pixel_encoder(arch: str, pixels: int, out_dim: int, hidden_dim: int = 512) -> PixelEncoder:
    """A linear or ReLU-MLP encoder on ``pixels`` x ``pixels`` downsampled images."""
    if arch not in ("linear", "mlp"):
        raise ValueError(f"pixel encoder arch={arch!r} is unknown: use 'linear' or 'mlp'")
    for name, dim in (("pixels", pixels), ("out_dim", out_dim), ("hidden_dim", hidden_dim)):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"pixel encoder {name}={dim!r} is invalid: a positive integer")
    return PixelEncoder(arch, pixels, out_dim, hidden_dim)


def last_linear(module: nn.Module) -> nn.Linear | None:
    """The last nn.Linear of a projector or encoder (the layer whose Gram T2 balances)."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return layers[-1] if layers else None

"""Networks of theory.md section 5: ResNet backbones, MLP projector/predictor, linear Wp."""

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from linear_ssl.train.nets import linear_predictor, mlp, resnet  # noqa: E402

pytestmark = pytest.mark.torch


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("depth", "with_fc"),
    [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)],  # torchvision's reference counts
)
def test_resnet_parameter_count_matches_reference_sec5(depth, with_fc):
    net = resnet(depth, stem="imagenet")
    fc = net.out_dim * 1000 + 1000  # the 1000-class classifier the backbone leaves out
    assert n_params(net) + fc == with_fc
    assert net.out_dim == (512 if depth < 50 else 2048)


@pytest.mark.parametrize("width", [8, 16, 64])
def test_resnet18_cifar_width_scaling_closed_form_sec5(width):
    """Convolutions hold 2724 w^2 weights plus the 3x3 stem's 27 w; 75 w BatchNorm channels
    (counted by hand from the stage layout) carry 150 w affine parameters."""
    net = resnet(18, stem="cifar", width=width)
    assert n_params(net) == 2724 * width**2 + 27 * width + 150 * width
    assert net.out_dim == 8 * width
    assert resnet(50, stem="cifar", width=width).out_dim == 32 * width


def _stage_shapes(net, x):
    shapes = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in ("stem", "layer1", "layer2", "layer3", "layer4")
    ]
    out = net(x)
    for h in hooks:
        h.remove()
    return shapes, tuple(out.shape)


def test_cifar_stem_keeps_resolution_through_first_stage_sec5():
    net = resnet(18, stem="cifar", width=8)
    shapes, out = _stage_shapes(net, torch.randn(2, 3, 32, 32))
    assert shapes["stem"] == (2, 8, 32, 32)
    assert shapes["layer1"] == (2, 8, 32, 32)
    assert shapes["layer4"] == (2, 64, 4, 4)
    assert out == (2, 64)


def test_imagenet_stem_divides_resolution_by_four_sec5():
    """STL-10 at 96 px: 7x7 stride-2 convolution then max-pool -> 24 x 24 in stage 1."""
    net = resnet(18, stem="imagenet", width=8)
    shapes, out = _stage_shapes(net, torch.randn(2, 3, 96, 96))
    assert shapes["layer1"] == (2, 8, 24, 24)
    assert shapes["layer4"] == (2, 64, 3, 3)
    assert out == (2, 64)


def test_bottleneck_output_width():
    net = resnet(50, stem="cifar", width=4)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 128)


def test_resnet_standard_init():
    """Kaiming-normal fan_out convolutions: std sqrt(2 / (out_ch k^2)); BN weight 1, bias 0."""
    torch.manual_seed(0)
    net = resnet(18, stem="cifar", width=64)
    w = net.layer4[1].conv2.weight  # 512 x 512 x 3 x 3: 2.4 M draws
    assert w.std().item() == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.01)
    assert abs(w.mean().item()) < 1e-4
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_zero_init_residual_makes_blocks_identity_on_their_branch():
    net = resnet(18, stem="cifar", width=8, zero_init_residual=True).eval()
    block = net.layer1[0]  # identity shortcut: zero branch -> block(x) = relu(x)
    x = torch.randn(2, 8, 8, 8)
    assert torch.allclose(block(x), torch.relu(x))


def test_resnet_channels_last_matches_contiguous():
    torch.manual_seed(0)
    net = resnet(18, stem="cifar", width=8).eval()
    x = torch.randn(4, 3, 32, 32)
    ref = net(x)
    out = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"depth": 20}, "depth"), ({"stem": "tiny"}, "stem"), ({"width": 0}, "width")],
)
def test_resnet_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resnet(**kwargs)


def test_projector_layout_and_count_sec5():
    """[T]: 512 -> 512 -> BatchNorm1d(affine=False) -> ReLU -> 128, biased linears."""
    proj = mlp(512, 512, 128)
    kinds = [type(m) for m in proj]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert not proj[1].affine
    assert n_params(proj) == (512 * 512 + 512) + (512 * 128 + 128)
    assert (proj.in_dim, proj.hidden_dim, proj.out_dim) == (512, 512, 128)
    assert proj(torch.randn(8, 512)).shape == (8, 128)
    # the 2-layer predictor has the projector's shape
    pred = mlp(128, 512, 128)
    assert [tuple(m.weight.shape) for m in pred if isinstance(m, nn.Linear)] == [
        (512, 128),
        (128, 512),
    ]


def test_byol_imagenet_shapes_sec5():
    """[E]/BYOL: 2048 -> 4096 -> BN (affine) -> ReLU -> 256; predictor 256 -> 4096 -> 256."""
    proj = mlp(2048, 4096, 256, bn_affine=True)
    assert n_params(proj) == (2048 * 4096 + 4096) + 2 * 4096 + (4096 * 256 + 256)
    pred = mlp(256, 4096, 256, bn_affine=True)
    assert n_params(pred) == (256 * 4096 + 4096) + 2 * 4096 + (4096 * 256 + 256)


def test_projector_batchnorm_sits_before_relu_sec5():
    """In training mode the ReLU's input is batch-standardised per channel (BN before ReLU)."""
    torch.manual_seed(0)
    proj = mlp(32, 64, 16).train()
    seen = {}

    def keep_input(_module, args):
        seen["x"] = args[0].detach().clone()  # the ReLU is in-place: copy before it runs

    proj[2].register_forward_pre_hook(keep_input)
    proj(torch.randn(256, 32) * 3 + 1)
    x = seen["x"]
    assert torch.allclose(x.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(x.var(0, correction=0), torch.ones(64), atol=1e-3)


def test_last_bn_standardises_output():
    torch.manual_seed(0)
    proj = mlp(32, 64, 16, last_bn=True).train()
    out = proj(torch.randn(256, 32))
    assert torch.allclose(out.mean(0), torch.zeros(16), atol=1e-5)
    assert torch.allclose(out.var(0, correction=0), torch.ones(16), atol=1e-3)


def test_linear_predictor_applies_matrix():
    torch.manual_seed(0)
    pred = linear_predictor(6)
    assert pred.bias is None and n_params(pred) == 36
    x = torch.randn(5, 6)
    assert torch.allclose(pred(x), x @ pred.matrix.T)
    biased = linear_predictor(6, bias=True)
    assert torch.allclose(biased(x), x @ biased.matrix.T + biased.bias)


def test_symmetric_predictor_matrix_and_gradient_table3():
    """[T] Table 3: Wp = (A + A^T)/2. dL/dWp = G gives dL/dA = (G + G^T)/2."""
    torch.manual_seed(0)
    pred = linear_predictor(5, symmetric=True)
    assert not torch.allclose(pred.weight, pred.weight.T)  # A itself is not symmetric
    assert torch.equal(pred.matrix, pred.matrix.T)
    x, g = torch.randn(7, 5), torch.randn(7, 5)
    (pred(x) * g).sum().backward()
    G = g.T @ x  # gradient of sum(g * x Wp^T) with respect to Wp
    assert torch.allclose(pred.weight.grad, (G + G.T) / 2, atol=1e-5)


def test_set_matrix_round_trip():
    torch.manual_seed(0)
    Wp = torch.randn(4, 4)
    pred = linear_predictor(4)
    pred.set_matrix(Wp)
    assert torch.equal(pred.matrix, Wp)
    assert pred.weight.requires_grad and pred.weight.grad_fn is None
    sym = linear_predictor(4, symmetric=True)
    S = Wp + Wp.T
    sym.set_matrix(S)
    assert torch.allclose(sym.matrix, S)
    sym.set_matrix(Wp)  # non-symmetric input: the symmetric part is what the variant holds
    assert torch.allclose(sym.matrix, (Wp + Wp.T) / 2)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        pred.set_matrix(torch.zeros(3, 4))


def test_set_matrix_then_optimiser_step_trains_from_new_value():
    pred = linear_predictor(3)
    pred.set_matrix(torch.eye(3))
    opt = torch.optim.SGD(pred.parameters(), lr=0.5)
    x = torch.eye(3)
    (pred(x) ** 2).sum().mul(0.5).backward()  # gradient = Wp = I
    opt.step()
    assert torch.allclose(pred.matrix, 0.5 * torch.eye(3))

"""Statistics of the batched augmentations of theory.md section 5 (linear_ssl.train.augment)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kornia")

from linear_ssl.train.augment import build_augment  # noqa: E402

pytestmark = pytest.mark.torch

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
N = 4000  # samples per rate: a binomial rate's sd is at most 0.008, tolerances are 0.03


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def position_image(size: int, n: int) -> torch.Tensor:
    """Float images whose channel 0 is the column and channel 1 the row centre, in (0, 1)."""
    centres = (torch.arange(size) + 0.5) / size
    image = torch.stack(
        [centres.view(1, size).expand(size, size), centres.view(size, 1).expand(size, size)]
        + [torch.zeros(size, size)]
    )
    return image.unsqueeze(0).expand(n, 3, size, size).contiguous()


def crop_box_sides(out: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop width and height in input pixels, read off the position image's corners.

    A box of b pixels resized to ``size`` (bilinear, pixel centres) samples source
    centres spread over b (1 - 1/(2 size)) - 1/2 pixels: invert that.
    """
    spread_x = (out[:, 0].amax((1, 2)) - out[:, 0].amin((1, 2))) * size
    spread_y = (out[:, 1].amax((1, 2)) - out[:, 1].amin((1, 2))) * size
    scale = 1 - 0.5 / size
    return (spread_x + 0.5) / scale, (spread_y + 0.5) / scale


@pytest.mark.parametrize("crop_scale", [(0.08, 1.0), (0.5, 1.0)])
def test_crop_area_within_scale_range_section5(crop_scale):
    """RandomResizedCrop (section 5): crop area / image area lies in crop_scale, and fills it."""
    size = 32
    augment = build_augment("cifar10", size, MEAN, STD, crop_scale=crop_scale)
    torch.manual_seed(0)
    width, height = crop_box_sides(augment.view1.crop(position_image(size, N)), size)
    area = width * height / size**2
    low, high = crop_scale
    # Boxes have whole-pixel sides: rounding moves the area by at most about 1/size.
    assert area.min() >= low - 1.0 / size
    assert area.max() <= high + 1e-4
    assert torch.quantile(area, 0.02) < low + 0.1 * (high - low)  # draws reach both ends
    assert area.max() > high - 0.1 * (high - low)


def test_flip_rate_half_section5():
    """Horizontal flip (section 5) at rate 1/2, read off the column ramp's direction."""
    size = 32
    augment = build_augment("cifar10", size, MEAN, STD)
    torch.manual_seed(1)
    out = augment.view1.flip(position_image(size, N))
    flipped = (out[:, 0, 0, 0] > out[:, 0, 0, -1]).float()
    assert abs(flipped.mean().item() - 0.5) < 0.03


@pytest.mark.parametrize("recipe, size", [("cifar10", 32), ("stl10", 16)])
def test_jitter_and_grayscale_rates_section5(recipe, size):
    """ColorJitter p=0.8 and grayscale p=0.2 (section 5), measured on the whole pipeline.

    A constant coloured image stays constant through crop, flip and blur; grayscale makes
    its channels equal (saturation jitter never reaches 0), and a jittered colour differs
    from the original one.
    """
    colour = torch.tensor([60, 140, 210], dtype=torch.uint8)
    images = colour.view(1, 3, 1, 1).expand(N, 3, size, size).contiguous()
    augment = build_augment(recipe, size, MEAN, STD)
    torch.manual_seed(2)
    view, _ = augment.two_views(images)
    unit = view * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    pixel = unit[:, :, size // 2, size // 2]
    gray = (pixel.amax(1) - pixel.amin(1)) < 1e-4
    assert abs(gray.float().mean().item() - 0.2) < 0.03
    colour_unit = colour.float() / 255
    unchanged = ((pixel - colour_unit).abs().amax(1) < 1e-4)[~gray]
    assert abs(1 - unchanged.float().mean().item() - 0.8) < 0.03


@pytest.mark.parametrize("recipe, brightness", [("cifar10", 0.4), ("stl10", 0.8)])
def test_jitter_brightness_is_torchvision_multiplicative_section5(recipe, brightness):
    """ColorJitter brightness b (section 5) multiplies by a factor uniform in [1 - b, 1 + b].

    On a constant gray image contrast, saturation and hue change nothing, so a jittered
    pixel over the original is the brightness factor (torchvision's ColorJitter; kornia's
    ColorJiggle would add the factor minus one instead).
    """
    size = 8
    augment = build_augment(recipe, size, MEAN, STD)
    images = torch.full((N, 3, size, size), 0.5)
    torch.manual_seed(6)
    ratio = augment.view1.jitter(images)[:, :, 3, 3] / 0.5
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)  # stays gray
    factor = ratio[:, 0][(ratio[:, 0] - 1).abs() > 1e-6]
    assert abs(factor.numel() / N - 0.8) < 0.03
    assert factor.min() >= 1 - brightness - 1e-5 and factor.max() <= 1 + brightness + 1e-5
    assert factor.min() < 1 - 0.95 * brightness and factor.max() > 1 + 0.95 * brightness
    assert abs(factor.mean().item() - 1) < 0.02  # uniform: mean 1, sd b / sqrt(3)
    assert abs(factor.std().item() - brightness / 3**0.5) < 0.02


def test_byol_asymmetric_blur_and_solarize_E():
    """[E] BYOL recipe: blur p=1.0 / 0.1 and solarize p=0.0 / 0.2 on views 1 / 2."""
    size = 32
    augment = build_augment("byol", size, MEAN, STD)
    checkerboard = ((torch.arange(size).view(-1, 1) + torch.arange(size)) % 2).float()
    images = checkerboard.expand(N, 3, size, size).contiguous()
    torch.manual_seed(3)
    # A blur of sigma below about 0.3 leaves a checkerboard unchanged to 1e-3, so compare
    # the views' rates of visible blur: 1.0 x P(visible) and 0.1 x P(visible), sigma in [0.1, 2].
    rates = []
    for view in (augment.view1, augment.view2):
        blurred = (view.blur(images) - images).abs().amax((1, 2, 3)) > 1e-3
        rates.append(blurred.float().mean().item())
    assert (2.0 - 0.4) / 1.9 < rates[0] <= 1.0  # sigma above 0.4 is always visible
    assert abs(rates[1] / rates[0] - 0.1) < 0.02
    assert "solarize" not in augment.view1._modules
    bright = torch.full((N, 3, size, size), 0.8)
    solarized = (augment.view2.solarize(bright) - 0.2).abs().amax((1, 2, 3)) < 1e-6
    assert abs(solarized.float().mean().item() - 0.2) < 0.03


@pytest.mark.parametrize("recipe, size", [("cifar10", 32), ("stl10", 24), ("byol", 24)])
def test_views_shape_dtype_device_and_seed_determinism(recipe, size):
    """Views: (B, 3, s, s) float32; same seed or restored RNG state -> same views."""
    augment = build_augment(recipe, size, MEAN, STD)
    images = torch.randint(0, 256, (16, 3, 40, 40), dtype=torch.uint8)
    torch.manual_seed(4)
    first = augment.two_views(images)
    torch.manual_seed(4)
    again = augment.two_views(images)
    torch.manual_seed(5)
    state = torch.get_rng_state()  # what the loop checkpoints
    other = augment.two_views(images)
    torch.set_rng_state(state)
    resumed = augment.two_views(images)
    assert all(torch.equal(a, b) for a, b in zip(other, resumed, strict=True))
    for view in first:
        assert view.shape == (16, 3, size, size)
        assert view.dtype == torch.float32 and view.device == images.device
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert not torch.equal(first[0], first[1])  # the two views are drawn independently


def test_eval_transform_is_plain_normalisation_section5():
    """eval_transform: (x / 255 - mean) / std per channel, no randomness."""
    augment = build_augment("cifar10", 32, MEAN, STD)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    expected = torch.empty(8, 3, 32, 32)
    for c in range(3):
        expected[:, c] = (images[:, c].double() / 255 - MEAN[c]) / STD[c]
    torch.testing.assert_close(augment.eval_transform(images), expected.float())
    # Normalising a batch whose channels have mean MEAN and sd STD gives mean 0, sd 1.
    unit = torch.rand(64, 3, 32, 32, dtype=torch.float64)
    unit = (unit - unit.mean((0, 2, 3), keepdim=True)) / unit.std((0, 2, 3), keepdim=True)
    unit = unit * torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1) * 0.5
    unit = unit + torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    out = augment.eval_transform((unit * 255).round().to(torch.uint8)).double()
    torch.testing.assert_close(
        out.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=0.01, rtol=0
    )
    torch.testing.assert_close(
        out.std((0, 2, 3)), torch.full((3,), 0.5, dtype=torch.float64), atol=0.01, rtol=0
    )


def test_eval_transform_resizes_to_image_size():
    """A 64 px batch evaluated at 32 px: resized, and a constant image stays constant."""
    augment = build_augment("stl10", 32, MEAN, STD)
    images = torch.full((2, 3, 64, 64), 128, dtype=torch.uint8)
    out = augment.eval_transform(images)
    assert out.shape == (2, 3, 32, 32)
    expected = (128 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out[0, :, 5, 7], expected)


def test_bad_inputs_give_one_line_errors():
    augment = build_augment("cifar10", 32, MEAN, STD)
    with pytest.raises(ValueError, match="uint8 batch") as err:
        augment.two_views(torch.rand(4, 3, 32, 32))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown augmentation recipe 'imagenet'"):
        build_augment("imagenet", 32, MEAN, STD)
    with pytest.raises(ValueError, match="crop_scale"):
        build_augment("cifar10", 32, MEAN, STD, crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="3 channels"):
        build_augment("cifar10", 32, (0.5,), STD)

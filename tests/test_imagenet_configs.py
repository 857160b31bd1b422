"""linear_ssl/configs/imagenet: [T] Table 9 and the [E] tables (theory.md sections 5 and 6), each
config loaded through load_config and held to the [E] recipe and the published numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from linear_ssl.train.config import CONFIGS_DIR, load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGENET = CONFIGS_DIR / "imagenet"
TABLE9 = {"mlp": "mlp", "linear": "linear", "directpred": "directpred"}
E_TABLES = {
    "linear": "linear",
    "ne": "neumann",
    "visser": "visser",
    "ns": "newton_schulz",
    "ns2": "ns2",
    "stiefel": "stiefel",
    "directcopy": "directcopy",
}


def _section6() -> str:
    text = (ROOT / "docs" / "theory.md").read_text()
    return text[text.index("## 6.") : text.index("## 7.")]


def _expected(path: Path) -> list[str]:
    """The accuracies quoted after 'Expected top-1' in the header comment."""
    comments = [line[1:] for line in path.read_text().splitlines() if line.startswith("#")]
    header = " ".join(" ".join(comments).split())
    quoted = header[header.index("Expected top-1") :].split("torchrun")[0]
    return re.findall(r"\b\d\d\.\d\b", quoted)


def test_the_imagenet_set_is_complete():
    """[T] Table 9 at 60 / 300 epochs and the [E] rows at 100 / 300 epochs."""
    names = {p.stem for p in IMAGENET.glob("*.yaml")}
    wanted = {f"table9_{k}_{e}ep" for k in TABLE9 for e in (60, 300)}
    wanted |= {f"e_{k}_{e}ep" for k in E_TABLES for e in (100, 300)}
    assert names == wanted


@pytest.mark.parametrize("path", sorted(IMAGENET.glob("*.yaml")), ids=lambda p: p.stem)
def test_imagenet_config_follows_the_E_recipe(path):
    """theory.md section 5 [E]: ResNet-50, BYOL recipe at 224 px, LARS, batch 4096,
    256-d projector with 4096 hidden (BN affine), cosine with warm-up, streamed data."""
    cfg = load_config(path)
    family, key, epochs = re.fullmatch(r"(table9|e)_(\w+)_(\d+)ep", path.stem).groups()
    assert cfg.epochs == int(epochs)
    assert (cfg.model.depth, cfg.model.stem, cfg.model.bn_affine) == (50, "imagenet", True)
    assert (cfg.model.projector_hidden, cfg.model.projector_out) == (4096, 256)
    assert (cfg.augment.recipe, cfg.augment.image_size) == ("byol", 224)
    assert (cfg.optim.name, cfg.batch_size, cfg.optim.schedule) == ("lars", 4096, "cosine")
    assert 0 < cfg.optim.warmup_steps < cfg.epochs * (1_281_167 // 4096)
    assert (cfg.data.name, cfg.data.stream, cfg.method.name) == ("imagefolder", True, "byol")
    rule = (TABLE9 if family == "table9" else E_TABLES)[key]
    if rule in ("mlp", "linear"):
        assert cfg.predictor.kind == rule
    else:
        assert (cfg.predictor.kind, cfg.predictor.rule) == ("closed_form", rule)
    if rule == "directcopy":
        assert cfg.predictor.params.ridge > 0  # R9: DirectCopy needs its ridge on ImageNet


@pytest.mark.parametrize("path", sorted(IMAGENET.glob("*.yaml")), ids=lambda p: p.stem)
def test_quoted_accuracies_are_those_of_theory_section_6(path):
    """Every accuracy a header quotes appears in theory.md section 6, and the row's own
    number for the config's epoch count is among them."""
    quoted, section = _expected(path), _section6()
    assert quoted, path.name
    assert all(q in section for q in quoted), (quoted, path.name)
    own = {
        "table9_mlp": ("64.7", "72.5"),
        "table9_linear": ("59.4", "69.9"),
        "table9_directpred": ("64.4", "72.4"),
        "e_linear": ("67.6", "71.5"),
        "e_ne": ("68.5", "71.8"),
        "e_visser": ("68.4", "71.6"),
        "e_ns": ("68.0", "72.0"),
        "e_ns2": ("68.8", "72.2"),
        "e_stiefel": ("68.8", "72.1"),
        "e_directcopy": ("67.5", "71.5"),
    }[path.stem.rsplit("_", 1)[0]]
    assert own[path.stem.endswith("_300ep")] in quoted


def test_imagenet_model_has_the_byol_shapes():
    """ResNet-50 features 2048 -> projector 2048 -> 4096 -> BN(affine) -> ReLU -> 256; the
    closed-form predictor is 256 x 256."""
    from linear_ssl.train.loop import build_model

    method = build_model(load_config("imagenet/e_ns2_100ep"))
    linears = [m for m in method.projector.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 4096), (4096, 256)]
    bns = [m for m in method.projector.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 1 and bns[0].affine
    assert tuple(method.predictor.matrix.shape) == (256, 256)

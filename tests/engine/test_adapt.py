"""init_from / freeze / fusion_from: a trained run as the start of a new domain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from serkit.testing.cli import run_cli

BASE = """\
name: {name}
seed: {seed}
protocol: {{type: speaker, k: 3, folds: [0]}}
domains:
{domains}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 20, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
  delta:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20, deltas: 1}}
    encoder: {{type: mean_pool, stats: true}}
fusion: {{type: gated_nas, selector: mfcc, width: 16}}
heads:
  default: {{type: mlp, hidden: [16], activations: [relu], dropout: 0.0}}
optimizer: {{type: adamw, lr: 3.0e-3, weight_decay: 0.01}}
train: {{epochs: {epochs}, batch_size: 16}}
{extra}
"""


def domain(name: str, lang: str, emotions: str = "[angry, happy, neutral, sad]", extra: str = "") -> str:
    return (
        f"  {name}:\n    dataset: {{type: synthetic, languages: [{lang}], speakers: 6, per_class: 6, "
        f"emotions: {emotions}}}\n" + (f"    {extra}\n" if extra else "")
    )


def write(tmp_path: Path, name: str, domains: str, extra: str = "", epochs: int = 3, seed: int = 0) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(BASE.format(name=name, domains=domains, extra=extra, epochs=epochs, seed=seed))
    return p


def run_adapted(recipe: Path, out: Path, base_run: Path) -> tuple[dict, dict]:
    """Run ``recipe`` into ``out``; the weights of the base run and of the new run."""
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    old = load_file(str(base_run / "checkpoints" / "r0-f0.safetensors"))
    new = load_file(str(out / "checkpoints" / "r0-f0.safetensors"))
    return old, new


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("base")
    recipe = write(tmp, "base", domain("xa", "xa") + domain("xb", "xb", "[angry, fear, sad]"))
    out = tmp / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    return out


def test_frozen_parts_stay_bit_identical_and_new_domain_trains(base_run: Path, tmp_path: Path) -> None:
    recipe = write(
        tmp_path,
        "adapt",
        domain("xc", "xc", extra="shots: 4"),
        extra=f"init_from: {base_run}\nfreeze: [encoders, fusion, heads]",
    )
    out = tmp_path / "adapted"
    old, new = run_adapted(recipe, out, base_run)
    # the run's domains keep every weight they use, bit for bit
    for name, value in old.items():
        if name.startswith("fusion.") and new[name].shape != value.shape:  # stacked over domains
            assert new[name].shape[0] == 3 and value.shape[0] == 2
            assert torch.equal(new[name][:2], value), name
        else:
            assert torch.equal(new[name], value), name
    # the new domain has its own gate, NAS rows and head
    assert "fusion.gates.2.weight" in new and "fusion.gates.2.weight" not in old
    assert any(k.startswith("heads.xc.") for k in new) and not any(k.startswith("heads.xc.") for k in old)
    run = json.loads((out / "runs" / "r0-f0.json").read_text())
    assert run["init"]["frozen"]["identical"] is True
    assert run["init"]["frozen"]["tensors"] > 0
    assert run["init"]["fresh"] > 0
    model = json.loads((out / "checkpoints" / "model.json").read_text())
    assert list(model["labels"]) == ["xa", "xb", "xc"]
    assert model["init_from"]["checkpoint"] == "r0-f0"
    # zero-shot baseline: the inherited heads on xc, restricted to shared labels
    zs = run["init"]["zero_shot"]["xc"]
    assert zs["source"] in ("xa", "xb")
    assert set(zs["candidates"]) == {"xa", "xb"}
    assert zs["labels"] == (["angry", "happy", "neutral", "sad"] if zs["source"] == "xa" else ["angry", "sad"])
    assert zs["test"]["n"] > 0
    # results.json and report.md say where the model came from and what still holds
    res = json.loads((out / "results.json").read_text())
    init = res["init_from"]
    assert init["frozen"] == {"runs": 1, "identical": 1}
    base = json.loads((base_run / "results.json").read_text())["runs"][0]["test"]
    assert init["old_domains"] == {d: {"ua": base[d]["ua"], "wa": base[d]["wa"]} for d in ("xa", "xb")}
    assert init["zero_shot"]["xc"]["ua"]["mean"] == pytest.approx(zs["test"]["ua"])
    report = (out / "report.md").read_text()
    assert "## Started from a trained run" in report
    assert "frozen weights bit-identical after training in 1 of 1 run(s)" in report


def test_old_domains_predict_the_same_after_adaptation(base_run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    recipe = write(
        tmp_path,
        "adapt",
        domain("xc", "xc", extra="shots: 4"),
        extra=f"init_from: {base_run}\nfreeze: [encoders, fusion, heads]",
    )
    out = tmp_path / "adapted"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    before = load_model(base_run, checkpoint="r0-f0", device="cpu")
    after = load_model(out, checkpoint="r0-f0", device="cpu")
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    for d in ("xa", "xb"):
        assert np.array_equal(
            before.logits(wav, domain=d, sample_rate=16000), after.logits(wav, domain=d, sample_rate=16000)
        )
    assert after.labels("xc") == ["angry", "happy", "neutral", "sad"]


def test_freeze_restores_rows_after_weight_decay() -> None:
    """Unit level: frozen whole tensors and frozen rows survive AdamW steps with decay."""
    from serkit.engine.init_from import FreezeGuard, InitReport

    net = torch.nn.Module()
    net.a = torch.nn.Linear(3, 2)
    net.stack = torch.nn.Parameter(torch.randn(3, 4))
    report = InitReport(whole=["a.weight", "a.bias"], rows={"stack": [0, 1]}, fresh=[])
    before_a = net.a.weight.detach().clone()
    before_rows = net.stack.detach()[:2].clone()
    before_new = net.stack.detach()[2].clone()
    guard = FreezeGuard(net, report, ["a", "stack"])
    assert not net.a.weight.requires_grad
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.1, weight_decay=0.5)
    guard.attach(opt)
    for _ in range(3):
        loss = net.a(torch.ones(1, 3)).sum() + (net.stack**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(net.a.weight, before_a)
    assert torch.equal(net.stack[:2], before_rows)
    assert not torch.equal(net.stack[2], before_new)
    assert guard.verify()["identical"] is True
    with torch.no_grad():
        net.stack[0, 0] += 1
    assert guard.verify()["changed"] == ["stack"]


def test_freeze_names_an_unknown_part(base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write(
        tmp_path, "adapt", domain("xc", "xc", extra="shots: 4"), extra=f"init_from: {base_run}\nfreeze: [heads.zz]"
    )
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "freeze: 'heads.zz' matches no part of the model loaded by init_from; parts: " in err
    assert "heads.xa" in err


def test_init_from_refuses_a_different_model(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write(tmp_path, "adapt", domain("xc", "xc"), extra=f"init_from: {base_run}")
    text = recipe.read_text().replace("width: 16", "width: 32")
    recipe.write_text(text)
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the recipe's model does not match the run's" in err
    assert "fusion.width: 16 in the run, 32 in the recipe" in err
    assert not (tmp_path / "o").exists()


def test_freeze_without_init_from_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write(tmp_path, "adapt", domain("xc", "xc", extra="fusion_from: xa"), extra="freeze: [encoders]")
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "freeze, domains.xc.fusion_from need init_from" in err


def test_fusion_from_copies_and_freezes_a_domains_fusion(base_run: Path, tmp_path: Path) -> None:
    recipe = write(
        tmp_path,
        "probe",
        domain("xc", "xc", extra="shots: 4\n    fusion_from: xa"),
        extra=f"init_from: {base_run}\nfreeze: [encoders, fusion, heads, fusion.xc]\n"
        "heads:\n  default: {type: mlp, hidden: [16], activations: [relu], dropout: 0.0}\n"
        "  xc: {type: mlp, hidden: [], activations: []}",
    )
    text = recipe.read_text().replace(
        "heads:\n  default: {type: mlp, hidden: [16], activations: [relu], dropout: 0.0}\noptimizer", "optimizer", 1
    )
    recipe.write_text(text)
    out = tmp_path / "probe"
    old, new = run_adapted(recipe, out, base_run)
    assert torch.equal(new["fusion.gates.2.weight"], old["fusion.gates.0.weight"])
    assert torch.equal(new["fusion.transitions"][2], old["fusion.transitions"][0])
    assert torch.equal(new["fusion.connectivity.log_kappa"][2], old["fusion.connectivity.log_kappa"][0])
    head = [k for k in new if k.startswith("heads.xc.")]
    assert len(head) == 2  # one Linear layer: a linear probe of xa's fused representation


def test_fusion_from_rows_train_unless_frozen_by_name(base_run: Path, tmp_path: Path) -> None:
    recipe = write(
        tmp_path,
        "adapt",
        domain("xc", "xc", extra="shots: 4\n    fusion_from: xb"),
        extra=f"init_from: {base_run}\nfreeze: [encoders, fusion, heads]",
    )
    out = tmp_path / "adapted"
    old, new = run_adapted(recipe, out, base_run)
    # started from xb's gate and NAS rows, then trained; xb's own rows untouched
    assert new["fusion.gates.2.weight"].shape == old["fusion.gates.1.weight"].shape
    assert not torch.equal(new["fusion.gates.2.weight"], old["fusion.gates.1.weight"])
    assert not torch.equal(new["fusion.transitions"][2], old["fusion.transitions"][1])
    assert torch.equal(new["fusion.transitions"][:2], old["fusion.transitions"])
    assert torch.equal(new["fusion.gates.1.weight"], old["fusion.gates.1.weight"])


def test_a_new_domain_starts_its_private_projections_at_zero_or_from_fusion_from() -> None:
    """Unit level: private projections are stacked over domains like the NAS rows."""
    from serkit.engine.init_from import InitSource, apply_init
    from serkit.nn.moe import GatedNASNet

    def model(domains: list[str]) -> torch.nn.Module:
        m = torch.nn.Module()
        m.fusion = GatedNASNet({"sel": 3, "a": 4}, "sel", domains, width=2, private_projections=True)
        return m

    torch.manual_seed(0)
    trained = model(["en", "de"])
    with torch.no_grad():
        for p in trained.fusion.projections.private_weight:
            p.normal_()
    labels = {"en": ["a", "b"], "de": ["a", "b"]}
    source = InitSource(Path("run"), "r0-f0", {}, [], labels, {"en": "default", "de": "default"}, trained.state_dict())
    for fusion_from, start in ((None, None), ({"fr": "de"}, 1)):
        new = model(["en", "de", "fr"])
        report = apply_init(new, source, ["en", "de", "fr"], fusion_from)
        for old_p, new_p in zip(
            trained.fusion.projections.private_weight, new.fusion.projections.private_weight, strict=True
        ):
            assert torch.equal(new_p[:2], old_p)
            assert torch.equal(new_p[2], torch.zeros_like(new_p[2]) if start is None else old_p[start])
        assert report.rows["fusion.projections.private_weight.0"] == [0, 1]

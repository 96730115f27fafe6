"""Reference oracle: the same weights in PyTorch, our attributions against Captum's (within 1e-4).

Dense ``W`` is ``(D_in, D_out)``, so ``torch.nn.Linear.weight = W.T``; conv weights are already
``(C_out, C_in, kh, kw)``.  Both sides compute in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.explain import attribution as A

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

TOL = 1e-4


def to_torch(model) -> "torch.nn.Module":
    """An equivalent ``torch.nn.Sequential`` (eval mode, float64) holding copies of our weights."""
    mods = []
    for layer in model.layers:
        p = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in layer.params.items()}
        if layer.type == "flatten":
            mods.append(torch.nn.Flatten())
        elif layer.type == "dense":
            lin = torch.nn.Linear(*layer.params["W"].shape).double()
            lin.weight.data = p["W"].T.contiguous()
            lin.bias.data = p["b"]
            mods.append(lin)
        elif layer.type == "conv2d":
            c_out, c_in, kh, kw = layer.params["W"].shape
            conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), stride=layer.stride,
                                   padding=layer.padding).double()
            conv.weight.data = p["W"]
            conv.bias.data = p["b"]
            mods.append(conv)
        elif layer.type == "maxpool2d":
            mods.append(torch.nn.MaxPool2d(layer.pool_size, layer.stride))
        elif layer.type == "activation":
            mods.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(),
                         "sigmoid": torch.nn.Sigmoid(), "identity": torch.nn.Identity()}[layer.fn])
        elif layer.type == "dropout":
            mods.append(torch.nn.Dropout(layer.p))
        else:
            raise NotImplementedError(layer.type)
    return torch.nn.Sequential(*mods).eval()


@pytest.fixture(scope="module")
def models(trained):
    return {
        "mlp": trained("mlp").astype(np.float64),
        "lab": trained("lab").astype(np.float64),
        "cnn": trained("cnn", 1).astype(np.float64),
        "cnn_tiny": trained("cnn_tiny", 2).astype(np.float64),
    }


def _digit(digits, i):
    return digits.x_test[i:i + 1].astype(np.float64)  # (1, 1, 28, 28)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lab", "cnn", "cnn_tiny"])
def test_same_logits_in_torch(models, digits, name):
    m = models[name]
    tm = to_torch(m)
    x = digits.x_test[:20].astype(np.float64)
    np.testing.assert_allclose(tm(torch.tensor(x)).detach().numpy(), m.forward(x), atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lab", "cnn", "cnn_tiny"])
def test_saliency_matches_captum(models, digits, name):
    m = models[name]
    sal = captum_attr.Saliency(to_torch(m))
    for i in range(3):
        x = _digit(digits, i)
        for t in (int(m.predict(x)[0]), 7):
            ours = A.saliency(m, x, t).map
            ref = sal.attribute(torch.tensor(x, requires_grad=True), target=t, abs=False)
            np.testing.assert_allclose(ours, ref.detach().numpy()[0, 0], atol=TOL, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lab", "cnn", "cnn_tiny"])
@pytest.mark.parametrize("rule,n_steps,baseline", [("gausslegendre", 50, "black"),
                                                    ("riemann_middle", 20, "black"),
                                                    ("gausslegendre", 16, "blur")])
def test_integrated_gradients_match_captum(models, digits, name, rule, n_steps, baseline):
    m = models[name]
    ig = captum_attr.IntegratedGradients(to_torch(m))
    for i in range(2):
        x = _digit(digits, i)
        t = int(m.predict(x)[0])
        ours = A.integrated_gradients(m, x, t, n_steps=n_steps, rule=rule, baseline=baseline,
                                      tolerance=None)
        b, _ = A.make_baseline(m, x, baseline)
        ref, delta = ig.attribute(torch.tensor(x), baselines=torch.tensor(b), target=t,
                                  n_steps=n_steps, method=rule, return_convergence_delta=True)
        np.testing.assert_allclose(ours.map, ref.detach().numpy()[0, 0], atol=TOL, rtol=0)
        # Captum's delta is Σ attributions − (f(x) − f(b)), ours too
        assert ours.meta["delta"] == pytest.approx(float(delta[0]), abs=TOL)


@pytest.mark.slow
def test_gap_integrated_gradients_match_captum(models, digits):
    """The contrast map (target (a, b)) is Captum's IG of the function z_a − z_b."""
    m = models["cnn"]
    tm = to_torch(m)
    x = _digit(digits, 5)
    z = m.forward(x)[0]
    a, b = (int(k) for k in np.argsort(-z)[:2])
    ig = captum_attr.IntegratedGradients(lambda inp: tm(inp)[:, a] - tm(inp)[:, b])
    ref = ig.attribute(torch.tensor(x), baselines=torch.zeros_like(torch.tensor(x)), n_steps=32)
    ours = A.integrated_gradients(m, x, (a, b), n_steps=32, tolerance=None)
    np.testing.assert_allclose(ours.map, ref.detach().numpy()[0, 0], atol=TOL, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lab", "cnn", "cnn_tiny"])
@pytest.mark.parametrize("patch,stride", [(4, 2), (5, 3), (3, 1)])
def test_occlusion_matches_captum(models, digits, name, patch, stride):
    m = models[name]
    occ = captum_attr.Occlusion(to_torch(m))
    x = _digit(digits, 1)
    t = int(m.predict(x)[0])
    ours = A.occlusion(m, x, t, patch=patch, stride=stride)
    ref = occ.attribute(torch.tensor(x), target=t, sliding_window_shapes=(1, patch, patch),
                        strides=(1, stride, stride), baselines=0.0, perturbations_per_eval=128)
    np.testing.assert_allclose(ours.map, ref.detach().numpy()[0, 0], atol=TOL, rtol=0)

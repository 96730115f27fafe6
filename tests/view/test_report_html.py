"""The shareable report (view/report_html.py): one self-contained HTML file whose numbers are the
explanation's own, written by `digitlens explain --html` and served by POST /api/report with the
numbers POST /api/explain sends for the same request."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from digitlens.nn import build_model
from digitlens.recognizer import Recognizer
from digitlens.view.report_html import SECTIONS, _f, _pct, report_html


@pytest.fixture(scope="module")
def lab_model():
    m = build_model("lab", np.random.default_rng(0))
    for k, v in m.params().items():  # a little bias, so no logit is exactly 0
        if k.endswith(".b"):
            v[...] = np.random.default_rng(1).standard_normal(v.shape) * 0.2
    return m


@pytest.fixture(scope="module")
def digit_png(digits):
    buf = io.BytesIO()
    Image.fromarray((255 - digits.x_test[2, 0] * 255).astype(np.uint8)).resize(
        (140, 140)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def rec(lab_model):
    return Recognizer({"lab": lab_model})  # one unit atlas for every test here


@pytest.fixture(scope="module")
def explanation(rec, digit_png):
    return rec.explain(digit_png, model="lab", ig_steps=16, counterfactual_pixels=20)


def cells(page: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S).group(1)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)][1:]


def test_every_section_is_there_and_nothing_is_fetched(explanation):
    page = report_html(explanation)
    for key, _ in SECTIONS:
        assert f'<section id="{key}">' in page, key
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page  # the page may not request anything at all
    # every image is embedded: no src or href points anywhere but a data URL
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert not re.search(r"https?://", page)
    for r in refs[:5]:  # real PNGs
        assert base64.b64decode(r.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_numbers_are_the_explanations_own(explanation):
    d = explanation.to_dict()
    page = report_html(explanation)
    rows = cells(page, "probabilities")
    assert [r[0] for r in rows] == [str(c) for c in d["classes"]]
    assert [r[1] for r in rows] == [_f(z) for z in d["logits"]]
    assert [r[2] for r in rows] == [_pct(p) for p in d["probabilities"]]
    sm = d["trace"]["softmax"]
    assert [r[1:4] for r in cells(page, "softmax")] == [
        [_f(a), _f(b), _f(c)] for a, b, c in zip(sm["logits"], sm["shifted"], sm["exp"])]
    assert len(cells(page, "layers")) == len(d["trace"]["layers"])
    u = d["contrast"]["units"]
    gap = cells(page, "gap")
    assert [r[3] for r in gap[:len(u["table"])]] == [_f(t["product"]) for t in u["table"]]
    assert f"the gap is {_f(d['contrast']['gap'])}" in page
    for s in d["sentences"][:3] + [d["counterfactual"]["sentence"]]:
        assert s.replace("&", "&amp;").replace("'", "&#x27;") in page
    # the dict form (the page's JSON) gives the same report
    assert report_html(d) == page


def test_sections_the_explanation_lacks_are_left_out(rec, digits):
    e = rec.explain(digits.x_test[0, 0], skip_preprocess=True,
                                               contrast=False, counterfactual=False,
                                               units=False, nearest=False)
    page = report_html(e)
    assert '<section id="contrast">' not in page and '<section id="counterfactual">' not in page
    assert "no pre-processing step ran" in page


@pytest.mark.slow  # the CLI builds its own recognizer (unit atlas, calibration): a few seconds
def test_cli_writes_the_report(tmp_path, lab_model, digit_png):
    from typer.testing import CliRunner

    from digitlens.cli import app
    from digitlens.nn.checkpoint import save_model

    save_model(lab_model, tmp_path / "lab.npz")
    (tmp_path / "digit.png").write_bytes(digit_png)
    out = tmp_path / "r" / "report.html"
    r = CliRunner().invoke(app, ["explain", str(tmp_path / "digit.png"), "--model",
                                 str(tmp_path / "lab.npz"), "--html", str(out),
                                 "--ig-steps", "8"])
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<section id="counterfactual">' in page
    assert f"wrote the report to {out}" in " ".join(r.output.split())


def test_the_server_sends_the_report_with_the_apis_numbers(rec, digit_png, tmp_path,
                                                             monkeypatch):
    from fastapi.testclient import TestClient

    from digitlens.view.server.app import create_app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    app = create_app(rec, default_model="lab", training=False)
    url = "data:image/png;base64," + base64.b64encode(digit_png).decode("ascii")
    body = {"image": url, "model": "lab", "options": {"vs": 7}}
    with TestClient(app) as c:
        r = c.post("/api/report", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        expl = c.post("/api/explain", json=body).json()
        assert r.headers["content-disposition"] == (
            f'attachment; filename="digitlens-lab-reads-{expl["prediction"]}.html"')
        rows = cells(r.text, "probabilities")
        assert [row[2] for row in rows] == [_pct(p) for p in expl["probabilities"]]
        con = expl["contrast"]
        assert con["b"] == (7 if expl["prediction"] != 7 else expl["runner_up"])
        assert f"4. Why {con['a']} and not {con['b']}" in r.text
        assert f"the gap is {_f(con['gap'])}" in r.text
        bad = c.post("/api/report", json={"image": "data:image/png;base64,@@@", "model": "lab"})
        assert bad.status_code == 422 and bad.json()["error"] == "bad_base64"
        assert c.post("/api/report", json={**body, "model": "nope"}).status_code == 404

"""The nightly report (pipelines/stages/report.py, pipelines/reporting/): rendered over a
small lakehouse written with delta-rs and a SQLite MLflow registry, parsed
back with the standard library's HTML parser. No Spark, no Ray, no model scoring."""

from __future__ import annotations

import base64
import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from jobs.cli import invoke
from pipelines.clickstream.denoise_quality import HINDSIGHT_GRID_MS, ProxyCounts, proxy_quality
from pipelines.config import Settings, load_settings
from pipelines.ctr.metrics import auc
from pipelines.ctr.registry import ModelVersion
from pipelines.lakehouse.tables import (
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    OPS_EVALUATIONS,
    OPS_QUALITY,
    OPS_RUNS,
    SCORES_CTR,
    SILVER_EVENTS,
    SILVER_NOISE_METRICS,
    table_uri,
)
from pipelines.reporting.figures import PNG_SIGNATURE, roc_points
from pipelines.reporting.html import Image, Section, Table, render_report
from pipelines.reporting.inputs import report_versions
from pipelines.reporting.sections import TITLES
from pipelines.stages.report import report_uri, write_report

DAY = dt.date(2026, 11, 4)
DAYS = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1), DAY]
NEXT_DAY = DAY + dt.timedelta(days=1)
FIGURE_SECTIONS = ["dwell", "noise", "proxy", "sequences", "bse", "training", "roc", "oracle", "scores", "timings"]


class ReportPage(HTMLParser):
    """Per section id: its <img> (src, alt), its <p> and <figcaption> texts, and its failed table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.images: dict[str, list[tuple[str, str]]] = {}
        self.texts: dict[str, list[str]] = {}
        self.bad_rows: dict[str, int] = {}
        self.toc: list[str] = []
        self._section: str | None = None
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in.append(tag)
        if tag == "section":
            self._section = attrs["id"]
            self.images[self._section], self.texts[self._section] = [], []
        elif tag == "img" and self._section:
            self.images[self._section].append((attrs.get("src", ""), attrs.get("alt", "")))
        elif tag == "a" and attrs.get("href", "").startswith("#"):
            self.toc.append(attrs["href"][1:])
        elif tag == "tr" and attrs.get("class") == "bad" and self._section:
            self.bad_rows[self._section] = self.bad_rows.get(self._section, 0) + 1

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "title":
            self.title += data
        elif self._section and self._in and self._in[-1] in ("p", "figcaption"):
            self.texts[self._section].append(data)


def parsed(path: str | Path) -> ReportPage:
    page = ReportPage()
    page.feed(Path(path).read_text(encoding="utf-8"))
    return page


def png_of(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    return base64.b64decode(src.removeprefix(prefix), validate=True)


def settings_for(folder: Path) -> Settings:
    return load_settings(env="local", overrides=[
        f"lakehouse={folder / 'lakehouse'}", f"truth={folder / 'truth'}", f"reports={folder / 'reports'}",
        f"registry.tracking_uri=sqlite:///{folder / 'mlflow.db'}", "bse.signatures=4", "bse.bits=2",
    ])


def _write(settings: Settings, spec, rows: dict, partition: str | None = None, schema: pa.Schema | None = None) -> None:
    table = pa.table(rows, schema=schema) if schema else pa.table(rows)
    write_deltalake(table_uri(settings.lakehouse, spec), table, partition_by=[partition] if partition else None, mode="append")


def _night(settings: Settings, rng: np.random.Generator) -> None:
    """One row set per input of the report, a few hundred rows each."""
    reasons = [None] * 300 + ["short_dwell"] * 30 + ["burst"] * 20 + ["bot"] * 50
    dwell = np.where(np.array([r is None for r in reasons]), rng.lognormal(10, 1, len(reasons)), rng.lognormal(7, 1, len(reasons)))
    _write(settings, SILVER_EVENTS, {
        "event_type": ["click"] * len(reasons) + ["impression"] * 50,
        "dwell_ms": pa.array([*dwell.astype(int).tolist()[:-1], None] + [None] * 50, pa.int64()),
        "noise_reason": reasons + [None] * 50,
        "event_date": pa.array([DAY] * (len(reasons) + 50), pa.date32()),
    }, "event_date")
    metrics = [(d, "click", r, n) for d in DAYS for r, n in ((None, 300), ("short_dwell", 30), ("burst", 20), ("bot", 50))]
    metrics += [(d, "impression", None, 2000) for d in DAYS]
    _write(settings, SILVER_NOISE_METRICS, {
        "event_date": pa.array([m[0] for m in metrics], pa.date32()), "event_type": [m[1] for m in metrics],
        "noise_reason": [m[2] for m in metrics], "events": pa.array([m[3] for m in metrics], pa.int64()),
    }, "event_date")
    lengths = rng.integers(1, 200, 150)
    _write(settings, GOLD_USER_SEQUENCES, {
        "user_id": pa.array(range(150), pa.int64()), "length": pa.array(lengths, pa.int32()),
        "as_of_date": pa.array([DAY] * 150, pa.date32()),
    }, "as_of_date")
    buckets = [(u, h, c) for u in range(150) for h in range(4) for c in range(4) if rng.random() < 0.5]
    _write(settings, GOLD_USER_BSE, {
        "user_id": pa.array([b[0] for b in buckets], pa.int64()), "as_of_date": pa.array([DAY] * len(buckets), pa.date32()),
        "hash_index": pa.array([b[1] for b in buckets], pa.int32()), "code": pa.array([b[2] for b in buckets], pa.int32()),
        "count": pa.array(rng.integers(1, 5, len(buckets)), pa.int64()), "version": ["bootstrap-v1"] * len(buckets),
    }, "as_of_date")
    for score_date, n in ((DAY, 40), (NEXT_DAY, 400)):  # the night of DAY scores the day after
        _write(settings, SCORES_CTR, {
            "user_id": pa.array(range(n), pa.int64()), "item_id": pa.array(range(n), pa.int64()),
            "candidate_source": ["impression"] * (n - n // 4) + ["popular"] * (n // 4), "score": rng.beta(2, 12, n),
            "model_version": ["1"] * n, "score_date": pa.array([score_date] * n, pa.date32()),
        }, "score_date")
    _write(settings, OPS_QUALITY, {  # gold/user_sequences failed, then its rerun passed; silver/events failed
        "table": ["gold/user_sequences", "silver/events", "gold/user_sequences"],
        "date": pa.array([DAY] * 3, pa.date32()), "success": [False, False, True],
        "evaluated": pa.array([8, 12, 8], pa.int64()), "failed": pa.array([1, 1, 0], pa.int64()),
        "failed_expectations": [json.dumps(["user_id not null"]), json.dumps(["noise rate <= 0.4 <b>"]), json.dumps([])],
        "validated_at": pa.array([dt.datetime(2026, 11, 5, 2, m) for m in (5, 6, 9)], pa.timestamp("us")),
    })
    start = dt.datetime(2026, 11, 5, 2, 0)
    # The night's runs, and two of the night before (clean up to DAYS[1], its scoring of DAY) left out.
    stages = [("clean", DAYS[:2], 80), ("score", [DAY], 20), ("ingest", [DAY], 40), ("clean", DAYS, 90),
              ("sequences", DAYS, 30), ("score", [NEXT_DAY], 25)]
    rows, at = [], start
    for stage, dates, seconds in stages:
        figures = {"proxy": _proxy(rng)} if (stage, dates) == ("clean", DAYS) else {}
        rows.append({"stage": stage, "run_id": stage, "source": None, "dates": dates, "written_ts": None, "table_versions": [],
                     "figures": json.dumps(figures), "started_at": at, "finished_at": at + dt.timedelta(seconds=seconds)})
        at += dt.timedelta(seconds=seconds + 2)
    write_deltalake(table_uri(settings.lakehouse, OPS_RUNS), pa.Table.from_pylist(rows, schema=OPS_RUNS.schema),
                    partition_by=["stage"], mode="append")


def _proxy(rng: np.random.Generator) -> dict:
    """The clean run's proxy figures over 50 users' counts: 100 clicks each, 30
    confirmed; the flags take 5 (1 confirmed); dwell < t s takes about 4 t (1.2 t)."""
    users, grid = 50, HINDSIGHT_GRID_MS
    under = np.array([[round(0.004 * t) for t in grid]] * users)
    counts = ProxyCounts(np.full(users, 100), np.full(users, 30), np.full(users, 5), rng.integers(0, 3, users),
                         under, np.round(under * 0.3).astype(int), grid)
    quality = proxy_quality(counts, resamples=200)
    return {"clicks_of": f"{DAYS[0]}..{DAY}", "confirmation_days": 7, "evidence": {"cart": 900, "return": 600, "none": 3500},
            **quality, "by_reason": {"bot": {"rate_all": 0.03, "rate_confirmed": 0.06, "ratio": 2.0}},
            "by_evidence": {"action": quality}}


def _models(settings: Settings, folder: Path, rng: np.random.Generator) -> None:
    """Two registered versions with per-epoch metrics (v1 the champion), their
    persisted predictions on DAY, and the generator's truth for DAY."""
    from pipelines.ctr.registry import log_and_register, promote

    model_folder = folder / "model"
    model_folder.mkdir()
    (model_folder / "config.json").write_text("{}")
    for model, night in (("din", {}), ("sdim", {"night": DAY.isoformat()})):
        history = [{"epoch": e, "train_loss": 0.4 - 0.03 * e, "valid_auc": 0.70 + 0.01 * e} for e in range(3)]
        log_and_register(settings, f"{model}-run", {"model": model}, history, {"best_valid_auc": 0.72}, model_folder,
                         {"model": model, "bse_mode": "false", "data_range": f"{DAYS[0]}..{DAYS[1]}", **night})
    promote(settings, "1")
    n = 600
    keys = {"user_id": rng.integers(0, 100, n), "impression_id": [f"i{i}" for i in range(n)], "item_id": rng.integers(0, 50, n)}
    truth = rng.beta(2, 10, n)
    labels = (rng.random(n) < truth).astype(np.int32)
    for version in ("1", "2"):
        noisy = np.clip(truth + rng.normal(0, 0.05, n), 0.001, 0.999).astype(np.float32)
        _write(settings, OPS_EVALUATIONS, {
            "eval_date": pa.array([DAY] * n, pa.date32()), "model_version": [version] * n, **keys,
            "label": pa.array(labels, pa.int32()), "probability": noisy,
        }, "eval_date")
    folder_of_day = Path(settings.truth) / "events" / f"event_date={DAY}"
    folder_of_day.mkdir(parents=True)
    pd.DataFrame({**keys, "event_type": "impression", "click_prob": truth, "click_prob_nightly": truth}).to_parquet(folder_of_day / "part-0.parquet")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    settings = settings_for(folder)
    rng = np.random.default_rng(5)
    _night(settings, rng)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        _models(settings, folder, rng)
        figures = write_report(settings, DAY, log=lambda line: None)
    return settings, figures


def test_every_section_renders_a_png_figure(full_report):
    settings, figures = full_report
    assert figures["report"] == report_uri(settings, DAY) == f"{settings.reports}/report-{DAY}.html"
    assert (figures["failed"], figures["not_available"], figures["available"]) == ([], [], len(TITLES))
    page = parsed(figures["report"])
    assert DAY.isoformat() in page.title
    assert page.toc == list(TITLES)
    for key in FIGURE_SECTIONS:
        assert page.images[key], f"section {key} has no figure"
        for src, alt in page.images[key]:
            assert alt.strip(), f"section {key}: an image without alt text"
            assert png_of(src).startswith(PNG_SIGNATURE), f"section {key}: not a PNG"
    assert not any("not available" in t for texts in page.texts.values() for t in texts)


def test_the_night_scores_the_next_day_and_its_runs_are_its_own(full_report):
    page = parsed(full_report[1]["report"])
    assert any(f"400 candidates of {NEXT_DAY} (scored by this night)" in t for t in page.texts["scores"])
    assert any(t.startswith("4 finished runs of the night") for t in page.texts["timings"])  # ingest, clean, sequences, score
    assert any("v2 sdim (newest)" in t and "v1 din (champion)" in t for t in page.texts["roc"])


def test_the_proxy_compares_the_flags_with_the_fixed_threshold_at_their_rate(full_report):
    page = parsed(full_report[1]["report"])
    caption = " ".join(page.texts["proxy"])
    assert f"Clicks of {DAYS[0]}..{DAY} (5,000 of 50 users): 1,500 confirmed" in caption
    assert "cart 900, return 600" in caption and "At the flags' rate, dwell < 1.25 s" in caption
    text = Path(full_report[1]["report"]).read_text(encoding="utf-8")
    assert "Each kind of evidence on its own." in text and "<td>action</td><td>1,500</td>" in text
    assert '<td>  of them bot</td><td class="num">3.0%</td><td class="num">6.0%</td><td>2.00</td>' in text
    # The thresholds in their order, not the ledger JSON's text order.
    assert text.index("dwell &lt; 2 s") < text.index("dwell &lt; 10 s")


def test_the_failed_validation_is_highlighted(full_report):
    page = parsed(full_report[1]["report"])
    assert page.bad_rows == {"quality": 1}  # silver/events; gold/user_sequences passed on its rerun
    assert any("1 of 2 validations" in t for t in page.texts["quality"])


def test_the_report_is_one_self_contained_file(full_report):
    text = Path(full_report[1]["report"]).read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<script" not in text and "<link" not in text
    assert full_report[1]["bytes"] == len(text.encode("utf-8")) < 2_000_000


def test_before_anything_ran_every_section_says_not_available(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = settings_for(tmp_path)
    figures = invoke("report", ["--date", DAY.isoformat(), "--json"], settings)
    assert (figures["failed"], figures["available"]) == ([], 0)
    assert figures["not_available"] == list(TITLES)
    page = parsed(figures["report"])
    for key in TITLES:
        assert page.images[key] == []
        assert any(t.startswith("not available: ") for t in page.texts[key]), key
    assert "no model registry yet" in " ".join(page.texts["training"])
    assert not (tmp_path / "mlflow.db").exists()  # reading does not create a registry


def test_a_date_not_run_yet_is_not_available_and_the_rest_renders(full_report, tmp_path):
    settings, _ = full_report
    later = NEXT_DAY
    figures = write_report(settings.model_copy(update={"reports": str(tmp_path)}), later, log=lambda line: None)
    page = parsed(figures["report"])
    assert figures["failed"] == []
    assert "dwell" in figures["not_available"] and "training" not in figures["not_available"]
    assert any(str(later) in t for t in page.texts["dwell"])
    assert page.images["training"] and page.images["scores"]  # the models, and the scores of the day after


def test_roc_points_trace_the_same_area_as_the_auc():
    rng = np.random.default_rng(3)
    labels = rng.random(5000) < 0.2
    scores = np.round(labels * 0.3 + rng.random(5000), 2)  # ties
    fpr, tpr = roc_points(labels, scores, max_points=10_000)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(labels, scores), abs=1e-9)
    thinned = roc_points(labels, scores, max_points=50)
    assert len(thinned[0]) <= 52 and (thinned[0][0], thinned[0][-1]) == (0.0, 1.0)


def test_the_reported_versions_hold_the_date_out():
    versions = [
        ModelVersion("4", "r4", "din", f"{DAYS[0]}..{DAY}", ()),  # trained on DAY itself
        ModelVersion("3", "r3", "sdim", f"{DAYS[0]}..{DAYS[1]}", ()),
        ModelVersion("2", "r2", "sdim", f"{DAYS[0]}..{DAYS[1]}", (), night=DAY.isoformat()),
        ModelVersion("1", "r1", "din", f"{DAYS[0]}..{DAYS[1]}", ("champion",)),
    ]
    assert [v.version for v in report_versions(versions, DAY, "champion")] == ["2", "1"]  # the night's own model
    assert [v.version for v in report_versions(versions, NEXT_DAY, "champion")] == ["4", "1"]  # none that night
    assert [v.version for v in report_versions(versions, DAY, "champion", ["4"])] == ["4"]


def test_text_is_escaped():
    page = render_report(DAY, [
        Section("a", "<b>title</b>", [Image(PNG_SIGNATURE, alt='x" onerror="y', caption="<script>"),
                                      Table(["<c>"], [["<d>"]]), "<e>"]),
        Section("b", "missing", unavailable="<no table>"),
    ], generated_at=dt.datetime(2026, 11, 5, 6, 0))
    assert "<script>" not in page and "<b>" not in page and "<no table>" not in page
    assert "&lt;no table&gt;" in page and 'onerror="y' not in page

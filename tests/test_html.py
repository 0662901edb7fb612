"""The browsable leaderboard in a real headless browser (Debian's chromium, driven over the
DevTools protocol): the page loads without console errors, every image loads, clicking a
column header reorders the rows, and the strategy filter hides rows."""

import json

import pytest

from dqcl.evaluation.metrics import METRICS
from dqcl.results.leaderboard import write_leaderboard
from dqcl.results.store import Store

from browser import CHROMIUM, Browser

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")


def _put(store, label, name, seed, R, params=None, ordering=("cyto", "histo"), study="s"):
    cfg = {"study": study, "strategy": {"label": label, "name": name, "params": params or {}}, "ordering": list(ordering), "seed": seed}
    res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0] * len(ordering) for m in METRICS}, "model_sha256": f"{label}{seed}",
           "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10, "device": "cpu",
           "curve": [{"experience": 0, "epoch": 0, "loss": 1.0 - 0.1 * seed, "lr": 0.1, "images": 8, "steps": 1},
                     {"experience": 1, "epoch": 0, "loss": 0.5, "lr": 0.1, "images": 16, "steps": 2}]}
    store.put(f"{study}-{label}-{seed}-{'>'.join(ordering)}", cfg, res)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("lb")
    with Store(out / "r.sqlite") as store:
        for seed in (0, 1, 2):
            _put(store, "naive", "naive", seed, [[0.8, 0.0], [0.05 * seed, 0.7]])
            _put(store, "cumulative", "cumulative", seed, [[0.8, 0.0], [0.6 + 0.01 * seed, 0.65]])
            _put(store, "replay_10", "replay", seed, [[0.8, 0.0], [0.3, 0.7]], {"rate": 0.1})
            _put(store, "dq_replay_10", "dq_replay", seed, [[0.8, 0.0], [0.35 + 0.02 * seed, 0.7]], {"rate": 0.1})
            _put(store, "joint", "joint", seed, [[0.7, 0.66]])
            for order in (("cyto", "histo"), ("histo", "cyto")):
                _put(store, "naive", "naive", seed, [[0.75, 0.0], [0.1 * (order[0] == "histo") + 0.01 * seed, 0.7]],
                     ordering=order, study="claims_asymmetry")
        write_leaderboard(store, out / "site")
    return out / "site" / "index.html"


def test_the_leaderboard_page_loads_sorts_and_filters_in_a_browser(page, tmp_path):
    browser = Browser(tmp_path)
    try:
        browser.call("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        images = browser.js("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert len(images) >= 5 and all(ok for _, ok in images), f"images that did not load: {[s for s, ok in images if not ok]}"
        assert browser.errors() == []
        # the first table: ap50, cyto -> histo of study s; sort by ACC, both ways
        column = "ACC [95 % CI]"
        read = f"""(() => {{
            const t = [...document.querySelectorAll('section.table table')].find(t => t.tBodies[0].rows.length >= 4);
            const idx = [...t.tHead.rows[0].cells].findIndex(c => c.textContent === {json.dumps(column)});
            return [...t.tBodies[0].rows].map(r => [r.cells[1].textContent, parseFloat(r.cells[idx].textContent)]);
        }})()"""
        click = f"""(() => {{
            const t = [...document.querySelectorAll('section.table table')].find(t => t.tBodies[0].rows.length >= 4);
            [...t.tHead.rows[0].cells].find(c => c.textContent === {json.dumps(column)}).click();
        }})()"""
        before = browser.js(read)
        browser.js(click)
        ascending = browser.js(read)
        browser.js(click)
        descending = browser.js(read)
        values = [v for _, v in ascending]
        assert values == sorted(values) and [v for _, v in descending] == sorted(values, reverse=True)
        assert [s for s, _ in ascending] != [s for s, _ in before] or [s for s, _ in descending] != [s for s, _ in before]
        # the strategy filter hides every other strategy's rows
        browser.js("(() => { const i = document.getElementById('strategy'); i.value = 'replay'; i.dispatchEvent(new Event('input')); })()")
        shown = browser.js("[...document.querySelectorAll('tr[data-strategy]')].filter(r => !r.classList.contains('hidden')).map(r => r.dataset.strategy)")
        assert shown and all("replay" in s for s in shown)
        assert "Claims of the paper, tested" in browser.js("document.body.innerText")
        assert browser.errors() == []
    finally:
        browser.close()


def test_the_page_is_one_file_with_no_outside_resources(page):
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # no CDN, no server
    assert "<script>" in text and "<style>" in text

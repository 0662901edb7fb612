"""The browsable leaderboard: one static ``index.html`` beside the PNGs (no server, no CDN).

A table of contents by study, the claims, then per study its Data/provenance line, a
sortable table per metric and ordering (click a column header; again to reverse), the
health flags, the weights-vs-statistics table and the figures. A strategy filter and a
metric selector at the top hide what is not asked for.
"""

from __future__ import annotations

import html
from typing import Any

from ..core.text import NAME_LIMIT, shorten

__all__ = ["index_html"]

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.6em 1.2em;z-index:2}
main{padding:0 1.2em 3em;max-width:1500px}
h1{font-size:1.3em;margin:.2em 0}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.4em 0 1em;background:#fff;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
td:nth-child(2),th:nth-child(2){text-align:left}
th{background:#f0f0f3;cursor:pointer;user-select:none}th.asc:after{content:" ▲"}th.desc:after{content:" ▼"}
.prov{color:#555;font-size:12.5px}.flag{color:#a33}.verdict{font-weight:600}
nav a{margin-right:1em}img{max-width:100%;border:1px solid #eee;margin:.3em .3em 0 0;background:#fff}
.hidden{display:none}table.claims td{white-space:normal;text-align:left;vertical-align:top}table.claims td:nth-child(5){min-width:38em}table.claims td:nth-child(4){min-width:18em}
"""

_SCRIPT = """
function cellValue(td){const t=td.textContent.trim();const m=t.match(/^[+-]?\\d+(\\.\\d+)?/);return m?parseFloat(m[0]):null;}
function sortBy(th){
  const table=th.closest('table'),body=table.tBodies[0],idx=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));th.classList.add(asc?'asc':'desc');
  const rows=[...body.rows];
  rows.sort((a,b)=>{const x=cellValue(a.cells[idx]),y=cellValue(b.cells[idx]);
    if(x===null&&y===null)return a.cells[idx].textContent.localeCompare(b.cells[idx].textContent)*(asc?1:-1);
    if(x===null)return 1;if(y===null)return -1;return asc?x-y:y-x;});
  rows.forEach(r=>body.appendChild(r));
}
function applyFilters(){
  const q=document.getElementById('strategy').value.trim().toLowerCase();
  const metric=document.getElementById('metric').value;
  document.querySelectorAll('section.table').forEach(s=>s.classList.toggle('hidden',metric!=='all'&&s.dataset.metric!==metric));
  document.querySelectorAll('tr[data-strategy]').forEach(r=>r.classList.toggle('hidden',q!==''&&!r.dataset.strategy.toLowerCase().includes(q)));
}
document.addEventListener('DOMContentLoaded',()=>{
  document.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
  document.getElementById('strategy').addEventListener('input',applyFilters);
  document.getElementById('metric').addEventListener('change',applyFilters);
});
"""


def _table(headers: list[str], rows: list[list[Any]], strategy_col: int | None = 1, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for r in rows:
        attr = f' data-strategy="{html.escape(str(r[strategy_col]))}"' if strategy_col is not None else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _name(name: Any) -> str:
    """A study or domain name as page text or an attribute value: at most NAME_LIMIT characters, escaped
    (quotes too, so it cannot leave an attribute)."""
    return html.escape(shorten(str(name), NAME_LIMIT))


def _img(name: str, alt: str) -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


def index_html(
    studies: list[str], provenance: dict[str, str],
    tables: list[tuple[str, str, tuple[str, ...], str | None, list[str], list[list]]],
    claims: list, health: dict[str, list[str]], splits: dict[str, tuple[list[str], list[list]]],
    images: dict[str, list[str]], summary: str | None, legend: str,
    orders: dict[str, tuple[list[str], list[list]]] | None = None,
    tuning: tuple[list[str], list[list]] | None = None,
    trials: list[tuple[str, str, list[str], list[list]]] = (),
) -> str:
    """The page; ``images`` maps a study to its PNG file names (in the same folder); a table's block
    (its memory budget, or None) follows its ordering in the table's heading. Every text from the
    arguments is HTML-escaped here; names (studies, orderings, blocks) are also shortened to NAME_LIMIT."""
    metrics = sorted({t[1] for t in tables})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>dqcl leaderboard</title>",
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body><header><h1>dqcl leaderboard</h1>",
        "<nav>" + "".join(f'<a href="#{_name(s)}">{_name(s)}</a>' for s in ["claims", *studies])
        + ("<a href='#tuned-beside-untuned'>tuned beside untuned</a>" if tuning else "") + "</nav>",
        "<label>strategy <input id='strategy' placeholder='filter, e.g. replay'></label> ",
        "<label>metric <select id='metric'><option value='all'>all</option>"
        + "".join(f"<option>{html.escape(m)}</option>" for m in metrics) + "</select></label>",
        "</header><main>",
        f"<details><summary>How to read the tables</summary><pre>{html.escape(legend)}</pre></details>",
    ]
    if summary:
        parts.append("<h2 id='summary'>Every strategy, every study</h2>" + _img(summary, "summary: ACC and forgetting per strategy and study"))
    parts.append("<h2 id='claims'>Claims of the paper, tested</h2>")
    if claims:
        parts.append(_table(["claim", "study", "domains", "rule", "evidence", "verdict"],
                            [[c.claim, c.study, c.pair, c.rule, c.evidence, c.verdict.replace("**", "")] for c in claims],
                            strategy_col=None, css="claims"))
    else:
        parts.append("<p>No stored study tests a claim yet (<code>dqcl run claims</code>).</p>")
    if tuning:
        headers, rows = tuning
        parts.append("<h2 id='tuned-beside-untuned'>Tuned beside untuned</h2><p class='prov'>Each strategy some study ran at values "
                     "<code>dqcl tune</code> chose, beside its untuned cells at the same ordering and memory budget. Rows of "
                     "different protocols stand side by side and are never pooled: a gap between them is the tuning and the "
                     "protocol together.</p><section class='table' data-metric='ap50'>" + _table(headers, rows, strategy_col=0)
                     + "</section>")
    for title, how, headers, rows in trials:  # each tuning file's grid
        parts.append(f"<h2>{html.escape(title)}</h2><p class='prov'>{html.escape(how)}</p><section class='table' "
                     f"data-metric='ap50'>{_table(headers, rows, strategy_col=0)}</section>")
    for study in studies:
        parts += [f"<h2 id='{_name(study)}'>{_name(study)}</h2>", f"<p class='prov'>{html.escape(provenance.get(study, ''))}</p>"]
        for st, metric, order, block, headers, rows in tables:
            if st != study:
                continue
            within = f" — {_name(block)}" if block else ""
            parts.append(f"<section class='table' data-metric='{html.escape(metric)}'><h3>{html.escape(metric)}: "
                         f"{' → '.join(_name(d) for d in order)}{within}</h3>{_table(headers, rows)}</section>")
        if study in (orders or {}):
            headers, rows = orders[study]
            parts.append("<section class='table' data-metric='ap50'><h3>Order sensitivity (ap50)</h3>"
                         + _table(headers, rows, strategy_col=0) + "</section>")
        if study in splits:
            headers, rows = splits[study]
            parts.append("<section class='table' data-metric='ap50'><h3>Weights or statistics? (ap50)</h3>"
                         + _table(headers, rows) + "</section>")
        flags = health.get(study, [])
        parts.append("<p>Health: " + ("no flag.</p>" if not flags else "</p><ul>" + "".join(
            f"<li class='flag'>{html.escape(f)}</li>" for f in flags) + "</ul>"))
        parts.append("<div>" + "".join(_img(name, name) for name in images.get(study, [])) + "</div>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"

"""The published page and README block: rendered from the board, self-contained, byte-stable; the README's marked
block replaced and nothing else. The page's behaviour in a real browser is tests/test_browser.py."""
from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import board_examples as ex
import pytest

from harness import cli, store
from harness.errors import ConfigError
from harness.publish import page as board_page
from harness.publish import plots, readme


class _Page(HTMLParser):
    """Collects what a browser would fetch or follow: tag attributes, inline style text, image sources."""

    def __init__(self):
        super().__init__()
        self.attrs, self.styles, self.images, self._in_style = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self.images += [v for k, v in attrs if tag == "img" and k == "src"]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def svg_of(data_uri: str) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    return base64.b64decode(data_uri[len(prefix):]).decode("utf-8")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The board written by write.write (index.html beside md/csv/json), before any bootstrap keys."""
    out = tmp_path_factory.mktemp("board")
    data = ex.board(out)
    return data, (out / ex.SUITE / "index.html").read_text(encoding="utf-8")


def test_write_renders_the_page_beside_the_other_outputs(written):
    _, html = written
    for name in ex.ENTRIES:
        assert f'data-submission="{name}"' in html
    assert "failed: timeout" in html and ex.FAILED_REASON in html
    assert "not submitted" in html and "n/a" in html
    assert "mean_normalized" in html and "Mean of normalised scores" in html
    assert "f1|sig:1" in html and "c" * 12 in html  # signatures and provenance in the details
    assert "/somewhere/" not in html  # data files by name, not by the machine's path
    assert html.count('<span class="badge">baseline</span>') == 1


def test_page_without_bootstrap_keys_degrades(written):
    _, html = written
    assert "Contest phase: not declared" in html
    assert "the records carry no time" in html
    assert "Rank stability needs bootstrap data" in html
    assert 'class="ci"' not in html and "no confidence intervals" in html
    assert re.findall(r'data-key="tier" data-sort="">—<', html) and 'id="tiers"' not in html


def test_page_with_bootstrap_keys_shows_them(written):
    data, _ = written
    html = board_page.render_page(ex.with_bootstrap(data), ex.records())
    alpha = data["rows"][0]["cells"]["qa"]["primary"]
    assert f'<span class="ci" title="confidence interval">[{alpha * 0.95:.2f}, {alpha * 1.04:.2f}]</span>' in html
    assert 'data-key="tier" data-sort="1">1<' in html and 'id="tiers"' in html and "1000 resamples, seed 1234" in html
    assert "demo-contest" in html and "phase <b>public</b>" in html
    assert "<time>2025-01-31T12:00:00+00:00</time>" in html
    images = parse(html).images
    assert len(images) == 2  # per-task scores and rank stability
    rank_svg = svg_of(images[1])
    assert "80%" in rank_svg and "n=1000" in rank_svg


def test_page_is_self_contained(written):
    data, _ = written
    html = board_page.render_page(ex.with_bootstrap(data), ex.records())
    page = parse(html)
    fetched = [(tag, key, value) for tag, key, value in page.attrs if key in ("src", "srcset", "poster", "data")]
    assert fetched and all(value.startswith("data:") for _, _, value in fetched)
    assert not [a for a in page.attrs if a[0] == "link"]  # no external stylesheet, icon or preload
    assert not [a for a in page.attrs if a[0] == "script" and a[1] == "src"]
    links = [value for _, key, value in page.attrs if key == "href"]
    assert links and all(not re.match(r"^([a-z]+:|//)", v) or v.startswith("data:") for v in links)
    assert page.styles and not re.search(r"url\(|@import", "".join(page.styles))
    for image in page.images:  # the SVGs reference nothing outside themselves either
        svg = svg_of(image)
        assert "<svg" in svg and not re.search(r"href=\"(?!#)", svg) and "<image" not in svg


def test_page_bytes_are_deterministic(tmp_path):
    ex.board(tmp_path / "one")
    from harness.board import write

    write.write(list(reversed(ex.records())), ex.SUITE, ex.TASKS, "mean_normalized", tmp_path / "two")
    one = (tmp_path / "one" / ex.SUITE / "index.html").read_bytes()
    assert one == (tmp_path / "two" / ex.SUITE / "index.html").read_bytes()
    data = json.loads((tmp_path / "one" / ex.SUITE / "leaderboard.json").read_text(encoding="utf-8"))
    boot = ex.with_bootstrap(data)
    assert board_page.render_page(boot, ex.records()) == board_page.render_page(boot, ex.records()[::-1])


def test_plots_are_stable_svg(written):
    data, _ = written
    svg = plots.task_scores_svg(data)
    assert svg == plots.task_scores_svg(data)
    assert "<dc:date>" not in svg and "bits_per_byte ↓" in svg  # no timestamp; text kept as text
    assert plots.rank_stability_svg(data) is None
    assert plots.task_scores_svg({"tasks": {}, "rows": []}) is None


def test_aggregate_direction_follows_the_policy(tmp_path):
    from harness.board import write

    write.write(ex.records(), ex.SUITE, ex.TASKS, "mean_rank", tmp_path)
    html = (tmp_path / ex.SUITE / "index.html").read_text(encoding="utf-8")
    assert 'data-key="aggregate" data-type="num" data-first="asc"' in html


# ---------------------------------------------------------------- the README block

README = "# Project\n\nintro\n\n<!-- leaderboard:demo:start -->\nold board\n<!-- leaderboard:demo:end -->\n\nmore\n"
BOARD_MD = "# Leaderboard: demo\n\n| Rank | Submission |\n|---|---|\n| 1 | a |\n"


def test_update_readme_replaces_only_the_block(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README, encoding="utf-8")
    assert readme.update_readme(path, "demo", BOARD_MD) is True
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Project\n\nintro\n\n<!-- leaderboard:demo:start -->\n")
    assert text.endswith("<!-- leaderboard:demo:end -->\n\nmore\n")
    assert "old board" not in text and "| 1 | a |" in text and "# Leaderboard" not in text
    assert readme.update_readme(path, "demo", BOARD_MD) is False  # idempotent
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("content, found", [
    ("# no markers\n", "start marker 0 time(s) and the end marker 0"),
    ("<!-- leaderboard:demo:end -->\n<!-- leaderboard:demo:start -->\n", "end before start"),
    (README + README, "start marker 2 time(s)"),
    (README.replace("demo", "other"), "start marker 0 time(s)"),
])
def test_update_readme_names_the_missing_markers(tmp_path, content, found):
    path = tmp_path / "README.md"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        readme.update_readme(path, "demo", BOARD_MD)
    message = str(error.value)
    assert str(path) in message and "<!-- leaderboard:demo:start -->" in message and found in message
    assert path.read_text(encoding="utf-8") == content


def test_cli_leaderboard_readme(tmp_path, capsys):
    results, boards, readme = tmp_path / "store", tmp_path / "boards", tmp_path / "README.md"
    rec = ex.record("alpha", "qa")
    rec["task"] = "demo_qa"
    store.write_cell(results, rec, [])
    readme.write_text(README, encoding="utf-8")
    (tmp_path / "subs" / "alpha" / "predictions").mkdir(parents=True)  # a board shows the entries that exist
    (tmp_path / "subs" / "alpha" / "submission.yaml").write_text("team: team-a\nname: alpha\nkind: predictions\n")
    args = ["leaderboard", "suite=demo", f"paths.results={results}", f"paths.leaderboards={boards}",
            f"paths.submissions={tmp_path / 'subs'}"]
    assert cli.main(args + [f"readme={readme}"]) == 0
    assert (boards / "demo" / "index.html").is_file()
    assert "| 1 | alpha | team-a |" in readme.read_text(encoding="utf-8")
    assert cli.main(args + [f"readme={tmp_path / 'absent.md'}"]) == 2
    err = capsys.readouterr().err
    assert "absent.md" in err and "does not exist" in err and "Traceback" not in err


def test_rank_plot_draws_the_top_entries_as_a_map_and_the_rest_as_ranges():
    """A board of K entries: a heat map of the first 30 (one percentage per (entry, rank) taken) and one line for
    each other entry, so the plot grows linearly with K instead of as K x K."""
    def board_of(k: int) -> dict:
        rows = [{"submission": f"entry-{i:03d}", "kind": "predictions"} for i in range(k)]
        spread = {f"entry-{i:03d}": {str(max(1, i - 1)): 0.25, str(i + 1): 0.5, str(min(k, i + 3)): 0.25}
                  for i in range(k)}
        return {"rows": rows, "rank_distribution": spread, "bootstrap": {"resamples": 1000}}

    small, large = plots.rank_stability_svg(board_of(60)), plots.rank_stability_svg(board_of(240))
    assert all(f"entry-{i:03d}" in large for i in range(240))  # every entry is named
    assert large.count("25%") + large.count("50%") <= 3 * 30  # percentages for the top 30 only
    assert len(large) < 4.5 * len(small)  # linear growth, not (240 / 60) ** 2 = 16x


def _row_html(html: str, name: str) -> str:
    start = html.index(f'data-submission="{name}"')
    return html[start:html.index("</tbody>", start)]


def test_page_shows_a_dash_for_an_unranked_rank_and_each_reason_once(tmp_path):
    import board_examples as ex

    data = ex.board(tmp_path)
    row = next(r for r in data["rows"] if r["submission"] == "beta")
    for cell in row["cells"].values():  # every task of beta failed for one reason
        cell.update(status="timeout", reason=ex.FAILED_REASON, primary=None)
    next(r for r in data["rows"] if r["submission"] == "baseline-copy")["rank"] = None  # a declared baseline
    html = board_page.render_page(data, ex.records())
    baseline = _row_html(html, "baseline-copy")
    assert 'data-key="rank" data-sort="">—</td>' in baseline and "None" not in baseline
    main_row = _row_html(html, "beta").split('<tr class="details"')[0]
    assert main_row.count(f'class="reason">{ex.FAILED_REASON}') == 1  # once per row, not in every column


def test_rank_plot_has_a_column_per_rank_taken(tmp_path):
    import board_examples as ex
    from harness.publish import plots

    data = ex.with_bootstrap(ex.board(tmp_path))
    data["rank_distribution"] = {"alpha": {"1": 0.9, "2": 0.1}, "gamma": {"1": 0.1, "2": 0.8, "3": 0.1},
                                 "beta": {"2": 0.1, "3": 0.9}}  # baseline-copy: a fourth row, never ranked
    assert plots.rank_columns(data) == [1, 2, 3]


def test_a_refused_entry_keeps_its_team(tmp_path):
    from harness.compose import compose
    from harness.execution.executors import evaluate_all

    folder = tmp_path / "subs" / "pickled"
    (folder / "model").mkdir(parents=True)
    (folder / "submission.yaml").write_text("team: team-p\nname: pickled\nkind: hf-causal\nmodel: model\n")
    (folder / "model" / "config.json").write_text("{}")
    (folder / "model" / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")  # a pickle: refused
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}"])
    records = evaluate_all(cfg, {"demo_qa": cfg.tasks.demo_qa}, [folder], echo=lambda m: None)
    assert [(r["status"], r["team"], r["submission_kind"]) for r in records] == [("refused", "team-p", "hf-causal")]

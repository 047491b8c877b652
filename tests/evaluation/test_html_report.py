"""report.html: what the page holds (no external URL, thumbnails of the frames the model saw, judge trajectories),
trace files, hostile content, and `mmreward view`. The page's behaviour in a browser: test_report_browser.py."""

import json
import re
import shutil
import threading
import urllib.request
from types import SimpleNamespace

import pytest
from report_runs import HOSTILE, page_data

from mmreward.cli import main
from mmreward.evaluation.html_report import render_page, write_html_report, write_trace_report
from mmreward.evaluation.report_media import Thumbs
from mmreward.evaluation.report_traces import MAX_IMAGES, compact_trace

# Anything that would make a browser reach the network: a scheme URL, a protocol-relative src/href, CSS imports.
EXTERNAL = re.compile(r"\b(?:https?|wss?|ftp)://|(?:src|href|action)\s*=\s*[\"']?//|@import|url\(\s*[\"']?(?!data:)",
                      re.I)


def _rows(run):
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def test_head_report_is_one_offline_file_with_the_frames_the_model_saw(report_head_run):
    from mmreward.data.collate import MediaContract
    from mmreward.data.media import load_video

    page = report_head_run / "report.html"
    html = page.read_text(encoding="utf-8")
    assert EXTERNAL.search(html) is None
    assert "default-src 'none'" in html  # the page may not fetch anything, even if some data held a URL
    data, media = page_data(page)
    rows = _rows(report_head_run)
    assert [s["id"] for s in data["samples"]] == [r["id"] for r in rows]
    assert [p["name"] for p in data["plots"]] == ["scores_hist", "category_accuracy", "calibration"]
    # Video thumbnails are the frames of the scoring contract, at their timestamps (v0: 20 frames at 10 fps,
    # sampled at 2 fps -> 4 frames).
    contract = MediaContract.from_dict(json.loads((report_head_run / "results.json").read_text())["sampling_contract"])
    first = data["samples"][0]["a"]["media"][0]
    expected = load_video(report_head_run.parent / "vg" / "videos" / "v0.mp4", sampling=contract.video)
    assert first["path"] == "videos/v0.mp4" and first["sampled"] == len(expected.timestamps) == 4
    assert [f["t"] for f in first["frames"]] == [round(t, 3) for t in expected.timestamps]
    # Written once per unique thumbnail, and inlined (each once) so the file stands alone.
    refs = {f["src"] for s in data["samples"] for side in ("a", "b") for m in s[side]["media"] for f in m["frames"]}
    assert set(media) == refs and all(v.startswith("data:image/jpeg;base64,") for v in media.values())
    assert sorted(p.name for p in (report_head_run / "report_media").iterdir()) == sorted(
        r.split("/")[1] for r in refs)
    # Correct = preferred equals the label; the hostile prompt is data, escaped in the page source.
    assert [s["ok"] for s in data["samples"]] == [r["preferred"] == r["label"] for r in rows]
    assert data["samples"][7]["prompt"] == HOSTILE and HOSTILE not in html


def test_judge_samples_keep_bounded_trajectories_with_evicted_frames(report_judge_run):
    rows = {r["id"]: r for r in _rows(report_judge_run)}
    assert [s["order"] for s in rows["p3"]["samples"]] == ["given", "swapped"]
    trace = rows["p3"]["samples"][0]["trace"]
    roles = [m["role"] for m in trace["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert trace["messages"][1]["calls"] == [{"name": "select_frames",
                                              "arguments": '{"video": 1, "target_frames": [1, 10, 20]}'}]
    # Memory window 1: the first look's 3 frames were evicted by the second; the report keeps their pixels.
    first_look, second_look = trace["messages"][2]["parts"], trace["messages"][4]["parts"]
    assert [list(p) for p in first_look[:3]] == [["evicted"]] * 3 and all(p["evicted"] for p in first_look[:3])
    assert [list(p) for p in second_look[:3]] == [["image"]] * 3
    assert trace["messages"][5]["parts"][0] == {"think": "Video 2 lasts longer and keeps moving."}
    assert trace["verdict"] == {"VQ": "B", "MQ": "B", "TA": "B", "overall": "B"} and trace["parse_error"] is None
    for part in first_look[:3] + second_look[:3]:
        assert (report_judge_run / (part.get("evicted") or part["image"])).is_file()
    # The undecidable pair: both orders' failures are in the trace, not only the error string.
    bad = rows["p2"]["samples"][0]["trace"]
    assert rows["p2"]["failure"] == "unparsed" and bad["verdict"] is None and bad["parse_error"]
    assert rows["p0"]["consistent"] is False and rows["p3"]["consistent"] is True


def test_compact_trace_caps_and_survives_hostile_episodes(tmp_path):
    from PIL import Image

    from mmreward.data.trajectory import Trajectory

    images = [Image.new("RGB", (40, 30), (i, 0, 0)) for i in range(MAX_IMAGES + 5)]
    messages = [{"role": "user", "content": [{"type": "image"}] * len(images) + [{"type": "text", "text": "x" * 9000}]},
                "not a message", {"role": "assistant", "content": "<think>a" + "]" * 3 + "<answer>{bad"},
                {"role": "tool", "content": [{"type": "image"}, {"weird": [[[[1]]]]}, 42]},
                {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "crop", "arguments": {
                    "box": [1, 2]}}}, "garbage", {"function": "nope"}]}]
    traj = Trajectory(id="t", messages=messages, images=images, verdict="not a dict", parse_error="boom")
    trace = compact_trace(traj, Thumbs(tmp_path))
    user = trace["messages"][0]["parts"]
    assert sum(1 for p in user if p.get("image")) == MAX_IMAGES and trace["cut"] == {"messages": 0, "images": 5}
    assert user[-1]["text"].endswith("[5000 more characters]") and len(user[-1]["text"]) < 4100
    assert trace["messages"][1] == {"role": "?", "parts": [{"text": "not a message"}]}
    assert trace["messages"][2]["parts"] == [{"think": "a]]]"}, {"answer": "{bad"}]
    assert trace["messages"][3]["parts"][0] == {"image": None, "note": "image not kept"}  # no pixels left
    assert [c["name"] for c in trace["messages"][4]["calls"]] == ["crop", "?", "?"]
    assert trace["verdict"] is None and trace["parse_error"] == "boom"
    assert len(list((tmp_path / "report_media").iterdir())) == MAX_IMAGES


def test_page_data_cannot_close_the_script_or_fill_a_marker():
    data = {"mode": "pairs", "summary": {}, "plots": [], "samples": [
        {"i": 0, "id": "x", "prompt": "</script><script>alert(1)</script> /*__JS__*/ __DATA__ \u2028 <!--"}]}
    html = render_page(data, {}, title="<b>t</b>")
    assert html.count("<script>") == 1 and html.count("</script>") == 3  # data, media, the page's own script
    assert page_data_from(html)["samples"][0]["prompt"] == data["samples"][0]["prompt"]
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in html


def page_data_from(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


def test_large_thumbnail_sets_stay_next_to_the_page(report_head_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_head_run, run)
    summary = json.loads((run / "results.json").read_text())
    rows = _rows(run)
    for row in rows:  # a judge-like trace pointing at an existing thumbnail
        row["samples"][0]["trace"] = {"id": row["id"], "messages": [
            {"role": "tool", "parts": [{"image": next((run / "report_media").iterdir()).relative_to(run).as_posix()}]}]}
    page = write_html_report(run, summary, rows, inline_limit=0)
    data, media = page_data(page)
    assert media == {}  # over the limit: the page loads report_media/… relative to itself
    src = data["samples"][0]["samples"][0]["trace"]["messages"][0]["parts"][0]["image"]
    assert src.startswith("report_media/") and (run / src).is_file()


def _trace_file(tmp_path):
    from PIL import Image

    from mmreward.data.trajectory import Trajectory, write_trajectories

    good = Trajectory(id="ok", messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                                          "text": "Which is better?"}]},
                                         {"role": "assistant", "content": '<think>A.</think><answer>{"overall": "A"}</answer>'}],
                      images=[Image.new("RGB", (32, 32), "red")], verdict={"overall": "A"}, turns=1,
                      finish_reason="answer", meta={"template": "pairwise_image"})
    unparsed = Trajectory(id="np", messages=[{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "hmm"}],
                          parse_error="no <answer> block", finish_reason="answer")
    path = write_trajectories(tmp_path / "traces.jsonl", [good, unparsed])
    with open(path, "a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"id": "lost", "messages": [{"role": "user", "content": [{"type": "image"}]}],
                            "images": ["traces_images/missing.png"]}) + "\n")
    return path


def test_trace_file_report_shows_every_line_and_names_bad_ones(tmp_path):
    page = write_trace_report(_trace_file(tmp_path))
    assert page == tmp_path / "traces_report.html"
    data, media = page_data(page)
    by_id = {s["id"]: s for s in data["samples"]}
    assert list(by_id) == ["ok", "np", "traces.jsonl:3", "lost"]
    assert by_id["ok"]["prompt"] == "Which is better?" and by_id["ok"]["fail"] is None
    assert by_id["ok"]["trace"]["messages"][0]["parts"][0]["image"] in media
    assert by_id["np"]["fail"] == "unparsed" and by_id["np"]["trace"]["parse_error"] == "no <answer> block"
    assert by_id["traces.jsonl:3"]["err"].startswith("traces.jsonl:3: not JSON")
    assert "traces.jsonl:4: image traces_images/missing.png" in by_id["lost"]["err"]
    assert dict(data["summary"]["metrics"]) == {"traces": 4, "with_verdict": 1, "unparsed": 1, "unreadable": 2}


def test_view_writes_or_serves_the_page(report_judge_run, tmp_path, capsys):
    from mmreward.evaluation.view import make_server, page_url, prepare

    run = tmp_path / "run"
    shutil.copytree(report_judge_run, run)
    (run / "report.html").unlink()
    # An older run without report.html: re-rendered from results.json + samples.jsonl (traces included).
    assert main(["view", str(run), "--no-serve"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    data, _ = page_data(run / "report.html")
    assert data["samples"][3]["samples"][0]["trace"]["verdict"]["overall"] == "B"
    assert main(["view", str(_trace_file(tmp_path)), "--no-serve"]) == 0
    assert capsys.readouterr().out.strip().endswith("traces_report.html")
    assert main(["view", str(tmp_path / "nothing.txt"), "--no-serve"]) == 2
    assert "not an eval run folder" in capsys.readouterr().err
    # Served on localhost: the URL the command prints answers with the page.
    page = prepare(run)
    server = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = page_url(server, page)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/report.html")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == page.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


class _LengthScorer:
    kind = "head"

    def score(self, records, **kwargs):
        return [SimpleNamespace(score=float(len(r.response)), error=None) for r in records]


@pytest.mark.parametrize("flags", [[], ["--no-report"]])
def test_listwise_runs_get_a_report_unless_told_not_to(monkeypatch, tmp_path, flags):
    import mmreward.scoring
    from mmreward.data.schema import PointwiseRecord
    from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData, BenchmarkSpec

    records = [PointwiseRecord(id=f"g/{i}", prompt=f"prompt {i}", response="x" * (i + 1), meta={"group": "g"})
               for i in range(3)]
    monkeypatch.setitem(BENCHMARKS, "toy_list", BenchmarkSpec(
        loader=lambda source, options: BenchmarkData(name="toy_list", kind="listwise", records=records),
        description="toy", metrics=(), download="nowhere"))
    monkeypatch.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: _LengthScorer())
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "toy_list", "--data", "D", "--model", "m", "--out", str(out),
                 "--no-progress", *flags]) == 0
    assert (out / "results.json").is_file() and (out / "report.html").is_file() == (not flags)
    if not flags:
        data, _ = page_data(out / "report.html")
        assert data["mode"] == "listwise"
        assert [(s["id"], s["score"], s["response"]) for s in data["samples"]] == [
            ("g/0", 1.0, "x"), ("g/1", 2.0, "xx"), ("g/2", 3.0, "xxx")]

"""``apate scan``: folders, globs and lists; real scoring with the shipped ``apate`` model; resume; outputs.

Nothing of the detector is mocked: every row is a real intake + score + verdict. The media are tiny, so one scan
of the whole folder takes a few seconds; the tests that only read its outputs share one run.
"""

import csv
import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apate_core.detect.pipeline import DetectParams
from apate_core.errors import Cancelled, InputRefused
from apate_core.progress import CancelToken
from apate_core.scan import COLUMNS, FAILED, OK, UNREADABLE, ScanParams, expand_sources, plan_scan, read_jsonl, \
    run_scan
from apate_core.scan import executors as scan_executors
from apate_core.scan.executors import LocalExecutor
from apate_core.scan.rows import suspicion_order
from apate_core.scan.worker import FileAnalyser, analyse_in_worker
from apate_core.settings import load_settings
from tests.media_factory import make_video, truncate

MODEL = "apate"  # shipped weights: the same scores in every process (an untrained model is random per process)
DUP_NAME = "z <b>&'dup'.jpg"  # a copy of noise_1.jpg under a name that HTML must escape
ANALYSABLE = ("flat.png", "noise_0.jpg", "noise_1.jpg", "noise_2.jpg", "clip.mp4", DUP_NAME)
UNREADABLE_NAMES = ("broken.jpg", "notes.txt")


def _noise(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_folder(root: Path) -> Path:
    """Good images (noise and a flat PNG) and a short clip, a duplicate, a corrupt JPEG, a text file, hidden files."""
    folder = root / "media"
    (folder / "sub").mkdir(parents=True)
    for seed in range(3):
        _noise(folder / f"noise_{seed}.jpg", seed)
    Image.fromarray(np.full((60, 80, 3), 120, np.uint8)).save(folder / "sub" / "flat.png")
    make_video(folder / "sub" / "clip.mp4", "mp4", seconds=2, fps=5)
    shutil.copy(folder / "noise_1.jpg", folder / "sub" / DUP_NAME)
    truncate(folder / "noise_0.jpg", 0.3, dst=folder / "broken.jpg")
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.jpg").write_bytes((folder / "noise_2.jpg").read_bytes())
    (folder / ".cache").mkdir()
    (folder / ".cache" / "skip.jpg").write_bytes((folder / "noise_2.jpg").read_bytes())
    return folder


def scan_settings(root: Path):
    return load_settings({}, cache_dir=str(root / "cache"), models_dir=str(root / "models"))


def scan(folder: Path, out: Path, settings, *, workers: int = 1, cancel=None, on_row=lambda row: None, **detect):
    params = ScanParams(sources=(str(folder),), out_dir=out, workers=workers, model=MODEL,
                        detect=DetectParams(cam=None, **detect))
    plan = plan_scan(params, settings)
    return plan, run_scan(plan, settings, cancel=cancel, on_row=on_row)


def by_name(rows):
    return {row.name: row for row in rows}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One complete scan of the folder, in this process, shared by the tests that read its outputs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("scan")
    folder = make_folder(root)
    settings = scan_settings(root)
    plan, result = scan(folder, root / "out", settings)
    torch.set_num_threads(threads)
    return folder, settings, plan, result


# --------------------------------------------------------------------------------------------
# One scan of a folder with good, bad and duplicate files
# --------------------------------------------------------------------------------------------


def test_folder_scan_lists_every_file_and_keeps_going_past_bad_ones(scanned):
    folder, _settings, plan, result = scanned
    rows = by_name(result.rows)
    assert sorted(rows) == sorted(ANALYSABLE + UNREADABLE_NAMES)  # hidden files and folders skipped
    assert len(plan.todo) == len(rows) and not plan.reused
    for name in ANALYSABLE:
        row = rows[name]
        assert row.status == OK and row.error == "" and 0.0 <= row.score <= 1.0 and row.model == MODEL
        assert row.label in ("real", "uncertain", "fake", "segments") and row.decided_by in ("model", "segments")
        assert len(row.sha256) == 64 and len(row.weights_sha256) == 64 and row.max_score >= row.score - 1e-9
    assert rows["clip.mp4"].kind == "video" and rows["clip.mp4"].frames == 2  # 2 s at 1 fps
    assert rows["flat.png"].kind == "image" and rows["flat.png"].frames == 1
    assert rows["broken.jpg"].status == UNREADABLE
    assert re.search("damaged|truncated|cannot be decoded", rows["broken.jpg"].error)
    assert rows["notes.txt"].status == UNREADABLE and "not a recognised image or video" in rows["notes.txt"].error
    assert all(rows[name].label == "" and rows[name].score is None for name in UNREADABLE_NAMES)


def test_a_duplicate_is_marked_and_served_from_the_store(scanned):
    folder, _settings, _plan, result = scanned
    rows = by_name(result.rows)
    original, copy = rows["noise_1.jpg"], rows[DUP_NAME]
    assert copy.sha256 == original.sha256 and copy.score == original.score and copy.label == original.label
    assert copy.duplicate_of == str((folder / "noise_1.jpg").resolve()) and original.duplicate_of == ""
    assert copy.from_store and not original.from_store  # same content, model and parameters: one computation
    assert result.summary.duplicates == 1 and result.summary.from_store == 1


def test_summary_counts_by_label_and_most_suspicious_first(scanned):
    _folder, _settings, _plan, result = scanned
    summary, rows = result.summary, result.rows
    ok = [row for row in rows if row.status == OK]
    assert summary.files == 8 and summary.analysed == 6 and summary.unreadable == 2 and summary.failed == 0
    assert sum(summary.labels.values()) == 6
    for label, count in summary.labels.items():
        assert count == sum(1 for row in ok if row.label == label)
    assert rows == sorted(rows, key=suspicion_order)
    assert [row.status for row in rows] == [OK] * 6 + [UNREADABLE] * 2  # unreadable files last
    same_label = [row.score for row in ok if row.label == ok[0].label]
    assert same_label == sorted(same_label, reverse=True)  # within a label, highest P(fake) first
    assert summary.most_suspicious[0]["path"] == ok[0].path
    written = json.loads(result.paths["summary"].read_text())
    assert written["labels"] == summary.labels and written["model"] == MODEL
    assert {item["path"] for item in written["unreadable_files"]} == {r.path for r in rows if r.status != OK}
    assert summary.new == 8 and summary.reused == 0 and summary.files_per_s > 0


def test_csv_and_jsonl_have_one_parseable_line_per_file(scanned):
    _folder, _settings, _plan, result = scanned
    with open(result.paths["csv"], newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        csv_rows = list(reader)
    lines = result.paths["jsonl"].read_text(encoding="utf-8").splitlines()
    json_rows = [json.loads(line) for line in lines]
    assert len(csv_rows) == len(json_rows) == len(result.rows) == 8
    assert [r["path"] for r in csv_rows] == [r["path"] for r in json_rows] == [r.path for r in result.rows]
    assert len({r["path"] for r in csv_rows}) == 8
    for csv_row, json_row in zip(csv_rows, json_rows):
        assert set(json_row) == set(COLUMNS)
        assert csv_row["status"] == json_row["status"] and csv_row["sha256"] == json_row["sha256"]
        if json_row["status"] == OK:
            assert float(csv_row["score"]) == pytest.approx(json_row["score"], abs=1e-12)
            assert int(csv_row["frames"]) == json_row["frames"] >= 1 and csv_row["error"] == ""
        else:
            assert csv_row["score"] == "" and json_row["score"] is None and csv_row["error"] == json_row["error"]
    dup = next(r for r in csv_rows if r["name"] == DUP_NAME)
    assert dup["duplicate_of"].endswith("noise_1.jpg") and dup["from_store"] == "True"


def test_html_overview_names_every_file_escaped_and_is_self_contained(scanned):
    _folder, _settings, _plan, result = scanned
    page = result.paths["html"].read_text(encoding="utf-8")
    assert html.escape(DUP_NAME, quote=True) in page and DUP_NAME not in page and "<b>" not in page
    for row in result.rows:
        assert html.escape(row.name, quote=True) in page
    for row in result.rows:
        if row.status != OK:
            assert html.escape(row.error, quote=True) in page  # every unreadable file with its reason
    positions = [page.index(f"<td>{html.escape(row.name, quote=True)}") for row in result.rows if row.status == OK]
    assert positions == sorted(positions)  # most suspicious first
    assert "http://" not in page and "https://" not in page and "<script" not in page


# --------------------------------------------------------------------------------------------
# Resume
# --------------------------------------------------------------------------------------------


def test_a_cancelled_scan_resumes_without_analysing_finished_files(tmp_path, one_thread):
    folder = make_folder(tmp_path)
    settings, out = scan_settings(tmp_path), tmp_path / "out"
    token, first = CancelToken(), []

    def stop_after_three(row):
        first.append(row)
        if len(first) == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        scan(folder, out, settings, cancel=token, on_row=stop_after_three)
    journal, dropped = read_jsonl(out / "scan.jsonl")
    assert [r.path for r in journal] == [r.path for r in first] and dropped == 0
    assert not (out / "scan.csv").exists()  # the reports are written at the end of a complete run

    second = []
    plan, result = scan(folder, out, settings, on_row=second.append)
    assert {r.path for r in plan.reused} == {r.path for r in first}
    assert {t.path for t in plan.todo} == {r.path for r in result.rows} - {r.path for r in first}
    assert {r.path for r in second}.isdisjoint({r.path for r in first})  # nothing analysed twice
    assert len(result.rows) == 8 and result.summary.reused == 3 and result.summary.new == 5
    kept = by_name(result.rows)
    for row in first:  # kept as recorded, not re-made
        assert kept[row.name].seconds == row.seconds and kept[row.name].score == row.score

    plan, again = scan(folder, out, settings)  # a third run has nothing to do
    assert not plan.todo and again.summary.new == 0 and len(again.rows) == 8


def test_a_torn_journal_after_a_crash_is_repaired_and_lost_rows_come_from_the_store(tmp_path, one_thread):
    folder = make_folder(tmp_path)
    settings, out = scan_settings(tmp_path), tmp_path / "out"
    _plan, full = scan(folder, out, settings)
    lines = (out / "scan.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    ok_lines = [line for line in lines if json.loads(line)["status"] == OK]
    # A crash: two rows written, the third cut mid-line, the rest never written.
    (out / "scan.jsonl").write_text(ok_lines[0] + ok_lines[1] + ok_lines[2][: len(ok_lines[2]) // 2], encoding="utf-8")

    plan = plan_scan(ScanParams(sources=(str(folder),), out_dir=out, model=MODEL), settings)
    assert plan.dropped_lines == 1 and len(plan.reused) == 2 and len(plan.todo) == 6
    result = run_scan(plan, settings)
    new = {row.path: row for row in result.rows if row.path in {t.path for t in plan.todo}}
    assert all(row.from_store for row in new.values() if row.status == OK)  # scored before the crash: not again
    assert sorted((r.path, r.label, r.score) for r in result.rows) == sorted((r.path, r.label, r.score)
                                                                             for r in full.rows)
    assert len(read_jsonl(out / "scan.jsonl")[0]) == 8


def test_changed_files_failed_rows_and_new_parameters_are_analysed_again(tmp_path, one_thread):
    folder = make_folder(tmp_path)
    settings, out = scan_settings(tmp_path), tmp_path / "out"
    _plan, first = scan(folder, out, settings)
    _noise(folder / "noise_2.jpg", 99)  # new content, new mtime
    rows = [json.loads(line) for line in (out / "scan.jsonl").read_text().splitlines()]
    for row in rows:
        if row["name"] == "flat.png":
            row.update(status=FAILED, error="a worker process died")  # failed rows are retried
    (out / "scan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = ScanParams(sources=(str(folder),), out_dir=out, model=MODEL)
    plan = plan_scan(params, settings)
    assert sorted(Path(t.path).name for t in plan.todo) == ["flat.png", "noise_2.jpg"]
    result = run_scan(plan, settings)
    assert by_name(result.rows)["noise_2.jpg"].sha256 != by_name(first.rows)["noise_2.jpg"].sha256
    assert by_name(result.rows)["flat.png"].status == OK

    other = plan_scan(ScanParams(sources=(str(folder),), out_dir=out, model=MODEL,
                                 detect=DetectParams(cam=None, band=(0.3, 0.7))), settings)
    assert len(other.todo) == 8 and not other.reused  # another band: other verdicts, nothing reused


def test_a_second_scan_into_the_same_folder_is_refused_while_one_runs(tmp_path):
    import fcntl

    (tmp_path / "in").mkdir()
    _noise(tmp_path / "in" / "a.jpg", 0)
    out = tmp_path / "out"
    out.mkdir()
    settings = scan_settings(tmp_path)
    plan = plan_scan(ScanParams(sources=(str(tmp_path / "in"),), out_dir=out, model=MODEL), settings)
    with open(out / ".scan.lock", "w") as held:  # what a running scan holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputRefused, match="Another apate scan is writing to"):
            run_scan(plan, settings)
    assert not (out / "scan.jsonl").exists()


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def _comparable(rows):
    return sorted((r.path, r.status, r.kind, r.sha256, r.label, round(r.score, 5) if r.score is not None else None,
                   r.frames, r.duplicate_of, r.error) for r in rows)


def test_two_worker_processes_give_the_same_rows_as_one(scanned, tmp_path):
    folder, _settings, _plan, one = scanned
    settings = scan_settings(tmp_path)  # a fresh store: the workers compute everything themselves
    _plan, two = scan(folder, tmp_path / "out", settings, workers=2)
    assert _comparable(two.rows) == _comparable(one.rows)
    assert two.summary.workers == 2 and two.summary.labels == one.summary.labels
    assert len((tmp_path / "out" / "scan.jsonl").read_text().splitlines()) == 8


class ReversedSerial:
    """A stand-in backend: runs files one by one, last first, to show that any Executor plugs in."""

    name = "reversed"

    def __init__(self, workers):
        self.workers = workers

    def run(self, job, tasks, cancel=None):
        analyser = FileAnalyser(job)
        for task in reversed(tasks):
            yield analyser.analyse(task, cancel=cancel)
        analyser.close()


def crash_on_marker(task):
    """Pool work for the crash test: a file named crash*.jpg kills its worker process, as a decoder's segfault would."""
    if Path(task.path).name.startswith("crash"):
        os._exit(70)
    return analyse_in_worker(task)


class CrashingLocal(LocalExecutor):
    work = staticmethod(crash_on_marker)


def test_a_worker_that_dies_costs_only_its_own_file(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for seed in range(4):
        _noise(folder / f"{'crash' if seed == 1 else 'photo'}_{seed}.jpg", seed)
    monkeypatch.setitem(scan_executors._EXECUTORS, "crashing", CrashingLocal)
    settings, out = scan_settings(tmp_path), tmp_path / "out"
    params = ScanParams(sources=(str(folder),), out_dir=out, workers=2, model=MODEL, executor="crashing")
    rows = by_name(run_scan(plan_scan(params, settings), settings).rows)
    assert rows["crash_1.jpg"].status == FAILED and "worker process died" in rows["crash_1.jpg"].error
    assert all(rows[f"photo_{n}.jpg"].status == OK for n in (0, 2, 3))  # in flight beside it, analysed again

    resumed = run_scan(plan_scan(ScanParams(sources=(str(folder),), out_dir=out, model=MODEL), settings), settings)
    assert resumed.summary.new == 1 and by_name(resumed.rows)["crash_1.jpg"].status == OK  # failed: retried


def test_another_executor_plugs_in_by_name(scanned, tmp_path, monkeypatch, one_thread):
    folder, _settings, _plan, one = scanned
    monkeypatch.setitem(scan_executors._EXECUTORS, "reversed", ReversedSerial)
    params = ScanParams(sources=(str(folder),), out_dir=tmp_path / "out", model=MODEL, executor="reversed")
    settings = scan_settings(tmp_path)
    result = run_scan(plan_scan(params, settings), settings)
    assert _comparable(result.rows) == _comparable(one.rows) and result.summary.executor == "reversed"
    with pytest.raises(InputRefused, match="Unknown scan executor"):
        plan_scan(ScanParams(sources=(str(folder),), executor="no-such-backend"), settings)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def test_sources_folders_globs_and_list_files(tmp_path):
    folder = tmp_path / "media"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / ".git").mkdir()
    for name in ("a/one.jpg", "a/b/two.png", "a/b/three.jpg", "top.jpg", ".hidden.jpg", ".git/x.jpg"):
        (folder / name).write_bytes(b"x")
    resolved = lambda *names: [(folder / n).resolve() for n in names]  # noqa: E731

    assert expand_sources([str(folder)]).files == resolved("a/b/three.jpg", "a/b/two.png", "a/one.jpg", "top.jpg")
    assert expand_sources([str(folder / "**" / "*.jpg")]).files == resolved("a/b/three.jpg", "a/one.jpg", "top.jpg")
    assert expand_sources([str(folder / ".hidden.jpg")]).files == resolved(".hidden.jpg")  # named: taken
    same = expand_sources([str(folder / "top.jpg"), str(folder / "a" / ".." / "top.jpg"), str(folder / "*.jpg")])
    assert same.files == resolved("top.jpg")  # de-duplicated by resolved path

    listing = tmp_path / "lists" / "files.txt"
    listing.parent.mkdir()
    listing.write_text(f"# photos to check\n\n../media/top.jpg\n{folder / 'a' / 'b'}\n../media/gone.jpg\n"
                       "../media/a/*.jpg\n")
    found = expand_sources([f"@{listing}"])
    assert found.files == resolved("a/b/three.jpg", "a/b/two.png", "a/one.jpg", "top.jpg")
    assert found.missing == ["../media/gone.jpg"]  # a stale entry is a row, not a refusal

    out = folder / "apate-scan"
    out.mkdir()
    (out / "index.html").write_text("<html>")
    everything = resolved("a/b/three.jpg", "a/b/two.png", "a/one.jpg", "top.jpg")
    assert expand_sources([str(folder)], exclude=out).files == everything  # the scan's own output is left out
    assert expand_sources([str(folder / "**")], exclude=out).files == everything


@pytest.mark.parametrize("sources, expected", [
    (lambda d: [str(d / "missing")], "No such file or folder"),
    (lambda d: [str(d / "*.mov")], "No file matches"),
    (lambda d: [f"@{d / 'nolist.txt'}"], "No such list file"),
    (lambda d: [str(d / "empty")], "No file found"),
])
def test_bad_sources_are_refused_with_what_is_accepted(tmp_path, sources, expected):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputRefused) as info:
        expand_sources(sources(tmp_path))
    assert expected in str(info.value) and "Accepted: files, folders" in str(info.value)


def test_a_missing_list_entry_is_an_unreadable_row(tmp_path, one_thread):
    folder = make_folder(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("media/noise_0.jpg\nmedia/vanished.jpg\n")
    settings = scan_settings(tmp_path)
    params = ScanParams(sources=(f"@{listing}",), out_dir=tmp_path / "out", model=MODEL)
    result = run_scan(plan_scan(params, settings), settings)
    rows = by_name(result.rows)
    assert rows["noise_0.jpg"].status == OK and rows["vanished.jpg"].status == UNREADABLE
    assert "No such file" in rows["vanished.jpg"].error and folder.is_dir()


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


@pytest.fixture
def apate_here(monkeypatch, capsys, tmp_path, one_thread):
    from apate_core.cli import main

    def run(*args):
        monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)  # the default --out lands here, never in the repository
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_command_json_summary_progress_bar_and_resume(tmp_path, apate_here):
    folder = make_folder(tmp_path)
    out = tmp_path / "scan-out"
    code, stdout, stderr = apate_here("scan", str(folder), "--out", str(out), "--model", MODEL, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["files"] == 8 and summary["unreadable"] == 2 and summary["new"] == 8
    assert summary["outputs"]["csv"] == str(out / "scan.csv") and (out / "index.html").is_file()
    assert "8 to analyse" in stderr and "8/8" in stderr  # tqdm: count, rate (files/s or s/file) and ETA
    assert re.search(r"[\d.]+(file/s|s/file)", stderr) and re.search(r"\d\d:\d\d<\d\d:\d\d", stderr)

    code, stdout, stderr = apate_here("scan", str(folder), "--out", str(out), "--model", MODEL)
    assert code == 0, stderr
    assert "8 done in an earlier run, 0 to analyse" in stderr
    assert "0 in this run" in stdout and "8 kept from an earlier run" in stdout and "unreadable:" in stdout
    assert "notes.txt: The content is not a recognised image or video" in stdout


def test_command_heatmaps_write_a_result_folder_per_file(tmp_path, apate_here):
    folder = tmp_path / "two"
    folder.mkdir()
    _noise(folder / "a.jpg", 1)
    make_video(folder / "b.mp4", "mp4", seconds=1, fps=5)
    out = tmp_path / "o"
    code, stdout, stderr = apate_here("scan", str(folder), "--out", str(out), "--model", MODEL, "--heatmaps",
                                      "--top-k", "1", "--quiet", "--json")
    assert code == 0, stderr
    assert stderr == ""  # --quiet: no bar
    rows = [json.loads(line) for line in (out / "scan.jsonl").read_text().splitlines()]
    for row in rows:
        result = json.loads((Path(row["result_dir"]) / "result.json").read_text())
        assert result["params"]["cam"] == "gradcam" and result["score"] == pytest.approx(row["score"])
        assert len(list((Path(row["result_dir"]) / "heatmaps").glob("*.png"))) == 1
    assert 'href="results/' in (out / "index.html").read_text()


@pytest.mark.parametrize("args, expected", [
    (lambda d: [str(d / "missing")], "No such file or folder"),
    (lambda d: [str(d), "--model", "no-such-model"], "no-such-model"),
    (lambda d: [str(d), "--heatmaps", "--cam", "no-such-cam"], "Unknown heatmap method"),
    (lambda d: [str(d), "--fps", "-1"], "fps must be a positive number"),
    (lambda d: [str(d), "--out", str(d / "x.jpg")], "is a file"),
])
def test_command_refuses_bad_input_with_one_error_line(tmp_path, args, expected, apate_here):
    _noise(tmp_path / "x.jpg", 0)
    code, stdout, stderr = apate_here("scan", *args(tmp_path), "--quiet")
    assert code == 2, (stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], stderr
    assert not (tmp_path / "apate-scan").exists()


def test_command_refuses_zero_workers(tmp_path, apate_here):
    with pytest.raises(SystemExit) as info:
        apate_here("scan", str(tmp_path), "--workers", "0")
    assert info.value.code == 2


def test_scan_never_imports_ray():
    import subprocess
    import sys

    code = ("import sys, apate_core.scan, apate_core.commands.scan, apate_core.scan.worker; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_csv_cells_never_start_a_spreadsheet_formula():
    from apate_core.scan.rows import _cell

    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and _cell("@cmd") == "'@cmd"
    assert _cell("photo.jpg") == "photo.jpg" and _cell(0.5) == 0.5 and _cell(None) == ""

"""utils/*.sh: option parsing, data-dir tools (pase-data-dir) and the job runners.

Every script is run for real through bash.  Each pase-data-dir process pays the torch
import of pase.io, so the detailed data-dir cases call pase.bin.data_dir in-process and
the wrappers' argument handling is checked against a stand-in python that echoes its args.
"""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pase.bin import data_dir as dd
from pase.io import DataDirError, fix_data_dir, split_data_dir, validate_data_dir
from pase.io.split import partition

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"
ENV = dict(os.environ, PASE_PYTHON=sys.executable, PYTHONPATH=str(REPO))


def run(args: list, *, env: dict | None = None, cwd=None, check_rc: int | None = 0,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=env or ENV, input=stdin, timeout=60)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


def make_dir(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_text(content)
    return root


# --------------------------------------------------------------------------- parse_options.sh

OPTS_SCRIPT = """\
#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
foo_bar=x
opts=""
use_gpu=false
help_message="Usage: $0 [options] <in> <out>"
. {utils}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage foo_bar=$foo_bar opts=[$opts] use_gpu=$use_gpu"
printf '<%s>' "$@"
echo
"""


@pytest.fixture
def opts_script(tmp_path):
    script = tmp_path / "opts.sh"
    script.write_text(OPTS_SCRIPT.format(utils=UTILS))
    script.chmod(0o755)
    return script


def test_parse_options_sets_values_and_keeps_positional_args(opts_script):
    out = run([opts_script, "--stage", "2", "--stop-stage", "3", "--foo_bar=y", "--opts", "a b",
               "--use-gpu", "true", "pos1", "pos 2", "--stage", "9"]).stdout
    assert out.splitlines() == [
        "stage=2 stop_stage=3 foo_bar=y opts=[a b] use_gpu=true",
        "<pos1><pos 2><--stage><9>",  # parsing stops at the first positional argument
    ]
    out = run([opts_script, "--opts=--x 1", "--", "--not-an-option"]).stdout
    assert out.splitlines() == ["stage=0 stop_stage=100 foo_bar=x opts=[--x 1] use_gpu=false",
                                "<--not-an-option>"]


def test_parse_options_config_then_command_line(opts_script, tmp_path):
    conf = tmp_path / "run.conf"
    conf.write_text("stage=5\nstop_stage=6\nfoo_bar='from config'\n")
    # Options before and after --config both override it.
    out = run([opts_script, "--stage", "1", "--config", conf, "--stop-stage=7", "p"]).stdout
    assert out.splitlines() == [
        "stage=1 stop_stage=7 foo_bar=from config opts=[] use_gpu=false", "<p>"]
    proc = run([opts_script, f"--config={tmp_path}/none.conf"], check_rc=1)
    assert "parse_options.sh: cannot read config file" in proc.stderr


def test_parse_options_help(opts_script):
    proc = run([opts_script, "--stage", "3", "--help"])
    assert proc.stdout.startswith(f"Usage: {opts_script} [options] <in> <out>\n")
    listed = re.findall(r"^  (--\S+) (.*)$", proc.stdout, re.M)
    assert listed == [("--foo-bar", "x"), ("--opts", "''"), ("--stage", "3"),
                      ("--stop-stage", "100"), ("--use-gpu", "false")]
    assert "stage=" not in proc.stdout  # exited before the script body
    assert run([opts_script, "-h"]).stdout == proc.stdout.replace("--stage 3", "--stage 0")


@pytest.mark.parametrize("args, message", [
    (["--foo", "1"], "parse_options.sh: invalid option --foo"),
    (["--stage-x=1"], "parse_options.sh: invalid option --stage-x"),
    (["--PATH", "/x"], "parse_options.sh: invalid option --PATH"),
    (["--help-message", "x"], "parse_options.sh: invalid option --help-message"),
    (["--stage"], "parse_options.sh: option --stage needs a value"),
    (["--use-gpu", "yes"], "parse_options.sh: option --use-gpu takes true or false, got 'yes'"),
])
def test_parse_options_errors(opts_script, args, message):
    proc = run([opts_script, *args], check_rc=1)
    assert proc.stderr.strip() == message
    assert proc.stdout == ""


# ------------------------------------------------------------------------------- data dirs

GOOD = {
    "wav.scp": "recA /data/recA.wav\nrecB sox /data/recB.flac -t wav - |\n",
    "segments": "spkA-1 recA 0 1.5\nspkA-2 recA 1.5 3\nspkB-1 recB 0 2\nspkC-1 recB 2 2.7\n",
    "utt2spk": "spkA-1 spkA\nspkA-2 spkA\nspkB-1 spkB\nspkC-1 spkC\n",
    "spk2utt": "spkA spkA-1 spkA-2\nspkB spkB-1\nspkC spkC-1\n",
    "text": "spkA-1 HELLO\nspkA-2 TWO WORDS\nspkB-1 HI\nspkC-1 BYE\n",
    "feats.scp": "spkA-1 f.ark:10\nspkA-2 f.ark:20\nspkB-1 f.ark:30\nspkC-1 f.ark:40\n",
    "utt2dur": "spkA-1 1.5\nspkA-2 1.5\nspkB-1 2\nspkC-1 0.7\n",
    "cmvn.scp": "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n",
    "spk2gender": "spkA f\nspkB m\nspkC f\n",
}

# Each: files changed from GOOD, the error validate must report, what fix must leave.
PROBLEMS = {
    "unsorted": ({"utt2dur": "spkA-1 1.5\nspkB-1 2\nspkA-2 1.5\nspkC-1 0.7\n"},
                 r"utt2dur:3: not sorted in C-locale order \('spkA-2' after 'spkB-1'",
                 ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "duplicate": ({"feats.scp": GOOD["feats.scp"].replace("spkA-2 f.ark:20\n",
                                                          "spkA-2 f.ark:20\nspkA-2 f.ark:21\n")},
                  r"feats.scp:3: duplicate key 'spkA-2' \(first on line 2\)",
                  ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "spk2utt": ({"spk2utt": "spkA spkA-1 spkA-2\nspkB spkB-1 spkC-1\n"},
                r"spk2utt:2: utterance 'spkC-1' under speaker 'spkB' but utt2spk says 'spkC'",
                ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "text": ({"text": "spkA-1 HELLO\nspkB-1 HI\nspkC-1 BYE\n"},
             r"text: utterance\(s\) of utt2spk missing, 1: 'spkA-2'",
             ["spkA-1", "spkB-1", "spkC-1"]),
    "recording": ({"segments": GOOD["segments"].replace("spkB-1 recB", "spkB-1 recZ")},
                  r"segments:3: recording 'recZ' of utterance 'spkB-1' is not in wav.scp",
                  ["spkA-1", "spkA-2", "spkC-1"]),
    "cmvn": ({"cmvn.scp": GOOD["cmvn.scp"] + "spkD c.ark:4\n"},
             r"cmvn.scp:4: speaker 'spkD' is not in utt2spk",
             ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "speaker without cmvn": ({"cmvn.scp": "spkA c.ark:1\nspkC c.ark:3\n"},
                             r"cmvn.scp: speaker\(s\) of utt2spk missing, 1: 'spkB'",
                             ["spkA-1", "spkA-2", "spkC-1"]),
    "unused recording": ({"wav.scp": GOOD["wav.scp"] + "recC /c.wav\n"},
                         r"wav.scp: recording\(s\) used by no segment, 1: 'recC'",
                         ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "bad segment": ({"segments": GOOD["segments"].replace("recB 0 2", "recB 2 1")},
                    r"segments:3: need 0 <= start < end \(end -1 is not allowed\), got 2 1",
                    ["spkA-1", "spkA-2", "spkC-1"]),
    # Kaldi's validate_data_dir.sh rejects end -1, which extract-segments would read.
    "segment to the end": ({"segments": GOOD["segments"].replace("recB 2 2.7", "recB 2 -1")},
                           r"segments:4: need 0 <= start < end \(end -1 is not allowed\), got 2 -1",
                           ["spkA-1", "spkA-2", "spkB-1"]),
    "no final newline": ({"cmvn.scp": GOOD["cmvn.scp"].rstrip("\n")},
                         r"cmvn.scp:3: no newline at the end of the file",
                         ["spkA-1", "spkA-2", "spkB-1", "spkC-1"]),
    "zero duration": ({"utt2dur": GOOD["utt2dur"].replace("spkB-1 2", "spkB-1 0")},
                      r"utt2dur:3: expected a positive number, got '0'",
                      ["spkA-1", "spkA-2", "spkC-1"]),
    # '²' passes str.isdigit() but not int()
    "superscript count": ({"utt2num_frames": "spkA-1 150\nspkA-2 150\nspkB-1 2\u00b2\nspkC-1 70\n"},
                          r"utt2num_frames:3: expected a positive integer, got '2\u00b2'",
                          ["spkA-1", "spkA-2", "spkC-1"]),
    "tilde": ({"wav.scp": GOOD["wav.scp"].replace("recA /data", "recA ~/data")},
              r"wav.scp:1: path starts with '~', which is not expanded",
              ["spkB-1", "spkC-1"]),
    "warp": ({"spk2warp": "spkA 1.1\nspkB 1.7\nspkC 0.9\n"},
             r"spk2warp:2: warp factor must be between 0.5 and 1.5, got '1.7'",
             ["spkA-1", "spkA-2", "spkC-1"]),
    "channel": ({"reco2file_and_channel": "recA fileA A\nrecB fileB X\n"},
                r"reco2file_and_channel:2: channel must be A or B, got 'X'",
                ["spkA-1", "spkA-2"]),
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_validate_reports_and_fix_repairs_each_problem(tmp_path, problem):
    changes, error, kept = PROBLEMS[problem]
    d = make_dir(tmp_path / "d", dict(GOOD, **changes))
    errors, _, _, _ = validate_data_dir(d)
    assert any(re.search(error, e) for e in errors), errors
    assert all(e.startswith(str(d)) for e in errors), errors  # every problem names its file
    fix_data_dir(d)
    assert validate_data_dir(d)[0] == []
    assert (d / "utt2spk").read_text().split()[::2] == kept
    for name, content in changes.items():
        assert (d / ".backup" / name).read_text() == content


def test_validate_good_dir_and_options(tmp_path):
    d = make_dir(tmp_path / "d", GOOD)
    assert validate_data_dir(d) == ([], [], 4, 3)
    for name in ("text", "wav.scp", "feats.scp"):
        (d / name).unlink()
    errors = validate_data_dir(d)[0]
    assert errors == [f"{d}/text: missing (or pass --no-text)",
                      f"{d}/wav.scp: missing (segments refers to its recordings)",
                      f"{d}/feats.scp: missing (or pass --no-feats)"]
    # As in Kaldi, --no-wav does not excuse segments without wav.scp.
    assert validate_data_dir(d, no_text=True, no_wav=True, no_feats=True)[0] == errors[1:2]
    (d / "segments").unlink()
    assert validate_data_dir(d, no_text=True, no_wav=True, no_feats=True)[0] == []
    # --no-feats and --no-wav make the files optional; present, they are checked.
    (d / "feats.scp").write_text("bogus\n")
    (d / "wav.scp").write_text(GOOD["wav.scp"])
    errors = validate_data_dir(d, no_text=True, no_wav=True, no_feats=True)[0]
    assert errors[0] == f"{d}/feats.scp:1: key 'bogus' has no value"
    assert f"{d}/wav.scp:1: utterance 'recA' is not in utt2spk" in errors
    (d / "text").write_text("")
    (d / "utt2spk").write_text("")
    errors = validate_data_dir(d, no_wav=True, no_feats=True)[0]
    assert errors[:3] == [f"{d}/utt2spk: empty", f"{d}/text: empty",
                          f"{d}/feats.scp:1: key 'bogus' has no value"]


def test_validate_warnings(tmp_path):
    d = make_dir(tmp_path / "d", dict(GOOD, **{
        "text": GOOD["text"].replace("HI", ""),
        "reco2file_and_channel": "recA fileA 1\nrecB fileB A\n"}))
    errors, warnings, n_utts, n_spks = validate_data_dir(d)
    assert (errors, n_utts, n_spks) == ([], 4, 3)
    assert warnings == [f"{d}/reco2file_and_channel: channel '1' where Kaldi wants A or B, 1: 'recA'",
                        f"{d}/text: empty transcript(s), 1: 'spkB-1'"]
    one = make_dir(tmp_path / "one", {"utt2spk": "a-1 a\na-2 a\n", "spk2utt": "a a-1 a-2\n"})
    assert validate_data_dir(one, no_text=True, no_wav=True, no_feats=True)[1] == [
        f"{one}/utt2spk: only one speaker; per-speaker tools (CMVN, split_data.sh) then see "
        "the whole set as one speaker"]


# Dirs Kaldi's own validate_data_dir.sh rejects and fix cannot repair (the data preparation
# must): the files changed from GOOD and the error. Kaldi's output on each is in the report
# of issue 14 item 6.
KALDI_REJECTS = {
    "carriage return": ({"text": GOOD["text"].replace("HI\n", "HI\r\n")},
                        r"text:3: utterance 'spkB-1': carriage return \(CR\)"),
    "non-printable": ({"text": GOOD["text"].replace("HI", "H\x07I")},
                      r"text:3: utterance 'spkB-1': non-printable character U\+0007 "
                      r"\(or pass --non-print\)"),
    "no final newline": ({"text": GOOD["text"].rstrip("\n")},
                         r"text:4: no newline at the end of the file"),
    "speaker order": ({"utt2spk": GOOD["utt2spk"].replace("spkA-1 spkA", "spkA-1 spkB"),
                       "spk2utt": "spkA spkA-2\nspkB spkA-1 spkB-1\nspkC spkC-1\n"},
                      r"utt2spk:2: speaker 'spkA' after 'spkB': utt2spk must be sorted by "
                      r"speaker as well"),
    "odd whitespace": ({"text": GOOD["text"].replace("TWO WORDS", "TWO\u00a0WORDS")},
                       r"text:2: utterance 'spkA-2': whitespace U\+00A0 NO-BREAK SPACE"),
    "reserved symbol": ({"text": GOOD["text"].replace("BYE", "BYE </s>")},
                        r"text:4: utterance 'spkC-1': '</s>' is reserved"),
}


@pytest.mark.parametrize("case", KALDI_REJECTS)
def test_validate_rejects_what_kaldi_rejects(tmp_path, case):
    changes, error = KALDI_REJECTS[case]
    d = make_dir(tmp_path / "d", dict(GOOD, **changes))
    errors = validate_data_dir(d)[0]
    assert len(errors) == 1 and re.search(error, errors[0]), errors


def test_validate_kaldi_options(tmp_path):
    """--non-print allows non-printable characters (not CR or odd spaces); --no-spk-sort drops
    the speaker-order rule, but spk2utt must still follow utt2spk's order, as in Kaldi."""
    text = GOOD["text"].replace("HI", "H\x07I\x7f").replace("BYE", "BYE\x9b")
    d = make_dir(tmp_path / "d", dict(GOOD, text=text))
    assert len(validate_data_dir(d)[0]) == 2
    assert validate_data_dir(d, non_print=True)[0] == []
    (d / "text").write_text(GOOD["text"].replace("HI", "H\x1cI"))  # not in Unicode White_Space
    assert validate_data_dir(d, non_print=True)[0] == []
    # Unassigned code points are non-printable too; tabs and format characters are not.
    (d / "text").write_text(GOOD["text"].replace("HI", "H\u0378I\tok\u200bx\U000e0001"))
    assert [e.split(": ", 2)[2] for e in validate_data_dir(d)[0]] == [
        "non-printable character U+0378 (or pass --non-print)"]

    d = make_dir(tmp_path / "spk", dict(GOOD, **KALDI_REJECTS["speaker order"][0]))
    assert validate_data_dir(d)[0] == [
        f"{d}/utt2spk:2: speaker 'spkA' after 'spkB': utt2spk must be sorted by speaker as well "
        "as by utterance (make the speaker ids prefixes of the utterance ids)"]
    assert validate_data_dir(d, no_spk_sort=True)[0] == [
        f"{d}/spk2utt:1: utterance 'spkA-2' comes where {d}/utt2spk:1 has 'spkA-1': spk2utt "
        "must list the utterances in utt2spk's order"]


def test_validate_and_fix_scripts(tmp_path):
    """One dir with every kind of problem: all are reported at once, then fixed."""
    problems = ["unsorted", "duplicate", "spk2utt", "text", "recording", "cmvn", "unused recording"]
    files = dict(GOOD)
    for problem in problems:
        files.update(PROBLEMS[problem][0])
    d = make_dir(tmp_path / "d", files)
    proc = run([UTILS / "validate_data_dir.sh", d], check_rc=1)
    for problem in problems:
        assert re.search(f"^error: {d}/{PROBLEMS[problem][1]}", proc.stderr, re.M), problem
    assert proc.stderr.endswith(f"\n{d}: {len(problems)} error(s)\n")

    out = run([UTILS / "fix_data_dir.sh", d]).stdout
    assert f"{d}: {d}/feats.scp:3: duplicate key 'spkA-2' (first on line 2): dropped" in out
    assert f"{d}: 1 utterance(s) not in text" in out
    assert f"{d}: 1 utterance(s) whose recording is not in wav.scp" in out
    assert f"{d}: kept 2 of 4 utterances (2 removed), 2 speakers; originals in {d}/.backup" in out
    assert sorted(p.name for p in (d / ".backup").iterdir()) == sorted(files)
    for name, content in files.items():
        assert (d / ".backup" / name).read_text() == content

    out = run([UTILS / "validate_data_dir.sh", d]).stdout
    assert out == f"{d}: OK (2 utterances, 2 speakers)\n"
    assert (d / "spk2utt").read_text() == "spkA spkA-1\nspkC spkC-1\n"
    assert (d / "wav.scp").read_text() == GOOD["wav.scp"]
    assert (d / "cmvn.scp").read_text() == "spkA c.ark:1\nspkC c.ark:3\n"
    assert (d / "utt2dur").read_text() == "spkA-1 1.5\nspkC-1 0.7\n"


def test_fix_refuses_to_empty_a_dir(tmp_path):
    d = make_dir(tmp_path / "d", dict(GOOD, text="other 1\n"))
    with pytest.raises(DataDirError, match=r"no utterance would remain.*4 not in text"):
        fix_data_dir(d)
    assert (d / "text").read_text() == "other 1\n" and not (d / ".backup").exists()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("how, expected", [
    (["--first", "2"], ["spkA-1", "spkA-2"]),
    (["--last", "1"], ["spkC-1"]),
    (["--shortest", "2"], ["spkA-1", "spkC-1"]),
    (["--spread", "2"], ["spkA-1", "spkB-1"]),
    (["--spk-list", "SPK"], ["spkA-1", "spkA-2", "spkC-1"]),
    (["--utt-list", "UTT"], ["spkA-2", "spkC-1"]),
])
def test_subset_modes(tmp_path, how, expected):
    d = make_dir(tmp_path / "d", GOOD)
    (tmp_path / "SPK").write_text("spkC\nspkA\nspkZ\n")
    (tmp_path / "UTT").write_text("spkC-1 x\nspkA-2\nnope\n")
    how = [str(tmp_path / h) if h.isupper() else h for h in how]
    dd.main(["subset", str(d), str(tmp_path / "out"), *how])
    out = tmp_path / "out"
    assert [line.split()[0] for line in lines(out / "utt2spk")] == expected
    speakers = sorted({u.split("-")[0] for u in expected})
    assert [line.split()[0] for line in lines(out / "cmvn.scp")] == speakers  # carried along
    assert [line.split()[0] for line in lines(out / "feats.scp")] == expected
    assert validate_data_dir(out)[0] == []


def test_subset_errors(tmp_path):
    d = make_dir(tmp_path / "d", GOOD)
    with pytest.raises(DataDirError, match="cannot take 5 of its 4 utterances"):
        dd.main(["subset", str(d), str(tmp_path / "o"), "--first", "5"])
    (d / "utt2dur").write_text("spkA-1 1.5\nspkA-2 1.5\nspkC-1 0.7\n")
    with pytest.raises(DataDirError, match="utt2dur: no duration for 1 utterance.*'spkB-1'"):
        dd.main(["subset", str(d), str(tmp_path / "o"), "--shortest", "1"])
    (d / "utt2dur").unlink()
    with pytest.raises(DataDirError, match="utt2dur: missing; --shortest needs durations"):
        dd.main(["subset", str(d), str(tmp_path / "o"), "--shortest", "1"])
    with pytest.raises(DataDirError, match="output must differ"):
        dd.main(["subset", str(d), str(d), "--first", "1"])
    (tmp_path / "list").write_text("nobody\n")
    with pytest.raises(DataDirError, match="list: selects no utterance of"):
        dd.main(["subset", str(d), str(tmp_path / "o"), "--spk-list", str(tmp_path / "list")])


def test_subset_drops_stale_extra_files(tmp_path):
    d = make_dir(tmp_path / "d", GOOD)
    dd.main(["subset", str(d), str(tmp_path / "o"), "--first", "1"])
    (d / "feats.scp").unlink()
    dd.main(["subset", str(d), str(tmp_path / "o"), "--first", "1"])
    assert not (tmp_path / "o" / "feats.scp").exists()


@pytest.fixture
def echo_python(tmp_path):
    """A PASE_PYTHON that prints its arguments: checks what the wrappers pass on."""
    fake = tmp_path / "fake-python"
    fake.write_text('#!/usr/bin/env bash\nprintf "<%s>" "$@"\n')
    fake.chmod(0o755)
    return dict(ENV, PASE_PYTHON=str(fake))


@pytest.mark.parametrize("script, args, expected", [
    ("validate_data_dir.sh", ["--no-feats", "--no-wav", "d"], "validate <--no-feats><--no-wav><d>"),
    ("fix_data_dir.sh", ["d"], "fix <d>"),
    ("split_data.sh", ["d", "4"], "split <d><4>"),
    ("subset_data_dir.sh", ["--utt-list", "l", "d", "o"], "subset <d><o><--utt-list><l>"),
    ("subset_data_dir.sh", ["--spk-list", "l", "d", "o"], "subset <d><o><--spk-list><l>"),
    ("subset_data_dir.sh", ["--first", "10", "d", "o"], "subset <d><o><--first><10>"),
    ("subset_data_dir.sh", ["--shortest", "d", "10", "o"], "subset <d><o><--shortest><10>"),
    ("subset_data_dir.sh", ["--last", "d", "3", "o"], "subset <d><o><--last><3>"),
    ("subset_data_dir.sh", ["d", "7", "o"], "subset <d><o><--spread><7>"),
    ("utt2spk_to_spk2utt.sh", [], "utt2spk-to-spk2utt "),
    ("spk2utt_to_utt2spk.sh", ["f"], "spk2utt-to-utt2spk <f>"),
])
def test_wrapper_arguments(echo_python, script, args, expected):
    module, _, rest = expected.partition(" ")
    out = run([UTILS / script, *args], env=echo_python).stdout
    assert out == f"<-m><pase.bin.data_dir><{module}>{rest}"


@pytest.mark.parametrize("script, args", [
    ("fix_data_dir.sh", []), ("split_data.sh", ["d"]), ("subset_data_dir.sh", ["d", "o"]),
    ("subset_data_dir.sh", ["--utt-list", "l", "d"]),
    ("subset_data_dir.sh", ["--bogus", "d", "1", "o"]),
])
def test_wrapper_usage_errors(echo_python, script, args):
    proc = run([UTILS / script, *args], env=echo_python, check_rc=1)
    assert "Usage:" in proc.stderr
    assert proc.stdout == ""


def test_subset_script(tmp_path):
    d = make_dir(tmp_path / "d", GOOD)
    (tmp_path / "utts").write_text("spkB-1\nspkA-1\n")
    out = run([UTILS / "subset_data_dir.sh", "--utt-list", tmp_path / "utts", d, tmp_path / "o"])
    assert out.stdout == f"{tmp_path}/o: 2 utterances, 2 speakers (from {d})\n"
    assert lines(tmp_path / "o" / "segments") == ["spkA-1 recA 0 1.5", "spkB-1 recB 0 2"]
    assert lines(tmp_path / "o" / "spk2utt") == ["spkA spkA-1", "spkB spkB-1"]


SPLIT = {  # 5 speakers with 4, 1, 1, 3, 1 utterances
    "wav.scp": "".join(f"{s}-{i} /{s}{i}.wav\n" for s, n in zip("abcde", (4, 1, 1, 3, 1))
                       for i in range(n)),
}
SPLIT_UTTS = [line.split()[0] for line in SPLIT["wav.scp"].splitlines()]
SPLIT["utt2spk"] = "".join(f"{u} {u[0]}\n" for u in SPLIT_UTTS)
SPLIT["feats.scp"] = "".join(f"{u} f.ark:1\n" for u in SPLIT_UTTS)


def test_split_script(tmp_path):
    d = make_dir(tmp_path / "d", SPLIT)
    out = run([UTILS / "split_data.sh", d, 2]).stdout
    assert out == f"{d}/split2\n"
    parts = [lines(d / "split2" / str(j) / "utt2spk") for j in (1, 2)]
    assert [sorted({line.split()[1] for line in p}) for p in parts] == [["a", "b"], ["c", "d", "e"]]
    assert [len(p) for p in parts] == [5, 5]
    assert sum(parts, []) == lines(d / "utt2spk")  # parts in order make up the whole
    assert lines(d / "split2" / "2" / "feats.scp")[0] == "c-0 f.ark:1"
    assert sorted(p.name for p in d.iterdir()) == ["feats.scp", "split2", "utt2spk", "wav.scp"]


@pytest.mark.parametrize("nj, sizes", [(1, [10]), (3, [4, 2, 4]), (5, [4, 1, 1, 3, 1])])
def test_split_balance(tmp_path, nj, sizes):
    d = make_dir(tmp_path / "d", SPLIT)
    split_data_dir(d, nj)
    parts = [lines(d / f"split{nj}" / str(j) / "utt2spk") for j in range(1, nj + 1)]
    assert [len(p) for p in parts] == sizes
    speakers = [{line.split()[1] for line in p} for p in parts]
    assert sum(map(len, speakers)) == 5  # no speaker in two parts


def test_split_errors_and_reuse(tmp_path, capsys, monkeypatch):
    d = make_dir(tmp_path / "d", SPLIT)
    monkeypatch.setattr(sys, "argv", ["pase-data-dir", "split", str(d), "6"])
    with pytest.raises(SystemExit) as exc:
        dd.cli()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert f"pase-data-dir: error: {d}: cannot split 5 speaker(s) into 6 parts" in err
    past = (d / "utt2spk").stat().st_mtime_ns - 10**9
    for f in d.iterdir():
        os.utime(f, ns=(past, past))
    split_data_dir(d, 2)
    marker = d / "split2" / "1" / "marker"
    marker.write_text("")
    split_data_dir(d, 2)
    assert marker.exists()  # split newer than the data: reused
    (d / "utt2spk").write_text(SPLIT["utt2spk"])
    split_data_dir(d, 2)
    assert not marker.exists()  # data changed: split again


def test_partition_is_balanced():
    for sizes in itertools.product((1, 2, 7), repeat=6):
        for nj in range(1, 7):
            starts = partition(list(sizes), nj)
            assert len(starts) == nj and starts == sorted(set(starts)) and starts[0] == 0
            bounds = starts + [len(sizes)]
            sums = [sum(sizes[a:b]) for a, b in zip(bounds, bounds[1:])]
            assert all(abs(s - sum(sizes) / nj) <= max(sizes) for s in sums), (sizes, nj, sums)
    assert partition([50] * 2000, 32)[1:3] == [62, 125]  # 3100, 3150, ... utterances


def test_utt2spk_spk2utt_round_trip(tmp_path):
    # One pipeline, so that the two python start-ups overlap.
    back = run(["bash", "-c", f"set -o pipefail; {UTILS}/utt2spk_to_spk2utt.sh | "
                f"tee {tmp_path}/spk2utt | {UTILS}/spk2utt_to_utt2spk.sh"],
               stdin="b-1 b\na-2 a\na-1 a\n").stdout
    assert (tmp_path / "spk2utt").read_text() == "a a-1 a-2\nb b-1\n"
    assert back == "a-1 a\na-2 a\nb-1 b\n"


def test_conversion_errors(tmp_path):
    (tmp_path / "bad").write_text("u1 s1\nu2 s2 extra\n")
    with pytest.raises(DataDirError, match=r"bad:2: expected 2 fields, got 3"):
        dd.main(["utt2spk-to-spk2utt", str(tmp_path / "bad")])
    (tmp_path / "bad").write_text("s1 u1\ns2 u1\n")
    with pytest.raises(DataDirError, match=r"utterance 'u1' under speakers 's1' and 's2'"):
        dd.main(["spk2utt-to-utt2spk", str(tmp_path / "bad")])


# ------------------------------------------------------------------------------ job runners

def test_run_local_substitutes_job_and_logs(tmp_path):
    log = tmp_path / "log" / "echo.JOB.log"
    run([UTILS / "run_local.sh", "JOB=1:3", log, "echo", "job JOB", "|", "tr", "j", "J",
         ">", tmp_path / "out.JOB"])
    for j in (1, 2, 3):
        assert (tmp_path / f"out.{j}").read_text() == f"Job {j}\n"
        text = lines(tmp_path / "log" / f"echo.{j}.log")
        assert text[0] == f"# echo job\\ {j} | tr j J > {tmp_path}/out.{j}"
        assert text[1].startswith("# Started at ") and text[2] == "#"
        assert re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time \d+ seconds", text[-1])
    # Without a range: one job, the command given as one shell line.
    run([UTILS / "run_local.sh", tmp_path / "one.log", "echo out; echo err >&2"])
    assert lines(tmp_path / "one.log")[3:5] == ["out", "err"]


def test_run_local_limits_parallel_jobs(tmp_path):
    running = tmp_path / "running"
    running.mkdir()
    # Each job counts the jobs running beside it (itself included) while it sleeps.
    cmd = (f"touch {running}/JOB; ls {running} | wc -l >> {tmp_path}/counts; sleep 0.6; "
           f"rm {running}/JOB")
    run([UTILS / "run_local.sh", "--nj-parallel", "2", "JOB=1:4", tmp_path / "l.JOB.log", cmd])
    counts = [int(c) for c in lines(tmp_path / "counts")]
    assert len(counts) == 4 and max(counts) == 2


def test_run_local_reports_failed_jobs(tmp_path):
    proc = run([UTILS / "run_local.sh", "--gpu", "1", "--gpus", "1", "JOB=1:4", tmp_path / "l.JOB.log",
                "echo JOB; [ JOB -ne 2 ] && [ JOB -ne 4 ]"], check_rc=1)
    assert proc.stderr.strip() == (f"run_local.sh: 2 of 4 job(s) failed; see "
                                   f"{tmp_path}/l.2.log {tmp_path}/l.4.log")
    assert lines(tmp_path / "l.2.log")[-1].startswith("# Ended (code 1) at ")
    assert lines(tmp_path / "l.3.log")[-1].startswith("# Ended (code 0) at ")
    # pipefail: a failure early in a pipeline fails the job.
    run([UTILS / "run_local.sh", tmp_path / "p.log", "false | cat"], check_rc=1)
    proc = run([UTILS / "run_local.sh", "--nope", "1", tmp_path / "p.log", "true"], check_rc=1)
    assert "unknown option --nope" in proc.stderr
    proc = run([UTILS / "run_local.sh", "JOB=1:2", tmp_path / "p.log", "true"], check_rc=1)
    assert f"the log file {tmp_path}/p.log must contain JOB" in proc.stderr


FAKE_SBATCH = """\
#!/usr/bin/env bash
# Stand-in for sbatch --wait: records its arguments, then runs the batch script once per
# array index as Slurm would, with SLURM_ARRAY_TASK_ID set and output to --output (%a).
printf '%s\\n' "$*" >> "$SBATCH_CALLS"
for arg in "$@"; do
  case $arg in
    --array=*) range=${arg#--array=}; range=${range%%%*} ;;
    --output=*) output=${arg#--output=} ;;
  esac
done
script=$(cd "$(dirname "${!#}")" && pwd)/$(basename "${!#}")
rc=0
for ((i = ${range%-*}; i <= ${range#*-}; i++)); do
  (cd / && SLURM_ARRAY_TASK_ID=$i bash "$script") > "${output//%a/$i}" 2>&1 || rc=$?
done
exit $rc
"""


@pytest.fixture
def slurm_env(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(FAKE_SBATCH)
    (bindir / "sbatch").chmod(0o755)
    return dict(ENV, PATH=f"{bindir}:{os.environ['PATH']}", SBATCH_CALLS=str(tmp_path / "calls"))


def test_run_slurm_array(tmp_path, slurm_env):
    work = tmp_path / "work"
    work.mkdir()
    (work / "log").mkdir()
    (work / "log" / "x.2.log").write_text("# Ended (code 0) stale\n")
    proc = run([UTILS / "run_slurm.sh", "--partition", "gpu", "--gpu", "2", "--mem", "8G", "--gpu", "1",
                "--time", "1:00:00", "--nj-parallel", "2", "JOB=1:3", "log/x.JOB.log",
                "echo", "task JOB", ">", "out.JOB", "&&", "[", "JOB", "!=", "2", "]"],
               env=slurm_env, cwd=work, check_rc=1)  # relative paths: the script must cd back
    assert proc.stderr.strip() == ("run_slurm.sh: 1 of 3 job(s) failed (sbatch exit status 1); "
                                   "see log/x.2.log")
    assert lines(tmp_path / "calls") == [
        "--wait --array=1-3%2 --job-name=x --output=log/q/x.%a.out --partition=gpu "
        "--mem=8G --time=1:00:00 --gres=gpu:1 log/q/x.sh"]  # the last --gpu counts
    for j in (1, 2, 3):
        assert (work / f"out.{j}").read_text() == f"task {j}\n"
        text = lines(work / "log" / f"x.{j}.log")
        assert text[0] == f"# echo task\\ {j} > out.{j} && [ {j} != 2 ]"
        assert text[-1].startswith(f"# Ended (code {int(j == 2)}) at ")
        assert (work / "log" / "q" / f"x.{j}.out").exists()

    # --gpus is --gpu's alias; a recipe's --gpu 0 (CPU training) takes back cmd.sh's request.
    proc = run([UTILS / "run_slurm.sh", "--gpus", "4", "--gpu", "0", "log/one.log", "echo ok"], env=slurm_env,
               cwd=work)
    assert lines(work / "log" / "one.log")[3] == "ok"
    assert lines(tmp_path / "calls")[-1] == (
        "--wait --array=1-1 --job-name=one --output=log/q/one.%a.out log/q/one.sh")
    proc = run([UTILS / "run_slurm.sh", "--gpu", "all", "log/one.log", "true"], env=slurm_env, cwd=work,
               check_rc=1)
    assert proc.stderr.strip() == "run_slurm.sh: --gpu must be a number of GPUs, got 'all'"


def test_run_slurm_submission_failure(tmp_path, slurm_env):
    (tmp_path / "bin" / "sbatch").write_text("#!/usr/bin/env bash\necho 'sbatch: no' >&2\nexit 1\n")
    proc = run([UTILS / "run_slurm.sh", "JOB=1:2", tmp_path / "l.JOB.log", "true"],
               env=slurm_env, check_rc=1)
    assert (f"run_slurm.sh: 2 of 2 job(s) failed (sbatch exit status 1); see "
            f"{tmp_path}/l.1.log {tmp_path}/l.2.log") in proc.stderr


def test_cmd_sh_backends():
    """egs/TEMPLATE/cmd.sh: local jobs by default; PASE_CMD_BACKEND=slurm sends them to
    run_slurm.sh with the requests of PASE_SLURM_CPU_OPTS / PASE_SLURM_GPU_OPTS (or its defaults)."""
    show = ["bash", "-c", f'set -eu; . {REPO}/egs/TEMPLATE/cmd.sh; echo "$train_cmd|$cuda_cmd"']
    clean = {k: v for k, v in ENV.items() if not k.startswith("PASE_SLURM_") and k != "PASE_CMD_BACKEND"}
    assert run(show, env=clean).stdout == "utils/run_local.sh|utils/run_local.sh\n"
    assert run(show, env=dict(clean, PASE_CMD_BACKEND="slurm")).stdout == (
        "utils/run_slurm.sh --mem 4G --time 4:00:00|utils/run_slurm.sh --mem 16G --time 72:00:00\n")
    assert run(show, env=dict(clean, PASE_CMD_BACKEND="slurm", PASE_SLURM_CPU_OPTS="--mem 1G",
                              PASE_SLURM_GPU_OPTS="--partition gpu --mem 2G")).stdout == (
        "utils/run_slurm.sh --mem 1G|utils/run_slurm.sh --partition gpu --mem 2G\n")
    proc = run(show, env=dict(clean, PASE_CMD_BACKEND="sge"), check_rc=1)
    assert proc.stderr.strip() == "cmd.sh: unknown cmd_backend 'sge' (local or slurm)"


def test_make_absolute(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    env = dict(ENV, PWD=str(link))  # as after "cd link" in a shell: the logical directory
    for arg, expected in [("x", f"{link}/x"), (".", str(link)), ("..", str(tmp_path)),
                          ("a/./b/../c/", f"{link}/a/c"), ("/x//y/..", "/x"), ("/", "/")]:
        assert run([UTILS / "make_absolute.sh", arg], cwd=link, env=env).stdout == f"{expected}\n"
    assert run([UTILS / "make_absolute.sh"], check_rc=1).stderr.startswith("Usage:")

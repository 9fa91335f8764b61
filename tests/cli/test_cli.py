#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Drives the usbtimesync binary: output shapes, JSON lines, SVG plots read
back against the figures the same run printed, and exit codes.

    test_cli.py PATH_TO_usbtimesync
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BIN = sys.argv[1]
passed = failed = 0
SVG = "{http://www.w3.org/2000/svg}"


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


# A guard against a hung command, not a speed limit: far above what any
# command takes on a loaded machine, and below ctest's TIMEOUT, so a hang is
# reported with the command that hung.
HANG_S = 240


def run(*args):
    try:
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=HANG_S)
    except subprocess.TimeoutExpired:
        check(False, "usbtimesync %s still running after %d s: hung" % (" ".join(args), HANG_S))
        return -1, "", ""
    return p.returncode, p.stdout, p.stderr


def json_lines(text):
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            check(False, "not JSON: %r" % line)
    return rows


def panels(path):
    """Each panel with its axis mapping and its series mapped back to data."""
    root = ET.parse(path).getroot()
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class") != "panel":
            continue
        a = {k: float(g.get("data-" + k)) for k in
             ("xmin", "xmax", "ymin", "ymax", "left", "right", "top", "bottom")}
        logy = g.get("data-logy") == "1"
        series = {}
        for pl in g.iter(SVG + "polyline"):
            pts = []
            for pair in pl.get("points").split():
                px, py = (float(v) for v in pair.split(","))
                x = a["xmin"] + (px - a["left"]) / (a["right"] - a["left"]) * (a["xmax"] - a["xmin"])
                if logy:
                    l0, l1 = math.log10(a["ymin"]), math.log10(a["ymax"])
                    y = 10 ** (l0 + (a["bottom"] - py) / (a["bottom"] - a["top"]) * (l1 - l0))
                else:
                    y = a["ymin"] + (a["bottom"] - py) / (a["bottom"] - a["top"]) * (a["ymax"] - a["ymin"])
                pts.append((x, y))
            series[pl.get("data-series")] = pts
        texts = [t.text or "" for t in g.iter(SVG + "text")]
        out.append({"axes": a, "logy": logy, "series": series, "texts": texts})
    return out


def test_help_and_usage():
    rc, out, _ = run("--help")
    check(rc == 0 and "usage:" in out and "track" in out and "bench" in out, "tool --help")
    for cmd in ("track", "query", "list", "bench"):
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and out.startswith("usage: usbtimesync " + cmd), "%s --help" % cmd)
        rc, out2, _ = run("help", cmd)
        check(rc == 0 and out2 == out, "help %s" % cmd)
    rc, out, _ = run("version")
    check(rc == 0 and out.startswith("usbtimesync "), "version")
    # usage errors: exit 2, with the cause on stderr
    for args, why in ((("frob",), "unknown subcommand"), ((), "no subcommand"),
                      (("track", "--bogus"), "unknown option"), (("track", "--duration", "x"), "bad number"),
                      (("track", "--interval"), "missing value"), (("query", "sim"), "missing FRAME"),
                      (("query", "sim", "12", "9"), "microframe 9"), (("bench", "--seeds", "0"), "zero seeds"),
                      (("track", "sim:drift_ppm=5000"), "out-of-range sim key"),
                      (("track", "not-a-spec"), "malformed spec"), (("list", "extra"), "extra argument"),
                      (("help", "frob"), "help for no command")):
        rc, out, err = run(*args)
        check(rc == 2 and err.strip() != "", "%s: exit %d, want 2" % (why, rc))
    # a runtime failure: exit 1, and the message names the fix
    rc, _, err = run("track", "/dev/bus/usb/999/127")
    check(rc == 1 and "lsusb" in err, "absent device: exit %d, %r" % (rc, err))


def test_track_text():
    rc, out, _ = run("track", "sim:clock=virtual,seed=3", "--duration", "3", "--interval", "500")
    lines = out.splitlines()
    rows = [l.split() for l in lines if not l.startswith("#")]
    check(rc == 0, "track exit %d" % rc)
    check(lines[0].startswith("# tracking sim:clock=virtual,seed=3: controller sim"), "track header")
    check(len(rows) == 6 and all(len(r) == 7 for r in rows), "track: 6 rows of 7 columns")
    frames = [int(r[2]) for r in rows]
    check(all(b - a in (499, 500, 501) for a, b in zip(frames, frames[1:])), "frames advance 500 per 500 ms")
    check(all(abs(float(r[6])) < 1.0 for r in rows), "true errors under 1 us")


def test_track_json_and_svg():
    with tempfile.TemporaryDirectory() as d:
        svg = os.path.join(d, "track.svg")
        rc, out, err = run("track", "sim:clock=virtual,seed=4,drift_ppm=250", "--duration", "4", "--interval",
                           "100", "--json", "--svg", svg)
        check(rc == 0, "track --json --svg exit %d: %s" % (rc, err))
        rows = json_lines(out)
        check(len(rows) == 40, "40 JSON rows, got %d" % len(rows))
        keys = {"generation", "usb_frame", "microframe", "qpc", "accuracy_us", "true_error_us", "start_ns"}
        check(all(keys <= set(r) for r in rows), "JSON rows carry the required keys")
        check(all(r["qpc"] == (r["start_ns"] + 50) // 100 for r in rows), "qpc is start_ns in 100 ns ticks")
        check(all(abs(r["true_error_us"]) <= r["accuracy_us"] for r in rows), "errors within the bound")
        p = panels(svg)
        check(len(p) == 1, "one panel")
        s = p[0]["series"]
        check(set(s) == {"|true error| (us)", "predicted bound (us)"}, "the two series: %s" % list(s))
        check(any("time since start (s)" in t for t in p[0]["texts"]), "x axis titled with units")
        err_pts, bound_pts = s.get("|true error| (us)", []), s.get("predicted bound (us)", [])
        check(len(err_pts) == len(rows) and len(bound_pts) == len(rows), "a point per printed row")
        ax = p[0]["axes"]
        tol_x = (ax["xmax"] - ax["xmin"]) / (ax["right"] - ax["left"]) * 0.01
        tol_y = (ax["ymax"] - ax["ymin"]) / (ax["bottom"] - ax["top"]) * 0.01
        for r, (x, y), (_, b) in zip(rows, err_pts, bound_pts):
            check(abs(x - r["t_s"]) <= tol_x + 1e-9, "plotted time %.4f vs printed %.4f" % (x, r["t_s"]))
            check(abs(y - abs(r["true_error_us"])) <= tol_y + 1e-6,
                  "plotted error %.5f vs printed %.5f" % (y, abs(r["true_error_us"])))
            check(abs(b - r["accuracy_us"]) <= tol_y + 1e-6, "plotted bound %.4f vs printed %d" % (b, r["accuracy_us"]))


def test_list_and_query():
    rc, out, _ = run("list")
    check(rc == 0 and "host controllers:" in out and "USB devices:" in out, "list text")
    rc, out, _ = run("list", "--json")
    rows = json_lines(out)
    check(rc == 0 and rows and rows[-1].get("type") == "summary", "list --json ends with a summary")
    check(rows[-1].get("controllers") == sum(r.get("type") == "controller" for r in rows), "summary counts")
    rc, out, _ = run("query", "sim:clock=virtual,seed=5", "now", "3", "--json")
    rows = json_lines(out)
    check(rc == 0 and len(rows) == 1, "query --json: one object")
    if rows:
        r = rows[0]
        check(r["microframe"] == 3 and r["usb_frame"] == r["current_usb_frame"], "query now 3")
        check(r["qpc"] == (r["start_ns"] + 50) // 100 and 1 <= r["bound_ns"] <= r["accuracy_us"] * 1000,
              "query figures agree")
    rc, out, _ = run("query", "sim:clock=virtual", "1000")
    check(rc == 0 and out.startswith("frame 1000 microframe 0 started at QPC"), "query text")


def test_bench():
    with tempfile.TemporaryDirectory() as d:
        svg = os.path.join(d, "bench.svg")
        rc, out, err = run("bench", "--json", "--svg", svg)
        check(rc == 0, "bench exit %d: %s" % (rc, err))
        rows = json_lines(out)
        sc = [r for r in rows if "scenario" in r]
        lat = [r for r in rows if "latency" in r]
        names = {r["scenario"] for r in sc}
        required = {"nominal", "drift-500ppm", "drift+500ppm", "preempt-1%", "preempt-10%", "read_ns=5000",
                    "slew-200ppm", "stall-10s", "reset", "halt-100ms"}
        check(required <= names and len(lat) == 1, "every issue scenario and a latency row: %s" % sorted(names))
        check(all(r["outside_share"] <= 0.01 for r in sc), "bench: honest bounds")
        check(lat and lat[0]["ratio"] > 0, "latency ratio")
        p = panels(svg)
        s = p[0]["series"] if p else {}
        ours = s.get("usbtimesync", [])
        check(len(ours) == len(sc), "a plotted point per scenario")
        ax = p[0]["axes"] if p else None
        for r, (x, y) in zip(sc, ours):
            # log axis: compare in log space, to the pixel's precision
            want = r["p99_ns"] / 1000
            span = math.log10(ax["ymax"]) - math.log10(ax["ymin"])
            tol = span / (ax["bottom"] - ax["top"]) * 0.01
            check(abs(math.log10(y) - math.log10(want)) <= tol + 1e-9,
                  "%s: plotted p99 %.4f us vs printed %.4f" % (r["scenario"], y, want))
        rc, out, _ = run("bench")
        check(rc == 0 and "nominal" in out and "x clock_gettime" in out, "bench text")


for t in (test_help_and_usage, test_track_text, test_track_json_and_svg, test_list_and_query, test_bench):
    t()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

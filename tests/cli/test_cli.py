#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Drives the usbtimesync binary: output shapes, JSON lines, SVG plots read
back against the figures the same run printed, and exit codes.

    test_cli.py PATH_TO_usbtimesync
"""
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
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
    for cmd in ("track", "query", "list", "bench", "help", "version"):
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and out.startswith("usage: usbtimesync " + cmd), "%s --help: exit %d, %r" % (cmd, rc, out[:40]))
        rc, out2, _ = run("help", cmd)
        check(rc == 0 and out2 == out, "help %s: exit %d, the same text as %s --help" % (cmd, rc, cmd))
    rc, out, _ = run("help")
    rc2, out2, _ = run("--help")
    check(rc == 0 and rc2 == 0 and out == out2 and "help [COMMAND]" in out, "help and --help: the command list")
    rc, out, _ = run("version")
    check(rc == 0 and out.startswith("usbtimesync "), "version")
    # usage errors: exit 2, with the cause on stderr
    for args, why in ((("frob",), "unknown subcommand"), ((), "no subcommand"),
                      (("track", "--bogus"), "unknown option"), (("track", "--duration", "x"), "bad number"),
                      (("track", "--interval"), "missing value"), (("query", "sim"), "missing FRAME"),
                      (("query", "sim", "12", "9"), "microframe 9"), (("bench", "--seeds", "0"), "zero seeds"),
                      (("track", "sim:drift_ppm=5000"), "out-of-range sim key"),
                      (("track", "not-a-spec"), "malformed spec"), (("list", "extra"), "extra argument"),
                      (("help", "frob"), "help for no command"), (("help", "track", "query"), "help for two"),
                      (("version", "extra"), "version with an argument")):
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
        check(set(s) == {"|true error| (ns)", "bound (ns)", "printed lines (bound, ns)"}, "the series: %s" % list(s))
        check(any("time since start (s)" in t for t in p[0]["texts"]), "x axis titled with units")
        bound_pts, printed = s.get("bound (ns)", []), s.get("printed lines (bound, ns)", [])
        err_pts = s.get("|true error| (ns)", [])
        # Every query is plotted, the ones between printed lines too.
        check(len(bound_pts) == 20 * len(rows), "20 queries plotted per printed line, got %d" % len(bound_pts))
        check(len(printed) == len(rows), "a picked-out point per printed row")
        gaps = [b[0] - a[0] for a, b in zip(bound_pts, bound_pts[1:])]
        check(gaps and max(gaps) - min(gaps) <= 0.0002, "the queries are evenly spaced, 5 ms apart: %s .. %s"
              % (min(gaps, default=0), max(gaps, default=0)))
        check(len(err_pts) >= 0.9 * len(bound_pts), "the true error of (nearly) every query")
        ax = p[0]["axes"]
        # The values span decades (bound ~ hundreds of ns, error ~ ns): a log axis.
        check(p[0]["logy"], "log axis when the values span decades")
        tol_x = (ax["xmax"] - ax["xmin"]) / (ax["right"] - ax["left"]) * 0.01
        tol_log = (math.log10(ax["ymax"]) - math.log10(ax["ymin"])) / (ax["bottom"] - ax["top"]) * 0.01
        for r, (x, b) in zip(rows, printed):
            check(abs(x - r["t_s"]) <= tol_x + 1e-9, "plotted time %.4f vs printed %.4f" % (x, r["t_s"]))
            # the native ns bound, not WinUSB's whole microseconds
            check(abs(math.log10(b) - math.log10(r["bound_ns"])) <= tol_log + 1e-9,
                  "plotted bound %.1f ns vs printed %d ns" % (b, r["bound_ns"]))
        printed_err = {round(x, 6): y for x, y in err_pts}
        for r in rows:
            y = printed_err.get(round(r["t_s"], 6))
            if y is not None and abs(r["true_error_us"]) > 0.002:
                check(abs(math.log10(y) - math.log10(abs(r["true_error_us"]) * 1000)) <= tol_log + 0.01,
                      "plotted error %.1f ns vs printed %.3f us" % (y, r["true_error_us"]))

    # A new generation shows where it happened, between printed lines.
    with tempfile.TemporaryDirectory() as d:
        svg = os.path.join(d, "reset.svg")
        rc, out, err = run("track", "sim:clock=virtual,seed=2", "--duration", "3", "--interval", "250", "--json",
                           "--sim-event", "1.3:reset", "--svg", svg)
        check(rc == 0, "track --sim-event exit %d: %s" % (rc, err))
        rows = json_lines(out)
        gens = [r["generation"] for r in rows]
        check(gens[:5] == [gens[0]] * 5 and gens[5:] == [gens[5]] * 7 and gens[5] != gens[0],
              "the reset at 1.3 s makes a new generation from the 1.5 s line: %s" % gens)
        root = ET.parse(svg).getroot()
        marks = [float(ln.get("data-x")) for ln in root.iter(SVG + "line") if ln.get("class") == "marker"]
        # The tracker notices a reset within 50 ms; the plot has a query every 12.5 ms.
        check(len(marks) == 1 and 1.3 <= marks[0] <= 1.35 + 1e-9,
              "one generation marker within 50 ms after the 1.3 s reset (between the 1.25 and 1.5 s lines): %s"
              % marks)
    rc, _, err = run("track", "sim", "--sim-event", "soon")
    check(rc == 2 and "S:EVENT" in err, "--sim-event without S: usage error")


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
    # --clock: the answer on another timeline is the MONOTONIC one moved by
    # that clock's offset, which this process measures too (clocks are never
    # changed here; a REALTIME step is tested inside the QEMU guest).
    for name, cid in (("realtime", time.CLOCK_REALTIME), ("tai", getattr(time, "CLOCK_TAI", 11)),
                      ("boottime", time.CLOCK_BOOTTIME), ("monotonic", time.CLOCK_MONOTONIC)):
        rc, out, _ = run("query", "sim:clock=virtual,seed=3", "now", "--clock", name, "--json")
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        c = time.clock_gettime_ns(cid)
        m2 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        rows = json_lines(out)
        check(rc == 0 and len(rows) == 1 and rows[0].get("clock") == name, "query --clock %s names it" % name)
        if rows:
            r = rows[0]
            shift = r["clock_start_ns"] - r["start_ns"]
            want = c - (m1 + m2) // 2
            check(abs(shift - want) <= (m2 - m1) + r["clock_bound_ns"] - r["bound_ns"] + 100000,
                  "query --clock %s: moved by %d ns, this process measures %d" % (name, shift, want))
            check(r["clock_bound_ns"] >= r["bound_ns"] + (1 if name != "monotonic" else 0),
                  "query --clock %s: the conversion widens the bound" % name)
    rc, out, _ = run("query", "sim:clock=virtual", "now", "--clock", "realtime")
    check(rc == 0 and "on CLOCK_REALTIME:" in out and "Z)" in out, "query --clock realtime text: %r" % out)
    rc, _, err = run("query", "sim", "now", "--clock", "gps")
    check(rc == 2 and "--clock needs one of monotonic|realtime|tai|boottime" in err, "query --clock gps: usage")
    rc, out, _ = run("track", "sim:clock=virtual", "--duration", "0.3", "--interval", "100", "--clock", "tai",
                     "--json")
    rows = json_lines(out)
    check(rc == 0 and len(rows) == 3 and all(r["clock"] == "tai" and r["clock_bound_ns"] > r["bound_ns"]
                                             for r in rows), "track --clock tai --json")


def track_json(*args):
    rc, out, err = run("track", *args, "--json")
    return rc, json_lines(out), err


def test_track_duration():
    # Virtual clock: deterministic.  A line per interval, and the last at the
    # duration itself, not rounded up to whole intervals.
    rc, rows, err = track_json("sim:clock=virtual,seed=6", "--duration", "1", "--interval", "300")
    check(rc == 0, "track --duration 1 --interval 300: exit %d %s" % (rc, err))
    check([r["t_s"] for r in rows] == [0.3, 0.6, 0.9, 1.0], "lines at 0.3 0.6 0.9 1.0: %s" % [r["t_s"] for r in rows])
    steps = [b["usb_frame"] - a["usb_frame"] for a, b in zip(rows, rows[1:])]
    check(len(steps) == 3 and all(abs(d - w) <= 1 for d, w in zip(steps, (300, 300, 100))),
          "frames advance 300, 300, 100: %s" % steps)
    rc, one, err = track_json("sim:clock=virtual,seed=6", "--duration", "1", "--interval", "3000")
    rc2, ref, _ = track_json("sim:clock=virtual,seed=6", "--duration", "1", "--interval", "1000")
    check(rc == 0 and rc2 == 0 and len(one) == 1 and len(ref) == 1, "one line for 1 s at 3000 ms: exit %d %s" % (rc, err))
    if one and ref:
        check(one[0]["t_s"] == 1.0 and (one[0]["usb_frame"], one[0]["microframe"]) ==
              (ref[0]["usb_frame"], ref[0]["microframe"]),
              "--interval 3000 --duration 1 stops at 1 s: frame %d.%d, at 1 s %d.%d" %
              (one[0]["usb_frame"], one[0]["microframe"], ref[0]["usb_frame"], ref[0]["microframe"]))
    # Real clock: the same single line at 1 s (the wall time is printed, not judged).
    t0 = time.monotonic()
    rc, rows, err = track_json("sim", "--duration", "1", "--interval", "3000")
    print("track sim --duration 1 --interval 3000: %.2f s wall, %d line(s)" % (time.monotonic() - t0, len(rows)))
    check(rc == 0 and [r["t_s"] for r in rows] == [1.0], "real clock: one line at 1.000 s: %s" % rows)


def stopped_by_signal(sig, json_out):
    """Starts a long track, waits for its first line, sends sig; returns
    (exit status, stdout lines, stderr, svg path contents checked)."""
    with tempfile.TemporaryDirectory() as d:
        svg = os.path.join(d, "t.svg")
        args = [BIN, "track", "sim", "--duration", "600", "--interval", "50", "--svg", svg]
        if json_out:
            args.append("--json")
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        while True:  # the header (text) or the first row (JSON): tracking is under way
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if not line.startswith("#"):
                break
        p.send_signal(sig)
        # Not communicate(): it reads the raw pipes and would drop what
        # readline() above already buffered (rows printed in one burst on a
        # loaded machine).  The output after the signal is small.
        p.wait(timeout=120)
        rest, err = p.stdout.read(), p.stderr.read()
        lines += rest.splitlines(keepends=True)
        complete = all(l.endswith("\n") for l in lines)
        points = None
        if os.path.exists(svg):
            pn = panels(svg)
            points = len(pn[0]["series"].get("printed lines (bound, ns)", [])) if pn else -1
        return p.returncode, [l.rstrip("\n") for l in lines], err, complete, points


def test_track_signals():
    for sig, name, json_out in ((signal.SIGINT, "SIGINT", True), (signal.SIGTERM, "SIGTERM", False),
                                (signal.SIGINT, "SIGINT", False)):
        rc, lines, err, complete, points = stopped_by_signal(sig, json_out)
        what = "%s (%s)" % (name, "json" if json_out else "text")
        check(rc == 0, "%s: exit %d, want 0: %s" % (what, rc, err))
        check(("stopped by " + name) in err, "%s: says it stopped: %r" % (what, err))
        check(complete, "%s: every line ends with a newline" % what)
        if json_out:
            rows = json_lines("\n".join(lines))
            ts = [r["t_s"] for r in rows]
        else:
            rows = [l.split() for l in lines if not l.startswith("#")]
            check(all(len(r) == 7 for r in rows), "%s: every row has its 7 columns" % what)
            ts = [float(r[0]) for r in rows]
        check(len(rows) >= 1 and max(ts) < 600, "%s: stopped early, after %d rows" % (what, len(rows)))
        check(points == len(rows), "%s: the SVG is whole, a point per row: %s vs %d" % (what, points, len(rows)))


def test_output_paths():
    with tempfile.TemporaryDirectory() as d:
        missing = os.path.join(d, "no-such-dir", "t.svg")
        for cmd in (("track", "sim:clock=virtual", "--duration", "1"), ("bench",)):
            for path, why in ((missing, "a missing directory"), (d, "a directory")):
                rc, out, err = run(*cmd, "--svg", path)
                check(rc == 1 and out == "" and "cannot write" in err and path in err,
                      "%s --svg %s: exit %d, nothing run (stdout %r), %r" % (cmd[0], why, rc, out[:60], err))
        # A run that fails leaves an existing file as it was, and creates none.
        old = os.path.join(d, "old.svg")
        with open(old, "w") as f:
            f.write("keep me")
        new = os.path.join(d, "new.svg")
        rc, _, _ = run("track", "/dev/bus/usb/999/127", "--svg", old)
        check(rc == 1 and open(old).read() == "keep me", "failed track keeps an existing --svg file: exit %d" % rc)
        rc, _, _ = run("track", "/dev/bus/usb/999/127", "--svg", new)
        check(rc == 1 and not os.path.exists(new), "failed track creates no --svg file: exit %d" % rc)
        rc, _, _ = run("track", "not-a-spec", "--svg", new)
        check(rc == 2 and not os.path.exists(new), "malformed spec: exit %d, no --svg file" % rc)
        rc, _, _ = run("track", "sim:clock=virtual", "--duration", "0.5", "--svg", old)
        check(rc == 0 and ET.parse(old).getroot().tag == SVG + "svg", "a good run replaces the file: exit %d" % rc)


def test_query_edges():
    # Frame 0 is a frame like any other (the WinUSB call's 0/0 means "no frame
    # asked"; the command asks through the nanosecond API).
    rc, out, err = run("query", "sim", "0", "--json")
    rows = json_lines(out)
    check(rc == 0 and len(rows) == 1, "query sim 0: exit %d %s" % (rc, err))
    if rows:
        r = rows[0]
        check(r["qpc"] != 0 and r["start_ns"] > 0 and r["qpc"] == (r["start_ns"] + 50) // 100,
              "query sim 0: a real time, not QPC 0: %s" % r)
    rc, out, _ = run("query", "sim", "0")
    check(rc == 0 and "QPC 0 " not in out and out.startswith("frame 0 microframe 0 started at QPC"),
          "query sim 0 text: %r" % out)
    # Neighbouring (micro)frames are a frame and half a frame apart.
    t = {}
    for f, uf in ((2000, 0), (2001, 0), (2000, 4)):
        rc, out, _ = run("query", "sim:clock=virtual,seed=7", str(f), str(uf), "--json")
        rows = json_lines(out)
        check(rc == 0 and len(rows) == 1, "query %d %d: exit %d" % (f, uf, rc))
        if rows:
            t[(f, uf)] = rows[0]
    if len(t) == 3:
        b = max(r["bound_ns"] for r in t.values())
        check(abs(t[(2001, 0)]["start_ns"] - t[(2000, 0)]["start_ns"] - 1000000) <= 2 * b, "a frame is 1 ms")
        check(abs(t[(2000, 4)]["start_ns"] - t[(2000, 0)]["start_ns"] - 500000) <= 2 * b, "4 microframes are 0.5 ms")
    # What the tracker cannot answer: exit 1, a reason, nothing on stdout.
    for args, why, says in ((("sim:clock=virtual", "0"), "before the virtual clock began", "before the host clock"),
                            (("sim:clock=virtual", "4294967295"), "frame -1, before it", "before the host clock"),
                            (("sim:clock=virtual", "2147483648"), "2^31 frames away", "too far"),
                            (("sim", "2147483647", "--json"), "24 days ahead", "too far")):
        rc, out, err = run("query", *args)
        check(rc == 1 and out == "" and says in err, "query %s (%s): exit %d, %r" % (" ".join(args), why, rc, err))


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


for t in (test_help_and_usage, test_track_text, test_track_json_and_svg, test_track_duration, test_track_signals,
          test_output_paths, test_query_edges, test_list_and_query, test_bench):
    t()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

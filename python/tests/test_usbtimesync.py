# SPDX-License-Identifier: MIT
"""The Python binding against the simulated controller's truth.

Run by ``make check`` (ctest python_binding) with USBTIMESYNC_LIBRARY set to
the build tree, and by the Debian autopkgtest against the installed package.
Virtual-clock simulators make every figure deterministic.
"""
import ctypes
import dataclasses
import os
import subprocess
import sys

import pytest

import usbtimesync as uts
from usbtimesync import _native

SETTLE_NS = 2_000_000_000


@pytest.fixture
def sim():
    with uts.open("sim:clock=virtual,seed=31,drift_ppm=-180") as dev, dev.track() as tr:
        dev.sim_advance(SETTLE_NS)
        yield dev, tr


def test_structures_have_windows_byte_packed_layouts():
    assert ctypes.sizeof(_native.USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION) == 9
    assert ctypes.sizeof(_native.USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION) == 60
    assert ctypes.sizeof(_native.USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION) == 8
    q = _native.USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION
    offsets = [getattr(q, name).offset for name, _ in q._fields_]
    assert offsets == [0, 8, 12, 16, 24, 32, 36, 40, 48, 52, 56]


def test_frame_time_is_within_its_bound_of_the_truth(sim):
    dev, tr = sim
    now = tr.current()
    outside, worst = 0, 0
    for i in range(400):
        frame, uf = now.frame - 200 + i, i % 8
        ft = tr.frame_time(frame, uf)
        assert (ft.frame, ft.microframe, ft.generation) == (frame, uf, now.generation)
        err = abs(ft.start_ns - dev.sim_truth(frame, uf))
        outside += err > ft.bound_ns
        worst = max(worst, err)
    print("frame_time: worst error %d ns, %d of 400 outside the bound" % (worst, outside))
    assert outside <= 4
    assert worst < 2000


def test_answers_are_frozen_dataclasses(sim):
    _, tr = sim
    ft = tr.current()
    assert dataclasses.is_dataclass(ft)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ft.start_ns = 0
    assert ft.qpc == (ft.start_ns + 50) // 100
    assert tr.frame_time(ft.frame, clock="realtime").qpc is None


def test_winusb_query_agrees_with_the_ns_answer(sim):
    _, tr = sim
    cur = tr.current()
    q = tr.query(cur.frame - 30, 5)
    ft = tr.frame_time(cur.frame - 30, 5)
    assert q.qpc_frequency == uts.QPC_FREQUENCY
    assert q.generation == ft.generation
    assert q.hardware_frame == q.frame & 0x7FF
    assert abs(q.input_qpc * 100 - ft.start_ns) <= 50
    assert q.accuracy_us * 1000 >= ft.bound_ns
    assert tr.query().input_qpc == 0  # frame 0 microframe 0: no input


def test_bulk_conversion_is_one_snapshot_matching_the_truth(sim):
    dev, tr = sim
    now = tr.current()
    # sim_truth knows a frame by its low 11 bits: stay within 1024 frames of now.
    frames = [now.frame - 950 + (i * 7) % 1900 for i in range(10000)]
    ufs = [i % 8 for i in range(10000)]
    times = tr.frame_times(frames, ufs)
    assert len(times) == 10000 and times.generation == now.generation
    if uts._np is not None:
        import numpy as np
        assert isinstance(times.start_ns, np.ndarray) and times.start_ns.dtype == np.int64
    outside = 0
    for i in range(0, 10000, 97):
        truth = dev.sim_truth(frames[i], ufs[i])
        outside += abs(int(times.start_ns[i]) - truth) > int(times.bound_ns[i])
        one = tr.frame_time(frames[i], ufs[i])
        assert (one.start_ns, one.bound_ns) == (int(times.start_ns[i]), int(times.bound_ns[i]))
    assert outside <= 1


def test_bulk_conversion_makes_one_library_call(sim, monkeypatch):
    _, tr = sim
    calls = []
    real_lib = _native.lib
    real = real_lib.usbts_frames_to_clock_ns

    def counting(*args):
        calls.append(args[3])
        return real(*args)

    class Lib:
        def __getattr__(self, name):
            return counting if name == "usbts_frames_to_clock_ns" else getattr(real_lib, name)

    monkeypatch.setattr(uts._n, "lib", Lib())
    cur = tr.current()
    tr.frame_times(range(cur.frame - 3000, cur.frame))
    assert calls == [3000]


def test_bulk_without_numpy_returns_lists(sim, monkeypatch):
    dev, tr = sim
    monkeypatch.setattr(uts, "_np", None)
    cur = tr.current()
    times = tr.frame_times([cur.frame - 2, cur.frame - 1], [3, 4])
    assert isinstance(times.start_ns, list) and isinstance(times.bound_ns, list)
    assert abs(times.start_ns[1] - dev.sim_truth(cur.frame - 1, 4)) <= times.bound_ns[1]
    with pytest.raises(ValueError):
        tr.frame_times([1, 2], [0, 9])


@pytest.mark.skipif(uts._np is None, reason="numpy not installed (apt-get install python3-numpy)")
def test_bulk_numpy_in_and_out(sim):
    import numpy as np
    dev, tr = sim
    cur = tr.current()
    frames = np.arange(cur.frame - 100, cur.frame, dtype=np.uint32)
    times = tr.frame_times(frames, np.full(100, 7))
    assert times.start_ns.shape == (100,)
    truth = np.array([dev.sim_truth(int(f), 7) for f in frames])
    assert np.all(np.abs(times.start_ns - truth) <= times.bound_ns)
    assert np.all(np.diff(times.start_ns) > 0)
    with pytest.raises(ValueError):
        tr.frame_times(frames, np.zeros(3))


def test_other_clocks_are_monotonic_plus_the_measured_offset(sim):
    _, tr = sim
    cur = tr.current()
    frames = list(range(cur.frame - 50, cur.frame))
    mono = tr.frame_times(frames, clock=uts.Clock.MONOTONIC)
    for clock in ("realtime", "tai", "boottime"):
        other = tr.frame_times(frames, clock=clock)
        off, unc = uts.clock_offset(clock)
        assert other.clock == uts.Clock.of(clock)
        for i in range(len(frames)):
            widen = int(other.bound_ns[i]) - int(mono.bound_ns[i])
            assert widen >= 1
            assert abs(int(other.start_ns[i]) - int(mono.start_ns[i]) - off) <= widen + unc
    with pytest.raises(ValueError):
        uts.Clock.of("gps")


def test_errors_carry_the_win32_code_and_the_message(sim):
    dev, tr = sim
    with pytest.raises(uts.Error) as e:
        uts.open("sim:drift_ppm=nonsense")
    assert e.value.winerror == 87 and e.value.name == "ERROR_INVALID_PARAMETER"
    assert "drift_ppm" in e.value.message
    with pytest.raises(uts.Error) as e:
        tr.frame_time(100, 8)
    assert e.value.winerror == 87 and "0..7" in e.value.message
    with pytest.raises(uts.Error) as e:
        uts.open("/dev/bus/usb/001/127")
    assert e.value.winerror == 2


def test_context_managers_stop_and_free(sim):
    dev, _ = sim
    with dev.interface() as itf:
        with itf.start_tracking() as tr:
            dev.sim_advance(100_000_000)
            h = tr.handle
            tr.current()
        with pytest.raises(ValueError):
            tr.current()
        # The stopped handle is dead in the library too.
        q = _native.USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION()
        q.TimeTrackingHandle = h
        assert not _native.lib.WinUsb_GetCurrentFrameNumberAndQpc(itf.handle, ctypes.byref(q))
        assert _native.lib.GetLastError() == 6
    with pytest.raises(ValueError):
        itf.speed


def test_generation_changes_on_reset(sim):
    dev, tr = sim
    before = tr.current()
    dev.sim_inject("reset")
    dev.sim_advance(SETTLE_NS)
    after = tr.current()
    assert after.generation != before.generation
    times = tr.frame_times([after.frame - 10, after.frame - 5])
    assert times.generation == after.generation
    assert abs(int(times.start_ns[1]) - dev.sim_truth(after.frame - 5)) <= int(times.bound_ns[1])


def test_library_found_through_the_environment_variable():
    env = dict(os.environ, USBTIMESYNC_LIBRARY=os.path.join(os.path.dirname(__file__), "no-such-dir"))
    p = subprocess.run([sys.executable, "-c", "import usbtimesync"], capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "USBTIMESYNC_LIBRARY" in p.stderr and "does not exist" in p.stderr
    if os.environ.get("USBTIMESYNC_LIBRARY"):
        assert os.path.realpath(uts.library_path).startswith(
            os.path.realpath(os.environ["USBTIMESYNC_LIBRARY"]).rstrip("/"))


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


@pytest.mark.skipif(uts._np is None, reason="numpy not installed (apt-get install python3-numpy)")
@pytest.mark.skipif(not os.path.exists(README), reason="README.md is not beside this test (installed-package run)")
def test_readme_python_example_runs(capsys):
    """The README's Python example, verbatim: it runs and prints one generation,
    three REALTIME-scale TAI times and a bound."""
    text = open(README).read()
    section = text[text.index("## Using it from Python"):]
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    exec(compile(code, "README.md", "exec"), {})
    first, second = capsys.readouterr().out.splitlines()[:2]
    gen, rest = first.split(" ", 1)
    assert int(gen) >= 1 and int(rest.rsplit(" ", 1)[1]) > 0
    assert int(second) > 0

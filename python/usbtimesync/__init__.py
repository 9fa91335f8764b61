# SPDX-License-Identifier: MIT
"""usbtimesync: at which host-clock instant did a USB (micro)frame start?

A pure-Python binding (ctypes) of libusbtimesync, the WinUSB time-sync API
for Linux.  Open a device, start tracking its controller's frame clock, and
ask when frames started, on CLOCK_MONOTONIC or on the timelines PTP and NTP
keep across machines (CLOCK_REALTIME, CLOCK_TAI), each answer with an error
bound and the generation it belongs to::

    import usbtimesync as uts

    with uts.open("sim:clock=virtual") as dev, dev.track() as tr:
        dev.sim_advance(2_000_000_000)           # a virtual clock moves when told
        now = tr.current()
        ft = tr.frame_time(now.frame - 10, 3)    # one frame: a FrameTime
        times = tr.frame_times(range(now.frame - 1000, now.frame))  # one C call

``frame_times`` converts a whole array in one call of the library, from one
snapshot of the model (one generation for all of it); with numpy installed it
takes and returns numpy arrays, lists otherwise.

The library is the system's ``libusbtimesync.so.0``, or the one the
environment variable ``USBTIMESYNC_LIBRARY`` names (a file or a build tree).
"""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Union

from . import _native as _n

try:  # numpy is optional: arrays in and out when present, lists otherwise
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the machine
    _np = None

__all__ = [
    "Clock", "Device", "DeviceInfo", "Error", "FrameQpc", "FrameTime", "FrameTimes", "Interface", "Tracking",
    "TrackingStats", "clock_offset", "open", "query_performance_counter", "library_path", "QPC_FREQUENCY",
]
__version__ = "0.1.0"

QPC_FREQUENCY = 10_000_000  #: QPC ticks per second (100 ns each)
library_path: str = _n.path  #: the shared library this package loaded

_ERROR_NAMES = {
    0: "ERROR_SUCCESS", 2: "ERROR_FILE_NOT_FOUND", 5: "ERROR_ACCESS_DENIED", 6: "ERROR_INVALID_HANDLE",
    8: "ERROR_NOT_ENOUGH_MEMORY", 31: "ERROR_GEN_FAILURE", 50: "ERROR_NOT_SUPPORTED", 87: "ERROR_INVALID_PARAMETER",
    122: "ERROR_INSUFFICIENT_BUFFER", 1167: "ERROR_DEVICE_NOT_CONNECTED", 1460: "ERROR_TIMEOUT",
}


class Error(Exception):
    """A library call failed.

    Attributes:
        winerror: the Win32 error code the library set (``GetLastError()``).
        name: its symbolic name, e.g. ``"ERROR_INVALID_PARAMETER"``.
        message: the library's one-line message: cause and fix.
        call: the C function that failed.
    """

    def __init__(self, call: str, winerror: int, message: str) -> None:
        self.call = call
        self.winerror = winerror
        self.name = _ERROR_NAMES.get(winerror, "error %d" % winerror)
        self.message = message
        super().__init__("%s: %s (%s, %d)" % (call, message, self.name, winerror))


def _fail(call: str) -> Error:
    msg = _n.lib.usbts_last_error_message()
    return Error(call, int(_n.lib.GetLastError()), msg.decode("utf-8", "replace") if msg else "")


def _check(ok: int, call: str) -> None:
    if not ok:
        raise _fail(call)


class Clock(enum.IntEnum):
    """Host timelines a frame time can be given on (see docs/CLOCKS.md)."""

    MONOTONIC = 0  #: the tracker's own clock (QPC is this, in 100 ns ticks)
    REALTIME = 1  #: UTC wall clock, as steered by phc2sys or chronyd
    TAI = 2  #: REALTIME plus the kernel's TAI offset
    BOOTTIME = 3  #: MONOTONIC plus time spent suspended

    @classmethod
    def of(cls, value: Union["Clock", int, str]) -> "Clock":
        """A Clock from itself, its number or its name (``"realtime"``)."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError("clock %r is not one of monotonic, realtime, tai, boottime" % value) from None
        return cls(value)


def _qpc(ns: int) -> int:
    """The QPC tick nearest a host-clock instant, rounded as the library does."""
    return (ns + 50) // 100


@dataclass(frozen=True)
class FrameTime:
    """When one microframe started.

    Attributes:
        frame: the 32-bit USB frame number.
        microframe: 0..7.
        start_ns: host time at which it started, ns on ``clock``.
        bound_ns: error bound on ``start_ns`` (>= 1), including the clock
            conversion's uncertainty on clocks other than MONOTONIC.
        generation: the generation (continuous mapping) it belongs to.
        clock: the timeline of ``start_ns``.
        offset_ns: for :meth:`Tracking.ns_to_frame` only: how far into the
            microframe the instant lies.
    """

    frame: int
    microframe: int
    start_ns: int
    bound_ns: int
    generation: int
    clock: Clock = Clock.MONOTONIC
    offset_ns: int = 0

    @property
    def qpc(self) -> Optional[int]:
        """``start_ns`` as QPC (100 ns ticks) on MONOTONIC; None on other clocks."""
        return _qpc(self.start_ns) if self.clock == Clock.MONOTONIC else None


@dataclass(frozen=True)
class FrameTimes:
    """Many frames' start times from ONE model snapshot (one generation).

    ``start_ns`` and ``bound_ns`` are numpy int64 arrays when numpy is
    installed, lists of int otherwise, in the order the frames were given.
    """

    start_ns: Any
    bound_ns: Any
    generation: int
    clock: Clock

    def __len__(self) -> int:
        return len(self.start_ns)


@dataclass(frozen=True)
class FrameQpc:
    """WinUsb_GetCurrentFrameNumberAndQpc's answer.

    Attributes:
        frame: CurrentUSBFrameNumber.
        microframe: CurrentHardwareMicroFrameNumber.
        hardware_frame: CurrentHardwareFrameNumber (frame & 0x7FF).
        qpc: QPC at the start of the current microframe.
        input_qpc: QPC at the start of the input (micro)frame; 0 when the
            input was frame 0 microframe 0.
        accuracy_us: PredictedAccuracyInMicroSeconds.
        generation: CurrentGenerationID.
        qpc_frequency: ticks per second (10,000,000).
    """

    frame: int
    microframe: int
    hardware_frame: int
    qpc: int
    input_qpc: int
    accuracy_us: int
    generation: int
    qpc_frequency: int


@dataclass(frozen=True)
class DeviceInfo:
    """What usbts_get_device_info tells about an open device."""

    spec: str
    controller: str
    driver: str
    source: str
    vendor_id: int
    product_id: int
    bus: int
    address: int
    speed: int
    is_simulated: bool
    is_virtual_clock: bool


@dataclass(frozen=True)
class TrackingStats:
    """The figures behind the bound (usbts_get_tracking_stats)."""

    reads: int
    captures: int
    rejected: int
    discontinuities: int
    bracket_ns: int
    rate_ppm: float
    window: int
    sampling: bool


def clock_offset(clock: Union[Clock, int, str]) -> "tuple[int, int]":
    """``clock`` minus CLOCK_MONOTONIC now, and that measurement's uncertainty, in ns."""
    off, unc = _n.LONGLONG(), _n.LONGLONG()
    _check(_n.lib.usbts_clock_offset(int(Clock.of(clock)), ctypes.byref(off), ctypes.byref(unc)),
           "usbts_clock_offset")
    return off.value, unc.value


def query_performance_counter() -> int:
    """QueryPerformanceCounter(): CLOCK_MONOTONIC in 100 ns ticks."""
    v = _n.LONGLONG()
    _check(_n.lib.QueryPerformanceCounter(ctypes.byref(v)), "QueryPerformanceCounter")
    return v.value


class _Handle:
    """What Device, Interface and Tracking share: a library handle that is
    ``None`` once released, and a context manager that releases it."""

    _h: Optional[int]
    _gone = "the handle is released"  # the error once it is

    @property
    def handle(self) -> int:
        if self._h is None:
            raise ValueError(self._gone)
        return self._h

    def _forget(self) -> None:
        self._h = None

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Device(_Handle):
    """An open device (usbts_open); a context manager that closes it.

    ``spec``: ``sim``, ``sim:key=value,...``, ``/dev/bus/usb/BBB/DDD``,
    ``BUS:DEV`` or ``vvvv:pppp``.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        h = _n.lib.usbts_open(spec.encode())
        if h is None or h == _n.INVALID_HANDLE_VALUE:
            raise _fail("usbts_open(%r)" % spec)
        self._h: Optional[int] = h
        self._owned: List[Union["Interface", "Tracking"]] = []

    _gone = "the device is closed"

    def close(self) -> None:
        """Closes the device, and with it every interface and tracking handle opened on it."""
        if self._h is not None:
            for o in reversed(self._owned):
                o._forget()
            h, self._h = self._h, None
            _check(_n.lib.usbts_close(h), "usbts_close")

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def interface(self) -> "Interface":
        """WinUsb_Initialize: an interface handle (a context manager)."""
        i = Interface(self)
        self._owned.append(i)
        return i

    def track(self, startup_delay_tolerable: bool = False) -> "Tracking":
        """An interface of its own with tracking started on it; closing the
        Tracking frees both."""
        i = self.interface()
        try:
            t = i.start_tracking(startup_delay_tolerable)
        except BaseException:
            i.close()
            raise
        t._owns_interface = True
        return t

    @property
    def info(self) -> DeviceInfo:
        d = _n.USBTS_DEVICE_INFO()
        _check(_n.lib.usbts_get_device_info(self.handle, ctypes.byref(d)), "usbts_get_device_info")
        s = lambda b: b.decode("utf-8", "replace")  # noqa: E731
        return DeviceInfo(s(d.Spec), s(d.Controller), s(d.Driver), s(d.Source), d.VendorId, d.ProductId,
                          d.BusNumber, d.DeviceAddress, d.Speed, bool(d.IsSimulated), bool(d.IsVirtualClock))

    @property
    def stats(self) -> TrackingStats:
        s = _n.USBTS_TRACKING_STATS()
        _check(_n.lib.usbts_get_tracking_stats(self.handle, ctypes.byref(s)), "usbts_get_tracking_stats")
        return TrackingStats(s.Reads, s.Captures, s.Rejected, s.Discontinuities, s.BracketNs, s.RatePpm, s.Window,
                             bool(s.Sampling))

    def now_ns(self) -> int:
        """The device's host clock now: CLOCK_MONOTONIC, or a simulated controller's virtual clock."""
        v = _n.LONGLONG()
        _check(_n.lib.usbts_now_ns(self.handle, ctypes.byref(v)), "usbts_now_ns")
        return v.value

    # ---- the simulated controller ----
    def sim_advance(self, ns: int) -> None:
        """Moves a virtual clock forward by ns, running the sampling that falls due."""
        _check(_n.lib.usbts_sim_advance(self.handle, int(ns)), "usbts_sim_advance")

    def sim_truth(self, frame: int, microframe: int = 0) -> int:
        """The true host time (ns) at which that microframe started."""
        v = _n.LONGLONG()
        _check(_n.lib.usbts_sim_truth(self.handle, frame & 0xFFFFFFFF, microframe, ctypes.byref(v)),
               "usbts_sim_truth")
        return v.value

    def sim_inject(self, event: str) -> None:
        """``reset``, ``halt_ms=N``, ``stall_ms=N`` or ``unplug``."""
        _check(_n.lib.usbts_sim_inject(self.handle, event.encode()), "usbts_sim_inject")

    def sim_read(self) -> "tuple[int, int, int]":
        """One raw bracketed MFINDEX read: (before_ns, mfindex, after_ns)."""
        b, m, a = _n.LONGLONG(), _n.ULONG(), _n.LONGLONG()
        _check(_n.lib.usbts_sim_read(self.handle, ctypes.byref(b), ctypes.byref(m), ctypes.byref(a)),
               "usbts_sim_read")
        return b.value, m.value, a.value


def open(spec: str = "sim") -> Device:  # noqa: A001 - the natural name, as io.open
    """Opens a device: :class:`Device` (use it in a ``with`` block)."""
    return Device(spec)


class Interface(_Handle):
    """A WinUSB interface handle; a context manager that frees it (WinUsb_Free)."""

    def __init__(self, device: Device) -> None:
        h = _n.HANDLE()
        _check(_n.lib.WinUsb_Initialize(device.handle, ctypes.byref(h)), "WinUsb_Initialize")
        self.device = device
        self._h: Optional[int] = h.value

    _gone = "the interface is freed"

    def close(self) -> None:
        """WinUsb_Free: stops every tracking handle still open on it."""
        if self._h is not None:
            h, self._h = self._h, None
            _check(_n.lib.WinUsb_Free(h), "WinUsb_Free")

    def start_tracking(self, startup_delay_tolerable: bool = False) -> "Tracking":
        """WinUsb_StartTrackingForTimeSync: a :class:`Tracking` (a context manager)."""
        t = Tracking(self, startup_delay_tolerable)
        self.device._owned.append(t)
        return t

    @property
    def speed(self) -> int:
        """DEVICE_SPEED: 1 low, 2 full, 3 high (and faster)."""
        n, b = _n.ULONG(1), _n.UCHAR()
        _check(_n.lib.WinUsb_QueryDeviceInformation(self.handle, 1, ctypes.byref(n), ctypes.byref(b)),
               "WinUsb_QueryDeviceInformation")
        return b.value

    def current_frame_number(self) -> "tuple[int, int]":
        """WinUsb_GetCurrentFrameNumber: (frame, QPC at which it was current)."""
        f, t = _n.ULONG(), _n.LONGLONG()
        _check(_n.lib.WinUsb_GetCurrentFrameNumber(self.handle, ctypes.byref(f), ctypes.byref(t)),
               "WinUsb_GetCurrentFrameNumber")
        return f.value, t.value


class Tracking(_Handle):
    """A time-tracking handle; a context manager that stops it.

    Every query reads the tracker's published model without a lock or a
    system call; :meth:`frame_times` converts a whole array in one C call.
    """

    def __init__(self, interface: Interface, startup_delay_tolerable: bool = False) -> None:
        info = _n.USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION(None, 1 if startup_delay_tolerable else 0)
        _check(_n.lib.WinUsb_StartTrackingForTimeSync(interface.handle, ctypes.byref(info)),
               "WinUsb_StartTrackingForTimeSync")
        self.interface = interface
        self.device = interface.device
        self._h: Optional[int] = info.TimeTrackingHandle
        self._owns_interface = False

    _gone = "tracking is stopped"

    def close(self) -> None:
        """WinUsb_StopTrackingForTimeSync (and WinUsb_Free if :meth:`Device.track` opened the interface)."""
        if self._h is not None:
            h, self._h = self._h, None
            info = _n.USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION(h)
            ok = _n.lib.WinUsb_StopTrackingForTimeSync(self.interface.handle, ctypes.byref(info))
            if self._owns_interface:
                self.interface.close()
            _check(ok, "WinUsb_StopTrackingForTimeSync")

    def query(self, frame: int = 0, microframe: int = 0) -> FrameQpc:
        """WinUsb_GetCurrentFrameNumberAndQpc, with (frame, microframe) as the input frame."""
        q = _n.USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION()
        q.TimeTrackingHandle = self.handle
        q.InputFrameNumber = frame & 0xFFFFFFFF
        q.InputMicroFrameNumber = microframe
        _check(_n.lib.WinUsb_GetCurrentFrameNumberAndQpc(self.interface.handle, ctypes.byref(q)),
               "WinUsb_GetCurrentFrameNumberAndQpc")
        return FrameQpc(q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, q.CurrentHardwareFrameNumber,
                        q.CurrentQueryPerformanceCounter, q.QueryPerformanceCounterAtInputFrameOrMicroFrame,
                        q.PredictedAccuracyInMicroSeconds, q.CurrentGenerationID, q.QueryPerformanceCounterFrequency)

    def current(self, clock: Union[Clock, int, str] = Clock.MONOTONIC) -> FrameTime:
        """The microframe on the bus now, and when it started."""
        ft = self.ns_to_frame(self.device.now_ns())
        if Clock.of(clock) == Clock.MONOTONIC:
            return FrameTime(ft.frame, ft.microframe, ft.start_ns, ft.bound_ns, ft.generation)
        return self.frame_time(ft.frame, ft.microframe, clock)

    def frame_time(self, frame: int, microframe: int = 0, clock: Union[Clock, int, str] = Clock.MONOTONIC) -> FrameTime:
        """When (frame, microframe) started, on ``clock``.  ``frame`` is read as
        the 32-bit frame number nearest the current one."""
        c = Clock.of(clock)
        out = _n.USBTS_FRAME_TIME()
        _check(_n.lib.usbts_frame_to_clock_ns(self.interface.handle, self.handle, int(c), frame & 0xFFFFFFFF,
                                              microframe, ctypes.byref(out)), "usbts_frame_to_clock_ns")
        return FrameTime(out.UsbFrameNumber, out.MicroFrameNumber, out.StartNs, out.BoundNs, out.GenerationId, c)

    def ns_to_frame(self, ns: int) -> FrameTime:
        """Which microframe was on the bus at host-clock instant ``ns`` (MONOTONIC), and how far into it."""
        out = _n.USBTS_FRAME_TIME()
        _check(_n.lib.usbts_ns_to_frame(self.interface.handle, self.handle, int(ns), ctypes.byref(out)),
               "usbts_ns_to_frame")
        return FrameTime(out.UsbFrameNumber, out.MicroFrameNumber, out.StartNs, out.BoundNs, out.GenerationId,
                         Clock.MONOTONIC, out.OffsetNs)

    def frame_times(self, frames: Union[Sequence[int], Iterable[int], Any], microframes: Optional[Any] = None,
                    clock: Union[Clock, int, str] = Clock.MONOTONIC) -> FrameTimes:
        """Start times of many (frame, microframe) pairs in ONE library call.

        The library reads one snapshot of the model for the whole array, so
        every answer belongs to ``FrameTimes.generation``; on another clock
        one conversion serves them all.  ``frames`` (32-bit USB frame
        numbers, each read as the one nearest the current frame) and
        ``microframes`` (0..7; None for all 0) may be numpy arrays or any
        sequence of int.  Returns numpy int64 arrays when numpy is installed,
        lists otherwise.
        """
        c = Clock.of(clock)
        if _np is not None:
            f = _np.ascontiguousarray(_np.asarray(frames, dtype=_np.int64) & 0xFFFFFFFF, dtype=_np.uint32)
            n = f.size
            m = None
            if microframes is not None:
                m = _np.asarray(microframes, dtype=_np.int64)
                if m.shape != f.shape:
                    raise ValueError("microframes has shape %s, frames %s" % (m.shape, f.shape))
                if m.size and (m.min() < 0 or m.max() > 7):
                    raise ValueError("microframes must be 0..7")
                m = _np.ascontiguousarray(m, dtype=_np.uint32)
            start = _np.empty(f.shape, dtype=_np.int64)
            bound = _np.empty(f.shape, dtype=_np.int64)
            ptr = lambda a: None if a is None else a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
            args = (ptr(f), ptr(m), ptr(start), ptr(bound))
        else:
            fl = [int(x) & 0xFFFFFFFF for x in frames]
            n = len(fl)
            fa = (_n.ULONG * n)(*fl)
            ma = None
            if microframes is not None:
                ml = [int(x) for x in microframes]
                if len(ml) != n:
                    raise ValueError("%d microframes for %d frames" % (len(ml), n))
                if any(x < 0 or x > 7 for x in ml):
                    raise ValueError("microframes must be 0..7")
                ma = (_n.ULONG * n)(*ml)
            sa, ba = (_n.LONGLONG * n)(), (_n.LONGLONG * n)()
            args = (ctypes.cast(fa, ctypes.c_void_p), None if ma is None else ctypes.cast(ma, ctypes.c_void_p),
                    ctypes.cast(sa, ctypes.c_void_p), ctypes.cast(ba, ctypes.c_void_p))
        if n > 0xFFFFFFFF:
            raise ValueError("at most 2^32 - 1 frames per call")
        gen = _n.ULONG()
        _check(_n.lib.usbts_frames_to_clock_ns(self.interface.handle, self.handle, int(c), n, *args,
                                               ctypes.byref(gen)), "usbts_frames_to_clock_ns")
        if _np is not None:
            return FrameTimes(start, bound, gen.value, c)
        return FrameTimes(list(sa), list(ba), gen.value, c)

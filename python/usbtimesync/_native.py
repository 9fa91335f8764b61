# SPDX-License-Identifier: MIT
"""The shared library, its structures and its function prototypes (ctypes).

Nothing here is compiled: the package finds ``libusbtimesync.so.0`` at import
and declares every structure with Windows' byte packing (``_pack_ = 1``), the
layouts the C header ``usbtimesync/winusb.h`` has.  Their sizes are checked
below, so a layout change on either side fails at import, not with corrupted
answers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_int32, c_int64, c_uint8, c_uint16, c_uint32,
                    c_uint64, c_void_p)

#: Environment variable naming the library to load: a file, or a build tree
#: (a directory holding libusbtimesync.so*).  Unset: the system's library.
LIBRARY_ENV = "USBTIMESYNC_LIBRARY"
SONAME = "libusbtimesync.so.0"

BOOL = c_int32
BOOLEAN = c_uint8
UCHAR = c_uint8
USHORT = c_uint16
ULONG = c_uint32
DWORD = c_uint32
LONG = c_int32
LONGLONG = c_int64
ULONGLONG = c_uint64
HANDLE = c_void_p

INVALID_HANDLE_VALUE = ctypes.c_void_p(-1).value


class USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION(Structure):
    _pack_ = 1
    _fields_ = [("TimeTrackingHandle", HANDLE), ("IsStartupDelayTolerable", BOOLEAN)]


class USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION(Structure):
    _pack_ = 1
    _fields_ = [("TimeTrackingHandle", HANDLE)]


class USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION(Structure):
    _pack_ = 1
    _fields_ = [
        ("TimeTrackingHandle", HANDLE),
        ("InputFrameNumber", ULONG),
        ("InputMicroFrameNumber", ULONG),
        ("QueryPerformanceCounterAtInputFrameOrMicroFrame", LONGLONG),
        ("QueryPerformanceCounterFrequency", LONGLONG),
        ("PredictedAccuracyInMicroSeconds", ULONG),
        ("CurrentGenerationID", ULONG),
        ("CurrentQueryPerformanceCounter", LONGLONG),
        ("CurrentHardwareFrameNumber", ULONG),
        ("CurrentHardwareMicroFrameNumber", ULONG),
        ("CurrentUSBFrameNumber", ULONG),
    ]


class USBTS_DEVICE_INFO(Structure):
    _fields_ = [
        ("Spec", c_char * 128),
        ("Controller", c_char * 64),
        ("Driver", c_char * 32),
        ("Source", c_char * 16),
        ("VendorId", USHORT),
        ("ProductId", USHORT),
        ("BusNumber", UCHAR),
        ("DeviceAddress", UCHAR),
        ("Speed", UCHAR),
        ("IsSimulated", BOOLEAN),
        ("IsVirtualClock", BOOLEAN),
    ]


class USBTS_TRACKING_STATS(Structure):
    _fields_ = [
        ("Reads", ULONGLONG),
        ("Captures", ULONGLONG),
        ("Rejected", ULONGLONG),
        ("Discontinuities", ULONGLONG),
        ("BracketNs", LONGLONG),
        ("RatePpm", c_double),
        ("Window", LONG),
        ("Sampling", BOOLEAN),
    ]


class USBTS_FRAME_TIME(Structure):
    _fields_ = [
        ("UsbFrameNumber", ULONG),
        ("MicroFrameNumber", ULONG),
        ("StartNs", LONGLONG),
        ("OffsetNs", LONGLONG),
        ("BoundNs", LONGLONG),
        ("GenerationId", ULONG),
    ]


# Windows' winusb.h declares the three time-sync structures byte-packed
# (pshpack1.h): natural offsets, no tail padding.
_SIZES = {
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION: 9,
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION: 60,
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION: 8,
}
for _s, _n in _SIZES.items():
    assert ctypes.sizeof(_s) == _n, "%s is %d bytes, Windows has %d" % (_s.__name__, ctypes.sizeof(_s), _n)
assert USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION.CurrentUSBFrameNumber.offset == 56
assert USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION.CurrentQueryPerformanceCounter.offset == 40
assert USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION.IsStartupDelayTolerable.offset == 8


def _candidates():
    """Where to look for the library, in order."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        if os.path.isdir(env):
            for name in (SONAME, "libusbtimesync.so"):
                path = os.path.join(env, name)
                if os.path.exists(path):
                    return [path]
            raise ImportError("%s=%s is a directory without %s: point it at a build tree (make build) or the "
                              "library file" % (LIBRARY_ENV, env, SONAME))
        if not os.path.exists(env):
            raise ImportError("%s=%s does not exist: point it at libusbtimesync.so.0 or a build tree" %
                              (LIBRARY_ENV, env))
        return [env]
    found = ctypes.util.find_library("usbtimesync")
    return [found] if found else [SONAME]


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path, use_errno=True), path
        except OSError as e:
            errors.append(str(e))
    raise ImportError("cannot load libusbtimesync (%s): install the libusbtimesync0 package, or set %s to a build "
                      "tree" % ("; ".join(errors), LIBRARY_ENV))


lib, path = _load()

_PROTOTYPES = {
    "usbts_open": (HANDLE, [c_char_p]),
    "usbts_close": (BOOL, [HANDLE]),
    "usbts_last_error_message": (c_char_p, []),
    "GetLastError": (DWORD, []),
    "SetLastError": (None, [DWORD]),
    "usbts_get_device_info": (BOOL, [HANDLE, POINTER(USBTS_DEVICE_INFO)]),
    "usbts_get_tracking_stats": (BOOL, [HANDLE, POINTER(USBTS_TRACKING_STATS)]),
    "usbts_now_ns": (BOOL, [HANDLE, POINTER(LONGLONG)]),
    "WinUsb_Initialize": (BOOL, [HANDLE, POINTER(HANDLE)]),
    "WinUsb_Free": (BOOL, [HANDLE]),
    "WinUsb_StartTrackingForTimeSync": (BOOL, [HANDLE, POINTER(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION)]),
    "WinUsb_StopTrackingForTimeSync": (BOOL, [HANDLE, POINTER(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION)]),
    "WinUsb_GetCurrentFrameNumberAndQpc": (BOOL, [HANDLE,
                                                  POINTER(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION)]),
    "WinUsb_GetCurrentFrameNumber": (BOOL, [HANDLE, POINTER(ULONG), POINTER(LONGLONG)]),
    "WinUsb_QueryDeviceInformation": (BOOL, [HANDLE, ULONG, POINTER(ULONG), c_void_p]),
    "QueryPerformanceCounter": (BOOL, [POINTER(LONGLONG)]),
    "usbts_frame_to_ns": (BOOL, [HANDLE, HANDLE, ULONG, ULONG, POINTER(USBTS_FRAME_TIME)]),
    "usbts_ns_to_frame": (BOOL, [HANDLE, HANDLE, LONGLONG, POINTER(USBTS_FRAME_TIME)]),
    "usbts_clock_offset": (BOOL, [ULONG, POINTER(LONGLONG), POINTER(LONGLONG)]),
    "usbts_frame_to_clock_ns": (BOOL, [HANDLE, HANDLE, ULONG, ULONG, ULONG, POINTER(USBTS_FRAME_TIME)]),
    "usbts_frames_to_clock_ns": (BOOL, [HANDLE, HANDLE, ULONG, ULONG, c_void_p, c_void_p, c_void_p, c_void_p,
                                        POINTER(ULONG)]),
    "usbts_sim_read": (BOOL, [HANDLE, POINTER(LONGLONG), POINTER(ULONG), POINTER(LONGLONG)]),
    "usbts_sim_advance": (BOOL, [HANDLE, ULONGLONG]),
    "usbts_sim_truth": (BOOL, [HANDLE, ULONG, ULONG, POINTER(LONGLONG)]),
    "usbts_sim_inject": (BOOL, [HANDLE, c_char_p]),
}
for _name, (_res, _args) in _PROTOTYPES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

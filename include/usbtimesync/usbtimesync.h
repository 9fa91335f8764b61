/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync/usbtimesync.h — the native API: opening devices, the simulated
 * controller, and nanosecond-precision frame times.
 *
 * Every BOOL function returns FALSE on failure and sets the calling thread's
 * last error (GetLastError()); usbts_last_error_message() then says, in one
 * sentence, what went wrong and how to fix it.
 */
#ifndef USBTIMESYNC_USBTIMESYNC_H
#define USBTIMESYNC_USBTIMESYNC_H

#include "winusb.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USBTIMESYNC_VERSION_MAJOR 0
#define USBTIMESYNC_VERSION_MINOR 1
#define USBTIMESYNC_VERSION_PATCH 0
#define USBTIMESYNC_VERSION_STRING "0.1.0"

/* ---- Devices ------------------------------------------------------------ */

/*
 * Opens a device.  spec is one of
 *   sim | sim:key=value,...        a simulated xHCI controller with one
 *                                  high-speed device (keys: see README)
 *   /dev/bus/usb/BBB/DDD           a usbfs node
 *   BUS:DEV                        decimal, as lsusb prints them (1:2, 001:002)
 *   vvvv:pppp                      vendor:product in hex (first match)
 * Returns INVALID_HANDLE_VALUE on failure with the last error set:
 * ERROR_INVALID_PARAMETER (malformed spec), ERROR_FILE_NOT_FOUND,
 * ERROR_ACCESS_DENIED, ERROR_NOT_SUPPORTED, ERROR_NOT_ENOUGH_MEMORY.
 * Closing a device frees every interface opened on it (and stops their tracking).
 */
HANDLE usbts_open(const char *spec);
BOOL usbts_close(HANDLE Device);

/* The calling thread's message for its last failure: cause and fix, one line.
 * Never NULL; "" when this thread has had no failure. */
const char *usbts_last_error_message(void);

typedef struct USBTS_DEVICE_INFO {
    char Spec[128];        /* the spec it was opened with */
    char Controller[64];   /* PCI address of the host controller, or "sim" */
    char Driver[32];       /* host controller driver, e.g. "xhci_hcd" */
    char Source[16];       /* frame-clock source: "sim", "mmio", "debugfs"; "" until first chosen */
    USHORT VendorId;
    USHORT ProductId;
    UCHAR BusNumber;
    UCHAR DeviceAddress;
    UCHAR Speed;           /* LowSpeed, FullSpeed or HighSpeed */
    BOOLEAN IsSimulated;
    BOOLEAN IsVirtualClock;
} USBTS_DEVICE_INFO;

BOOL usbts_get_device_info(HANDLE Device, USBTS_DEVICE_INFO *Info);

/* How the device's controller is being tracked: figures behind the bound. */
typedef struct USBTS_TRACKING_STATS {
    ULONGLONG Reads;           /* bracketed register reads so far */
    ULONGLONG Captures;        /* microframe boundaries captured and accepted */
    ULONGLONG Rejected;        /* captures set aside (preempted reads, outliers) */
    ULONGLONG Discontinuities; /* resets, halts and jumps seen */
    LONGLONG BracketNs;        /* typical width of one bracketed read, ns */
    double RatePpm;            /* the frame clock's rate error against the host clock, ppm */
    LONG Window;               /* captures in the current fit */
    BOOLEAN Sampling;          /* a sampler is running (a tracking handle is open) */
} USBTS_TRACKING_STATS;

BOOL usbts_get_tracking_stats(HANDLE Device, USBTS_TRACKING_STATS *Stats);

/* The device's host clock, in ns: CLOCK_MONOTONIC, or a simulated
 * controller's virtual clock. */
BOOL usbts_now_ns(HANDLE Device, LONGLONG *Ns);

/* ---- Nanosecond frame times ---------------------------------------------- */

typedef struct USBTS_FRAME_TIME {
    ULONG UsbFrameNumber;    /* 32-bit USB frame number */
    ULONG MicroFrameNumber;  /* 0..7 */
    LONGLONG StartNs;        /* host-clock ns at which that microframe started */
    LONGLONG OffsetNs;       /* usbts_ns_to_frame only: how far into the microframe Ns lies */
    LONGLONG BoundNs;        /* error bound on StartNs (>= 1) */
    ULONG GenerationId;      /* as CurrentGenerationID */
} USBTS_FRAME_TIME;

/* The host-clock ns at which (UsbFrameNumber, MicroFrameNumber) started.  The
 * frame number is read as the 32-bit frame number nearest the current one. */
BOOL usbts_frame_to_ns(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle, ULONG UsbFrameNumber,
                       ULONG MicroFrameNumber, USBTS_FRAME_TIME *Out);

/* Which microframe was on the bus at host-clock instant Ns, and how far into it.
 * Ns must lie within 2^31 ms (24.8 days) of now: ERROR_INVALID_PARAMETER. */
BOOL usbts_ns_to_frame(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle, LONGLONG Ns,
                       USBTS_FRAME_TIME *Out);

/* ---- Other host timelines ------------------------------------------------- */

/*
 * The calls above answer on the tracker's host clock: CLOCK_MONOTONIC (or a
 * simulated controller's virtual clock).  Machines that share a timeline
 * through PTP (ptp4l + phc2sys) or NTP (chrony) share CLOCK_REALTIME or
 * CLOCK_TAI instead; these calls give a frame's start on any of them.
 *
 * The conversion is measured inside every call, never cached: the narrowest
 * of up to three bracketed reads (MONOTONIC, the clock, MONOTONIC) gives the
 * clock's offset from MONOTONIC, and half that bracket (plus 1 ns) is added
 * to the bound.  A step of CLOCK_REALTIME between two calls therefore moves
 * their REALTIME and TAI answers by the step and changes nothing else.  The
 * bound covers this machine's side only: how far CLOCK_REALTIME itself is
 * from the reference (the PTP or NTP servo's error) is not in it.
 *
 * On a simulated controller with a virtual clock, the virtual clock stands in
 * for CLOCK_MONOTONIC: an answer on another clock is the virtual-clock answer
 * plus that clock's offset from CLOCK_MONOTONIC on this machine, measured at
 * the call.  So REALTIME answers move with a REALTIME step exactly as on a
 * real controller, while the virtual clock itself stays where it was told.
 */
#define USBTS_CLOCK_MONOTONIC 0u /* the tracker's own clock: no conversion, nothing added to the bound */
#define USBTS_CLOCK_REALTIME 1u  /* wall clock, UTC; what phc2sys and chrony steer */
#define USBTS_CLOCK_TAI 2u       /* REALTIME + the kernel's TAI offset (0 until set, e.g. by ptp4l/phc2sys -a) */
#define USBTS_CLOCK_BOOTTIME 3u  /* MONOTONIC + time spent suspended */

/* Clock's offset from CLOCK_MONOTONIC now (Clock minus MONOTONIC, ns) and the
 * uncertainty of that measurement (ns, >= 1; 0 for MONOTONIC itself).
 * ERROR_INVALID_PARAMETER for an unknown Clock or a NULL pointer;
 * ERROR_NOT_SUPPORTED where the kernel lacks the clock. */
BOOL usbts_clock_offset(ULONG Clock, LONGLONG *OffsetNs, LONGLONG *UncertaintyNs);

/* usbts_frame_to_ns on Clock: StartNs on that clock, BoundNs including the
 * conversion's uncertainty. */
BOOL usbts_frame_to_clock_ns(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle, ULONG Clock,
                             ULONG UsbFrameNumber, ULONG MicroFrameNumber, USBTS_FRAME_TIME *Out);

/* Count frames at once, from ONE model snapshot and one clock conversion: every
 * answer belongs to the single *GenerationId.  UsbFrameNumbers[i] is read as
 * the 32-bit frame number nearest the current one; MicroFrameNumbers may be
 * NULL (all 0); BoundNs may be NULL.  A microframe above 7 anywhere fails the
 * whole call with ERROR_INVALID_PARAMETER.  Like the single queries it takes
 * no lock and allocates nothing. */
BOOL usbts_frames_to_clock_ns(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle, ULONG Clock,
                              ULONG Count, const ULONG *UsbFrameNumbers, const ULONG *MicroFrameNumbers,
                              LONGLONG *StartNs, LONGLONG *BoundNs, ULONG *GenerationId);

/* ---- The simulated controller -------------------------------------------- */

/* One raw bracketed MFINDEX read, exactly as a sampler sees it.  On a virtual
 * clock it moves the clock by the read's duration. */
BOOL usbts_sim_read(HANDLE Device, LONGLONG *BeforeNs, ULONG *Mfindex, LONGLONG *AfterNs);

/* Moves a virtual clock forward by ns; the tracker's sampling that falls due
 * in that span runs inside the call, deterministically. */
BOOL usbts_sim_advance(HANDLE Device, ULONGLONG Ns);

/* The true host time, in ns of the sim's host clock, at which that microframe
 * started: current generation, and the frame nearest the current one whose low
 * 11 bits equal usb_frame's. */
BOOL usbts_sim_truth(HANDLE Device, ULONG UsbFrame, ULONG MicroFrame, LONGLONG *QpcNs);

/* Events: "reset", "halt_ms=N", "stall_ms=N" (virtual clock only), "unplug". */
BOOL usbts_sim_inject(HANDLE Device, const char *Event);

#ifdef __cplusplus
}
#endif

#endif /* USBTIMESYNC_USBTIMESYNC_H */

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
    ULONGLONG Reads;           /* bracketed register reads so far (including those thrown away for
                                * reserved bits set: torn or all-ones values) */
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
#define USBTS_CLOCK_TAI 2u       /* REALTIME + the kernel's TAI offset (0 until set: chrony's leapsectz, adjtimex) */
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

/* ---- Isochronous packet times --------------------------------------------- */

/*
 * Linux never tells user space which frame an isochronous URB was scheduled
 * in: usbfs does not copy urb->start_frame back on REAPURB, and libusb has no
 * field for it.  The xHCI driver schedules every isochronous URB "as soon as
 * possible" from the MFINDEX value it reads inside the submission:
 *
 *   start = roundup(roundup(MFINDEX + IST + 10, 8), interval)   (microframes)
 *
 * where IST is the controller's isochronous scheduling threshold (HCSPARAMS2
 * bits 3:0; bit 3 set: counted in frames) and interval is 2^(bInterval-1)
 * frames at full speed, microframes at high speed and above.  On a controller
 * with the Contiguous Frame Capability (HCCPARAMS1 bit 11, CFC) a URB queued
 * while the endpoint's earlier URBs are still on the ring continues right
 * after the previous one instead; a stream that ran dry restarts ASAP.
 *
 * So the frame can be inferred from the host times just before and just after
 * the submission call: the model says which MFINDEX values the driver could
 * have read between them.  usbts_iso_submitted does that, with one read of the
 * model (no lock, no syscall, no thread, no allocation), and says where the
 * bracket admits more than one start.
 *
 * What is inferred is the frame the kernel assigned (urb->start_frame, as
 * usbmon prints it).  The driver writes it into the TRBs only on a CFC
 * controller for URBs submitted without USBDEVFS_URB_ISO_ASAP; otherwise the
 * controller starts the TDs "as soon as possible" itself and may service a
 * URB queued behind a running stream right after it.  The rule is mainline
 * xhci-ring.c's as of Linux 6.1.
 */

/* The controller facts the rule needs, read from its capability registers
 * (debugfs reg-cap or the PCI BAR: root).  ERROR_NOT_SUPPORTED where they
 * cannot be read (a simulated controller, a controller that is not xHCI on
 * PCI): then give USBTS_ISO_ENDPOINT.Ist and .Cfc yourself (qemu-xhci:
 * HCSPARAMS2 0x0000000f, no CFC). */
typedef struct USBTS_CONTROLLER_CAPS {
    ULONG HcsParams2;     /* raw register */
    ULONG HccParams1;     /* raw register */
    UCHAR Ist;            /* HCSPARAMS2 bits 3:0 */
    UCHAR IstMicroFrames; /* the threshold in microframes: IST[2:0], times 8 if IST bit 3 is set */
    BOOLEAN Cfc;          /* HCCPARAMS1 bit 11 */
} USBTS_CONTROLLER_CAPS;

BOOL usbts_get_controller_caps(HANDLE Device, USBTS_CONTROLLER_CAPS *Caps);

typedef struct USBTS_ISO_ENDPOINT {
    UCHAR Speed;    /* FullSpeed (frames) or HighSpeed (microframes; SuperSpeed and faster too) */
    UCHAR Interval; /* bInterval exactly as the endpoint descriptor states it: 1..16 */
    UCHAR Ist;      /* the controller's IST field, HCSPARAMS2 bits 3:0 (USBTS_CONTROLLER_CAPS.Ist) */
    BOOLEAN Cfc;    /* the controller has the Contiguous Frame Capability */
} USBTS_ISO_ENDPOINT;

/* One endpoint's stream, in the caller's memory: usbts_iso_stream_init fills
 * it, usbts_iso_submitted keeps it.  Fields after Endpoint are the library's. */
typedef struct USBTS_ISO_STREAM {
    USBTS_ISO_ENDPOINT Endpoint;
    ULONG GenerationId;       /* of the model the previous URB was placed with; 0: none yet */
    LONGLONG NextEarliest;    /* microframe after the previous URB's last packet: earliest candidate ... */
    LONGLONG NextLatest;      /* ... and latest */
    LONGLONG LastPacketStart; /* earliest start of the previous URB's last packet */
    /* The chain of URBs that follow each other (CFC): the bracket of the
     * submission that started it afresh, and where the chain stands from that
     * start, so that a generation change can place it again. */
    LONGLONG AnchorBeforeNs, AnchorAfterNs;
    LONGLONG AnchorNextOffset, AnchorLastOffset;
    BOOLEAN AnchorExact;      /* every URB since the anchor followed for certain */
    BOOLEAN Lost;             /* continuity lost across a generation change: until the stream runs dry */
} USBTS_ISO_STREAM;

/* libusb splits an isochronous transfer into URBs of at most this many packets
 * (its MAX_ISO_PACKETS_PER_URB); usbfs takes at most this many per URB. */
#define USBTS_ISO_PACKETS_PER_URB 128

typedef struct USBTS_ISO_SUBMISSION {
    LONGLONG BeforeNs;  /* host clock (usbts_now_ns) just before USBDEVFS_SUBMITURB or libusb_submit_transfer */
    LONGLONG AfterNs;   /* ... and just after it returned */
    ULONG Packets;      /* number_of_packets of the URB, or num_iso_packets of a libusb transfer: more
                           than 128 means libusb split it into ceil(Packets / 128) URBs */
    ULONG Outstanding;  /* this endpoint's URBs submitted earlier through this stream and not yet reaped
                           when the call began (libusb: transfers still in flight, times their URBs) */
} USBTS_ISO_SUBMISSION;

#define USBTS_ISO_AMBIGUOUS 0x01u      /* the bracket admits more than one start: see the ranges */
#define USBTS_ISO_CONTINUED 0x02u      /* the first URB follows the previous one (CFC) */
#define USBTS_ISO_RESTARTED 0x04u      /* the first URB started the stream afresh (ASAP) */
#define USBTS_ISO_SPLIT 0x08u          /* more than 128 packets: libusb submitted several URBs */
#define USBTS_ISO_NEW_GENERATION 0x10u /* the frame clock's generation changed since the previous URB */

typedef struct USBTS_ISO_RESULT {
    ULONG Flags;             /* USBTS_ISO_* */
    ULONG Urbs;              /* URBs the submission became */
    ULONG GenerationId;      /* as CurrentGenerationID */
    /* The first URB's start_frame as the kernel chose it (usbmon's completion
     * line), modulo KernelModulus: frames at full speed (2048), microframes
     * at high speed and above (16384).  Earliest..Latest is its range (equal
     * to KernelStartFrame unless USBTS_ISO_AMBIGUOUS); modular, so Latest may
     * be smaller than Earliest across a wrap. */
    ULONG KernelStartFrame;
    ULONG KernelStartEarliest;
    ULONG KernelStartLatest;
    ULONG KernelModulus;
    LONGLONG ConfirmFromNs;  /* usbts_iso_confirm answers from this host time on (AfterNs + 100 ms) */
} USBTS_ISO_RESULT;

typedef struct USBTS_ISO_PACKET {
    ULONG UsbFrameNumber;        /* 32-bit USB frame number of the (micro)frame the packet was scheduled in */
    ULONG MicroFrameNumber;      /* 0..7; 0 at full speed */
    LONGLONG StartNs;            /* host-clock ns at which that (micro)frame started */
    LONGLONG BoundNs;            /* error bound on StartNs (>= 1) */
    ULONG EarliestFrame, EarliestMicroFrame; /* the range of (micro)frames the bracket admits */
    ULONG LatestFrame, LatestMicroFrame;
    LONGLONG EarliestNs;         /* start of the earliest candidate ... */
    LONGLONG LatestNs;           /* ... and of the latest (their bounds are BoundNs's) */
    ULONG Urb;                   /* which URB of a split submission (packet / 128) */
    BOOLEAN Ambiguous;           /* Earliest != Latest */
} USBTS_ISO_PACKET;

/* Checks the endpoint (ERROR_INVALID_PARAMETER: speed not FullSpeed or
 * HighSpeed, bInterval outside 1..16, IST above 15) and starts an empty
 * stream. */
BOOL usbts_iso_stream_init(USBTS_ISO_STREAM *Stream, const USBTS_ISO_ENDPOINT *Endpoint);

/*
 * Places one submission on the bus and the host clock: Result always,
 * Packets (Submission->Packets entries, or NULL) for every packet.  Call it
 * right after the submission call returns, once per submission, in order; it
 * updates Stream.  Costs one query, whatever the packet count.
 * Errors: ERROR_INVALID_HANDLE as the other queries; ERROR_INVALID_PARAMETER
 * for AfterNs < BeforeNs, a bracket longer than 1 s or not within 2^31 ms of
 * now, Packets 0 or above 2^20, a stream never initialised.  On failure the
 * stream is unchanged, except as ERROR_GEN_FAILURE below says.
 *
 * A generation change (controller reset) found between two submissions sets
 * USBTS_ISO_NEW_GENERATION: a stream with nothing outstanding restarts; a CFC
 * chain still running is placed again under the new model from the bracket
 * of the submission that started it, or, when that chain took a turn the
 * library could only guess, the call fails with ERROR_GEN_FAILURE until the
 * stream has run dry (Outstanding 0).  A reset inside the
 * few ms before the tracker notices it is invisible to this call (as to every
 * query); usbts_iso_confirm at reap time catches it.
 */
BOOL usbts_iso_submitted(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                         USBTS_ISO_STREAM *Stream, const USBTS_ISO_SUBMISSION *Submission,
                         USBTS_ISO_RESULT *Result, USBTS_ISO_PACKET *Packets);

/* Optional, once the URB is reaped and the host clock has passed
 * Result->ConfirmFromNs: TRUE when the model is still the one the result was
 * computed with (same generation); FALSE with ERROR_GEN_FAILURE when the
 * controller's frame clock was reset or halted since (the result may be
 * wrong).  The tracker notices a reset within 50 ms, so earlier it cannot
 * tell: FALSE with ERROR_TIMEOUT, ask again later.  One query. */
BOOL usbts_iso_confirm(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                       const USBTS_ISO_RESULT *Result);

/* ---- 11-bit frame numbers -------------------------------------------------- */

/* A device's SOF number holds the low 11 bits of the USB frame number.
 * Extends HardwareFrame (0..2047) to the one 32-bit frame number in
 * [Reference - Before, Reference + After]; Reference NULL: the current frame.
 * Errors: ERROR_INVALID_PARAMETER (HardwareFrame > 2047), ERROR_NOT_FOUND
 * (no frame in the window has those low bits: a window narrower than 2048
 * frames), ERROR_MORE_DATA (two or more do: a window wider than 2048 frames
 * around the answer); handles as the other queries (they may be NULL when
 * Reference is given). */
#ifndef ERROR_MORE_DATA
#define ERROR_MORE_DATA 234u
#endif
#ifndef ERROR_NOT_FOUND
#define ERROR_NOT_FOUND 1168u
#endif
BOOL usbts_extend_frame_number(WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                               ULONG HardwareFrame, const ULONG *Reference, ULONG Before, ULONG After,
                               ULONG *UsbFrameNumber);

/* ---- Device-clock synchronisation ----------------------------------------- */

/*
 * Firmware latches its own clock at a SOF and reports (device time, frame
 * number).  Each pair becomes (device time, host time of that SOF) through
 * the frame model, and a robust straight-line fit maps device time to host
 * time: offset, rate and an honest bound.  A new frame-clock generation (or a
 * device clock that steps backwards) restarts the fit and says so.  The fit
 * itself is pure math: no I/O, no clock, no thread.
 */
typedef struct USBTS_DEVCLOCK USBTS_DEVCLOCK; /* opaque */

/* DeviceHz: the device clock's nominal rate (ticks per second, > 0).
 * DeviceBits: how many bits its counter has (8..64); it wraps at 2^DeviceBits,
 * and pairs must come at least once per half wrap.  Window: pairs kept for the
 * fit (8..4096; 0: 256).  NULL with ERROR_INVALID_PARAMETER or
 * ERROR_NOT_ENOUGH_MEMORY. */
USBTS_DEVCLOCK *usbts_devclock_create(double DeviceHz, ULONG DeviceBits, ULONG Window);
void usbts_devclock_destroy(USBTS_DEVCLOCK *Clock);

#define USBTS_DEVCLOCK_FRAME_BITS_11 11 /* the device latched the 11-bit SOF number */
#define USBTS_DEVCLOCK_FRAME_BITS_32 32 /* a 32-bit USB frame number */

typedef struct USBTS_DEVCLOCK_STATUS {
    ULONG Generation;      /* the fit's generation: 1, 2, ... (a restart adds one) */
    ULONG FrameGeneration; /* the frame clock's CurrentGenerationID it is built on */
    BOOLEAN Restarted;     /* this pair started a new generation */
    BOOLEAN Rejected;      /* this pair was set aside as an outlier */
    BOOLEAN Ready;         /* enough pairs for an answer (4 in this generation) */
    ULONG Pairs;           /* pairs in the fit, outliers excluded */
    LONGLONG OffsetNs;     /* host ns at device time 0 of this generation's first pair (see HostNs below) */
    double RatePpm;        /* how fast the device clock runs against the host clock, ppm */
    LONGLONG ResidualNs;   /* scatter of the pairs about the line (robust sigma) */
    LONGLONG BoundNs;      /* bound on the mapping at the newest pair */
} USBTS_DEVCLOCK_STATUS;

/* Feeds one pair: the device's timestamp (its own units) and the frame it was
 * latched at the start of (FrameBits 11: extended to the nearest frame at or
 * before now, 2047 frames back at most; 32: as is), MicroFrame 0..7 (high
 * speed; 0 otherwise).  One query.  Status may be NULL. */
BOOL usbts_devclock_add(USBTS_DEVCLOCK *Clock, WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                        ULONGLONG DeviceTime, ULONG Frame, ULONG FrameBits, ULONG MicroFrame,
                        USBTS_DEVCLOCK_STATUS *Status);

/* The same, when the host time of the SOF is already known (HostNs, with its
 * error bound), e.g. from usbts_frame_to_ns: pure, no query. */
BOOL usbts_devclock_add_host(USBTS_DEVCLOCK *Clock, ULONGLONG DeviceTime, LONGLONG HostNs, LONGLONG HostBoundNs,
                             ULONG FrameGeneration, USBTS_DEVCLOCK_STATUS *Status);

/* Host-clock ns at device time DeviceTime, and the bound.  ERROR_GEN_FAILURE
 * until Ready. */
BOOL usbts_devclock_to_host(const USBTS_DEVCLOCK *Clock, ULONGLONG DeviceTime, LONGLONG *HostNs, LONGLONG *BoundNs);

BOOL usbts_devclock_status(const USBTS_DEVCLOCK *Clock, USBTS_DEVCLOCK_STATUS *Status);

/* ---- UVC cameras: start of exposure on the host clock ----------------------- */

/*
 * A UVC camera stamps each video frame with a PTS (its own clock, the STC, at
 * the start of exposure) and sends SCR fields (the STC at a bus SOF, with that
 * SOF's 11-bit number) in its payload headers.  Each new SCR becomes a pair
 * (STC, host time of that SOF) through the frame model, and the device-clock
 * fit maps a PTS to host time with a bound.
 *
 * Headers come raw (libusb/libuvc: the first bytes of each payload, with the
 * host time the transfer completed) or as V4L2_META_FMT_UVC buffers (the
 * metadata node's blocks: the driver's reception time and frame number, then
 * the header bytes).  Repeated SCRs are skipped; headers without an SCR still
 * carry PTS and frame bits; the 11-bit SOF is extended near the reception, the
 * 32-bit STC unwrapped.  A camera whose SOF numbers do not follow the bus
 * (cameras the kernel quirks as having an invalid SOF) is detected and the
 * answers fall back to the reception times, flagged, with a bound of at least
 * 1 ms: larger, never wrongly small.  A USBTS_UVC belongs to its caller: one
 * thread at a time.
 */
typedef struct USBTS_UVC USBTS_UVC; /* opaque */

/* The camera latches its SCR at any of a high-speed frame's 8 SOFs, not
 * always at the first: centre on the frame and widen the bound by 437.5 us. */
#define USBTS_UVC_SOF_ANY_MICROFRAME 0x1u

/* ClockFrequency: the camera's dwClockFrequency (Hz, from VS_PROBE_CONTROL
 * or the VideoControl interface header).  Flags: USBTS_UVC_*.  NULL with
 * ERROR_INVALID_PARAMETER or ERROR_NOT_ENOUGH_MEMORY. */
USBTS_UVC *usbts_uvc_create(ULONG ClockFrequency, ULONG Flags);
void usbts_uvc_destroy(USBTS_UVC *Uvc);

/* One raw payload header: Header points at the payload's first byte, Length
 * is how many bytes are there (the header's own bHeaderLength is checked
 * against it).  ReceivedNs: host clock (usbts_now_ns) when the transfer
 * carrying it completed; 0: now.  One query if it has a new SCR, none
 * otherwise.  ERROR_INVALID_PARAMETER for malformed bytes (nothing changes). */
BOOL usbts_uvc_add_header(USBTS_UVC *Uvc, WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                          const void *Header, ULONG Length, LONGLONG ReceivedNs);

/* One V4L2_META_FMT_UVC buffer: Length = its bytesused, every block in it.
 * The whole buffer is checked before any block is used: a malformed one
 * changes nothing (ERROR_INVALID_PARAMETER).  One query per new SCR. */
BOOL usbts_uvc_add_meta(USBTS_UVC *Uvc, WINUSB_INTERFACE_HANDLE InterfaceHandle, HANDLE TimeTrackingHandle,
                        const void *Buffer, ULONG Length);

#define USBTS_UVC_FALLBACK 0x01u       /* from reception times, not SOFs: a larger bound */
#define USBTS_UVC_JUNK_SOF 0x02u       /* the camera's SOF numbers were found not to follow the bus */
#define USBTS_UVC_NEW_GENERATION 0x04u /* the fit restarted since the previous answer */

typedef struct USBTS_UVC_FRAME {
    ULONG Pts;             /* the PTS mapped (camera clock) */
    LONGLONG StartNs;      /* start of exposure on the asked clock, ns */
    LONGLONG BoundNs;      /* error bound on StartNs (>= 1) */
    ULONG GenerationId;    /* the frame clock's CurrentGenerationID the answer is built on */
    ULONG FitGeneration;   /* the SOF fit's generation: 1, 2, ... (a restart adds one) */
    ULONG Flags;           /* USBTS_UVC_* */
    ULONG Pairs;           /* SCRs in the fit */
    ULONGLONG Scrs, Repeats, Bad; /* SCRs taken, repeated ones skipped, ones that failed a check */
} USBTS_UVC_FRAME;

/* The newest PTS seen (the frame just completed: call it once per video
 * frame, after its headers or its metadata buffer) on Clock (USBTS_CLOCK_*).
 * ERROR_NOT_FOUND: no header with a PTS since the last call; ERROR_GEN_FAILURE:
 * not enough SCRs yet.  Pure, apart from the clock offset for a Clock other
 * than MONOTONIC. */
BOOL usbts_uvc_frame(USBTS_UVC *Uvc, ULONG Clock, USBTS_UVC_FRAME *Frame);

/* Any PTS (or STC) on Clock, as usbts_uvc_frame. */
BOOL usbts_uvc_map(USBTS_UVC *Uvc, ULONG Clock, ULONG Pts, USBTS_UVC_FRAME *Frame);

/* ---- The simulated controller -------------------------------------------- */

/* One raw bracketed MFINDEX read, exactly as a sampler sees it (reserved bits
 * and all).  On a virtual clock it moves the clock by the read's duration. */
BOOL usbts_sim_read(HANDLE Device, LONGLONG *BeforeNs, ULONG *Mfindex, LONGLONG *AfterNs);

/* Moves a virtual clock forward by ns; the tracker's sampling that falls due
 * in that span runs inside the call, deterministically.  A sampling burst may
 * end a little past the span (reads take time); the next call then aims ns
 * past where this one aimed, not past where the clock stands (unless something
 * else moved the clock in between), so a thousand advances of 1 ms end where
 * one of 1 s does.  The clock never moves backwards. */
BOOL usbts_sim_advance(HANDLE Device, ULONGLONG Ns);

/* The true host time, in ns of the sim's host clock, at which that microframe
 * started ON THE WIRE (its SOF: the MFINDEX edge plus the sim's sof_ns, which
 * no read can see and the bound covers up to 250 ns): current generation, and
 * the frame nearest the current one whose low 11 bits equal usb_frame's. */
BOOL usbts_sim_truth(HANDLE Device, ULONG UsbFrame, ULONG MicroFrame, LONGLONG *QpcNs);

/* Events: "reset", "reset_halt_ms=N" (reset while halted: MFINDEX reads 0 for
 * N ms, then counts from 0), "halt_ms=N", "suspend_ms=N" (MFINDEX stands still,
 * a fresh microframe at resume), "fladj=N" (0..63: the frame length changes),
 * "stall_ms=N" (virtual clock only), "vanish" (reads return 0xFFFFFFFF), "unplug".
 *
 * Simulator keys (sim:key=value,...; README has the table): clock, seed,
 * drift_ppm, read_ns, preempt_prob, preempt_us, latch, latch_spread, slew_ppm,
 * slew_at_ms, wander_ppm, walk_ppm, ntp_ppm, ntp_ms, fladj, sof_ns, slow_prob,
 * slow_reads, slow_ns, wake_prob, wake_us, torn_prob, allones_prob.  A raw read
 * may carry reserved bits 31:14 (torn_prob, allones_prob, vanish): the tracker
 * discards such reads, and after 100 ms of nothing else (at least 16 reads)
 * reports the controller gone (ERROR_DEVICE_NOT_CONNECTED).  On a virtual
 * clock a seeded run does not depend on how usbts_sim_advance slices time. */
BOOL usbts_sim_inject(HANDLE Device, const char *Event);

#ifdef __cplusplus
}
#endif

#endif /* USBTIMESYNC_USBTIMESYNC_H */

/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync/winusb.h — the WinUSB USB time-synchronization API for Linux.
 *
 * Source-compatible with Windows code that uses WinUsb_StartTrackingForTimeSync,
 * WinUsb_GetCurrentFrameNumberAndQpc, WinUsb_StopTrackingForTimeSync and their
 * companions.  Every type has the size it has on Windows (ULONG is 32 bits here
 * too, never the host's 64-bit `unsigned long`), and the three structures have
 * the Windows x64 layout, checked by static assertions below: byte-packed, as
 * Windows' winusb.h declares them (between pshpack1.h and poppack.h), so they
 * carry no tail padding (9, 60 and 8 bytes) and may sit at any address.
 *
 * The host clock ("QPC") is CLOCK_MONOTONIC counted in 100 ns ticks;
 * QueryPerformanceFrequency() is 10,000,000.  On a simulated controller with
 * a virtual clock, every QPC returned through an interface opened on it is on
 * that controller's clock instead (see usbtimesync.h).
 *
 * Compiles as C99 or later and as C++.
 */
#ifndef USBTIMESYNC_WINUSB_H
#define USBTIMESYNC_WINUSB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types, sized as on Windows ---------------------------- */

typedef int32_t BOOL;
typedef uint8_t BOOLEAN;
typedef uint8_t UCHAR;
typedef uint16_t USHORT;
typedef uint32_t ULONG;
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef void *PVOID;
typedef void *HANDLE;
typedef ULONG *PULONG;
typedef UCHAR *PUCHAR;

#if defined(__GNUC__) || defined(__clang__)
#define USBTS_EXTENSION __extension__
#else
#define USBTS_EXTENSION
#endif

typedef union _LARGE_INTEGER {
    USBTS_EXTENSION struct {
        DWORD LowPart;
        LONG HighPart;
    };
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)

typedef PVOID WINUSB_INTERFACE_HANDLE, *PWINUSB_INTERFACE_HANDLE;

/* ---- Error codes (Windows values) -------------------------------------- */

#define ERROR_SUCCESS 0u
#define ERROR_FILE_NOT_FOUND 2u
#define ERROR_ACCESS_DENIED 5u
#define ERROR_INVALID_HANDLE 6u
#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_GEN_FAILURE 31u
#define ERROR_NOT_SUPPORTED 50u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_INSUFFICIENT_BUFFER 122u
#define ERROR_DEVICE_NOT_CONNECTED 1167u
#define ERROR_TIMEOUT 1460u

/* ---- WinUsb_QueryDeviceInformation ------------------------------------- */

#define DEVICE_SPEED ((ULONG)0x01)
#define LowSpeed ((UCHAR)0x01)
#define FullSpeed ((UCHAR)0x02)
#define HighSpeed ((UCHAR)0x03) /* SuperSpeed and faster report HighSpeed, as on Windows */

/* ---- Time-synchronization structures ----------------------------------- */

/* Byte-packed exactly as Windows packs them, with the pragma Windows' headers
 * use (pshpack1.h is `#pragma pack(push, 1)`), not __attribute__((packed)):
 * GCC and Clang then accept taking a member's address (`&q.CurrentUSBFrameNumber`,
 * `(LARGE_INTEGER *)&q.CurrentQueryPerformanceCounter`) without
 * -Waddress-of-packed-member, as Windows code does.  Such a pointer may be
 * unaligned when the structure itself is (inside a byte buffer, a file image):
 * every function of this library that writes through a LARGE_INTEGER *,
 * PULONG or LONGLONG * copes with that. */
#pragma pack(push, 1)

typedef struct _USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION {
    HANDLE TimeTrackingHandle;        /* in: NULL or INVALID_HANDLE_VALUE; out: the new handle */
    BOOLEAN IsStartupDelayTolerable;  /* FALSE: return only once a boundary is captured */
} USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, *PUSB_START_TRACKING_FOR_TIME_SYNC_INFORMATION;

typedef struct _USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION {
    HANDLE TimeTrackingHandle;
} USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION, *PUSB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION;

typedef struct _USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION {
    HANDLE TimeTrackingHandle;                                   /* in */
    ULONG InputFrameNumber;                                      /* in: 32-bit USB frame number */
    ULONG InputMicroFrameNumber;                                 /* in: 0..7 */
    LARGE_INTEGER QueryPerformanceCounterAtInputFrameOrMicroFrame; /* out */
    LARGE_INTEGER QueryPerformanceCounterFrequency;              /* out: 10,000,000 */
    ULONG PredictedAccuracyInMicroSeconds;                       /* out: bound on every QPC returned */
    ULONG CurrentGenerationID;                                   /* out */
    LARGE_INTEGER CurrentQueryPerformanceCounter;                /* out: QPC at the start of the current microframe */
    ULONG CurrentHardwareFrameNumber;                            /* out: CurrentUSBFrameNumber & 0x7FF */
    ULONG CurrentHardwareMicroFrameNumber;                       /* out: 0..7 */
    ULONG CurrentUSBFrameNumber;                                 /* out: 32-bit USB frame number */
} USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, *PUSB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION;

#pragma pack(pop)

/* ---- Layout checks: identical to Windows x64 (byte-packed) on every 64-bit target ---- */

#if defined(__cplusplus) && __cplusplus >= 201103L
#define USBTS_STATIC_ASSERT(c, m) static_assert(c, m)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define USBTS_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
#define USBTS_STATIC_ASSERT_CAT2(a, b) a##b
#define USBTS_STATIC_ASSERT_CAT(a, b) USBTS_STATIC_ASSERT_CAT2(a, b)
#define USBTS_STATIC_ASSERT(c, m) \
    typedef char USBTS_STATIC_ASSERT_CAT(usbts_static_assert_, __LINE__)[(c) ? 1 : -1]
#endif

USBTS_STATIC_ASSERT(sizeof(BOOL) == 4 && sizeof(ULONG) == 4 && sizeof(DWORD) == 4, "BOOL/ULONG/DWORD are 32-bit");
USBTS_STATIC_ASSERT(sizeof(LONG) == 4 && sizeof(USHORT) == 2 && sizeof(BOOLEAN) == 1, "LONG/USHORT/BOOLEAN sizes");
USBTS_STATIC_ASSERT(sizeof(LARGE_INTEGER) == 8, "LARGE_INTEGER is 64-bit");

#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
USBTS_STATIC_ASSERT(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle) == 0, "start layout");
USBTS_STATIC_ASSERT(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, IsStartupDelayTolerable) == 8, "start layout");
USBTS_STATIC_ASSERT(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION) == 9, "start size");
USBTS_STATIC_ASSERT(offsetof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle) == 0, "stop layout");
USBTS_STATIC_ASSERT(sizeof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION) == 8, "stop size");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle) == 0, "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, InputFrameNumber) == 8, "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, InputMicroFrameNumber) == 12, "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION,
                             QueryPerformanceCounterAtInputFrameOrMicroFrame) == 16, "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, QueryPerformanceCounterFrequency) == 24,
                    "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, PredictedAccuracyInMicroSeconds) == 32,
                    "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentGenerationID) == 36, "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentQueryPerformanceCounter) == 40,
                    "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentHardwareFrameNumber) == 48,
                    "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentHardwareMicroFrameNumber) == 52,
                    "qpc layout");
USBTS_STATIC_ASSERT(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentUSBFrameNumber) == 56,
                    "qpc layout");
USBTS_STATIC_ASSERT(sizeof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION) == 60, "qpc size");
#endif

/* ---- Functions ---------------------------------------------------------- */
/* Every BOOL function returns FALSE on failure and sets the calling thread's
 * last error; on success the last error is left as it was. */

/* DeviceHandle comes from usbts_open().  Claims no interface and detaches no
 * kernel driver: time synchronization needs neither. */
BOOL WinUsb_Initialize(HANDLE DeviceHandle, PWINUSB_INTERFACE_HANDLE InterfaceHandle);

/* Stops every tracking handle still open on the interface, then frees it. */
BOOL WinUsb_Free(WINUSB_INTERFACE_HANDLE InterfaceHandle);

BOOL WinUsb_StartTrackingForTimeSync(WINUSB_INTERFACE_HANDLE InterfaceHandle,
                                     PUSB_START_TRACKING_FOR_TIME_SYNC_INFORMATION StartTrackingInfo);

BOOL WinUsb_GetCurrentFrameNumberAndQpc(WINUSB_INTERFACE_HANDLE InterfaceHandle,
                                        PUSB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION FrameQpcInfo);

BOOL WinUsb_StopTrackingForTimeSync(WINUSB_INTERFACE_HANDLE InterfaceHandle,
                                    PUSB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION StopTrackingInfo);

/* The current 32-bit USB frame number and the QPC at which it was current. */
BOOL WinUsb_GetCurrentFrameNumber(WINUSB_INTERFACE_HANDLE InterfaceHandle, PULONG CurrentFrameNumber,
                                  LARGE_INTEGER *TimeStamp);

/* Advances a frame number read at TimeStamp (a QueryPerformanceCounter value)
 * by the whole milliseconds elapsed since. */
BOOL WinUsb_GetAdjustedFrameNumber(PULONG CurrentFrameNumber, LARGE_INTEGER TimeStamp);

/* InformationType DEVICE_SPEED: Buffer receives one UCHAR (LowSpeed, FullSpeed
 * or HighSpeed) and *BufferLength becomes 1. */
BOOL WinUsb_QueryDeviceInformation(WINUSB_INTERFACE_HANDLE InterfaceHandle, ULONG InformationType,
                                   PULONG BufferLength, PVOID Buffer);

BOOL QueryPerformanceCounter(LARGE_INTEGER *lpPerformanceCount);
BOOL QueryPerformanceFrequency(LARGE_INTEGER *lpFrequency);
DWORD GetLastError(void);
void SetLastError(DWORD dwErrCode);

#ifdef __cplusplus
}
#endif

#endif /* USBTIMESYNC_WINUSB_H */

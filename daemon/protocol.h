/* SPDX-License-Identifier: MIT */
/*
 * protocol.h — how clients talk to usbtimesyncd.
 *
 * A Unix socket of type SOCK_SEQPACKET at RUN_DIR/socket (mode 0666: who may
 * use a device is decided per device, below, never by the peer's uid).  One
 * message per request, one per reply; text, one line, no newline.  Replies
 * are "OK [values]" or "ERR <windows error code> <message for the user>".
 *
 *   OPEN <bus> <dev>     + SCM_RIGHTS: an open descriptor of /dev/bus/usb/BBB/DDD
 *                        -> OK <id> <page file> <presence slot>
 *       The descriptor is the proof of access: the daemon fstat()s it and
 *       requires a character device, major 189, minor (bus-1)*128 + dev-1,
 *       opened for reading or writing (not O_PATH, which needs no permission
 *       on the node).  Read-only is enough, as usbfs allows.
 *   OPENSIM              -> OK <id> sim.page 4294967295   (only with --sim)
 *   START <id> <0|1>     a tracking handle starts (1: IsStartupDelayTolerable)
 *   STOP <id>            one stops
 *   CLOSE <id>           the device is closed (its handles stopped)
 *   STATS <id>           -> OK <users> <reads> <captures> <rejected> <discontinuities> <bracket ns> <ppm> <window>
 *   FRAME <id>           -> OK <extended microframe> <host ns>   (WinUsb_GetCurrentFrameNumber)
 *   READ <id>            -> OK <before ns> <mfindex> <after ns>  (simulated controller only)
 *   TRUTH <id> <f> <uf>  -> OK <host ns>                          (simulated controller only)
 *   INJECT <id> <event>  reset | halt_ms=N | unplug               (simulated controller only)
 *
 * Ids belong to the connection that opened them.  A connection that closes
 * (the client exited or died) stops and closes everything it had: sampling
 * of a controller stops when no connection tracks it.
 */
#ifndef USBTSD_PROTOCOL_H
#define USBTSD_PROTOCOL_H

#define USBTSD_MSG_MAX 1024
#define USBTSD_USB_MAJOR 189

#endif

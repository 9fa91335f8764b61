#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora under fuzz/corpus/ from readable descriptions.

The fuzz targets decode their input byte by byte; these seeds start them on
meaningful paths (a spec of each kind; open, track, query, inject) instead of
making libFuzzer find them.  Run it again whenever a target's input format
changes: python3 fuzz/seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_devspec: one byte of message-buffer size, then the spec ----------
SPECS = {
    "sim": b"sim",
    "sim-virtual": b"sim:clock=virtual",
    "sim-all": b"sim:clock=real,seed=18446744073709551615,drift_ppm=-1000,read_ns=1,preempt_prob=1,"
               b"preempt_us=0,latch=0,slew_ppm=5,slew_at_ms=100,wander_ppm=100",
    "sim-twice": b"sim:seed=1,seed=2",
    "sim-empty": b"sim:",
    "sim-range": b"sim:drift_ppm=1000.0001",
    "path": b"/dev/bus/usb/001/002",
    "busdev": b"1:2",
    "busdev-padded": b"001:127",
    "vidpid": b"1d6b:0104",
    "colons": b"1:2:3",
}
for name, spec in SPECS.items():
    write("devspec", name, b"\xff" + spec)
write("devspec", "short-message", b"\x03" + b"sim:nonsense=1")

# ---- fuzz_api: operations as fuzz_api.c decodes them -------------------------
OPEN, CLOSE, INIT, FREE, START, STOP, QUERY, FRAME_NS, ADVANCE, INJECT, READ, FRAMENO, INFO = \
    0, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15


def slot(i):            # pick(): a pool slot
    return bytes([i << 4])


def op_open(k, read_idx=0, seed=1, drift=0):
    return bytes([OPEN, k, read_idx, seed]) + struct.pack("<I", drift + 1000)


def op_init(dev, k):
    return bytes([INIT]) + slot(dev) + b"\x01" + bytes([k])


def op_start(itf, tolerable):
    return bytes([START]) + slot(itf) + bytes([0x61 if tolerable else 0x21])


def op_advance(dev, ns):
    return bytes([ADVANCE]) + slot(dev) + b"\x04" + struct.pack("<I", ns)


def op_query(itf, tr, frame, uf):
    return bytes([QUERY]) + slot(itf) + slot(tr) + b"\x21" + struct.pack("<I", frame) + bytes([uf])


def op_inject(dev, kind, arg=b""):
    return bytes([INJECT]) + slot(dev) + bytes([kind]) + arg


track = op_open(0) + op_init(0, 0) + op_start(0, True) + op_advance(0, 2500000000) + op_query(0, 0, 100, 3)
write("api", "open-start-query", track)
write("api", "reset-halt", track + op_inject(0, 0) + op_advance(0, 3000000) + op_inject(0, 2, bytes([19])) +
      op_advance(0, 10000000) + op_query(0, 0, 0, 0) + op_advance(0, 40000000) + op_query(0, 0, 7, 7))
write("api", "unplug", track + op_inject(0, 6) + op_query(0, 0, 1, 1) + op_start(0, True) +
      bytes([STOP]) + slot(0) + slot(0) + b"\x01")
write("api", "halted-start", op_open(0, 1) + op_init(0, 0) + op_inject(0, 4, struct.pack("<I", 5000)) +
      op_start(0, False) + op_advance(0, 2900000000) + op_start(0, False))
write("api", "two-devices", op_open(0) + op_open(1, 2, 7, 900) + op_init(0, 0) + op_init(1, 1) +
      op_start(0, False) + op_start(1, True) + op_query(0, 0, 5, 0) + op_query(1, 1, 5, 0) + op_query(1, 0, 5, 0) + op_query(0, 1, 5, 0) +
      bytes([FREE]) + slot(0) + op_query(0, 0, 5, 0) + bytes([CLOSE]) + slot(1) + op_query(1, 1, 5, 0))
write("api", "garbage", bytes([QUERY, 11]) + b"\x01\x00\x00\x00\x00\x00\x00\xa1" + bytes([9, 0x21]) +
      bytes([FREE, 12, CLOSE, 7, START, 10, 3, 0x21, INFO, 0x10, 0x20]))


# ---- fuzz_sysfs: one selector byte (parser, base, bound, level), then the text
SYSFS = {
    "mfindex": (0, b"MFINDEX = 0x00001a2b\nIR0_IMAN = 0x00000002\nIR0_IMOD = 0x00000fa0\n"),
    "mfindex-late": (0, b"IR0_IMAN = 0x00000002\nMFINDEX\t=\t0xFFFFFFFF"),
    "mfindex-cut": (0, b"MFINDEX = 0x"),
    "resource": (1, b"0x00000000fe800000 0x00000000fe803fff 0x0000000000140204\n"
                    b"0x0000000000000000 0x0000000000000000 0x0000000000000000\n"),
    "resource-cut": (1, b"0x00000000fe800000 0x000000"),
    "busnum": (2, b"12\n"),
    "idvendor": (2 | 0x80 | 0x20, b"1d6b\n"),
    "speed": (3, b"1.5\n"),
    "pci": (4, b"0000:00:14.0"),
    "name": (5, b"vhci_hcd.0"),
    "link": (6 | (1 << 3) | 0x80, b"../../../devices/pci0000:00/0000:00:04.0/usb1"),
}
for name, (sel, text) in SYSFS.items():
    write("sysfs", name, bytes([sel]) + text)


# ---- fuzz_uvc: even first byte, one V4L2_META_FMT_UVC buffer; odd, raw headers
# each after its length byte
def uvc_header(pts, stc, sof, fid=0, eof=0):
    return bytes([12, 0x80 | 0x0C | fid | (eof << 1)]) + struct.pack("<IIH", pts, stc, sof)


meta = b"".join(struct.pack("<QH", 300000000 + i * 4000000, (300 + i * 4) & 0x7FF) +
                uvc_header(1000, 2000 + i * 192000, 298 + i * 4, 1, int(i == 2)) for i in range(3))
write("uvc", "meta3", b"\x00" + meta)
raw = b"".join(bytes([12]) + uvc_header(5000, 9000 + i * 48000, (100 + i) & 0x7FF) for i in range(6))
raw += bytes([6, 6, 0x85, 1, 2, 3, 4])  # a header with a PTS and no SCR
write("uvc", "raw6", b"\x01" + raw)
